package native

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/linux/landlock"
	"github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// systemLibDirs hold the shared libraries the interpreter and extension
// modules (numpy's BLAS, sqlite, libffi, ...) link against. On merged-/usr
// hosts the top-level ones are symlinks and are recreated as such.
var systemLibDirs = []string{"/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib", "/lib", "/lib64", "/lib32"}

// systemLinks are recreated only if they are symlinks (merged /usr), so
// that "#!/bin/sh"-style paths resolve; their targets are not bound: the
// host's binaries stay out of the sandbox.
var systemLinks = []string{"/bin", "/sbin"}

// dataPaths are read-only data that common packages look for: time zones
// (zoneinfo), fonts and matplotlib's Debian data, the loader cache, and
// Debian's alternatives (libblas.so.3 is a link through /etc/alternatives).
var dataPaths = []string{
	"/etc/ld.so.cache", "/etc/alternatives", "/etc/matplotlibrc", "/etc/fonts",
	"/usr/share/zoneinfo", "/usr/share/fonts", "/usr/share/matplotlib",
}

// systemPrefixes are prefixes too broad to bind whole; their stdlib and
// site directories are bound one by one instead.
var systemPrefixes = map[string]bool{"/": true, "/usr": true, "/usr/local": true}

// devices are the only device nodes in the sandbox.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// maskedPaths expose the host kernel or its hardware; runc and Docker hide
// the same set.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/proc/sysrq-trigger", "/proc/kmsg", "/proc/kallsyms", "/proc/interrupts", "/proc/vmallocinfo",
}

var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"}

// sandboxUID is the uid (and gid) the interpreter runs as inside the
// sandbox: an ordinary user, so root-only paths stay closed even within
// the sandbox's own namespace.
const sandboxUID = 1000

// reaperUID is pid 1's uid in root mode: not the program's, so the program
// cannot signal it, read its memory or reopen its report pipe.
const reaperUID = 999

func (b *Backend) reaperUID() int {
	if b.rootless {
		return 0 // only the caller's own id is mapped
	}
	return reaperUID
}

const (
	codeDir = "/pybox"
	workDir = "/tmp"
	// warmScript is where a warm sandbox's driver stores the script of a
	// one-shot, as a cold sandbox has it (other file names are not stored).
	warmScript = "/pybox/main.py"
	// reaperPath holds pid 1's program. The leading dot keeps it out of
	// the way: not importable, and hidden from a plain listing.
	reaperPath = "/pybox/.reaper.py"
)

const passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
	"reaper:x:999:999:pybox reaper:/:/usr/sbin/nologin\n" +
	"sandbox:x:1000:1000:pybox sandbox:/tmp:/usr/sbin/nologin\n" +
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"

const group = "root:x:0:\nreaper:x:999:\nsandbox:x:1000:\nnogroup:x:65534:\n"

// env is the whole environment of the interpreter. Nothing of the host's
// environment is passed except the OpenBLAS workarounds some CPUs need
// (without them numpy computes wrong results or crashes).
func env(interpDir string) []string {
	path := "/usr/local/bin:/usr/bin:/bin"
	if !strings.Contains(":"+path+":", ":"+interpDir+":") {
		// So that "python3" by name finds the same interpreter (pyenv,
		// venvs and /opt installs live outside /usr/bin).
		path = interpDir + ":" + path
	}
	e := []string{
		"PATH=" + path,
		"HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8", "TZ=UTC", "MPLBACKEND=Agg",
		"USER=sandbox", "LOGNAME=sandbox",
	}
	for _, k := range []string{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} {
		if v, ok := os.LookupEnv(k); ok {
			e = append(e, k+"="+v)
		}
	}
	return e
}

// bindSet collects read-only binds, dropping any path already covered by
// a bound ancestor.
type bindSet struct {
	binds    []nsinit.Mount
	symlinks []nsinit.Symlink
}

func (b *bindSet) covered(p string) bool {
	for _, m := range b.binds {
		if !m.File && (p == m.Target || strings.HasPrefix(p, m.Target+"/")) {
			return true
		}
		if m.File && p == m.Target {
			return true
		}
	}
	for _, s := range b.symlinks {
		if p == s.Path || strings.HasPrefix(p, s.Path+"/") {
			return true
		}
	}
	return false
}

// add binds p (a file or a directory) if it exists and is not covered.
// Symlinks are recreated, and their targets added in turn, so that paths
// such as /lib64/ld-linux-x86-64.so.2 resolve as on the host.
func (b *bindSet) add(p string) {
	for depth := 0; depth < 16; depth++ {
		st, err := os.Lstat(p)
		if err != nil {
			return
		}
		if st.Mode()&os.ModeSymlink != 0 {
			// Follow links even inside a bound directory: a venv's
			// bin/python points at an interpreter elsewhere.
			target, err := os.Readlink(p)
			if err != nil {
				return
			}
			if !b.covered(p) {
				b.symlinks = append(b.symlinks, nsinit.Symlink{Path: p, Target: target})
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(p), target)
			}
			p = filepath.Clean(target)
			continue
		}
		if b.covered(p) {
			return
		}
		// Drop binds that this one covers.
		kept := b.binds[:0]
		for _, m := range b.binds {
			if !strings.HasPrefix(m.Target, p+"/") {
				kept = append(kept, m)
			}
		}
		b.binds = append(kept, nsinit.Mount{Source: p, Target: p, File: !st.IsDir()})
		return
	}
}

// checkTraversable refuses, with the fix, an interpreter that the sandbox's
// unprivileged uid could not execute: inside the sandbox it owns nothing,
// so every directory from a bind down to the interpreter, and the
// interpreter itself, must be open to others. (Directories above a bind
// are pybox's own, and open.)
func (b *bindSet) checkTraversable(in *Interpreter) error {
	for _, p := range []string{in.Executable, in.Real} {
		top := ""
		for _, m := range b.binds {
			if p == m.Target || strings.HasPrefix(p, m.Target+"/") {
				top = m.Target
			}
		}
		if top == "" {
			continue
		}
		for q := p; ; q = filepath.Dir(q) {
			if st, err := os.Stat(q); err == nil && st.Mode().Perm()&0o001 == 0 {
				return fmt.Errorf("%w: --python %s: %s has mode %v; the sandbox runs as an unprivileged user, "+
					"so the interpreter and its directories must be readable and executable by others (chmod o+rx)",
					sandbox.ErrInvalidSpec, in.Executable, q, st.Mode().Perm())
			}
			if q == top || q == "/" {
				break
			}
		}
	}
	return nil
}

// sandboxOwned are paths the sandbox mounts its own filesystems on; an
// interpreter that lives there on the host would be hidden.
var sandboxOwned = []string{"/tmp", "/dev", "/proc", "/sys", "/pybox", "/etc"}

// plan turns a spec into the init's configuration.
func (b *Backend) plan(spec *sandbox.Spec, in *Interpreter) (*nsinit.Config, error) {
	for _, p := range append([]string{in.Executable, in.Real}, in.Prefixes...) {
		for _, owned := range sandboxOwned {
			if p == owned || strings.HasPrefix(p, owned+"/") {
				return nil, fmt.Errorf("%w: --python %s lives under %s, which the sandbox mounts its own filesystem on; install it elsewhere (for example /opt)",
					sandbox.ErrInvalidSpec, in.Executable, owned)
			}
		}
	}
	var bs bindSet
	for _, d := range systemLibDirs {
		bs.add(d)
	}
	for _, d := range systemLinks {
		if target, err := os.Readlink(d); err == nil {
			bs.symlinks = append(bs.symlinks, nsinit.Symlink{Path: d, Target: target})
		}
	}
	for _, p := range in.Prefixes {
		if !systemPrefixes[p] {
			bs.add(p)
		}
	}
	for _, p := range in.Path {
		bs.add(p)
	}
	bs.add(in.Executable)
	bs.add(in.Real)
	if in.Loader != "" {
		bs.add(in.Loader)
	}
	for _, p := range dataPaths {
		bs.add(p)
	}
	if !b.rootless {
		if err := bs.checkTraversable(in); err != nil {
			return nil, err
		}
	}
	// Sort so that parents are mounted before anything inside them.
	sort.SliceStable(bs.binds, func(i, j int) bool { return bs.binds[i].Target < bs.binds[j].Target })

	filename := spec.Filename
	if filename == "" {
		filename = "main.py"
	}
	script, code, args := filepath.Join(codeDir, filename), spec.Code, spec.Args
	if spec.Driver {
		// The code arrives later, over the control pipe.
		script, code, args = driver.Path, []byte(driver.Driver), nil
	}
	if spec.Zygote {
		script, code, args = driver.ZygotePath, []byte(driver.Zygote), nil
	}
	files := []nsinit.File{
		{Path: script, Data: code, Mode: 0o444},
		{Path: reaperPath, Data: []byte(driver.Reaper), Mode: 0o444},
		{Path: "/etc/passwd", Data: []byte(passwd), Mode: 0o444},
		{Path: "/etc/group", Data: []byte(group), Mode: 0o444},
		{Path: "/etc/hosts", Data: []byte("127.0.0.1\tlocalhost pybox\n::1\tlocalhost\n"), Mode: 0o444},
		{Path: "/etc/hostname", Data: []byte("pybox\n"), Mode: 0o444},
	}
	if spec.Zygote {
		// The fork server loads the driver from its file.
		files = append(files, nsinit.File{Path: driver.Path, Data: []byte(driver.Driver), Mode: 0o444})
	}
	warm := spec.Driver || spec.Zygote // see CodeMount
	if warm {
		// The one file the program may write outside scratch: where the
		// driver stores a one-shot's script (Landlock grants no more).
		files = append(files, nsinit.File{Path: warmScript, Mode: 0o644})
	}
	var inputs []nsinit.Mount
	for _, f := range spec.Files {
		inputs = append(inputs, nsinit.Mount{Source: f.HostPath, Target: f.SandboxPath, File: true})
	}

	l := spec.Limits
	rl := []nsinit.Rlimit{
		{Resource: unix.RLIMIT_CORE, Value: 0},
		{Resource: unix.RLIMIT_NOFILE, Value: 1024},
		{Resource: unix.RLIMIT_NPROC, Value: nproc(spec)},
		{Resource: unix.RLIMIT_FSIZE, Value: uint64(l.TmpfsBytes)},
		{Resource: unix.RLIMIT_CPU, Value: uint64(max(l.Timeout, spec.Lifetime).Seconds()) + 2},
		{Resource: unix.RLIMIT_MEMLOCK, Value: 64 << 10},
		{Resource: unix.RLIMIT_MSGQUEUE, Value: 0},
		{Resource: unix.RLIMIT_STACK, Value: 8 << 20},
		{Resource: unix.RLIMIT_RTPRIO, Value: 0},
	}
	if b.cgroups == nil {
		// Without a memory cgroup, the data segment limit is the only
		// memory bound: per process, and weaker. Results say so.
		rl = append(rl, nsinit.Rlimit{Resource: unix.RLIMIT_DATA, Value: uint64(l.MemoryBytes)})
	}

	var ll []nsinit.LandlockRule
	if b.landlockABI > 0 {
		ll = []nsinit.LandlockRule{
			{Path: "/", Access: landlock.ReadOnly},
			{Path: in.Real, Access: landlock.Execute},
			{Path: workDir, Access: landlock.Scratch},
			{Path: "/dev/shm", Access: landlock.Scratch},
		}
		if in.Loader != "" {
			ll = append(ll, nsinit.LandlockRule{Path: in.Loader, Access: landlock.Execute})
		}
		if warm {
			ll = append(ll, nsinit.LandlockRule{Path: warmScript, Access: landlock.Script})
		}
		for _, d := range devices {
			ll = append(ll, nsinit.LandlockRule{Path: d, Access: landlock.Device})
		}
	}

	// The program runs as `python3 -I script.py`, unbuffered so that its
	// output streams; -B because the stdlib is read-only anyway.
	program := append([]string{in.Executable, "-I", "-B", "-u", script}, args...)
	rootBytes := int64(len(code)) + 1<<20
	return &nsinit.Config{
		Mounts:        bs.binds,
		Inputs:        inputs,
		Symlinks:      bs.symlinks,
		Files:         files,
		Devices:       devices,
		MaskedPaths:   maskedPaths,
		ReadonlyPaths: readonlyPaths,
		RootBytes:     rootBytes,
		TmpfsBytes:    l.TmpfsBytes,
		Hostname:      "pybox",
		BootID:        randomUUID(),
		Rlimits:       rl,
		Exec:          in.Executable,
		// The reaper's argv ends with the program's pid, which the init
		// appends once it has started the program.
		Argv:              []string{in.Executable, "-I", "-S", "-B", reaperPath},
		ProgramArgv:       program,
		ProgramUnconfined: spec.Zygote,
		ReaperUID:         b.reaperUID(),
		Env:               env(filepath.Dir(in.Executable)),
		Cwd:               workDir,
		Landlock:          ll,
		CodeMount:         warm,
		Seccomp:           b.filter,
	}, nil
}

// openTrees replaces each Source with a detached read-only mount tree that
// the host opens, for root mode: the sandbox's own uid may not be able to
// traverse the host's directories (pyenv under /root), and an fd cannot be
// swapped by a racing rename. The caller closes the returned files.
func openTrees(cfg *nsinit.Config) ([]*os.File, error) {
	var files []*os.File
	open := func(m *nsinit.Mount) error {
		fd, err := openTree(m.Source, m.File)
		if err != nil {
			return err
		}
		m.TreeFD = nsinit.FirstTreeFD + len(files)
		m.Source = ""
		files = append(files, os.NewFile(uintptr(fd), "tree"))
		return nil
	}
	for _, list := range [][]nsinit.Mount{cfg.Mounts, cfg.Inputs} {
		for i := range list {
			if err := open(&list[i]); err != nil {
				closeAll(files)
				return nil, err
			}
		}
	}
	return files, nil
}

// openTree clones the mount tree at path, read-only, nosuid and nodev.
// The path is opened once and everything after works on that descriptor,
// so a rename between the check and the clone cannot swap what is bound.
func openTree(path string, wantFile bool) (int, error) {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return -1, fmt.Errorf("stat %s: %w", path, err)
	}
	if isReg := st.Mode&unix.S_IFMT == unix.S_IFREG; wantFile && !isReg {
		return -1, fmt.Errorf("%w: %s is not a regular file", sandbox.ErrInvalidSpec, path)
	}
	fd, err := unix.OpenTree(pfd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr %s: %w", path, err)
	}
	return fd, nil
}

// nproc is RLIMIT_NPROC. It counts the processes of a uid in the user
// namespace; every sandbox a fork server makes runs as the same uid, so
// there the per-sandbox pids cgroup is the limit, and this stays open.
func nproc(spec *sandbox.Spec) uint64 {
	if spec.Zygote {
		// Only lowered, never raised: raising needs privilege the init
		// does not have. It stays at what pybox itself has.
		var cur unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NPROC, &cur); err == nil {
			return cur.Max
		}
	}
	return uint64(spec.Limits.Pids)
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
