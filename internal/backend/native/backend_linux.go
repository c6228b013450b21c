package native

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/internal/linux/cgroup"
	"github.com/pybox-dev/pybox/internal/linux/landlock"
	"github.com/pybox-dev/pybox/internal/linux/seccomp"
	"github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

var _ sandbox.Backend = (*Backend)(nil)

// Backend runs sandboxes with Linux namespaces, seccomp, Landlock and
// cgroups. It is safe for concurrent use.
type Backend struct {
	cfg         Config
	log         *slog.Logger
	rootless    bool
	cgroups     cgroup.Manager // nil: rlimits only (rootless without delegation)
	cgroupErr   error
	landlockABI int
	filter      []nsinit.SockFilter
	slots       *slots
	interps     *interpCache
	warnings    []string
}

// New checks what the host offers and prepares the backend. It fails,
// with the reason and the fix, when a layer that pybox requires is
// missing: it never silently runs with less isolation.
func New(cfg Config) (*Backend, error) {
	if cfg.InitPath == "" {
		cfg.InitPath = reexec.Self
	}
	if cfg.UIDBase == 0 {
		cfg.UIDBase = DefaultUIDBase
	}
	if cfg.UIDSlots == 0 {
		cfg.UIDSlots = DefaultUIDSlots
	}
	if cfg.SeccompErrno == 0 {
		cfg.SeccompErrno = unix.EPERM
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, rootless: os.Geteuid() != 0}
	if err := userNamespacesWork(); err != nil {
		return nil, fmt.Errorf("%w: user namespaces: %v", sandbox.ErrUnavailable, err)
	}
	if err := seccomp.Available(); err != nil {
		return nil, fmt.Errorf("%w: %v", sandbox.ErrUnavailable, err)
	}
	a, err := seccomp.Native()
	if err != nil {
		return nil, fmt.Errorf("%w: seccomp: %v", sandbox.ErrUnavailable, err)
	}
	prog, err := seccomp.Compile(seccomp.Profile, a, cfg.SeccompErrno)
	if err != nil {
		return nil, err
	}
	raw, err := prog.Assemble()
	if err != nil {
		return nil, err
	}
	for _, f := range raw {
		b.filter = append(b.filter, nsinit.SockFilter{Code: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K})
	}
	if abi, err := landlock.ABI(); err == nil {
		b.landlockABI = abi
	} else {
		b.warnings = append(b.warnings, "Landlock is not available on this kernel; file access is confined by mounts only")
	}
	b.cgroups, b.cgroupErr = cgroup.Open(cfg.CgroupParent)
	if b.cgroupErr == nil {
		if n := cgroup.Sweep(b.cgroups, time.Minute); n > 0 {
			b.log.Info("removed leftover sandbox cgroups", "count", n)
		}
	}
	if b.cgroupErr != nil {
		if !b.rootless {
			return nil, fmt.Errorf("%w: cgroups: %v", sandbox.ErrUnavailable, b.cgroupErr)
		}
		b.cgroups = nil
		b.warnings = append(b.warnings, "cgroups are not delegated to this user: memory, pids and CPU are limited by rlimits only (per process, weaker); "+
			"run as root or delegate a cgroup v2 subtree for full limits")
	}
	stateDir, cacheDir := cfg.StateDir, cfg.CacheDir
	if stateDir == "" {
		stateDir = defaultDir("XDG_RUNTIME_DIR", "/run/pybox", ".cache/pybox/run")
	}
	if cacheDir == "" {
		cacheDir = defaultDir("XDG_CACHE_HOME", "/var/cache/pybox", ".cache/pybox")
	}
	b.interps = &interpCache{dir: cacheDir, mem: map[string]*Interpreter{}}
	if !b.rootless {
		if cfg.UIDBase < 65536 || int64(cfg.UIDBase)+int64(cfg.UIDSlots)*idsPerSlot > 1<<32-2 {
			return nil, fmt.Errorf("uid range %d+%d*65536 is outside the usable id space", cfg.UIDBase, cfg.UIDSlots)
		}
		b.slots = &slots{dir: filepath.Join(stateDir, "slots"), n: cfg.UIDSlots}
	}
	return b, nil
}

func defaultDir(xdgVar, rootDir, homeRel string) string {
	if os.Geteuid() == 0 {
		return rootDir
	}
	if d := os.Getenv(xdgVar); d != "" {
		return filepath.Join(d, "pybox")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, homeRel)
}

func userNamespacesWork() error {
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return errors.New("disabled (user.max_user_namespaces = 0)")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" && os.Geteuid() != 0 {
		return errors.New("disabled for unprivileged users (kernel.unprivileged_userns_clone = 0)")
	}
	return nil
}

// SweepLeftovers removes the cgroups of sandboxes that a killed pybox left
// behind, once they are empty and older than olderThan. A long-running
// server calls it periodically: right after a crash the kernel may still
// be killing the old sandboxes when the new process starts.
func (b *Backend) SweepLeftovers(olderThan time.Duration) int {
	if b.cgroups == nil {
		return 0
	}
	n := cgroup.Sweep(b.cgroups, olderThan)
	if n > 0 {
		b.log.Info("removed leftover sandbox cgroups", "count", n)
	}
	return n
}

// Name implements sandbox.Backend.
func (b *Backend) Name() string { return "native" }

// Namespaces every sandbox gets.
var namespaces = []string{"user", "pid", "mount", "net", "ipc", "uts", "cgroup"}

// Layers reports what a run on this backend applies.
func (b *Backend) Layers() sandbox.Layers {
	l := sandbox.Layers{
		Backend:    "native",
		Namespaces: namespaces,
		Seccomp:    true,
		Landlock:   b.landlockABI,
		Cgroup:     "none",
		Rootless:   b.rootless,
		Warnings:   b.warnings,
	}
	if b.cgroups != nil {
		l.Cgroup = b.cgroups.Version()
	}
	return l
}

// Interpreter resolves python as Run would.
func (b *Backend) Interpreter(ctx context.Context, python string) (*Interpreter, error) {
	return b.interps.resolve(ctx, python)
}

// Description is what doctor reports about the backend's configuration.
type Description struct {
	Rootless      bool
	UIDBase       int
	UIDSlots      int
	CgroupVersion string   // "" when cgroups are not used
	CgroupParents []string // where sandbox groups are created
	CgroupError   error    // why cgroups are not used
	LandlockABI   int
	SeccompRules  int // instructions in the compiled filter
	Warnings      []string
}

// Describe reports how the backend is set up on this host.
func (b *Backend) Describe() Description {
	d := Description{
		Rootless: b.rootless, UIDBase: b.cfg.UIDBase, UIDSlots: b.cfg.UIDSlots,
		CgroupError: b.cgroupErr, LandlockABI: b.landlockABI, SeccompRules: len(b.filter), Warnings: b.warnings,
	}
	if b.cgroups != nil {
		d.CgroupVersion, d.CgroupParents = b.cgroups.Version(), b.cgroups.Parent()
	}
	return d
}
