//go:build linux

package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/pybox-dev/pybox/internal/nsinit" // the sandbox init starts from its initialisation
	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/sandboxtest"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the sandbox init, as the pybox binary does.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// testErrno is what the filter returns in the security suite: a value no
// kernel path returns, so "blocked by seccomp" cannot be confused with
// "reached the kernel and failed".
const testErrno = unix.Errno(4000)

// debianPython has numpy, pandas and matplotlib from Debian's packages.
const debianPython = "/usr/bin/python3"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root); the rootless tests cover unprivileged mode")
	}
}

// testUIDBase is far from the default range a server uses.
const testUIDBase = 2_000_000_000

func newBackend(t testing.TB, errno unix.Errno) *Backend {
	t.Helper()
	// Ids and cgroups of their own, so that the host post-conditions are
	// not upset by a pybox server running on the same machine.
	b, err := New(Config{SeccompErrno: errno, CacheDir: filepath.Join(os.TempDir(), "pybox-test-cache"),
		UIDBase: testUIDBase, CgroupParent: "pybox-test", StateDir: filepath.Join(os.TempDir(), "pybox-test-state")})
	if err != nil {
		t.Fatalf("native.New: %v", err)
	}
	return b
}

func defaultPython(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PYBOX_TEST_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

func requireDebianPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("Debian's python3 is not installed")
	}
}

// hostState is a snapshot of everything a sandbox must not leave behind.
type hostState struct {
	mounts     int
	fds        int
	goroutines int
	ipc        map[string]int
}

func snapshot() hostState {
	s := hostState{mounts: countLines("/proc/self/mountinfo"), fds: countDir("/proc/self/fd"),
		goroutines: runtime.NumGoroutine(), ipc: map[string]int{}}
	for _, f := range []string{"shm", "sem", "msg"} {
		s.ipc[f] = countLines("/proc/sysvipc/" + f)
	}
	return s
}

func countLines(p string) int {
	data, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	return strings.Count(string(data), "\n")
}

func countDir(p string) int {
	ents, err := os.ReadDir(p)
	if err != nil {
		return -1
	}
	return len(ents)
}

// postCheck returns the host post-conditions of security-testing.md:
// the sandbox's cgroup is gone, no process or file of the sandbox's ids
// remains, no mount, SysV IPC object or descriptor was added, and the
// goroutines are back to baseline.
func postCheck(b *Backend) func(t *testing.T) { return postCheckExcept(b, nil) }

// postCheckExcept is postCheck for a host that also runs long-lived
// sandboxes on purpose (fork servers): keep lists the cgroup paths
// (as in /proc/PID/cgroup) whose groups and processes are not leaks.
func postCheckExcept(b *Backend, keep func() []string) func(t *testing.T) {
	base := snapshot()
	return func(t *testing.T) {
		t.Helper()
		var problems []string
		eventually(func() bool {
			problems = problems[:0]
			now := snapshot()
			if now.mounts != base.mounts {
				problems = append(problems, fmt.Sprintf("host mounts: %d, baseline %d", now.mounts, base.mounts))
			}
			if now.fds > base.fds {
				problems = append(problems, fmt.Sprintf("open fds: %d, baseline %d", now.fds, base.fds))
			}
			if now.goroutines > base.goroutines+2 {
				problems = append(problems, fmt.Sprintf("goroutines: %d, baseline %d", now.goroutines, base.goroutines))
			}
			for k, v := range base.ipc {
				if now.ipc[k] != v {
					problems = append(problems, fmt.Sprintf("SysV %s objects: %d, baseline %d", k, now.ipc[k], v))
				}
			}
			if b.cgroups != nil {
				for _, parent := range b.cgroups.Parent() {
					ents, _ := os.ReadDir(parent)
					for _, e := range ents {
						if e.IsDir() && strings.HasPrefix(e.Name(), "pybox-") && !kept(keep, e.Name()) {
							problems = append(problems, "leftover cgroup "+filepath.Join(parent, e.Name()))
						}
					}
				}
			}
			if pids := unkept(keep, sandboxProcesses(b)); len(pids) > 0 {
				problems = append(problems, fmt.Sprintf("sandbox processes still alive: %v", pids))
			}
			if files := sandboxFiles(b); len(files) > 0 {
				problems = append(problems, fmt.Sprintf("host files owned by sandbox ids: %v", files))
			}
			return len(problems) == 0
		})
		for _, p := range problems {
			t.Errorf("post-condition: %s", p)
		}
	}
}

// kept reports whether the cgroup named name is one of keep's.
func kept(keep func() []string, name string) bool {
	if keep == nil {
		return false
	}
	for _, k := range keep() {
		if filepath.Base(k) == name {
			return true
		}
	}
	return false
}

// unkept drops the processes that live in one of keep's cgroups.
func unkept(keep func() []string, pids []int) []int {
	if keep == nil {
		return pids
	}
	var out []int
	for _, pid := range pids {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		ok := false
		for _, k := range keep() {
			ok = ok || strings.Contains(string(data), k+"\n")
		}
		if !ok {
			out = append(out, pid)
		}
	}
	return out
}

func eventually(ok func() bool) {
	for i := 0; i < 40; i++ {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (b *Backend) inSandboxRange(uid int) bool {
	if b.rootless {
		return false
	}
	return uid >= b.cfg.UIDBase && uid < b.cfg.UIDBase+b.cfg.UIDSlots*idsPerSlot
}

func sandboxProcesses(b *Backend) []int { return processesWhere(b.inSandboxRange) }

// processesWhere lists the live pids whose real uid satisfies match.
// Zombies are dead (they hold a pid, nothing else); a zombie whose parent
// died is reaped by the host's init in its own time.
func processesWhere(match func(uid int) bool) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var uid int
		zombie := false
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "Uid:":
				uid, _ = strconv.Atoi(f[1])
			case len(f) > 1 && f[0] == "State:":
				zombie = f[1] == "Z"
			}
		}
		if !zombie && match(uid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func sandboxFiles(b *Backend) []string {
	var found []string
	for _, dir := range []string{"/tmp", "/var/tmp", "/dev/shm", "/root", "/"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				continue
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && b.inSandboxRange(int(st.Uid)) {
				found = append(found, filepath.Join(dir, e.Name()))
			}
		}
	}
	return found
}

func newEnv(t *testing.T, errno unix.Errno) *sandboxtest.Env {
	t.Helper()
	requireRoot(t)
	b := newBackend(t, errno)
	return &sandboxtest.Env{
		Backend:      b,
		Python:       defaultPython(t),
		BlockedErrno: int(errno),
		Canaries:     sandboxtest.PlantCanaries(t),
		PostCheck:    postCheck(b),
		Limits:       sandbox.DefaultLimits(),
	}
}

func runCode(t *testing.T, b *Backend, code string, mod func(*sandbox.Spec)) *sandbox.Result {
	t.Helper()
	spec := &sandbox.Spec{Code: []byte(code), Python: defaultPython(t), Limits: sandbox.DefaultLimits()}
	if mod != nil {
		mod(spec)
	}
	res, err := b.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestSecurity(t *testing.T) {
	env := newEnv(t, testErrno)
	sandboxtest.RunSecurity(t, env, sandboxtest.SecurityCases())
}

func TestCompatibility(t *testing.T) {
	env := newEnv(t, unix.EPERM)
	sandboxtest.RunCompat(t, env, sandboxtest.CompatCases(debianPython))
}

// oomChild is a program whose child the memory limit kills while the
// program itself exits 0.
const oomChild = `import subprocess, sys
r = subprocess.run([sys.executable, "-c", "x = bytearray(1 << 30)"])
print("child", r.returncode)
`

// TestChildOOMNoted: a program that exits 0 after the OOM killer ended its
// child is ok, and the result says what happened to the child.
func TestChildOOMNoted(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, testErrno)
	res := runCode(t, b, oomChild, func(s *sandbox.Spec) { s.Limits.MemoryBytes = 64 << 20 })
	if res.Status != sandbox.StatusOK || strings.TrimSpace(res.Stdout) != "child -9" {
		t.Fatalf("status %s, stdout %q, message %q", res.Status, res.Stdout, res.Message)
	}
	if !strings.Contains(res.Message, "OOM killer ended 1 other process") {
		t.Errorf("message %q does not say that a child was killed for memory", res.Message)
	}
}
