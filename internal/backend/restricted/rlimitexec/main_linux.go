package rlimitexec

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main is the helper's entry point (see the package comment). It does not
// return.
func Main() {
	// no_new_privs is a property of the thread that execs.
	runtime.LockOSThread()
	statusFD, limits, program, err := parse(os.Args)
	if err != nil {
		fail(statusFD, err)
	}
	unix.CloseOnExec(statusFD)
	if err := run(statusFD, limits, program); err != nil {
		fail(statusFD, err)
	}
}

func run(statusFD int, limits []Rlimit, program []string) error {
	for _, l := range limits {
		if err := setrlimit(l); err != nil {
			return err
		}
	}
	// A setuid or file-capability binary (sudo, su, ping) then runs
	// without the privilege it would grant.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	// os/exec hands over only fds 0-2 and the ones asked for (below the
	// status fd), but a descriptor that pybox itself inherited without
	// close-on-exec would pass on too.
	if err := cloexecFrom(statusFD + 1); err != nil {
		return err
	}
	err := unix.Exec(program[0], program, os.Environ())
	return fmt.Errorf("executing %s: %w", program[0], err)
}

// setrlimit sets soft and hard limit to l.Value, or to the current hard
// limit if that is lower: lowering needs no privilege, raising would.
func setrlimit(l Rlimit) error {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(l.Resource, &cur); err != nil {
		return fmt.Errorf("reading rlimit %d: %w", l.Resource, err)
	}
	v := min(l.Value, cur.Max)
	// syscall.Setrlimit, not a raw call: for RLIMIT_NOFILE it also stops
	// the Go runtime from restoring its original soft limit at exec.
	if err := syscall.Setrlimit(l.Resource, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
		return fmt.Errorf("setting rlimit %d to %d: %w", l.Resource, v, err)
	}
	return nil
}

// cloexecFrom marks every descriptor from first up close-on-exec.
func cloexecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Before Linux 5.11: one by one.
	ents, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return fmt.Errorf("marking descriptors close-on-exec: %v; listing /proc/self/fd: %w", err, rerr)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

func fail(statusFD int, err error) {
	msg := strings.TrimSpace(err.Error())
	if statusFD < 0 || func() bool { _, werr := unix.Write(statusFD, []byte(msg)); return werr != nil }() {
		fmt.Fprintf(os.Stderr, "%s: %s\n", Name, msg)
	}
	os.Exit(127)
}
