// Package rlimitexec is the child side of the restricted backend: the pybox
// binary re-executed (argv[0] = Name) between fork and the interpreter, to
// do what os/exec cannot do for a child: set its rlimits. It sets them,
// sets no_new_privs, marks every descriptor it was not given close-on-exec,
// and execs the program; nothing of it survives the exec.
//
// Its command line is Args(...): argv[0] Name, argv[1] the number of the
// status descriptor, argv[2] the rlimits, then the program's argv, whose
// first element is an absolute path. A failure before the exec is written
// to the status descriptor (close-on-exec, so the parent reads end of file
// once the program runs) and the process exits 127.
package rlimitexec

import (
	"fmt"
	"strconv"
	"strings"
)

// Name is argv[0] of the re-executed helper.
const Name = "pybox-restricted-exec"

// Rlimit is one resource limit, applied as both soft and hard limit.
type Rlimit struct {
	Resource int
	Value    uint64
}

// Args is the helper's argv for running program with limits, reporting
// setup failures on statusFD.
func Args(statusFD int, limits []Rlimit, program []string) []string {
	parts := make([]string, len(limits))
	for i, l := range limits {
		parts[i] = fmt.Sprintf("%d=%d", l.Resource, l.Value)
	}
	return append([]string{Name, strconv.Itoa(statusFD), strings.Join(parts, ",")}, program...)
}

// parse is the inverse of Args.
func parse(argv []string) (statusFD int, limits []Rlimit, program []string, err error) {
	if len(argv) < 4 || argv[0] != Name {
		return -1, nil, nil, fmt.Errorf("usage: %s STATUS-FD RLIMITS PROGRAM [ARG...]", Name)
	}
	if statusFD, err = strconv.Atoi(argv[1]); err != nil || statusFD < 3 {
		return -1, nil, nil, fmt.Errorf("bad status descriptor %q", argv[1])
	}
	if argv[2] != "" {
		for _, p := range strings.Split(argv[2], ",") {
			k, v, _ := strings.Cut(p, "=")
			r, err1 := strconv.Atoi(k)
			n, err2 := strconv.ParseUint(v, 10, 64)
			if err1 != nil || err2 != nil {
				return statusFD, nil, nil, fmt.Errorf("bad rlimit %q", p)
			}
			limits = append(limits, Rlimit{Resource: r, Value: n})
		}
	}
	if !strings.HasPrefix(argv[3], "/") {
		return statusFD, nil, nil, fmt.Errorf("program path %q is not absolute", argv[3])
	}
	return statusFD, limits, argv[3:], nil
}
