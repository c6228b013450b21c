package native

import (
	"log/slog"
	"syscall"
)

// Config configures the native backend. The zero value is usable.
type Config struct {
	// InitPath is the binary re-executed as sandbox init; default
	// /proc/self/exe. Tests point it at a freshly built pybox.
	InitPath string
	// UIDBase and UIDSlots define the host ids sandboxes run as in root
	// mode: slot n maps the sandbox's ids 0-65535 to
	// UIDBase+n*65536 onwards, like a subordinate id range.
	UIDBase  int
	UIDSlots int
	// StateDir holds the slot locks; CacheDir the interpreter descriptions.
	StateDir string
	CacheDir string
	// CgroupParent overrides where sandbox cgroups are created, relative
	// to the hierarchy root (default: on v1 <pybox's own group>/pybox, on
	// v2 a "pybox" sibling of pybox's own group).
	CgroupParent string
	// SeccompErrno is what denied syscalls return (default EPERM). The
	// security suite sets a distinctive value to tell "blocked by the
	// filter" from "reached the kernel and failed".
	SeccompErrno syscall.Errno
	// Logger receives debug records, including the init's per-step
	// timings when it is enabled at debug level.
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultUIDBase  = 1_000_000_000
	DefaultUIDSlots = 1024
	idsPerSlot      = 65536
)
