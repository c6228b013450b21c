package restricted

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

var _ sandbox.Backend = (*Backend)(nil)

// Backend runs programs as plain processes under rlimits (see the package
// comment for what that does not protect against). It is safe for
// concurrent use.
type Backend struct {
	cfg      Config
	log      *slog.Logger
	asRoot   bool // pybox is root: the program runs as cfg.UID/cfg.GID
	uid, gid int  // what the program runs as

	mu      sync.Mutex
	interps map[string]string // interpreter cache: key → sys.executable
}

// New prepares the backend. It fails if the directory for executions is
// unusable or if, as root, the configured uid is root.
func New(cfg Config) (*Backend, error) {
	if cfg.InitPath == "" {
		cfg.InitPath = reexec.Self
	}
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.UID == 0 {
		cfg.UID = DefaultUID
	}
	if cfg.GID == 0 {
		cfg.GID = DefaultGID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UID < 0 || cfg.GID < 0 {
		return nil, fmt.Errorf("restricted backend: uid %d and gid %d must be unprivileged ids, not root", cfg.UID, cfg.GID)
	}
	if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: restricted backend: directory for executions %s: not a directory (%v)", sandbox.ErrUnavailable, cfg.Dir, err)
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, asRoot: os.Geteuid() == 0, interps: map[string]string{}}
	if b.asRoot {
		b.uid, b.gid = cfg.UID, cfg.GID
	} else {
		b.uid, b.gid = os.Getuid(), os.Getgid()
	}
	if b.asRoot {
		// The helper is exec'd after the switch to the program's uid.
		helper := cfg.InitPath
		if helper == reexec.Self {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("restricted backend: locating the pybox binary: %w", err)
			}
			helper = exe
		}
		if !b.mayAccess(helper, 0o1) {
			return nil, fmt.Errorf("%w: restricted backend: uid %d cannot execute %s, which it runs as the rlimit helper before the interpreter; chmod o+x it",
				sandbox.ErrUnavailable, b.uid, helper)
		}
	}
	return b, nil
}

// Name implements sandbox.Backend.
func (b *Backend) Name() string { return "restricted" }

// Layers reports what a run on this backend applies: no kernel isolation,
// and says so.
func (b *Backend) Layers() sandbox.Layers {
	w := []string{Warning}
	if !b.asRoot {
		w = append(w, fmt.Sprintf("pybox does not run as root, so the program runs as pybox's own uid %d and may read, "+
			"write and signal everything that user may; run pybox as root to give it an unprivileged uid", b.uid))
	}
	return sandbox.Layers{
		Backend:    "restricted",
		Namespaces: []string{},
		Cgroup:     "none",
		Rootless:   !b.asRoot,
		HostUID:    b.uid,
		Warnings:   w,
	}
}

// Run implements sandbox.Backend: the program is started, waited for, and
// its directory removed before Run returns.
func (b *Backend) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	stdout := sandbox.NewCapture(spec.Limits.MaxOutputBytes, spec.Stdout)
	stderr := sandbox.NewCapture(spec.Limits.MaxOutputBytes, spec.Stderr)
	p, err := b.Start(ctx, spec, stdout, stderr)
	if err != nil {
		return nil, err
	}
	res, err := p.Wait()
	<-p.Done()
	return res, err
}

// interpreter resolves python (a path or a name on PATH; default python3)
// to the interpreter's own sys.executable, once per file: a pyenv shim is a
// shell script that needs the host's environment, which the program does
// not get. This runs the operator's interpreter on the host, not user code.
func (b *Backend) interpreter(ctx context.Context, python string) (string, error) {
	if python == "" {
		python = "python3"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		return "", fmt.Errorf("%w: --python %s: not found on PATH: %v", sandbox.ErrInvalidSpec, python, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return "", err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", fmt.Errorf("%w: --python %s: %v", sandbox.ErrInvalidSpec, python, err)
	}
	key := fmt.Sprintf("%s\x00%d:%d:%d:%d\x00%s", path, st.Dev, st.Ino, st.Size, st.Mtim.Nano(), os.Getenv("PYENV_VERSION"))
	b.mu.Lock()
	exe, ok := b.interps[key]
	b.mu.Unlock()
	if !ok {
		out, err := exec.CommandContext(ctx, path, "-I", "-c", "import sys; print(sys.executable)").Output()
		exe = strings.TrimSpace(string(out))
		if err != nil || !filepath.IsAbs(exe) {
			return "", fmt.Errorf("%w: --python %s does not run (%v): %q", sandbox.ErrInvalidSpec, python, err, exe)
		}
		b.mu.Lock()
		b.interps[key] = exe
		b.mu.Unlock()
	}
	if b.asRoot {
		if err := b.checkExecutable(exe); err != nil {
			return "", fmt.Errorf("%w: --python %s: %v", sandbox.ErrInvalidSpec, python, err)
		}
	}
	return exe, nil
}

// checkExecutable refuses, with the fix, an interpreter that the program's
// uid could not run: every directory down to it and to the file its links
// end at must be searchable by that uid (pyenv under a 0700 /root is not).
func (b *Backend) checkExecutable(exe string) error {
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return err
	}
	for _, p := range []string{exe, real} {
		for q := filepath.Dir(p); ; q = filepath.Dir(q) {
			if !b.mayAccess(q, 0o1) {
				return fmt.Errorf("uid %d cannot search %s, on the way to %s; install the interpreter where that uid may run it (for example /usr/bin/python3 or /opt), or chmod o+x the directories", b.uid, q, p)
			}
			if q == "/" {
				break
			}
		}
	}
	if !b.mayAccess(real, 0o5) {
		return fmt.Errorf("uid %d cannot read and execute %s (chmod o+rx)", b.uid, real)
	}
	return nil
}

// mayAccess reports whether b.uid/b.gid (no supplementary groups) has the
// permission bits want (4 read, 2 write, 1 execute) on path.
func (b *Backend) mayAccess(path string, want uint32) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return false
	}
	perm := st.Mode & 0o7
	switch {
	case int(st.Uid) == b.uid:
		perm = st.Mode >> 6 & 0o7
	case int(st.Gid) == b.gid:
		perm = st.Mode >> 3 & 0o7
	}
	return perm&want == want
}

var errUnsupportedSpec = errors.New("not supported by the restricted backend")
