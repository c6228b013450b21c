// Package driver holds the Python code of ours that runs inside the
// sandbox, and the frame protocol the host speaks with it. The code is
// embedded in the binary and holds no secrets: everything it could tell an
// attacker is already visible inside the sandbox.
package driver

import _ "embed"

// Reaper is the program pid 1 of every sandbox runs: it reaps orphans and
// reports the user's program's wait status.
//
//go:embed reaper.py
var Reaper string

// Driver is the program that runs the user's code when the code comes over
// the control pipe: one program ("run") or the cells of a session ("exec").
// It is run as `python3 -I -B -u Path` with fd 3 the read end of the
// control pipe (Requests) and fd 4 the write end of the reply pipe
// (Replies); fds 0, 1 and 2 are the user's. See frame.go for the protocol.
//
//go:embed driver.py
var Driver string

// Path is where the driver lives inside the sandbox.
const Path = "/pybox/.driver.py"

// Zygote is the fork server of the warm path (see zygote.py).
//
//go:embed zygote.py
var Zygote string

// ZygotePath is where the fork server lives inside its template sandbox.
const ZygotePath = "/pybox/.zygote.py"
