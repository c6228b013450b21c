//go:build !linux

package rlimitexec

import (
	"fmt"
	"os"
)

// Main is only implemented on Linux; the restricted backend never starts
// it elsewhere.
func Main() {
	fmt.Fprintf(os.Stderr, "%s: only supported on Linux\n", Name)
	os.Exit(127)
}
