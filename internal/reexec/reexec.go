// Package reexec lets one binary play several roles: the pybox command and
// helpers it re-executes (the restricted backend's rlimit helper). A role
// is chosen by argv[0], which the parent sets when it starts
// /proc/self/exe. (The native sandbox's init is such a role too, but
// starts earlier, from package nsinit's initialisation: see there.)
package reexec

import (
	"fmt"
	"os"
)

var modes = map[string]func(){}

// Register makes fn the entry point of the process when argv[0] is name.
// It panics on a duplicate name: roles are fixed at build time.
func Register(name string, fn func()) {
	if _, dup := modes[name]; dup {
		panic(fmt.Sprintf("reexec: mode %q registered twice", name))
	}
	modes[name] = fn
}

// Init runs the registered mode named by argv[0], if any, and reports whether
// it did. A mode function is expected not to return; if it does, Init exits 0.
func Init() bool {
	fn, ok := modes[os.Args[0]]
	if !ok {
		return false
	}
	fn()
	os.Exit(0)
	return true
}

// Self is the path that re-executes the running binary.
const Self = "/proc/self/exe"
