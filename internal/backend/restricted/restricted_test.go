//go:build linux

package restricted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// The test binary is also the rlimit helper (this package's init registers
// the mode), as the pybox binary is.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	// pybox's own environment must not reach the program (TestRun).
	os.Setenv("PYBOX_TEST_SECRET", "server-secret")
	os.Exit(m.Run())
}

// guard bounds every wait of the tests; it only turns a hang into a failure.
const guard = 30 * time.Second

// python is the interpreter the tests run: Debian's, which the unprivileged
// uid can execute (pyenv's lives under a 0700 /root) and which may have
// numpy.
func python(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	if os.Geteuid() == 0 {
		t.Skip("no /usr/bin/python3: the interpreter on PATH may not be executable by uid 65534")
	}
	return "python3"
}

type env struct {
	b    *Backend
	base string // Config.Dir: every execution's directory is made here
	py   string
}

// newEnv makes a backend whose executions live in a fresh directory, and
// checks after the test that each left neither a directory nor a process.
func newEnv(t *testing.T) *env {
	t.Helper()
	base, err := os.MkdirTemp("", "pybox-restricted-test-")
	if err != nil {
		t.Fatal(err)
	}
	// The program's uid passes through to its own directory.
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Dir: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGKILL was sent before Run returned; the kernel may still be
		// tearing the processes down.
		ps := leftovers(base)
		for deadline := time.Now().Add(guard); len(ps) > 0 && time.Now().Before(deadline); ps = leftovers(base) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(ps) > 0 {
			t.Errorf("processes left running in %s: %v", base, ps)
		}
		if ents, _ := os.ReadDir(base); len(ents) > 0 {
			t.Errorf("execution directories left in %s: %v", base, ents)
		}
		os.RemoveAll(base)
	})
	return &env{b: b, base: base, py: python(t)}
}

// leftovers lists the live processes whose working directory or command
// line is below base (zombies have neither, and are dead).
func leftovers(base string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(cwd, base) || bytes.Contains(cmd, []byte(base)) {
			found = append(found, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
		}
	}
	return found
}

func (e *env) spec(code string, mod func(*sandbox.Limits)) *sandbox.Spec {
	lim := sandbox.DefaultLimits()
	lim.Timeout = guard
	if mod != nil {
		mod(&lim)
	}
	return &sandbox.Spec{Code: []byte(code), Python: e.py, Limits: lim}
}

func (e *env) run(t *testing.T, code string, mod func(*sandbox.Limits)) *sandbox.Result {
	t.Helper()
	res, err := e.b.Run(context.Background(), e.spec(code, mod))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, code  string
		args        []string
		status      sandbox.Status
		exit        int
		stdout      string // exact
		stderrHas   string
		messageHave string
	}{
		{name: "print", code: "print('hello')", status: sandbox.StatusOK, stdout: "hello\n"},
		{name: "exit code", code: "import sys\nprint('x')\nsys.exit(3)", status: sandbox.StatusError, exit: 3, stdout: "x\n",
			messageHave: "status 3"},
		{name: "exception", code: "1/0", status: sandbox.StatusError, exit: 1, stderrHas: "ZeroDivisionError: division by zero"},
		{name: "stderr", code: "import sys\nsys.stderr.write('err\\n')", status: sandbox.StatusOK, stderrHas: "err\n"},
		{name: "stdin is empty", code: "import sys\nprint(repr(sys.stdin.read()))", status: sandbox.StatusOK, stdout: "''\n"},
		{name: "args", code: "import sys\nprint(sys.argv[1:])", args: []string{"a", "b c"}, status: sandbox.StatusOK, stdout: "['a', 'b c']\n"},
		{name: "killed by a signal", code: "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", status: sandbox.StatusKilled,
			exit: 128 + 15, messageHave: "SIGTERM"},
		{name: "clean environment", status: sandbox.StatusOK, stdout: "[]\n",
			code: "import os\nprint(sorted(set(os.environ) - {'PATH', 'HOME', 'TMPDIR', 'LANG', 'MPLBACKEND', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'LC_CTYPE'}))"},
		// 3 is listdir's own.
		{name: "only the standard descriptors", status: sandbox.StatusOK, stdout: "['0', '1', '2', '3']\n",
			code: "import os\nprint(sorted(os.listdir('/proc/self/fd')))"},
		{name: "no_new_privs", status: sandbox.StatusOK, stdout: "1\n",
			code: "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0])"},
		{name: "own session", status: sandbox.StatusOK, stdout: "True\n",
			code: "import os\nprint(os.getsid(0) == os.getpid() == os.getpgid(0))"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := e.spec(tc.code, nil)
			spec.Args = tc.args
			res, err := e.b.Run(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status || res.ExitCode != tc.exit {
				t.Errorf("status %s exit %d, want %s %d: %+v", res.Status, res.ExitCode, tc.status, tc.exit, res)
			}
			if tc.stdout != "" && res.Stdout != tc.stdout {
				t.Errorf("stdout %q, want %q (stderr %q)", res.Stdout, tc.stdout, res.Stderr)
			}
			if !strings.Contains(res.Stderr, tc.stderrHas) {
				t.Errorf("stderr %q lacks %q", res.Stderr, tc.stderrHas)
			}
			if !strings.Contains(res.Message, tc.messageHave) {
				t.Errorf("message %q lacks %q", res.Message, tc.messageHave)
			}
			if strings.Contains(res.Stdout+res.Stderr, "server-secret") {
				t.Errorf("the server's environment reached the program")
			}
		})
	}
}

func TestResultFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.run(t, "import os\nx = bytearray(32 << 20)\nprint(os.getcwd())\nprint(os.environ['HOME'])\nprint(__file__)", nil)
	if res.Status != sandbox.StatusOK {
		t.Fatalf("%+v", res)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], e.base+"/pybox-restricted-") || !strings.HasSuffix(lines[0], "/tmp") ||
		lines[1] != lines[0] || lines[2] != filepath.Join(filepath.Dir(lines[0]), "pybox", "main.py") {
		t.Errorf("cwd, HOME and __file__ are %q; want <dir>/tmp twice and <dir>/pybox/main.py below %s", lines, e.base)
	}
	if res.WallMS <= 0 || res.SetupMS <= 0 || res.SetupMS > res.WallMS || res.CPUMS <= 0 {
		t.Errorf("wall %v setup %v cpu %v", res.WallMS, res.SetupMS, res.CPUMS)
	}
	if res.PeakMemoryBytes < 32<<20 {
		t.Errorf("peak memory %d, want at least the 32 MiB the program touched", res.PeakMemoryBytes)
	}
	if res.StdoutBytes != int64(len(res.Stdout)) || res.StdoutTruncated {
		t.Errorf("stdout bytes %d truncated %v for %q", res.StdoutBytes, res.StdoutTruncated, res.Stdout)
	}
	l := res.Layers
	if l.Backend != "restricted" || len(l.Namespaces) != 0 || l.Namespaces == nil || l.Seccomp || l.Landlock != 0 || l.Cgroup != "none" {
		t.Errorf("layers %+v claim isolation", l)
	}
	if len(l.Warnings) == 0 || l.Warnings[0] != Warning || !strings.Contains(Warning, "no kernel isolation") {
		t.Errorf("warnings %q lack the restricted warning", l.Warnings)
	}
	want := os.Getuid()
	if os.Geteuid() == 0 {
		want = DefaultUID
	}
	if l.HostUID != want || l.Rootless != (os.Geteuid() != 0) {
		t.Errorf("host uid %d rootless %v, want %d", l.HostUID, l.Rootless, want)
	}
	if e.b.Name() != "restricted" {
		t.Errorf("name %q", e.b.Name())
	}
}

// TestRlimits reads the limits back inside the program.
func TestRlimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.run(t, `import resource as r
for n in ("DATA", "NOFILE", "CPU", "FSIZE", "CORE", "NPROC"):
    print(n, *r.getrlimit(getattr(r, "RLIMIT_" + n)))`, func(l *sandbox.Limits) {
		l.MemoryBytes, l.TmpfsBytes, l.Timeout, l.Pids = 100<<20, 5<<20, 7*time.Second, 50
	})
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k] = v
	}
	want := map[string]string{
		"DATA": "104857600 104857600", "NOFILE": "256 256", "CPU": "9 9", "FSIZE": "5242880 5242880", "CORE": "0 0",
	}
	if os.Geteuid() == 0 {
		want["NPROC"] = "50 50"
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("RLIMIT_%s is %q, want %q (%s)", k, got[k], v, res.Stderr)
		}
	}
}

// TestNotRoot: as root, the program runs as nobody, without groups, and
// cannot do what root could.
func TestNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only then does the program get a uid of its own")
	}
	t.Parallel()
	e := newEnv(t)
	// A root-owned 0755 directory, writable by root only.
	target := filepath.Join(e.base, "root-only")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(target)
	code := fmt.Sprintf(`import os
print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
try:
    open(%q + "/planted", "w").close()
    os.unlink(%q + "/planted")
    print("wrote")
except PermissionError:
    print("denied")
`, target, target)
	// Positive control: the same program as root, bare, can write.
	out, err := exec.Command(e.py, "-I", "-c", code).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "0 0 0 ") || !strings.HasSuffix(string(out), "wrote\n") {
		t.Fatalf("control as root: %v %q; want uid 0 and the write to work", err, out)
	}
	res := e.run(t, code, nil)
	if want := "65534 65534 65534 []\ndenied\n"; res.Stdout != want || res.Status != sandbox.StatusOK {
		t.Errorf("got %q (%s, %s), want %q", res.Stdout, res.Status, res.Stderr, want)
	}
	if uid, gid := (&Process{b: e.b}).FileOwner(); uid != 65534 || gid != 65534 {
		t.Errorf("file owner %d:%d", uid, gid)
	}
}

// TestUnreachableInterpreter: as root, an interpreter the program's uid
// cannot execute is refused up front, with the reason.
func TestUnreachableInterpreter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Parallel()
	e := newEnv(t)
	private := filepath.Join(e.base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(private)
	link := filepath.Join(private, "python3")
	if err := os.Symlink(e.py, link); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("print(1)", nil)
	spec.Python = link
	_, err := e.b.Run(context.Background(), spec)
	if !errors.Is(err, sandbox.ErrInvalidSpec) || !strings.Contains(err.Error(), "cannot search "+private) {
		t.Errorf("err = %v, want ErrInvalidSpec naming %s", err, private)
	}
}

func TestInvalidSpecs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, spec := range map[string]*sandbox.Spec{
		"files":   {Code: []byte("print(1)"), Files: []sandbox.File{{HostPath: "/etc/hostname", SandboxPath: "/data/x"}}},
		"zygote":  {Zygote: true},
		"limits":  {Code: []byte("print(1)")},
		"missing": {Code: []byte("print(1)"), Python: "/nonexistent/python3"},
	} {
		if name != "limits" {
			spec.Limits = sandbox.DefaultLimits()
		}
		if _, err := e.b.Run(context.Background(), spec); !errors.Is(err, sandbox.ErrInvalidSpec) {
			t.Errorf("%s: err = %v, want ErrInvalidSpec", name, err)
		}
	}
}

// TestTimeoutKillsTree: a grandchild that detached from its parent (but
// not from the process group) dies with the timeout.
func TestTimeoutKillsTree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.run(t, `import os, sys, time
if os.fork() == 0:
    if os.fork() == 0:
        print("grandchild", os.getpid(), flush=True)
        time.sleep(1000)
    os._exit(0)
os.wait()
time.sleep(1000)
`, func(l *sandbox.Limits) { l.Timeout = time.Second })
	if res.Status != sandbox.StatusTimeout || res.Signal != "SIGKILL" || !strings.Contains(res.Message, "timed out") {
		t.Errorf("status %s signal %s message %q", res.Status, res.Signal, res.Message)
	}
	f := strings.Fields(res.Stdout)
	if len(f) != 2 || f[0] != "grandchild" {
		t.Fatalf("stdout %q", res.Stdout)
	}
	pid, _ := strconv.Atoi(f[1])
	// SIGKILL was sent before Run returned; the kernel may still be
	// tearing the process down.
	for deadline := time.Now().Add(guard); alive(pid, e.base); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still runs", pid)
		}
	}
}

// alive reports whether pid is a live (not zombie) process of the test's
// executions.
func alive(pid int, base string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
		return false
	}
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return bytes.Contains(cmd, []byte(base))
}

// TestBackgroundKilledAtExit: what the program leaves running in its group
// when it exits is killed then, not left behind.
func TestBackgroundKilledAtExit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.run(t, `import os, time
if os.fork() == 0:
    time.sleep(1000)
print("parent done", flush=True)
`, nil)
	if res.Status != sandbox.StatusOK || res.Stdout != "parent done\n" {
		t.Errorf("%+v", res)
	}
	// newEnv's cleanup checks that the sleeper is gone.
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	spec := e.spec("import time\nprint('started', flush=True)\ntime.sleep(1000)", nil)
	started := make(chan struct{})
	var once sync.Once
	spec.Stdout = writerFunc(func(p []byte) { once.Do(func() { close(started) }) })
	go func() { <-started; cancel() }()
	res, err := e.b.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != sandbox.StatusKilled || !strings.Contains(res.Message, "cancelled") {
		t.Errorf("%+v", res)
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const code = `import sys
n = int(sys.argv[1]) << 20
b = bytearray(n)
for i in range(0, n, 4096):
    b[i] = 1
print("allocated", n >> 20)
`
	const limit = 64 << 20
	lim := func(l *sandbox.Limits) { l.MemoryBytes = limit }
	run := func(mib int) *sandbox.Result {
		spec := e.spec(code, lim)
		spec.Args = []string{strconv.Itoa(mib)}
		res, err := e.b.Run(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Positive controls: the big allocation works bare, and one under
	// the limit works inside.
	if out, err := exec.Command(e.py, "-I", "-c", code, "512").CombinedOutput(); err != nil || string(out) != "allocated 512\n" {
		t.Fatalf("bare control: %v %q", err, out)
	}
	if res := run(16); res.Status != sandbox.StatusOK || res.Stdout != "allocated 16\n" {
		t.Errorf("16 MiB under a 64 MiB limit: %+v", res)
	}
	res := run(512)
	if res.Status != sandbox.StatusMemoryLimit || !strings.Contains(res.Stderr, "MemoryError") ||
		!strings.Contains(res.Message, "64 MiB") || res.Stdout != "" {
		t.Errorf("512 MiB under a 64 MiB limit: %+v", res)
	}
}

func TestMemoryErrorLine(t *testing.T) {
	for stderr, want := range map[string]bool{
		"Traceback (most recent call last):\n  File \"x\", line 1\nMemoryError\n":                             true,
		"Traceback ...\nnumpy.core._exceptions._ArrayMemoryError: Unable to allocate 8.00 GiB for an array\n": true,
		"MemoryError: out of memory":        true,
		"ValueError: no MemoryError here\n": false,
		"print MemoryError happened\n":      false,
		"":                                  false,
	} {
		if got := memoryError(stderr); got != want {
			t.Errorf("memoryError(%q) = %v", stderr, got)
		}
	}
}

// TestNumpy: numpy (OpenBLAS, with its threads and buffers) works under
// the default 256 MiB limit: why the limit is RLIMIT_DATA and not AS.
func TestNumpy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if out, err := exec.Command(e.py, "-I", "-c", "import numpy").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import numpy (apt-get install python3-numpy): %s", e.py, out)
	}
	res := e.run(t, "import numpy as np\na = np.random.default_rng(1).random((300, 300))\nprint(np.allclose(a @ np.linalg.inv(a), np.eye(300)))",
		func(l *sandbox.Limits) { *l = sandbox.DefaultLimits() })
	if res.Status != sandbox.StatusOK || res.Stdout != "True\n" {
		t.Errorf("%+v", res)
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	capped := func(l *sandbox.Limits) { l.MaxOutputBytes = 64 << 10 }
	t.Run("flood", func(t *testing.T) {
		t.Parallel()
		res := e.run(t, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", capped)
		if res.Status != sandbox.StatusOutputLimit || !strings.Contains(res.Message, "flood") || res.Signal != "SIGKILL" {
			t.Errorf("status %s signal %s message %q", res.Status, res.Signal, res.Message)
		}
		if !res.StdoutTruncated || int64(len(res.Stdout)) > 64<<10+200 || res.StdoutBytes <= 8*64<<10 {
			t.Errorf("kept %d of %d bytes, truncated %v", len(res.Stdout), res.StdoutBytes, res.StdoutTruncated)
		}
	})
	t.Run("head and tail", func(t *testing.T) {
		t.Parallel()
		res := e.run(t, "print('HEAD')\nprint('y' * (300 << 10))\nprint('TAIL')", capped)
		if res.Status != sandbox.StatusOutputLimit || !res.StdoutTruncated || res.Signal != "" {
			t.Errorf("status %s truncated %v signal %s", res.Status, res.StdoutTruncated, res.Signal)
		}
		if !strings.HasPrefix(res.Stdout, "HEAD\n") || !strings.HasSuffix(res.Stdout, "TAIL\n") || !strings.Contains(res.Stdout, "bytes of output cut") {
			t.Errorf("head and tail not kept: %q ... %q", res.Stdout[:20], res.Stdout[len(res.Stdout)-20:])
		}
	})
}

// TestFileSize: RLIMIT_FSIZE bounds each file the program writes.
func TestFileSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.run(t, `try:
    with open("big", "wb") as f:
        f.write(b"x" * (3 << 20))
except OSError as err:
    print("refused:", err.strerror)
with open("small", "wb") as f:
    f.write(b"x" * (1 << 20))
print("small ok")
`, func(l *sandbox.Limits) { l.TmpfsBytes = 2 << 20 })
	if res.Status != sandbox.StatusOK || res.Stdout != "refused: File too large\nsmall ok\n" {
		t.Errorf("%+v", res)
	}
}

// TestInheritedDescriptor: a descriptor pybox itself holds without
// close-on-exec (inherited from its own parent, say) does not reach the
// program: the helper marks everything it was not given close-on-exec.
func TestInheritedDescriptor(t *testing.T) {
	e := newEnv(t)
	fd, err := syscall.Open("/etc/hostname", syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	// Positive control: a plain child does inherit it.
	out, err := exec.Command("/bin/sh", "-c", fmt.Sprintf("test -e /proc/self/fd/%d && echo inherited", fd)).Output()
	if err != nil || string(out) != "inherited\n" {
		t.Fatalf("control: %q %v (os/exec closes it by itself?)", out, err)
	}
	res := e.run(t, fmt.Sprintf("import os\nprint(os.path.exists('/proc/self/fd/%d'))", fd), nil)
	if res.Stdout != "False\n" {
		t.Errorf("fd %d reached the program: %+v", fd, res)
	}
}

// TestEscapedProcess documents a limit: a process that leaves the group
// (setsid) survives the kill. Run still returns, and says so when the
// process kept a copy of the output; the test then kills it itself.
func TestEscapedProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.run(t, `import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(1000)
print("parent done", flush=True)
`, nil)
	if res.Status != sandbox.StatusOK || res.Stdout != "parent done\n" {
		t.Errorf("%+v", res)
	}
	if w := res.Layers.Warnings; len(w) < 2 || !strings.Contains(w[len(w)-1], "cannot find or kill it") {
		t.Errorf("no warning about the escaped process: %q", w)
	}
	ps := leftovers(e.base)
	if len(ps) != 1 {
		t.Fatalf("want the one escaped process, found %q", ps)
	}
	pid, _ := strconv.Atoi(strings.Fields(ps[0])[0])
	syscall.Kill(pid, syscall.SIGKILL)
}
