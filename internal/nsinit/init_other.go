//go:build !linux

package nsinit

import (
	"fmt"
	"os"
)

// Main is Linux-only: the native backend does not exist elsewhere.
func Main() {
	fmt.Fprintln(os.Stderr, "pybox-init: the native sandbox needs Linux")
	os.Exit(1)
}
