//go:build !linux

package landlock

import "errors"

// Rule grants access beneath Path.
type Rule struct {
	Path   string
	Access uint64
}

// ABI reports that Landlock is Linux-only.
func ABI() (int, error) { return 0, errors.ErrUnsupported }

// RestrictThread is Linux-only.
func RestrictThread([]Rule) (int, error) { return 0, errors.ErrUnsupported }
