//go:build linux

package native

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// Concurrent sandboxes must never share host ids: a shared uid would let
// one tenant signal or ptrace-attach (modulo seccomp) another's processes.
func TestConcurrentRunsGetDistinctHostIDs(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	check := postCheck(b)
	const n = 4
	var wg sync.WaitGroup
	uids := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := runCode(t, b, "import time; time.sleep(0.5); print('done')", nil)
			if res.Status != sandbox.StatusOK {
				t.Errorf("run %d: %s %s %s", i, res.Status, res.Message, res.Stderr)
			}
			uids[i] = res.Layers.HostUID
		}(i)
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, u := range uids {
		if u < b.cfg.UIDBase || seen[u] {
			t.Errorf("host uids of concurrent sandboxes %v: want distinct ids from the range", uids)
			break
		}
		seen[u] = true
	}
	check(t)
}

// Many runs in a row leave the host as they found it, and pybox's own
// memory does not grow with them.
func TestRepeatedRunsLeaveNothing(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	code := "import os, threading; open('/tmp/f','w').write('x'*1000); t=threading.Thread(target=lambda: None); t.start(); t.join(); print('y'*100000)"
	runs := func(n int) {
		for i := 0; i < n; i++ {
			res := runCode(t, b, code, nil)
			if res.Status != sandbox.StatusOK {
				t.Fatalf("run %d: %s %s", i, res.Status, res.Stderr)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	runs(5) // warm caches (interpreter description, pools)
	check := postCheck(b)
	before := heap()
	runs(30)
	after := heap()
	check(t)
	t.Logf("heap in use: %d KiB before, %d KiB after 30 runs", before>>10, after>>10)
	if after > before+1<<20 {
		t.Errorf("pybox's heap grew by %d KiB over 30 runs", (after-before)>>10)
	}
}

// The result reports every layer that was applied, and a run's
// accounting is filled in from the cgroup.
func TestResultReportsLayersAndAccounting(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	res := runCode(t, b, "x = bytearray(40 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nsum(range(3_000_000))", nil)
	if res.Status != sandbox.StatusOK {
		t.Fatalf("status %s: %s", res.Status, res.Stderr)
	}
	l := res.Layers
	if l.Backend != "native" || !l.Seccomp || l.Landlock == 0 || l.Cgroup == "none" || l.Rootless || l.HostUID < b.cfg.UIDBase {
		t.Errorf("layers %+v: want native, seccomp, landlock, a cgroup, root mode, a host uid from the range", l)
	}
	if strings.Join(l.Namespaces, ",") != "user,pid,mount,net,ipc,uts,cgroup" {
		t.Errorf("namespaces %v", l.Namespaces)
	}
	if res.PeakMemoryBytes < 40<<20 {
		t.Errorf("peak memory %d bytes; the program touched 40 MiB", res.PeakMemoryBytes)
	}
	if res.CPUMS <= 0 || res.WallMS <= 0 || res.SetupMS <= 0 || res.SetupMS > res.WallMS {
		t.Errorf("timings wall %.1f setup %.1f cpu %.1f", res.WallMS, res.SetupMS, res.CPUMS)
	}
}

// Cancelling the context kills the sandbox and says so.
func TestCancelKillsTheSandbox(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	check := postCheck(b)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	spec := &sandbox.Spec{Code: []byte("import time\nwhile True: time.sleep(1)"), Python: defaultPython(t), Limits: sandbox.DefaultLimits()}
	start := time.Now()
	res, err := b.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != sandbox.StatusKilled || !strings.Contains(res.Message, "cancelled") {
		t.Errorf("status %s (%s), want killed/cancelled", res.Status, res.Message)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancel took %s", time.Since(start))
	}
	check(t)
}

// A setup failure is an error naming the step, not a result.
func TestMissingInputFileIsAnInvalidSpec(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	_, err := b.Run(context.Background(), &sandbox.Spec{Code: []byte("pass"), Python: defaultPython(t), Limits: sandbox.DefaultLimits(),
		Files: []sandbox.File{{HostPath: "/nonexistent/x.csv", SandboxPath: "/data/x.csv"}}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/x.csv") {
		t.Fatalf("err = %v, want an error naming the missing file", err)
	}
	_, err = b.Run(context.Background(), &sandbox.Spec{Code: []byte("pass"), Python: "/nonexistent/python3", Limits: sandbox.DefaultLimits()})
	if err == nil || !strings.Contains(err.Error(), "--python") {
		t.Fatalf("err = %v, want an error naming --python", err)
	}
}

// If pybox itself dies (SIGKILL, OOM), its sandboxes die with it: the
// init has a parent-death signal, and the pid namespace ends with pid 1.
func TestHostDeathKillsTheSandbox(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	bin := buildPybox(t)
	cmd := exec.Command(bin, "run", "--policy", "off", "--uid-base", strconv.Itoa(testUIDBase), "--cgroup-parent", "pybox-test",
		"-c", "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(120)")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for len(sandboxProcesses(b)) < 3 { // reaper, script and its child
		if time.Now().After(deadline) {
			t.Fatalf("sandbox processes never appeared: %v", sandboxProcesses(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	eventually(func() bool { return len(sandboxProcesses(b)) == 0 })
	if left := sandboxProcesses(b); len(left) > 0 {
		t.Fatalf("sandbox processes outlived pybox: %v", left)
	}
	// The dead pybox could not remove its cgroup; the next start sweeps
	// such leftovers once they are old enough. Remove it here.
	for _, parent := range b.cgroups.Parent() {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "pybox-") {
				os.Remove(filepath.Join(parent, e.Name()))
			}
		}
	}
}

// A virtual environment works as --python: its prefix is bound, and its
// bin/python link is followed to the base interpreter it points at.
func TestVirtualEnvInterpreter(t *testing.T) {
	requireRoot(t)
	requireDebianPython(t)
	b := newBackend(t, unix.EPERM)
	dir, err := os.MkdirTemp("/var/tmp", "pybox-venv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command(debianPython, "-m", "venv", "--without-pip", "--system-site-packages", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot create a venv here: %v: %s", err, out)
	}
	// MkdirTemp made the venv root-only: refused with a reason, not a
	// bare "permission denied" from inside the sandbox.
	_, err = b.Run(context.Background(), &sandbox.Spec{Code: []byte("pass"), Python: filepath.Join(dir, "bin", "python"), Limits: sandbox.DefaultLimits()})
	if err == nil || !strings.Contains(err.Error(), "chmod o+rx") {
		t.Errorf("root-only venv: err = %v, want a refusal that says how to fix it", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res := runCode(t, b, "import sys, numpy; print(sys.prefix, sys.base_prefix, numpy.__name__)", func(s *sandbox.Spec) {
		s.Python = filepath.Join(dir, "bin", "python")
	})
	if res.Status != sandbox.StatusOK || !strings.Contains(res.Stdout, dir+" /usr numpy") {
		t.Errorf("status %s, stdout %q, stderr %q; want the venv's prefix, Debian's base and numpy", res.Status, res.Stdout, res.Stderr)
	}

	// An interpreter under /tmp would be hidden by the sandbox's own /tmp.
	tmp := t.TempDir()
	if err := os.Symlink(debianPython, filepath.Join(tmp, "python3")); err != nil {
		t.Fatal(err)
	}
	_, err = b.Run(context.Background(), &sandbox.Spec{Code: []byte("pass"), Python: filepath.Join(tmp, "python3"), Limits: sandbox.DefaultLimits()})
	if err == nil || !strings.Contains(err.Error(), "lives under /tmp") {
		t.Errorf("interpreter under /tmp: err = %v, want a clear refusal", err)
	}
}

// Input files may land in the scratch directory, read-only; a file the
// sandbox's unprivileged uid could not read is refused with the fix.
func TestInputFiles(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runCode(t, b, `
import os
print(sorted(os.listdir("/tmp")), open("/tmp/in.csv").read().split())
try:
    open("/tmp/in.csv", "w")
except OSError as e:
    print("write:", e.errno)
open("/tmp/out.txt", "w").write("scratch still writable")
print(open("/data/in.csv").read().split())
`, func(s *sandbox.Spec) {
		s.Files = []sandbox.File{{HostPath: in, SandboxPath: "/tmp/in.csv"}, {HostPath: in, SandboxPath: "/data/in.csv"}}
	})
	want := "['in.csv'] ['a,b', '1,2']\nwrite: 30\n['a,b', '1,2']\n"
	if res.Status != sandbox.StatusOK || res.Stdout != want {
		t.Errorf("status %s stdout %q stderr %q, want %q", res.Status, res.Stdout, res.Stderr, want)
	}

	secret := filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := b.Run(context.Background(), &sandbox.Spec{Code: []byte("pass"), Python: defaultPython(t), Limits: sandbox.DefaultLimits(),
		Files: []sandbox.File{{HostPath: secret, SandboxPath: "/data/secret.csv"}}})
	if err == nil || !strings.Contains(err.Error(), "chmod o+r") {
		t.Errorf("0600 input: err = %v, want a refusal with the fix", err)
	}
}

// pid 1 runs as its own uid in root mode, so that the program cannot
// signal it or reach its memory or report pipe, Landlock or not.
func TestReaperRunsAsAnotherUser(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, unix.EPERM)
	res := runCode(t, b, `
import os, time
time.sleep(0.2)  # let pid 1 finish becoming the reaper
uid1 = int(open("/proc/1/status").read().split("Uid:")[1].split()[0])
print(os.getuid(), uid1)
for path in ("/proc/1/mem", "/proc/1/fd/3"):
    try:
        open(path, "rb")
        print("opened", path)
    except OSError as e:
        print(path, e.errno)
`, nil)
	want := "1000 999\n/proc/1/mem 13\n/proc/1/fd/3 13\n"
	if res.Stdout != want {
		t.Errorf("stdout %q, want %q (stderr %q)", res.Stdout, want, res.Stderr)
	}
}

// With debug logging on, the init traces its steps on the report pipe;
// that must not disturb the result.
func TestDebugTracing(t *testing.T) {
	requireRoot(t)
	var logs strings.Builder
	b, err := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	res := runCode(t, b, "print(6*7)", nil)
	if res.Status != sandbox.StatusOK || res.Stdout != "42\n" {
		t.Errorf("status %s (%s) stdout %q with tracing on", res.Status, res.Message, res.Stdout)
	}
	for _, step := range []string{"mounting /proc", "starting the program", "program started at"} {
		if !strings.Contains(logs.String(), step) {
			t.Errorf("debug log lacks %q:\n%s", step, logs.String())
		}
	}
}
