//go:build linux

package native

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/linux/landlock"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/sandboxtest"
)

// nobodyUID is the unprivileged host user the rootless tests run pybox as.
const nobodyUID = 65534

// buildPybox builds the pybox binary into a fresh directory that every
// user can read and traverse, and returns its path.
func buildPybox(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			built.skip = "the go tool is not on PATH; cannot build the pybox binary"
			return
		}
		dir, err := os.MkdirTemp("", "pybox-bin-")
		if err != nil {
			built.err = err
			return
		}
		os.Chmod(dir, 0o755)
		bin := filepath.Join(dir, "pybox")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/pybox-dev/pybox/cmd/pybox")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.dir, built.path = dir, bin
	})
	if built.skip != "" {
		t.Skip(built.skip)
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// built is the pybox binary, built once per test run (see buildPybox) and
// removed by TestMain.
var built struct {
	once            sync.Once
	dir, path, skip string
	err             error
}

// worldDir returns a new temporary directory with the given mode, and
// makes every level t.TempDir created traversable by other users.
func worldDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && strings.HasPrefix(d, os.TempDir()); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nobodyDir is a directory owned by nobody (its HOME, its scratch).
func nobodyDir(t *testing.T) string {
	t.Helper()
	dir := worldDir(t, 0o700)
	if err := os.Chown(dir, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	return dir
}

type cmdResult struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// runAs runs argv as uid (0: as this process) with a clean environment.
func runAs(t *testing.T, uid int, home, stdin string, argv ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"}
	cmd.Dir = home
	if uid != 0 {
		cmd.Env[0] = "PATH=/usr/local/bin:/usr/bin:/bin"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := cmdResult{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
	default:
		t.Fatalf("running %v: %v", argv, err)
	}
	return r
}

// bareAs runs a Python snippet on the host, without any sandbox, as uid:
// the positive control.
func bareAs(t *testing.T, uid int, dir, code string) string {
	t.Helper()
	r := runAs(t, uid, dir, "", debianPython, "-I", "-c", code)
	return r.stdout + r.stderr
}

// processesOf lists the pids whose real uid is uid.
func processesOf(uid int) map[int]bool {
	pids := map[int]bool{}
	for _, pid := range processesWhere(func(u int) bool { return u == uid }) {
		pids[pid] = true
	}
	return pids
}

// rootlessEnv is the pybox binary and nobody's home.
type rootlessEnv struct {
	bin, home string
	baseline  map[int]bool
}

// run runs `pybox run --json --python /usr/bin/python3 [flags] -c code`
// as nobody and returns the parsed result.
func (e *rootlessEnv) run(t *testing.T, code string, flags ...string) *sandbox.Result {
	t.Helper()
	argv := append([]string{e.bin, "run", "--json", "--policy", "off", "--python", debianPython}, flags...)
	argv = append(argv, "-c", code)
	r := runAs(t, nobodyUID, e.home, "", argv...)
	if r.code != 0 {
		t.Fatalf("pybox run as nobody exited %d\nstderr:\n%s", r.code, r.stderr)
	}
	var res sandbox.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("decoding the JSON result: %v\n%s", err, r.stdout)
	}
	e.noLeftovers(t)
	return &res
}

// noLeftovers: no process of nobody outlives a run.
func (e *rootlessEnv) noLeftovers(t *testing.T) {
	t.Helper()
	var extra []int
	eventually(func() bool {
		extra = extra[:0]
		for pid := range processesOf(nobodyUID) {
			if !e.baseline[pid] {
				extra = append(extra, pid)
			}
		}
		return len(extra) == 0
	})
	if len(extra) > 0 {
		t.Errorf("processes of uid %d outlived the sandbox: %v", nobodyUID, extra)
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRootless runs the pybox binary as an unprivileged user (nobody),
// where only the caller's own uid can be mapped and cgroups are not
// delegated, and checks what it claims, what the program sees, that the
// attacks stay contained and that ordinary programs still work.
func TestRootless(t *testing.T) {
	requireRoot(t)
	requireDebianPython(t)
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Skip("user namespaces are disabled (user.max_user_namespaces = 0)")
	}
	env := &rootlessEnv{bin: buildPybox(t), home: nobodyDir(t), baseline: processesOf(nobodyUID)}

	// Preflight: if the kernel refuses unprivileged user namespaces, pybox
	// says so and exits 125; that is a missing kernel feature, not a bug.
	pre := runAs(t, nobodyUID, env.home, "", env.bin, "run", "--json", "--python", debianPython, "-c", "print('hi')")
	if pre.code == 125 && strings.Contains(pre.stderr, "user namespaces") {
		t.Skipf("unprivileged user namespaces are unavailable: %s", pre.stderr)
	}

	t.Run("layers", func(t *testing.T) {
		res := env.run(t, `
import os
for n in sorted(os.listdir("/proc/self/ns")):
    print("ns", n, os.readlink("/proc/self/ns/" + n))
print("cgroup-file", open("/proc/self/cgroup").read().replace("\n", "|"))
`)
		if res.Status != sandbox.StatusOK {
			t.Fatalf("status %s (%s)\n%s", res.Status, res.Message, res.Stderr)
		}
		l := res.Layers
		if !l.Rootless {
			t.Errorf("layers.rootless = false when run as uid %d", nobodyUID)
		}
		if l.HostUID != nobodyUID {
			t.Errorf("layers.host_uid = %d, want %d (the caller's own uid)", l.HostUID, nobodyUID)
		}
		if l.Cgroup != "none" {
			t.Errorf("layers.cgroup = %q; cgroups are not delegated to nobody on this host, want none", l.Cgroup)
		}
		warned := false
		for _, w := range l.Warnings {
			warned = warned || strings.Contains(w, "rlimits only")
		}
		if !warned {
			t.Errorf("no warning that limits are rlimits only: %q", l.Warnings)
		}
		if !l.Seccomp {
			t.Errorf("layers.seccomp = false")
		}
		if _, err := landlock.ABI(); err != nil {
			t.Logf("Landlock is not available on this kernel (%v); not checking landlock_abi", err)
		} else if l.Landlock <= 0 {
			t.Errorf("layers.landlock_abi = %d, want > 0", l.Landlock)
		}
		for _, ns := range []string{"user", "pid", "mount", "net", "ipc", "uts"} {
			if !hasString(l.Namespaces, ns) {
				t.Errorf("layers.namespaces %v lacks %s", l.Namespaces, ns)
			}
		}
		// Every namespace the result claims must really differ from the
		// host's: pybox never reports a layer it did not apply.
		inside := map[string]string{}
		for _, line := range strings.Split(res.Stdout, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "ns" {
				inside[f[1]] = f[2]
			}
		}
		for _, ns := range l.Namespaces {
			file := ns
			if ns == "mount" {
				file = "mnt"
			}
			host, err := os.Readlink("/proc/self/ns/" + file)
			if err != nil {
				t.Errorf("reading the host's %s namespace: %v", ns, err)
				continue
			}
			if in, ok := inside[file]; !ok {
				t.Errorf("the sandbox could not see its %s namespace", ns)
			} else if in == host {
				t.Errorf("layers.namespaces claims %q but the sandbox shares the host's %s namespace (%s)", ns, ns, in)
			}
		}
	})

	t.Run("identity", func(t *testing.T) {
		res := env.run(t, `
import os, threading, glob
ev = threading.Event()
th = threading.Thread(target=ev.wait); th.start()
print("uid", os.getuid(), os.geteuid(), os.getgid())
for st in sorted(glob.glob("/proc/self/task/*/status")):
    f = dict(l.split(":", 1) for l in open(st).read().splitlines() if ":" in l)
    print("task", " ".join("%s=%s" % (k, f[k].strip()) for k in ("Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")))
ev.set(); th.join()
`)
		if res.Status != sandbox.StatusOK {
			t.Fatalf("status %s (%s)\n%s", res.Status, res.Message, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "uid 1000 1000 1000\n") {
			t.Errorf("the program does not run as uid/gid 1000:\n%s", res.Stdout)
		}
		const want = "Seccomp=2 NoNewPrivs=1 CapEff=0000000000000000 CapPrm=0000000000000000 CapInh=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000"
		tasks := 0
		for _, line := range strings.Split(res.Stdout, "\n") {
			if rest, ok := strings.CutPrefix(line, "task "); ok {
				tasks++
				if rest != want {
					t.Errorf("thread status %q, want %q", rest, want)
				}
			}
		}
		if tasks < 2 {
			t.Errorf("saw %d threads, want at least 2 (main and the waiting thread):\n%s", tasks, res.Stdout)
		}
	})

	t.Run("attacks", func(t *testing.T) {
		secret := fmt.Sprintf("ROOTLESS-CANARY-%d-%d", os.Getpid(), time.Now().UnixNano())
		canaries := worldDir(t, 0o755)
		public := filepath.Join(canaries, "public.txt")
		private := filepath.Join(canaries, "private.txt")
		if err := os.WriteFile(public, []byte(secret+"-public\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(private, []byte(secret+"-private\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		drop := worldDir(t, 0o777) // nobody may write here on the host
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var accepted atomic.Int64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		bareDir := nobodyDir(t)

		cases := []struct {
			name string
			code string
			// controlUID runs the bare control: root for what only root
			// can do on the host, nobody to show that the sandbox, not the
			// user, is what stops it.
			controlUID []int
			// deniedAs is printed by the sandboxed run (the kind of
			// failure that shows the sandbox's view rather than a host
			// permission check).
			deniedAs string
			// denials is how many "denied" lines the sandboxed run prints:
			// every attempt must fail.
			denials int
		}{
			{"read-etc-shadow", `
try:
    d = open("/etc/shadow").read()
    print("EFFECT: read /etc/shadow", len(d))
except OSError as e:
    print("denied", type(e).__name__)
`, []int{0}, "denied FileNotFoundError", 1},
			{"read-canary-files", fmt.Sprintf(`
for p in (%q, %q):
    try:
        print("EFFECT: read", p, open(p).read().strip())
    except OSError as e:
        print("denied", type(e).__name__, p)
`, public, private), []int{0, nobodyUID}, "denied FileNotFoundError " + public, 2},
			{"write-outside-scratch", fmt.Sprintf(`
import os
for p in ("/pwned", "/usr/lib/pwned", "/pybox/pwned", "/etc/pwned", %q):
    try:
        with open(p, "w") as f:
            f.write("x")
        print("EFFECT: wrote", p)
    except OSError as e:
        print("denied", type(e).__name__, p)
`, filepath.Join(drop, "pwned")), []int{nobodyUID}, "denied", 5},
			{"inet-socket", fmt.Sprintf(`
import socket
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(("127.0.0.1", %d))
    print("EFFECT: connected to the host listener")
except OSError as e:
    print("denied", type(e).__name__, e.errno)
for fam, name in ((socket.AF_INET6, "inet6"), (socket.AF_NETLINK, "netlink")):
    try:
        socket.socket(fam, socket.SOCK_DGRAM)
        print("EFFECT: created", name)
    except OSError as e:
        print("denied", name, type(e).__name__)
`, port), []int{nobodyUID}, "denied PermissionError 1", 3},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, uid := range c.controlUID {
					before := accepted.Load()
					out := bareAs(t, uid, bareDir, c.code)
					if !strings.Contains(out, sandboxtest.Effect) {
						t.Fatalf("positive control as uid %d shows no effect, so this case proves nothing:\n%s", uid, out)
					}
					// The kernel completes a connection before the
					// listener's goroutine accepts it: give it time.
					for wait := time.Now().Add(5 * time.Second); c.name == "inet-socket" && accepted.Load() == before; {
						if time.Now().After(wait) {
							t.Fatalf("positive control printed an effect but the listener saw no connection")
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
				os.Remove(filepath.Join(drop, "pwned"))
				before := accepted.Load()
				res := env.run(t, c.code)
				out := res.Stdout + res.Stderr
				if strings.Contains(out, sandboxtest.Effect) {
					t.Errorf("ATTACK SUCCEEDED in rootless mode:\n%s", out)
				}
				if strings.Contains(out, secret) {
					t.Errorf("canary secret leaked:\n%s", out)
				}
				if n := accepted.Load() - before; n > 0 {
					t.Errorf("the host listener accepted %d connection(s) from the sandbox", n)
				}
				if !strings.Contains(res.Stdout, c.deniedAs) {
					t.Errorf("sandboxed output lacks %q:\n%s", c.deniedAs, out)
				}
				if n := strings.Count(res.Stdout, "denied "); n != c.denials {
					t.Errorf("%d attempts denied, want %d:\n%s", n, c.denials, out)
				}
				if res.Status != sandbox.StatusOK {
					t.Errorf("status %s (%s), want ok (the program catches its errors)\n%s", res.Status, res.Message, out)
				}
				if ents, _ := os.ReadDir(drop); len(ents) > 0 {
					t.Errorf("the sandbox wrote into the host directory %s: %v", drop, ents)
				}
				if _, err := os.Stat("/pwned"); err == nil {
					t.Errorf("/pwned exists on the host")
				}
			})
		}
	})

	t.Run("memory-hog", func(t *testing.T) {
		// Allocate and touch 16 MiB at a time up to 1 GiB.
		const code = `
import sys
chunks = []
for i in range(64):
    b = bytearray(16 << 20)
    b[::4096] = b"\x01" * len(b[::4096])
    chunks.append(b)
    print("allocated", (i + 1) * 16, flush=True)
print("EFFECT: allocated 1 GiB")
`
		out := bareAs(t, nobodyUID, nobodyDir(t), code)
		if !strings.Contains(out, sandboxtest.Effect) {
			t.Fatalf("positive control: 1 GiB bare as nobody failed, so the limit proves nothing:\n%s", out)
		}
		res := env.run(t, code, "--memory", "128MiB")
		if strings.Contains(res.Stdout, sandboxtest.Effect) {
			t.Fatalf("the 128 MiB limit did not stop a 1 GiB allocation (status %s):\n%s", res.Status, res.Stdout)
		}
		if res.Status == sandbox.StatusOK {
			t.Errorf("status ok; the hog must be stopped")
		}
		last := 0
		for _, line := range strings.Split(res.Stdout, "\n") {
			if n, ok := strings.CutPrefix(line, "allocated "); ok {
				last, _ = strconv.Atoi(n)
			}
		}
		if last > 128 {
			t.Errorf("the program got %d MiB past a 128 MiB limit", last)
		}
		if !strings.Contains(res.Stderr, "MemoryError") && res.Status != sandbox.StatusMemoryLimit && res.Status != sandbox.StatusKilled {
			t.Errorf("status %s (%s) without a MemoryError:\n%s", res.Status, res.Message, res.Stderr)
		}
		t.Logf("stopped at %d MiB: status %s, %s", last, res.Status, lastLine(res.Stderr))
	})

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		res := env.run(t, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\nprint('EFFECT: woke up')", "--timeout", "2s")
		if res.Status != sandbox.StatusTimeout {
			t.Errorf("status %s (%s), want timeout", res.Status, res.Message)
		}
		if strings.Contains(res.Stdout, sandboxtest.Effect) || !strings.Contains(res.Stdout, "sleeping") {
			t.Errorf("stdout %q", res.Stdout)
		}
		if el := time.Since(start); el > 15*time.Second {
			t.Errorf("a 2s timeout took %s", el)
		}
	})

	t.Run("compat", func(t *testing.T) {
		want := map[string]bool{
			"threads-lock": true, "thread-pool-executor": true, "subprocess-run": true, "multiprocessing-pool": true,
			"tempfile": true, "sqlite3-file-and-memory": true, "asyncio-subprocess": true, "shared-memory": true,
			"dev-stdout-stderr": true,
		}
		n := 0
		for _, c := range sandboxtest.CompatCases(debianPython) {
			if !want[c.Name] || c.Python != "" {
				continue
			}
			n++
			t.Run(c.Name, func(t *testing.T) {
				res := env.run(t, c.Code)
				if res.Status != sandbox.StatusOK || res.Signal != "" {
					t.Errorf("status %s (exit %d, signal %q, %s), want ok\nstdout:\n%s\nstderr:\n%s",
						res.Status, res.ExitCode, res.Signal, res.Message, res.Stdout, res.Stderr)
				}
				if !strings.Contains(res.Stdout, c.Want) {
					t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s", c.Want, res.Stdout, res.Stderr)
				}
				if c.Check != nil {
					c.Check(t, res)
				}
			})
		}
		if n != len(want) {
			t.Errorf("found %d of the %d compatibility cases by name", n, len(want))
		}
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestCLI drives `pybox run` through the binary, as root: exit codes,
// signals, flag errors, timeouts, and the three ways to pass code.
func TestCLI(t *testing.T) {
	requireRoot(t)
	requireDebianPython(t)
	bin := buildPybox(t)
	home := worldDir(t, 0o700)
	state, cache := worldDir(t, 0o700), worldDir(t, 0o700)
	pybox := func(t *testing.T, stdin string, args ...string) cmdResult {
		t.Helper()
		argv := append([]string{bin, "run", "--policy", "off", "--python", debianPython, "--state-dir", state, "--cache-dir", cache}, args...)
		return runAs(t, 0, home, stdin, argv...)
	}

	t.Run("exit-code-passthrough", func(t *testing.T) {
		r := pybox(t, "", "-c", "import sys\nprint('before exit')\nsys.exit(3)")
		if r.code != 3 {
			t.Errorf("exit code %d, want 3\nstderr:\n%s", r.code, r.stderr)
		}
		if r.stdout != "before exit\n" {
			t.Errorf("stdout %q", r.stdout)
		}
		if r := pybox(t, "", "-c", "raise ValueError('boom')"); r.code != 1 || !strings.Contains(r.stderr, "ValueError: boom") {
			t.Errorf("uncaught exception: exit %d, stderr %q; want 1 and the traceback", r.code, r.stderr)
		}
		if r := pybox(t, "", "-c", "print('fine')"); r.code != 0 || r.stdout != "fine\n" {
			t.Errorf("success: exit %d, stdout %q", r.code, r.stdout)
		}
	})

	t.Run("streams", func(t *testing.T) {
		r := pybox(t, "", "-c", "import sys\nprint('to-out')\nprint('to-err', file=sys.stderr)")
		if r.code != 0 || r.stdout != "to-out\n" || !strings.Contains(r.stderr, "to-err") || strings.Contains(r.stdout, "to-err") {
			t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("json-exit", func(t *testing.T) {
		r := pybox(t, "", "--json", "-c", "import sys; sys.exit(3)")
		if r.code != 0 {
			t.Fatalf("--json: pybox exited %d (it reports the program's code in the result)\n%s", r.code, r.stderr)
		}
		var res sandbox.Result
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("decoding: %v\n%s", err, r.stdout)
		}
		if res.ExitCode != 3 || res.Status != sandbox.StatusError {
			t.Errorf("result exit_code %d status %s, want 3 and error", res.ExitCode, res.Status)
		}
	})

	t.Run("signal", func(t *testing.T) {
		r := pybox(t, "", "-c", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nprint('survived')")
		if r.code != 143 {
			t.Errorf("exit code %d, want 143 (128+SIGTERM)\nstderr:\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stdout, "survived") {
			t.Errorf("the program survived its own SIGTERM")
		}
		if !strings.Contains(r.stderr, "SIGTERM") {
			t.Errorf("stderr does not name the signal: %q", r.stderr)
		}
	})

	t.Run("bad-flags", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			flag string
		}{
			{[]string{"--memory", "lots", "-c", "print(1)"}, "--memory"},
			{[]string{"--timeout", "soon", "-c", "print(1)"}, "--timeout"},
			{[]string{"--cpu", "0", "-c", "print(1)"}, "--cpu"},
			{[]string{"--no-such-flag", "-c", "print(1)"}, "no-such-flag"},
			{[]string{"--file", "nocolon", "-c", "print(1)"}, "--file"},
			{[]string{"--file", "/etc/hostname:/etc/x", "-c", "print(1)"}, "/etc"},
			{[]string{}, "nothing to run"},
		} {
			r := pybox(t, "", c.args...)
			if r.code != 2 {
				t.Errorf("%v: exit %d, want 2\nstderr: %s", c.args, r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.flag) {
				t.Errorf("%v: stderr does not name %q: %q", c.args, c.flag, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("%v: printed to stdout: %q", c.args, r.stdout)
			}
		}
		if r := pybox(t, "", "--memory", "lots", "-c", "print(1)"); !strings.Contains(r.stderr, "lots") {
			t.Errorf("the message does not quote the bad value: %q", r.stderr)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		r := pybox(t, "", "--timeout", "1s", "-c", "import time\nprint('start', flush=True)\ntime.sleep(30)\nprint('woke')")
		if r.code != 137 {
			t.Errorf("exit %d, want 137", r.code)
		}
		if !strings.Contains(r.stderr, "timeout") && !strings.Contains(r.stderr, "timed out") {
			t.Errorf("stderr does not mention the timeout: %q", r.stderr)
		}
		if r.stdout != "start\n" {
			t.Errorf("stdout %q, want only the line before the sleep", r.stdout)
		}
		if r.elapsed > 10*time.Second {
			t.Errorf("a 1s timeout took %s", r.elapsed)
		}
	})

	t.Run("stdin-code", func(t *testing.T) {
		r := pybox(t, "import sys\nprint('from stdin', sys.argv[1:], sys.stdin.read() == '')\n", "-", "a", "b c")
		if r.code != 0 || r.stdout != "from stdin ['a', 'b c'] True\n" {
			t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("script-args", func(t *testing.T) {
		dir := worldDir(t, 0o755)
		script := filepath.Join(dir, "myscript.py")
		if err := os.WriteFile(script, []byte("import sys\nprint(repr(sys.argv))\nprint(__file__, __name__)\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := pybox(t, "", script, "alpha", "two words", "--flag", "-c")
		want := "['/pybox/myscript.py', 'alpha', 'two words', '--flag', '-c']\n/pybox/myscript.py __main__\n"
		if r.code != 0 || r.stdout != want {
			t.Errorf("exit %d stdout %q, want %q\nstderr %q", r.code, r.stdout, want, r.stderr)
		}
		r = pybox(t, "", "-c", "import sys; print(sys.argv[1:])", "x", "--y")
		if r.code != 0 || r.stdout != "['x', '--y']\n" {
			t.Errorf("-c with arguments: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		r = pybox(t, "", filepath.Join(dir, "missing.py"))
		if r.code != 2 || !strings.Contains(r.stderr, "missing.py") {
			t.Errorf("missing script: exit %d stderr %q, want 2 naming the file", r.code, r.stderr)
		}
	})
}
