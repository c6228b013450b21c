package cgroup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threadCgroups parses /proc/<who>/cgroup into controller -> path (v1 lines
// only; named hierarchies are keyed "name=...").
func threadCgroups(t *testing.T, who string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", who, "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// TestV1RealHierarchy exercises the v1 manager on the host's own cgroup v1
// mounts: it creates a uniquely named parent, a group in it, moves a thread
// and processes in, reads stats, kills and removes everything.
func TestV1RealHierarchy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups in the host's v1 hierarchy")
	}
	if isV2(cgroupRoot) {
		t.Skip(cgroupRoot + " is cgroup2 (pure v2 host): no v1 hierarchy to test")
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes")); err != nil {
		t.Skipf("no v1 memory hierarchy mounted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "pids", "cgroup.procs")); err != nil {
		t.Skipf("no v1 pids hierarchy mounted: %v", err)
	}
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary")
	}

	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	parent := "pybox-unittest-" + hex.EncodeToString(rnd[:])
	var mounted []string
	for _, c := range v1Controllers {
		if _, err := os.Stat(filepath.Join(cgroupRoot, c)); err == nil {
			mounted = append(mounted, c)
		}
	}
	// Registered first so that it runs last: the parents go once every
	// group in them is gone.
	t.Cleanup(func() {
		for _, c := range mounted {
			if err := rmdirRetry(filepath.Join(cgroupRoot, c, parent)); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	m, err := openV1(cgroupRoot, parent)
	if err != nil {
		t.Fatalf("openV1: %v", err)
	}
	if m.Version() != "v1" {
		t.Errorf("Version() = %q, want v1", m.Version())
	}
	var wantParents []string
	for _, c := range mounted {
		wantParents = append(wantParents, filepath.Join(cgroupRoot, c, parent))
	}
	if got := m.Parent(); !slices.Equal(got, wantParents) {
		t.Errorf("Parent() = %v, want %v", got, wantParents)
	}

	g, err := m.Create("t1", Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	group := "/" + parent + "/pybox-t1"
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			g.Kill()    //nolint:errcheck // best effort after a failure
			g.Destroy() //nolint:errcheck
		}
	})
	if g.Dir() != "" {
		t.Errorf("Dir() = %q, want \"\" on v1", g.Dir())
	}

	t.Run("limits", func(t *testing.T) {
		memDir := filepath.Join(cgroupRoot, "memory", parent, "pybox-t1")
		want := map[string]string{
			filepath.Join(memDir, "memory.limit_in_bytes"):                    "67108864",
			filepath.Join(memDir, "memory.swappiness"):                        "0",
			filepath.Join(cgroupRoot, "pids", parent, "pybox-t1", "pids.max"): "16",
		}
		if _, err := os.Stat(filepath.Join(memDir, "memory.memsw.limit_in_bytes")); err == nil {
			want[filepath.Join(memDir, "memory.memsw.limit_in_bytes")] = "67108864"
		}
		if slices.Contains(mounted, "cpu") {
			cpuDir := filepath.Join(cgroupRoot, "cpu", parent, "pybox-t1")
			want[filepath.Join(cpuDir, "cpu.cfs_period_us")] = "250000"
			want[filepath.Join(cpuDir, "cpu.cfs_quota_us")] = "125000"
		}
		for file, w := range want {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Error(err)
				continue
			}
			if got := strings.TrimSpace(string(data)); got != w {
				t.Errorf("%s = %q, want %q", file, got, w)
			}
		}
	})

	t.Run("create existing", func(t *testing.T) {
		if _, err := m.Create("t1", Resources{MemoryBytes: 32 << 20, CPU: 0.5, Pids: 8}); err == nil || !errors.Is(err, os.ErrExist) {
			t.Errorf("Create of an existing name: error = %v, want ErrExist", err)
		}
		// The failure must not have removed or changed the existing group.
		data, err := os.ReadFile(filepath.Join(cgroupRoot, "memory", parent, "pybox-t1", "memory.limit_in_bytes"))
		if err != nil || strings.TrimSpace(string(data)) != "67108864" {
			t.Errorf("existing group damaged by the failed Create: %q, %v", data, err)
		}
	})

	var inside *child // born in the group through EnterThread
	t.Run("EnterThread", func(t *testing.T) {
		te, ok := g.(ThreadEnterer)
		if !ok {
			t.Fatal("v1 group does not implement ThreadEnterer")
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			before := threadCgroups(t, "thread-self")
			leave, err := te.EnterThread()
			if err != nil {
				t.Errorf("EnterThread: %v", err)
				return
			}
			during := threadCgroups(t, "thread-self")
			// A child forked now is born in the group.
			inside = startSleepNoCleanup(t)
			if err := leave(); err != nil {
				t.Errorf("leave: %v", err)
			}
			after := threadCgroups(t, "thread-self")
			for _, c := range mounted {
				if during[c] != group {
					t.Errorf("inside: thread's %s cgroup = %q, want %q", c, during[c], group)
				}
				if after[c] != before[c] {
					t.Errorf("after leave: thread's %s cgroup = %q, want it back at %q", c, after[c], before[c])
				}
			}
		}()
		<-done
		if inside == nil {
			t.FailNow()
		}
		t.Cleanup(inside.kill)
		got := threadCgroups(t, strconv.Itoa(inside.pid()))
		for _, c := range mounted {
			if got[c] != group {
				t.Errorf("child forked by the entered thread: %s cgroup = %q, want %q", c, got[c], group)
			}
		}
	})

	t.Run("JoinFiles", func(t *testing.T) {
		files, err := g.JoinFiles()
		if err != nil {
			t.Fatal(err)
		}
		// A child that could not open the files (it gets only the fds)
		// moves itself in by writing "0" to each, then becomes sleep.
		script := ""
		for i := range files {
			script += fmt.Sprintf("echo 0 >&%d && ", 3+i)
		}
		c := &child{cmd: exec.Command("sh", "-c", script+"exec sleep 60"), done: make(chan struct{})}
		c.cmd.ExtraFiles = files
		err = c.cmd.Start()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		go func() { c.cmd.Wait(); close(c.done) }() //nolint:errcheck
		t.Cleanup(c.kill)
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := threadCgroups(t, strconv.Itoa(c.pid()))
			missing := []string{}
			for _, ctl := range mounted {
				if got[ctl] != group {
					missing = append(missing, ctl+"="+got[ctl])
				}
			}
			if len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the child did not join the group (%d files): %v", len(files), missing)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if mine := threadCgroups(t, "self"); mine["memory"] == group {
			t.Errorf("the opener was moved too")
		}
	})

	outside := startSleepNoCleanup(t)
	t.Cleanup(outside.kill)
	t.Run("Attach", func(t *testing.T) {
		if got := threadCgroups(t, strconv.Itoa(outside.pid())); got["memory"] == group {
			t.Fatalf("child is in the group before Attach")
		}
		if err := g.Attach(outside.pid()); err != nil {
			t.Fatalf("Attach: %v", err)
		}
		got := threadCgroups(t, strconv.Itoa(outside.pid()))
		for _, c := range mounted {
			if got[c] != group {
				t.Errorf("after Attach: %s cgroup = %q, want %q", c, got[c], group)
			}
		}
		procs, err := os.ReadFile(filepath.Join(cgroupRoot, "pids", parent, "pybox-t1", "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(outside.pid())) {
			t.Errorf("pids cgroup.procs = %q does not list %d", procs, outside.pid())
		}
	})

	t.Run("Stats", func(t *testing.T) {
		s, err := g.Stats()
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if s.PeakMemoryBytes <= 0 {
			t.Errorf("PeakMemoryBytes = %d, want > 0", s.PeakMemoryBytes)
		}
		if s.PeakMemoryBytes > 64<<20 {
			t.Errorf("PeakMemoryBytes = %d, above the 64 MiB limit", s.PeakMemoryBytes)
		}
		if s.OOMKills != 0 {
			t.Errorf("OOMKills = %d, want 0", s.OOMKills)
		}
		if slices.Contains(mounted, "cpuacct") && inside != nil && s.CPUUsage <= 0 {
			t.Errorf("CPUUsage = %v, want > 0 (a process was exec'd in the group)", s.CPUUsage)
		}
	})

	t.Run("Kill", func(t *testing.T) {
		if err := g.Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		for _, c := range []*child{inside, outside} {
			if c == nil {
				continue
			}
			if ws := c.waitStatus(t); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("pid %d ended with %v, want SIGKILL", c.pid(), c.cmd.ProcessState)
			}
		}
	})

	t.Run("Destroy", func(t *testing.T) {
		if err := g.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		destroyed = true
		for _, p := range wantParents {
			if _, err := os.Stat(filepath.Join(p, "pybox-t1")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s/pybox-t1 still exists: %v", p, err)
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("Destroy removed the parent %s: %v", p, err)
			}
		}
		if err := g.Destroy(); err != nil {
			t.Errorf("second Destroy: %v, want nil", err)
		}
	})
}

// startSleepNoCleanup is startSleep for goroutines other than the test's
// (t.Cleanup and t.Skip belong to the test goroutine's flow); the caller
// registers c.kill itself.
func startSleepNoCleanup(t *testing.T) *child {
	c := &child{cmd: exec.Command("sleep", "60"), done: make(chan struct{})}
	if err := c.cmd.Start(); err != nil {
		t.Errorf("starting sleep: %v", err)
		return nil
	}
	go func() {
		c.cmd.Wait() //nolint:errcheck // the status is read from ProcessState
		close(c.done)
	}()
	return c
}

func (c *child) kill() {
	c.cmd.Process.Kill() //nolint:errcheck // may be gone already
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}
