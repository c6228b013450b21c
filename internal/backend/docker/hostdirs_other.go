//go:build !linux

package docker

import "errors"

var errNotLocal = errors.New("the daemon is not on this host")

// hostDirs is Linux's: elsewhere the daemon runs in a VM, and the backend
// uses tmpfs mounts for /dev and /sys.
func hostDirs(base string) (dev, sys, hosts string, err error) { return "", "", "", errNotLocal }
