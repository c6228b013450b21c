// Package driver holds the Python code of ours that runs inside the
// sandbox. It is embedded in the binary and holds no secrets: everything it
// could tell an attacker is already visible inside the sandbox.
package driver

import _ "embed"

// Boot is the program run as pid 1 of every sandbox: it forks the user's
// script, reaps orphans and reports the script's wait status.
//
//go:embed boot.py
var Boot string
