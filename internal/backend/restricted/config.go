package restricted

import (
	"log/slog"

	"github.com/pybox-dev/pybox/internal/backend/restricted/rlimitexec"
	"github.com/pybox-dev/pybox/internal/reexec"
)

func init() {
	// Here rather than in main: the backend cannot set a child's rlimits
	// without its helper, so any binary that has the backend has the mode.
	reexec.Register(rlimitexec.Name, rlimitexec.Main)
}

// Config configures the restricted backend. The zero value is usable.
type Config struct {
	// InitPath is the binary re-executed as the rlimit helper; default
	// /proc/self/exe.
	InitPath string
	// Dir is where each execution's private directory is made; default
	// os.TempDir().
	Dir string
	// UID and GID are what the program runs as when pybox runs as root;
	// 0 means the default, 65534 (nobody): root cannot be chosen. A uid
	// of its own, used
	// by nothing else on the host, is better: RLIMIT_NPROC and every
	// "same uid" permission are shared with whatever else runs as it.
	UID, GID int
	// Logger receives debug records and teardown errors.
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultUID = 65534
	DefaultGID = 65534
	// nofile is RLIMIT_NOFILE of the program.
	nofile = 256
	// outputKillFactor: a stream that passes this many times the output
	// cap is a flood, and the program is killed (as native does).
	outputKillFactor = 8
)

// Warning is the first of every result's Layers.Warnings.
const Warning = "restricted backend: no kernel isolation (no namespaces, seccomp, Landlock or cgroups); " +
	"only rlimits, no_new_privs, a separate process running as its own uid when pybox is root, a private directory, " +
	"a timeout and the static policy apply. Use the native or docker backend for untrusted code."
