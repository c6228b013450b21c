//go:build linux

package docker

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

	"github.com/moby/moby/client"

	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/sandboxtest"
	"golang.org/x/sys/unix"
)

// testErrno is what the filter returns in the security suite: a value no
// kernel path returns, so "blocked by seccomp" cannot be confused with
// "reached the kernel and failed".
const testErrno = unix.Errno(4000)

// testImage is the base image of the conformance tests: what `pybox image
// build --with-science` makes (Debian's python3 with numpy, pandas and
// matplotlib); PYBOX_DOCKER_IMAGE overrides it.
func testImage() string {
	if img := os.Getenv("PYBOX_DOCKER_IMAGE"); img != "" {
		return img
	}
	return DefaultImage
}

// newBackend connects to the daemon, or skips the test when there is
// none. With PYBOX_REQUIRE_DOCKER=1 (CI) a missing daemon or image fails.
func newBackend(t testing.TB, errno unix.Errno) *Backend {
	t.Helper()
	b, err := New(context.Background(), Config{Image: testImage(), SeccompErrno: errno})
	if err != nil {
		if os.Getenv("PYBOX_REQUIRE_DOCKER") == "1" {
			t.Fatalf("docker backend unavailable, and PYBOX_REQUIRE_DOCKER=1: %v", err)
		}
		t.Skipf("no docker daemon or image here (set PYBOX_REQUIRE_DOCKER=1 to make this a failure): %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func runCode(t *testing.T, b *Backend, code string, mod func(*sandbox.Spec)) *sandbox.Result {
	t.Helper()
	spec := &sandbox.Spec{Code: []byte(code), Limits: sandbox.DefaultLimits()}
	if mod != nil {
		mod(spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := b.Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRunSmoke(t *testing.T) {
	b := newBackend(t, unix.EPERM)
	res := runCode(t, b, "import os, sys\nprint('hello', __file__, os.getuid(), sys.argv[1:])\nprint('err', file=sys.stderr)\nsys.exit(3)", func(s *sandbox.Spec) { s.Args = []string{"a"} })
	if res.Status != sandbox.StatusError || res.ExitCode != 3 || !strings.HasPrefix(res.Stdout, "hello /pybox/main.py 999999000 ['a']") || res.Stderr != "err\n" {
		t.Errorf("%+v", res)
	}
	if res.PeakMemoryBytes <= 0 || res.Layers.Backend != "docker" {
		t.Errorf("peak memory %d, layers %+v", res.PeakMemoryBytes, res.Layers)
	}
	t.Logf("wall %.1f ms setup %.1f ms peak %d", res.WallMS, res.SetupMS, res.PeakMemoryBytes)
}

// debianPython is the image's Debian interpreter, with numpy, pandas and
// matplotlib in the image --with-science makes; bare, it is the host's,
// for the positive controls.
const debianPython = "/usr/bin/python3"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): the host post-conditions read every process")
	}
}

// postCheck returns the host post-conditions of security-testing.md for
// containers: none of this backend's containers is left (the cgroup goes
// with it), no process and no host file of the sandbox's uid remains, and
// pybox's own descriptors and goroutines are back to baseline.
func postCheck(b *Backend) func(t *testing.T) {
	// Idle keep-alive connections to the daemon come and go with the
	// client's pool; close them before each count.
	b.cli.Close()
	time.Sleep(50 * time.Millisecond)
	baseFDs, baseG := countDir("/proc/self/fd"), runtime.NumGoroutine()
	return func(t *testing.T) {
		t.Helper()
		var problems []string
		eventually(func() bool {
			problems = problems[:0]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			list, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", labelInstance+"="+b.instance)})
			if err != nil {
				problems = append(problems, "listing containers: "+err.Error())
			} else if len(list.Items) > 0 {
				problems = append(problems, fmt.Sprintf("%d container(s) left, the first %s (%s)", len(list.Items), list.Items[0].ID[:12], list.Items[0].State))
			}
			if pids := processesOf(b.cfg.UID); len(pids) > 0 {
				problems = append(problems, fmt.Sprintf("processes of the sandbox uid still alive: %v", pids))
			}
			if files := filesOf(b.cfg.UID); len(files) > 0 {
				problems = append(problems, fmt.Sprintf("host files owned by the sandbox uid: %v", files))
			}
			b.cli.Close()
			if n := countDir("/proc/self/fd"); n > baseFDs {
				problems = append(problems, fmt.Sprintf("open fds: %d, baseline %d", n, baseFDs))
			}
			if n := runtime.NumGoroutine(); n > baseG+4 {
				problems = append(problems, fmt.Sprintf("goroutines: %d, baseline %d", n, baseG))
			}
			return len(problems) == 0
		})
		for _, p := range problems {
			t.Errorf("post-condition: %s", p)
		}
	}
}

func eventually(ok func() bool) {
	for i := 0; i < 80; i++ {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func countDir(p string) int {
	ents, err := os.ReadDir(p)
	if err != nil {
		return -1
	}
	return len(ents)
}

// processesOf lists the live host pids whose real uid is uid.
func processesOf(uid int) []int {
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
		zombie, match := false, false
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "Uid:":
				match = f[1] == strconv.Itoa(uid)
			case len(f) > 1 && f[0] == "State:":
				zombie = f[1] == "Z"
			}
		}
		if match && !zombie {
			pids = append(pids, pid)
		}
	}
	return pids
}

func filesOf(uid int) []string {
	var found []string
	for _, dir := range []string{"/tmp", "/var/tmp", "/dev/shm", "/root", "/"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			info, err := e.Info()
			if err != nil {
				continue
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid {
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
		Python:       "python3",
		BlockedErrno: int(errno),
		Canaries:     sandboxtest.PlantCanaries(t),
		PostCheck:    postCheck(b),
		Limits:       sandbox.DefaultLimits(),
	}
}

// TestSecurity holds the docker backend to the same attack suite as the
// native one: every case, no skips.
func TestSecurity(t *testing.T) {
	env := newEnv(t, testErrno)
	sandboxtest.RunSecurity(t, env, sandboxtest.SecurityCases())
}

// TestCompatibility: the same compatibility suite, with the image's
// Debian interpreter for the scientific cases.
func TestCompatibility(t *testing.T) {
	env := newEnv(t, unix.EPERM)
	sandboxtest.RunCompat(t, env, sandboxtest.CompatCases(debianPython))
}

func TestMountsProbe(t *testing.T) {
	b := newBackend(t, unix.EPERM)
	res := runCode(t, b, "import os\nprint(open('/proc/self/mountinfo').read())\nopen('/dev/shm/x','w').write('1')\nprint(os.listdir('/dev'))", nil)
	t.Log(res.Status, res.Stdout, res.Stderr)
}
