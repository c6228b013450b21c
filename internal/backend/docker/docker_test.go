//go:build linux

package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	if res.Status != sandbox.StatusError || res.ExitCode != 3 || !strings.HasPrefix(res.Stdout, "hello /pybox/main.py 1000 ['a']") || res.Stderr != "err\n" {
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

// TestContainerShape checks the hardening from inside, one option each:
// what the program sees of its process, its file systems and its devices.
func TestContainerShape(t *testing.T) {
	b := newBackend(t, unix.EPERM)
	res := runCode(t, b, `
import json, os
st = dict(l.rstrip("\n").split(":\t", 1) for l in open("/proc/self/status") if ":\t" in l)
mounts = {l.split()[4]: (l.split()[5], l.split(" - ")[1].split()[0]) for l in open("/proc/self/mountinfo")}
def listable(p):
    try:
        os.listdir(p)
        return True
    except OSError:
        return False
def writable(p):
    try:
        open(os.path.join(p, "probe"), "w").close()
        return True
    except OSError:
        return False
import resource
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "seccomp": st["Seccomp"], "filters": st.get("Seccomp_filters"),
    "nnp": st["NoNewPrivs"], "caps": [st[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
    "root": mounts["/"][0].split(",")[0], "tmp": mounts["/tmp"], "shm": mounts["/dev/shm"],
    "dev": sorted(os.listdir("/dev")), "sys_listable": listable("/sys"),
    "cgroupfs": [m for m, (o, fs) in mounts.items() if fs in ("cgroup", "cgroup2")],
    "tmp_writable": writable("/tmp"), "shm_writable": writable("/dev/shm"), "root_writable": writable("/"),
    "pid1": open("/proc/1/cmdline", "rb").read().split(b"\0")[:5][-1].decode(), "ppid": os.getppid(),
    "core": resource.getrlimit(resource.RLIMIT_CORE), "hostname": os.uname().nodename,
    "ifaces": sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]),
    "kcore": os.path.getsize("/proc/kcore") if os.path.exists("/proc/kcore") else -1,
    "ipc_ns": os.readlink("/proc/self/ns/ipc"), "cgroup_ns": os.readlink("/proc/self/ns/cgroup"),
}))
`, nil)
	if res.Status != sandbox.StatusOK {
		t.Fatalf("%s: %s\n%s", res.Status, res.Message, res.Stderr)
	}
	var got struct {
		UID, GID                               int
		Seccomp, Filters, NNP                  string
		Caps                                   []string
		Root                                   string
		Tmp, Shm                               [2]string
		Dev                                    []string
		SysListable                            bool `json:"sys_listable"`
		Cgroupfs                               []string
		TmpWritable, ShmWritable, RootWritable bool `json:"-"`
		Pid1                                   string
		Ppid                                   int
		Core                                   [2]int
		Hostname                               string
		Kcore                                  int64
		IPCNS, CgroupNS                        string `json:"-"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, res.Stdout)
	}
	var raw map[string]any
	json.Unmarshal([]byte(res.Stdout), &raw) //nolint:errcheck // parsed above
	zero := "0000000000000000"
	for _, c := range got.Caps {
		if c != zero {
			t.Errorf("capabilities %v, want all empty (cap-drop ALL)", got.Caps)
			break
		}
	}
	checks := []struct {
		ok   bool
		what string
	}{
		{got.UID == 1000 && got.GID == 1000, fmt.Sprintf("uid:gid %d:%d, want 1000:1000 in the driver's user namespace (host %d:%d)", got.UID, got.GID, b.cfg.UID, b.cfg.GID)},
		{got.Seccomp == "2", "Seccomp " + got.Seccomp + ", want 2 (filter mode)"},
		{b.inner == "" || got.Filters == "2", "Seccomp_filters " + got.Filters + ", want 2 (Docker's profile and native's allowlist)"},
		{got.NNP == "1", "NoNewPrivs " + got.NNP + ", want 1 (no-new-privileges)"},
		{got.Root == "ro", "root mounted " + got.Root + ", want ro (read-only root file system)"},
		{got.Tmp[1] == "tmpfs" && strings.Contains(got.Tmp[0], "nosuid") && strings.Contains(got.Tmp[0], "nodev") && strings.Contains(got.Tmp[0], "noexec"), fmt.Sprintf("/tmp %v, want a nosuid,nodev,noexec tmpfs", got.Tmp)},
		{got.Shm[1] == "tmpfs", fmt.Sprintf("/dev/shm %v, want a tmpfs of its own (private IPC)", got.Shm)},
		{raw["tmp_writable"] == true && raw["shm_writable"] == true && raw["root_writable"] == false, fmt.Sprintf("writable: /tmp %v, /dev/shm %v, / %v; want true, true, false", raw["tmp_writable"], raw["shm_writable"], raw["root_writable"])},
		{len(got.Cgroupfs) == 0, fmt.Sprintf("cgroup file systems mounted at %v", got.Cgroupfs)},
		{!got.SysListable, "/sys is listable"},
		{strings.HasSuffix(got.Pid1, ".relay.py") || got.Pid1 == "", "pid 1 runs " + got.Pid1 + ", want pybox's relay (the init)"},
		{got.Ppid == 1, fmt.Sprintf("parent pid %d, want 1 (the relay)", got.Ppid)},
		{got.Core == [2]int{0, 0}, fmt.Sprintf("RLIMIT_CORE %v, want 0", got.Core)},
		{got.Hostname == "pybox", "hostname " + got.Hostname},
		{got.Kcore <= 0, fmt.Sprintf("/proc/kcore has size %d, want masked", got.Kcore)},
	}
	if b.devDir != "" {
		want := []string{"fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"}
		checks = append(checks, struct {
			ok   bool
			what string
		}{slices.Equal(got.Dev, want), fmt.Sprintf("/dev holds %v, want %v", got.Dev, want)})
	}
	for _, c := range checks {
		if !c.ok {
			t.Error(c.what)
		}
	}
	if ifaces, _ := raw["ifaces"].([]any); len(ifaces) != 1 || ifaces[0] != "lo" {
		t.Errorf("network interfaces %v, want only lo (--network none)", raw["ifaces"])
	}
}
