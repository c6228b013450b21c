//go:build linux

package seccomp

import (
	"fmt"
	"runtime"
	"sort"
)

//go:generate go run ./gentables

// Arch is one architecture's audit id and syscall table.
type Arch struct {
	Name      string
	AuditArch uint32
	syscalls  []syscallNr // sorted by name
}

type syscallNr struct {
	name string
	nr   int
}

// Lookup returns the number of the named syscall.
func (a *Arch) Lookup(name string) (int, bool) {
	i := sort.Search(len(a.syscalls), func(i int) bool { return a.syscalls[i].name >= name })
	if i < len(a.syscalls) && a.syscalls[i].name == name {
		return a.syscalls[i].nr, true
	}
	return 0, false
}

// Supported architectures.
var (
	X86_64  = archX86_64
	AARCH64 = archAARCH64
)

// Native returns the table of the running binary's architecture.
func Native() (*Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return X86_64, nil
	case "arm64":
		return AARCH64, nil
	}
	return nil, fmt.Errorf("seccomp: no syscall table for %s", runtime.GOARCH)
}
