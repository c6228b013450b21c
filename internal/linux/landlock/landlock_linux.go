package landlock

import (
	"fmt"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Access rights, by name, as the sandbox uses them.
const (
	ReadOnly = ll.AccessFSReadFile | ll.AccessFSReadDir
	Execute  = ll.AccessFSExecute | ll.AccessFSReadFile
	// Device grants what /dev/null and friends need: open for writing
	// (with O_TRUNC) and terminal probes such as isatty().
	Device = ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev
	// Script lets a warm sandbox's driver store the script it is sent in
	// the one file made for it, as a cold sandbox has it.
	Script = ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate
	// Scratch is everything a program does in a temp directory, except
	// executing files and creating device nodes.
	Scratch = ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSReadDir |
		ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeDir | ll.AccessFSMakeReg |
		ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeSym | ll.AccessFSRefer |
		ll.AccessFSTruncate
)

// Rule grants access beneath Path (a directory) or to Path (a file).
type Rule struct {
	Path   string
	Access uint64
}

// handledFS is every filesystem right the given ABI knows: all of them are
// denied unless a rule grants them.
func handledFS(abi int) uint64 {
	h := uint64(1<<13 - 1) // ABI 1: execute .. make_sym
	if abi >= 2 {
		h |= ll.AccessFSRefer
	}
	if abi >= 3 {
		h |= ll.AccessFSTruncate
	}
	if abi >= 5 {
		h |= ll.AccessFSIoctlDev
	}
	return h
}

// ABI returns the kernel's Landlock ABI version, or an error saying why
// Landlock is unavailable.
func ABI() (int, error) {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0, fmt.Errorf("landlock unavailable: %w", err)
	}
	return v, nil
}

// RestrictThread confines the calling OS thread (and what it execs) to
// rules, denying every other filesystem access the kernel can police, all
// TCP binds and connects (ABI 4+), and signals and abstract sockets that
// leave the domain (ABI 6+). The caller must hold runtime.LockOSThread and
// have set no_new_privs on this thread. It returns the ABI applied.
func RestrictThread(rules []Rule) (int, error) {
	abi, err := ABI()
	if err != nil {
		return 0, err
	}
	handled := handledFS(abi)
	attr := ll.RulesetAttr{HandledAccessFS: handled}
	if abi >= 4 {
		attr.HandledAccessNet = ll.AccessNetBindTCP | ll.AccessNetConnectTCP
	}
	if abi >= 6 {
		attr.Scoped = ll.ScopeAbstractUnixSocket | ll.ScopeSignal
	}
	fd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return 0, fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	defer unix.Close(fd)
	for _, r := range rules {
		pfd, err := unix.Open(r.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("landlock rule %s: %w", r.Path, err)
		}
		access := r.Access & handled
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// Directory-only rights are invalid on a file.
			access &= ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev
		}
		err = ll.LandlockAddPathBeneathRule(fd, &ll.PathBeneathAttr{AllowedAccess: access, ParentFd: pfd}, 0)
		unix.Close(pfd)
		if err != nil {
			return 0, fmt.Errorf("landlock_add_rule %s: %w", r.Path, err)
		}
	}
	if err := ll.LandlockRestrictSelf(fd, 0); err != nil {
		return 0, fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return abi, nil
}

// FileAccess are the rights that may be granted on a file (the others
// apply to directories only).
const FileAccess = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// Ruleset returns what RestrictThread handles for a kernel of the given
// ABI: filesystem rights, TCP rights, and scopes, for confining a process
// from outside Go (pybox's fork server does it from Python).
func Ruleset(abi int) (fs, net, scoped uint64) {
	fs = handledFS(abi)
	if abi >= 4 {
		net = ll.AccessNetBindTCP | ll.AccessNetConnectTCP
	}
	if abi >= 6 {
		scoped = ll.ScopeAbstractUnixSocket | ll.ScopeSignal
	}
	return fs, net, scoped
}
