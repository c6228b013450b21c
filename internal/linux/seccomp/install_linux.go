package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InstallOnThread loads filter on the calling OS thread only (no TSYNC).
// The caller must hold runtime.LockOSThread, have set no_new_privs on this
// thread, and execve right after: the filter is meant for the program that
// execve starts, never for Go code.
func InstallOnThread(filter []unix.SockFilter) error {
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("seccomp(SET_MODE_FILTER): %w", errno)
	}
	return nil
}

// Available reports whether the kernel supports seccomp filters.
func Available() error {
	// SECCOMP_GET_ACTION_AVAIL is harmless and answers only if filters exist.
	act := uint32(unix.SECCOMP_RET_ERRNO)
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&act))); errno != 0 {
		return fmt.Errorf("seccomp filters unsupported: %w", errno)
	}
	return nil
}
