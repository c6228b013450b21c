//go:build linux

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
	"github.com/pybox-dev/pybox/internal/server"
)

// These tests run the real pybox binary as a server, as an operator would,
// each with its own uid range and cgroup parent so that what it leaves
// behind can be counted.

var binary string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "pybox-cli-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755) //nolint:errcheck // the sandbox init must be able to exec it
		binary = filepath.Join(dir, "pybox")
		build := exec.Command("go", "build", "-o", binary, "../../cmd/pybox")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building pybox: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

type serveProc struct {
	cmd      *exec.Cmd
	url      string
	c        *client.Client
	uidBase  int
	cgroup   string
	logs     *strings.Builder
	key      string
	auditDir string
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServer(t *testing.T, uidBase int, cgroupParent string, extra ...string) *serveProc {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs sandboxes as root (CI does)")
	}
	addr := freePort(t)
	// One tenant with a key, an audit log of the test's own, and the
	// policy off: these tests exercise the server, not the policy.
	key, sum := server.NewKey()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`[{"tenant": "t1", "sha256": "`+sum+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	auditDir := filepath.Join(dir, "audit")
	args := append([]string{"serve", "--listen", addr, "--uid-base", strconv.Itoa(uidBase), "--uid-slots", "64",
		"--cgroup-parent", cgroupParent, "--warm-pool", "2", "--api-keys-file", keys, "--audit-dir", auditDir,
		"--policy", "off"}, extra...)
	cmd := exec.Command(binary, args...)
	logs := &strings.Builder{}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
	}()
	s := &serveProc{cmd: cmd, url: "http://" + addr, c: client.New("http://"+addr, nil).WithKey(key), uidBase: uidBase,
		cgroup: cgroupParent, logs: logs, key: key, auditDir: auditDir}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() //nolint:errcheck
			cmd.Wait()         //nolint:errcheck
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	wantWarm := 1
	if strings.Contains(strings.Join(extra, " "), "--warm-pool 0") {
		wantWarm = 0
	}
	waitUntil(t, 20*time.Second, "server ready", func() bool {
		h, err := s.c.Health(context.Background())
		return err == nil && h.WarmReady >= wantWarm
	})
	return s
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sandboxProcesses lists live processes running as an id of the server's
// range.
func (s *serveProc) sandboxProcesses() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name()), &st) != nil {
			continue
		}
		if int(st.Uid) >= s.uidBase && int(st.Uid) < s.uidBase+64*65536 {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			out = append(out, fmt.Sprintf("%d(%s uid %d)", pid, strings.TrimSpace(string(comm)), st.Uid))
		}
	}
	return out
}

// sandboxGroups lists the sandbox cgroups under the server's parent.
func (s *serveProc) sandboxGroups() []string {
	matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", s.cgroup, "pybox-*"))
	more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", s.cgroup, "pybox-*"))
	return append(matches, more...)
}

func TestServeDrainsOnSIGTERM(t *testing.T) {
	s := startServer(t, 1_600_000_000, "pybox-test-drain")
	ctx := context.Background()
	sess, err := s.c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res *api.CellResult
		err error
	}
	running := make(chan outcome, 1)
	go func() {
		res, err := s.c.Run(ctx, sess.ID, api.CellRequest{Code: "import time\ntime.sleep(2)\nprint('finished')"})
		running <- outcome{res, err}
	}()
	waitUntil(t, 10*time.Second, "cell running", func() bool {
		got, err := s.c.Session(ctx, sess.ID)
		return err == nil && got.State == "busy"
	})
	if len(s.sandboxProcesses()) == 0 || len(s.sandboxGroups()) == 0 {
		t.Fatalf("positive control: the running server's sandboxes are not visible (procs %v, groups %v)", s.sandboxProcesses(), s.sandboxGroups())
	}
	s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	// Draining: not ready, and no new work.
	waitUntil(t, 5*time.Second, "readyz failing", func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	_, err = s.c.Execute(ctx, api.ExecuteRequest{Code: "print(1)"})
	var pe *client.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusServiceUnavailable {
		t.Errorf("new work while draining: want 503, got %v", err)
	}
	o := <-running
	if o.err != nil || o.res.Status != api.StatusOK || o.res.Stdout != "finished\n" {
		t.Fatalf("the running cell must finish during the drain: %+v %v", o.res, o.err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after draining")
	}
	waitUntil(t, 5*time.Second, "no sandbox left", func() bool {
		return len(s.sandboxProcesses()) == 0 && len(s.sandboxGroups()) == 0
	})
}

func TestServeKilledLeavesNoSandbox(t *testing.T) {
	const base = 1_700_000_000
	s := startServer(t, base, "pybox-test-kill")
	ctx := context.Background()
	sess, err := s.c.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	go s.c.Run(ctx, sess.ID, api.CellRequest{Code: "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        time.sleep(300)\ntime.sleep(300)"}) //nolint:errcheck
	waitUntil(t, 10*time.Second, "cell with children running", func() bool { return len(s.sandboxProcesses()) >= 6 })
	s.cmd.Process.Kill() //nolint:errcheck
	s.cmd.Wait()         //nolint:errcheck
	// Killed mid-work, the server leaves an audit log whose chain holds.
	if out, errOut, code := runPybox(t, "", "audit", "verify", "--dir", s.auditDir); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("audit verify after SIGKILL: exit %d %q %q", code, out, errOut)
	}
	// The parent-death signal takes every sandbox down with the server.
	waitUntil(t, 10*time.Second, "sandbox processes gone", func() bool { return len(s.sandboxProcesses()) == 0 })
	if len(s.sandboxGroups()) == 0 {
		t.Fatal("positive control: a killed server cannot remove its cgroups, so some should be left")
	}
	// A restart removes what was left.
	s2 := startServer(t, base, "pybox-test-kill", "--warm-pool", "0")
	waitUntil(t, 40*time.Second, "leftover cgroups swept", func() bool { return len(s2.sandboxGroups()) == 0 })
	s2.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	s2.cmd.Wait()                          //nolint:errcheck
}

// pybox repl: cells from a terminal, a block ending at an empty line,
// values and errors shown, state kept, Ctrl-D ends it.
func TestRepl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs sandboxes as root (CI does)")
	}
	cmd := exec.Command(binary, "repl", "--uid-base", "1800000000", "--uid-slots", "16", "--figures", t.TempDir())
	cmd.Stdin = strings.NewReader("x = 20\ndef f(a):\n    return a * 2\n\nf(x) + 2\nprint('hi')\n1/0\nx\n")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("repl: %v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"Python 3.", "... ... >>> 42\n", ">>> hi\n", ">>> 20\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "ZeroDivisionError: division by zero") || !strings.Contains(stderr.String(), `File "<cell `) {
		t.Errorf("stderr should show the cell's traceback:\n%s", stderr.String())
	}
}
