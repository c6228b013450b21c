// Package driver holds the Python code of ours that runs inside the
// sandbox. It is embedded in the binary and holds no secrets: everything it
// could tell an attacker is already visible inside the sandbox.
package driver

import _ "embed"

// Reaper is the program pid 1 of every sandbox runs: it reaps orphans and
// reports the user's program's wait status.
//
//go:embed reaper.py
var Reaper string
