//go:build linux

package native

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// startZygote starts a fork server for the test, ended at its cleanup.
func startZygote(tb testing.TB, lim sandbox.Limits) *Zygote {
	tb.Helper()
	z, err := newBackend(tb, unix.EPERM).StartZygote(context.Background(), lim, "python3")
	if err != nil {
		tb.Fatalf("StartZygote: %v", err)
	}
	tb.Cleanup(z.Close)
	return z
}

// spawnReady forks a driver sandbox and waits for its driver's ready
// frame; w is where requests go.
func spawnReady(z *Zygote, stdout, stderr io.Writer) (sb *Sandbox, w io.WriteCloser, err error) {
	sb, err = z.Spawn(context.Background(), &sandbox.Spec{Driver: true, Limits: z.limits}, stdout, stderr)
	if err != nil {
		return nil, nil, fmt.Errorf("spawn: %w", err)
	}
	w, r := sb.Control()
	var ready driver.Reply
	if err := driver.ReadFrame(r, &ready); err != nil || ready.Type != "ready" {
		sb.Kill(sandbox.StatusKilled)
		return nil, nil, fmt.Errorf("driver not ready: %v %+v", err, ready)
	}
	return sb, w, nil
}

// runForked runs code as a one-shot in a sandbox forked by z, through the
// driver's run request, and returns the result.
func runForked(t *testing.T, z *Zygote, code string) *sandbox.Result {
	t.Helper()
	stdout := sandbox.NewCapture(z.limits.MaxOutputBytes, nil)
	stderr := sandbox.NewCapture(z.limits.MaxOutputBytes, nil)
	sb, w, err := spawnReady(z, stdout, stderr)
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, stderr.Output().Text)
	}
	sb.SetDeadline(z.limits.Timeout)
	if err := driver.WriteFrame(w, &driver.Request{Op: "run", Code: code, Filename: "main.py"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	res, err := sb.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestZygoteSpawns(t *testing.T) {
	lim := sandbox.DefaultLimits()
	lim.Timeout = 10 * time.Second
	z := startZygote(t, lim)
	// The program is pid 2 of a pid namespace of its own, whose pid 1 (the
	// reaper) is its parent: the zygote's clone made the namespace and its
	// pid 1 in one step.
	res := runForked(t, z, "import os\nprint(os.getpid(), os.getppid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
	if res.Status != sandbox.StatusOK || strings.TrimSpace(res.Stdout) != "2 1 [1, 2]" {
		t.Fatalf("status %s, stdout %q: %s %s", res.Status, res.Stdout, res.Message, res.Stderr)
	}
}

// TestZygoteSandboxJoinsItsCgroup: pid 1 of a forked sandbox moves itself
// into the sandbox's own cgroup, in every hierarchy, before it forks the
// program; neither is left in the fork server's.
func TestZygoteSandboxJoinsItsCgroup(t *testing.T) {
	z := startZygote(t, sandbox.DefaultLimits())
	sb, w, err := spawnReady(z, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close(); sb.Kill(sandbox.StatusKilled); <-sb.Done() }()
	zygoteGroups := hostCgroups(t, z.sb.hostPID)
	pid1 := hostCgroups(t, sb.hostPID)
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", sb.hostPID, sb.hostPID))
	if err != nil || len(strings.Fields(string(children))) != 1 {
		t.Fatalf("pid 1's children: %q %v", children, err)
	}
	program := hostCgroups(t, atoi(t, strings.Fields(string(children))[0]))
	for _, c := range []string{"memory", "pids", "cpu"} {
		if pid1[c] == "" || pid1[c] == zygoteGroups[c] || !strings.Contains(pid1[c], "pybox-") {
			t.Errorf("%s: pid 1 in %q, the fork server in %q", c, pid1[c], zygoteGroups[c])
		}
		if program[c] != pid1[c] {
			t.Errorf("%s: the program in %q, pid 1 in %q", c, program[c], pid1[c])
		}
	}
}

// TestZygoteSessionEndsCleanly: a session's driver that the host closes
// exits 0 with nothing on stderr. (The program is pid 2 of its namespace,
// as the fork server is of the template's; told apart by pid, the fork
// server's error handling took the program's SystemExit for its own.)
func TestZygoteSessionEndsCleanly(t *testing.T) {
	z := startZygote(t, sandbox.DefaultLimits())
	stderr := sandbox.NewCapture(1<<16, nil)
	sb, w, err := spawnReady(z, nil, stderr)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	res, err := sb.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.Signal != "" || stderr.Output().Text != "" {
		t.Fatalf("exit %d, signal %q, stderr %q", res.ExitCode, res.Signal, stderr.Output().Text)
	}
}

// hostCgroups maps each v1 controller of /proc/pid/cgroup to its path.
func hostCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// spawnAndEnd makes one forked sandbox up to its driver's ready frame and
// tears it down again: what a pool refill costs.
func spawnAndEnd(z *Zygote) error {
	sb, _, err := spawnReady(z, nil, nil)
	if err != nil {
		return err
	}
	sb.Kill(sandbox.StatusKilled)
	<-sb.Done()
	return nil
}

// BenchmarkZygoteSpawn: a forked sandbox, from the request to its driver's
// ready frame, then torn down.
func BenchmarkZygoteSpawn(b *testing.B) {
	z := startZygote(b, sandbox.DefaultLimits())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := spawnAndEnd(z); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkZygoteSpawnParallel: how many forked sandboxes per second one
// fork server makes with eight requests in flight.
func BenchmarkZygoteSpawnParallel(b *testing.B) {
	z := startZygote(b, sandbox.DefaultLimits())
	b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := spawnAndEnd(z); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkForkedRun: a warm one-shot in a forked sandbox, from the run
// request to the result (the sandbox is made before the timer runs).
func BenchmarkForkedRun(b *testing.B) {
	z := startZygote(b, sandbox.DefaultLimits())
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		stdout := sandbox.NewCapture(1<<20, nil)
		sb, w, err := spawnReady(z, stdout, nil)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // let the sandbox's start-up settle
		b.StartTimer()
		driver.WriteFrame(w, &driver.Request{Op: "run", Code: "print(1+1)", Filename: "main.py"}) //nolint:errcheck
		w.Close()
		if res, err := sb.Wait(); err != nil || res.Stdout != "2\n" {
			b.Fatal(err, res)
		}
	}
}

// TestForkedChildOOMNoted: as TestChildOOMNoted, in a forked sandbox.
func TestForkedChildOOMNoted(t *testing.T) {
	lim := sandbox.DefaultLimits()
	lim.MemoryBytes = 64 << 20
	z := startZygote(t, lim)
	res := runForked(t, z, oomChild)
	if res.Status != sandbox.StatusOK || strings.TrimSpace(res.Stdout) != "child -9" {
		t.Fatalf("status %s, stdout %q, message %q", res.Status, res.Stdout, res.Message)
	}
	if !strings.Contains(res.Message, "OOM killer ended 1 other process") {
		t.Errorf("message %q does not say that a child was killed for memory", res.Message)
	}
}

// TestForkedSandboxesOwnUIDs: as root, each forked sandbox's pid 1 and
// program run as host uids no other sandbox has, from the fork server's
// block; inside, the program is uid 1000 as in a cold sandbox; the ids
// come back when the sandboxes are gone.
func TestForkedSandboxesOwnUIDs(t *testing.T) {
	requireRoot(t)
	z := startZygote(t, sandbox.DefaultLimits())
	template := z.sb.layers.HostUID
	base := template - sandboxUID
	seen := map[int]string{template: "the fork server's program"}
	var boxes []*Sandbox
	for i := 0; i < 3; i++ {
		sb, w, err := spawnReady(z, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, sb)
		defer w.Close()
		// Pid 1 switches its uid after it has let the program go.
		pid1 := hostUID(t, sb.hostPID)
		for deadline := time.Now().Add(5 * time.Second); pid1 == template && time.Now().Before(deadline); pid1 = hostUID(t, sb.hostPID) {
			time.Sleep(time.Millisecond)
		}
		children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", sb.hostPID, sb.hostPID))
		if err != nil || len(strings.Fields(string(children))) != 1 {
			t.Fatalf("pid 1's children: %q %v", children, err)
		}
		program := hostUID(t, atoi(t, strings.Fields(string(children))[0]))
		if program != sb.Layers().HostUID {
			t.Errorf("sandbox %d: program runs as host uid %d, its layers say %d", i, program, sb.Layers().HostUID)
		}
		for what, uid := range map[string]int{"pid 1": pid1, "program": program} {
			if uid < base || uid >= base+idsPerSlot {
				t.Errorf("sandbox %d's %s: host uid %d outside the fork server's block [%d, %d)", i, what, uid, base, base+idsPerSlot)
			}
			if other, dup := seen[uid]; dup {
				t.Errorf("sandbox %d's %s runs as host uid %d, as %s does", i, what, uid, other)
			}
			seen[uid] = fmt.Sprintf("sandbox %d's %s", i, what)
		}
	}
	res := runForked(t, z, "import os\nprint(os.getuid(), os.getgid(), os.geteuid())")
	if res.Status != sandbox.StatusOK || res.Stdout != "1000 1000 1000\n" {
		t.Errorf("inside: %s %q %s", res.Status, res.Stdout, res.Stderr)
	}
	for _, sb := range boxes {
		sb.Kill(sandbox.StatusKilled)
		<-sb.Done()
	}
	// The ids come back in each sandbox's cleanup, which may follow its
	// result.
	want, free := (idsPerSlot-forkedIDBase)/2, 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		z.ids.mu.Lock()
		free = len(z.ids.free)
		z.ids.mu.Unlock()
		if free == want || time.Now().After(deadline) {
			break
		}
	}
	if free != want {
		t.Errorf("%d uid pairs free after every sandbox ended, want %d", free, want)
	}
}

// hostUID is the real uid of pid as the host sees it.
func hostUID(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			return atoi(t, f[1])
		}
	}
	t.Fatalf("no Uid line for pid %d", pid)
	return 0
}
