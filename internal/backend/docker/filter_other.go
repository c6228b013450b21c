//go:build !linux

package docker

import (
	"errors"
	"syscall"
)

// innerFilter needs package seccomp's tables, which are Linux's: a client
// on another system relies on the container's Docker-format profile alone.
func innerFilter(daemonArch string, errno syscall.Errno) (string, error) {
	return "", errors.ErrUnsupported
}
