package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The host may not run cgroup v2 (and must not be modified by unit tests),
// so these tests drive newV2 against a fake cgroupfs in a temporary
// directory. A real cgroupfs creates the interface files of a new group by
// itself; here the test creates the ones the code reads before writing, and
// the code's own writes create the others.

const allControllers = "cpuset cpu io memory hugetlb pids rdma misc\n"

// fakeRoot returns a fake hierarchy root with the given cgroup.controllers.
func fakeRoot(t *testing.T, controllers string) string {
	t.Helper()
	root := t.TempDir()
	writeTestFile(t, filepath.Join(root, "cgroup.controllers"), controllers)
	writeTestFile(t, filepath.Join(root, "cgroup.subtree_control"), "")
	return root
}

// fakeLevel creates the group rel below root as the kernel would, with
// subtree_control already holding subtree.
func fakeLevel(t *testing.T, root, rel, subtree string) {
	t.Helper()
	writeTestFile(t, filepath.Join(root, rel, "cgroup.subtree_control"), subtree)
	writeTestFile(t, filepath.Join(root, rel, "cgroup.controllers"), "cpu memory pids\n")
	writeTestFile(t, filepath.Join(root, rel, "cgroup.procs"), "")
}

func TestNewV2EnablesControllers(t *testing.T) {
	const all = "+memory +pids +cpu"
	cases := []struct {
		name   string
		parent string
		// before: subtree_control of each level ("" is the root) before
		// newV2; after: what it must hold afterwards.
		before map[string]string
		after  map[string]string
	}{
		{
			name:   "two fresh levels",
			parent: "system.slice/pybox",
			before: map[string]string{"": "", "system.slice": "", "system.slice/pybox": ""},
			after:  map[string]string{"": all, "system.slice": all, "system.slice/pybox": all},
		},
		{
			name:   "one level",
			parent: "pybox",
			before: map[string]string{"": "", "pybox": ""},
			after:  map[string]string{"": all, "pybox": all},
		},
		{
			name:   "deep",
			parent: "a/b/c/d",
			before: map[string]string{"": "", "a": "", "a/b": "", "a/b/c": "", "a/b/c/d": ""},
			after:  map[string]string{"": all, "a": all, "a/b": all, "a/b/c": all, "a/b/c/d": all},
		},
		{
			// The kernel lists enabled controllers without '+'; those
			// already on are not written again, the missing ones are added.
			name:   "partly enabled",
			parent: "user.slice/pybox",
			before: map[string]string{"": "cpuset cpu io memory pids\n", "user.slice": "memory\n", "user.slice/pybox": "cpu io\n"},
			after:  map[string]string{"": "cpuset cpu io memory pids\n", "user.slice": "+pids +cpu", "user.slice/pybox": "+memory +pids"},
		},
		{
			name:   "absolute parent is relative to the root",
			parent: "/pybox",
			before: map[string]string{"": "", "pybox": ""},
			after:  map[string]string{"": all, "pybox": all},
		},
		{
			// ".." as a path element leaves the root; as part of a name it
			// does not.
			name:   "name starting with dots",
			parent: "..pybox",
			before: map[string]string{"": "", "..pybox": ""},
			after:  map[string]string{"": all, "..pybox": all},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fakeRoot(t, allControllers)
			for rel, sub := range c.before {
				if rel == "" {
					writeTestFile(t, filepath.Join(root, "cgroup.subtree_control"), sub)
				} else {
					fakeLevel(t, root, rel, sub)
				}
			}
			m, err := newV2(root, c.parent)
			if err != nil {
				t.Fatalf("newV2: %v", err)
			}
			wantParent := filepath.Join(root, c.parent)
			if got := m.Parent(); !slices.Equal(got, []string{wantParent}) {
				t.Errorf("Parent() = %v, want [%s]", got, wantParent)
			}
			if m.Version() != "v2" {
				t.Errorf("Version() = %q, want v2", m.Version())
			}
			for rel, want := range c.after {
				if got := readBack(t, filepath.Join(root, rel, "cgroup.subtree_control")); got != want {
					t.Errorf("%s/cgroup.subtree_control = %q, want %q", "<root>/"+rel, got, want)
				}
			}
		})
	}
}

func TestNewV2Errors(t *testing.T) {
	cases := []struct {
		name        string
		controllers *string // nil: no cgroup.controllers file
		parent      string
		levels      []string // pre-created levels below the root
		wantErr     []string // substrings of the error
	}{
		{
			name:        "memory missing",
			controllers: ptr("cpuset cpu io pids\n"),
			parent:      "pybox", levels: []string{"pybox"},
			wantErr: []string{`controller "memory" is not available`, `"cpuset cpu io pids"`},
		},
		{
			name:        "pids missing",
			controllers: ptr("cpu memory\n"),
			parent:      "pybox", levels: []string{"pybox"},
			wantErr: []string{`controller "pids" is not available`},
		},
		{
			// "cpuset" contains "cpu" but is another controller.
			name:        "cpu missing, cpuset present",
			controllers: ptr("cpuset io memory pids\n"),
			parent:      "pybox", levels: []string{"pybox"},
			wantErr: []string{`controller "cpu" is not available`},
		},
		{
			name:        "empty controllers",
			controllers: ptr(""),
			parent:      "pybox", levels: []string{"pybox"},
			wantErr: []string{"is not available"},
		},
		{
			name:        "no cgroup.controllers",
			controllers: nil,
			parent:      "pybox", levels: []string{"pybox"},
			wantErr: []string{"reading cgroup.controllers"},
		},
		{
			name:        "parent outside the root",
			controllers: ptr(allControllers),
			parent:      "../escape",
			wantErr:     []string{`cgroup parent "../escape" is outside`},
		},
		{
			name:        "parent climbing out through a subdir",
			controllers: ptr(allControllers),
			parent:      "a/../../escape",
			wantErr:     []string{"is outside"},
		},
		{
			// A directory without kernel files is not a cgroup: the error
			// must say which file is missing.
			name:        "level without subtree_control",
			controllers: ptr(allControllers),
			parent:      "a/b",
			levels:      []string{"a"}, // a/b is created by newV2 as a plain dir
			wantErr:     []string{"a/b/cgroup.subtree_control"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.controllers != nil {
				writeTestFile(t, filepath.Join(root, "cgroup.controllers"), *c.controllers)
			}
			writeTestFile(t, filepath.Join(root, "cgroup.subtree_control"), "")
			for _, l := range c.levels {
				fakeLevel(t, root, l, "")
			}
			m, err := newV2(root, c.parent)
			if err == nil {
				t.Fatalf("newV2(%q) = %+v, want an error", c.parent, m)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if c.controllers == nil || !containsWord(*c.controllers, "memory") || !containsWord(*c.controllers, "cpu") || !containsWord(*c.controllers, "pids") {
				// A missing controller is found before anything is changed.
				if got := readBack(t, filepath.Join(root, "cgroup.subtree_control")); got != "" {
					t.Errorf("root subtree_control changed to %q although a controller is missing", got)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
				t.Errorf("a directory was created outside the root")
			}
		})
	}
}

func newFakeV2(t *testing.T) (*v2Manager, string) {
	t.Helper()
	root := fakeRoot(t, allControllers)
	fakeLevel(t, root, "pybox", "")
	m, err := newV2(root, "pybox")
	if err != nil {
		t.Fatal(err)
	}
	return m, filepath.Join(root, "pybox")
}

func TestV2CreateWritesLimits(t *testing.T) {
	cases := []struct {
		name string
		r    Resources
		want map[string]string // file -> content; "" value: file must not exist
	}{
		{
			name: "half a CPU",
			r:    Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16},
			want: map[string]string{
				"memory.max": "67108864", "memory.swap.max": "0", "memory.oom.group": "1",
				"pids.max": "16", "cpu.max": "125000 250000",
			},
		},
		{
			name: "defaults",
			r:    Resources{MemoryBytes: 256 << 20, CPU: 0.5, Pids: 128},
			want: map[string]string{"memory.max": "268435456", "pids.max": "128", "cpu.max": "125000 250000"},
		},
		{
			name: "minimum quota",
			r:    Resources{MemoryBytes: 16 << 20, CPU: 0.001, Pids: 1},
			want: map[string]string{"memory.max": "16777216", "pids.max": "1", "cpu.max": "1000 250000"},
		},
		{
			name: "one percent",
			r:    Resources{MemoryBytes: 16 << 20, CPU: 0.01, Pids: 1},
			want: map[string]string{"cpu.max": "2500 250000"},
		},
		{
			name: "several CPUs",
			r:    Resources{MemoryBytes: 1 << 30, CPU: 2.5, Pids: 4096},
			want: map[string]string{"memory.max": "1073741824", "pids.max": "4096", "cpu.max": "625000 250000"},
		},
		{
			name: "no CPU quota",
			r:    Resources{MemoryBytes: 32 << 20, CPU: 0, Pids: 8},
			want: map[string]string{"memory.max": "33554432", "memory.swap.max": "0", "pids.max": "8", "cpu.max": ""},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, parent := newFakeV2(t)
			g, err := m.Create("run1", c.r)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			dir := filepath.Join(parent, "pybox-run1")
			if g.Dir() != dir {
				t.Errorf("Dir() = %q, want %q", g.Dir(), dir)
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				t.Fatalf("group dir %s: %v", dir, err)
			}
			for file, want := range c.want {
				p := filepath.Join(dir, file)
				if want == "" {
					if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s was written (err %v), want untouched", file, err)
					}
					continue
				}
				if got := readBack(t, p); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
			}
		})
	}
}

func TestV2CreateExisting(t *testing.T) {
	m, parent := newFakeV2(t)
	r := Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16}
	if _, err := m.Create("dup", r); err != nil {
		t.Fatal(err)
	}
	_, err := m.Create("dup", r)
	if err == nil || !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), "creating cgroup") {
		t.Fatalf("second Create of the same name: error = %v, want 'creating cgroup' wrapping ErrExist", err)
	}
	// The failed Create must leave the first group alone.
	if got := readBack(t, filepath.Join(parent, "pybox-dup", "memory.max")); got != "67108864" {
		t.Errorf("first group's memory.max = %q after the failed Create", got)
	}
}

func TestV2ApplyError(t *testing.T) {
	// A limit file that cannot be written (here: a directory) fails apply
	// with an error naming the file.
	for _, file := range []string{"memory.max", "pids.max", "cpu.max"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, file), 0o755); err != nil {
				t.Fatal(err)
			}
			g := &v2Group{dir: dir}
			err := g.apply(Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16})
			if err == nil || !strings.Contains(err.Error(), "writing "+file) {
				t.Errorf("apply error = %v, want one naming %s", err, file)
			}
		})
	}
}

func TestV2Attach(t *testing.T) {
	m, _ := newFakeV2(t)
	g, err := m.Create("a", Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Attach(4242); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, filepath.Join(g.Dir(), "cgroup.procs")); got != "4242" {
		t.Errorf("cgroup.procs = %q, want %q", got, "4242")
	}
}

func TestV2JoinFiles(t *testing.T) {
	m, _ := newFakeV2(t)
	g, err := m.Create("j", Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	// The kernel makes cgroup.procs with the group; the fake does not.
	if err := os.WriteFile(filepath.Join(g.Dir(), "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := g.JoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d files, want cgroup.procs alone", len(files))
	}
	defer files[0].Close()
	if _, err := files[0].WriteString("0"); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, filepath.Join(g.Dir(), "cgroup.procs")); got != "0" {
		t.Errorf("cgroup.procs = %q, want %q", got, "0")
	}
}

func TestV2Stats(t *testing.T) {
	const events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n"
	const cpuStat = "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 10\nnr_throttled 1\nthrottled_usec 7\n"
	cases := []struct {
		name    string
		files   map[string]string
		want    Stats
		wantErr string
	}{
		{
			name:  "memory.peak",
			files: map[string]string{"memory.peak": "1048576\n", "memory.current": "4096\n", "memory.events": events, "cpu.stat": cpuStat},
			want:  Stats{PeakMemoryBytes: 1048576, OOMKills: 2, CPUUsage: 1500 * time.Millisecond},
		},
		{
			name:  "old kernel without memory.peak",
			files: map[string]string{"memory.current": "8192\n", "memory.events": events, "cpu.stat": cpuStat},
			want:  Stats{PeakMemoryBytes: 8192, OOMKills: 2, CPUUsage: 1500 * time.Millisecond},
		},
		{
			name:  "no OOM, no CPU",
			files: map[string]string{"memory.peak": "0\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "cpu.stat": "usage_usec 0\n"},
			want:  Stats{},
		},
		{
			name:  "sub-millisecond usage",
			files: map[string]string{"memory.peak": "1\n", "memory.events": events, "cpu.stat": "user_usec 1\nusage_usec 7\n"},
			want:  Stats{PeakMemoryBytes: 1, OOMKills: 2, CPUUsage: 7 * time.Microsecond},
		},
		{
			name:    "no memory files",
			files:   map[string]string{"memory.events": events, "cpu.stat": cpuStat},
			wantErr: "memory.current",
		},
		{
			name:    "memory.events without oom_kill",
			files:   map[string]string{"memory.peak": "1\n", "memory.events": "low 0\noom 1\n", "cpu.stat": cpuStat},
			wantErr: `no key "oom_kill"`,
		},
		{
			name:    "no cpu.stat",
			files:   map[string]string{"memory.peak": "1\n", "memory.events": events},
			wantErr: "cpu.stat",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for f, content := range c.files {
				writeTestFile(t, filepath.Join(dir, f), content)
			}
			g := &v2Group{dir: dir}
			got, err := g.Stats()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Stats() error = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Stats(): %v", err)
			}
			if got != c.want {
				t.Errorf("Stats() = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestV2KillWritesCgroupKill(t *testing.T) {
	sleep := startSleep(t)
	m, _ := newFakeV2(t)
	g, err := m.Create("k", Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	// Listed in cgroup.procs, but with cgroup.kill available the kernel does
	// the killing: Kill must not signal pids itself.
	writeTestFile(t, filepath.Join(g.Dir(), "cgroup.procs"), strconv.Itoa(sleep.pid())+"\n")
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, filepath.Join(g.Dir(), "cgroup.kill")); got != "1" {
		t.Errorf("cgroup.kill = %q, want %q", got, "1")
	}
	if err := syscall.Kill(sleep.pid(), 0); err != nil {
		t.Errorf("the process was signalled although cgroup.kill was written: %v", err)
	}
}

func TestV2KillFallsBackToProcs(t *testing.T) {
	sleep := startSleep(t)
	dir := t.TempDir()
	// Kernels before 5.14 have no cgroup.kill; a directory makes the write
	// fail the same way.
	if err := os.Mkdir(filepath.Join(dir, "cgroup.kill"), 0o755); err != nil {
		t.Fatal(err)
	}
	procs := filepath.Join(dir, "cgroup.procs")
	writeTestFile(t, procs, strconv.Itoa(sleep.pid())+"\n")
	go func() {
		<-sleep.done
		os.WriteFile(procs, nil, 0o644) // the kernel drops the dead process
	}()
	g := &v2Group{dir: dir}
	if err := g.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if ws := sleep.waitStatus(t); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ended with %v, want SIGKILL", sleep.cmd.ProcessState)
	}
}

func TestV2Destroy(t *testing.T) {
	m, parent := newFakeV2(t)
	g, err := m.Create("d", Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	// On a real cgroupfs the interface files go away with the directory;
	// here remove them as the kernel would.
	entries, err := os.ReadDir(g.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("Create wrote no files")
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(g.Dir(), e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "pybox-d")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("group dir still exists after Destroy: %v", err)
	}
	if _, err := os.Stat(parent); err != nil {
		t.Errorf("Destroy removed the parent: %v", err)
	}
	if err := g.Destroy(); err != nil {
		t.Errorf("second Destroy: %v, want nil", err)
	}
	// The name is free again.
	if _, err := m.Create("d", Resources{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 16}); err != nil {
		t.Errorf("Create after Destroy: %v", err)
	}
}

// child is a process started by a test; done closes once it is reaped.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitStatus waits (bounded) for the child to end and returns its status.
func (c *child) waitStatus(t *testing.T) syscall.WaitStatus {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the process is still running")
	}
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// startSleep starts a long sleep that the test cleans up.
func startSleep(t *testing.T) *child {
	t.Helper()
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary")
	}
	c := startSleepNoCleanup(t)
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(c.kill)
	return c
}

func TestSweep(t *testing.T) {
	parent := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(name string, mtime time.Time, withFile bool) {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if withFile { // a populated group: the kernel refuses rmdir
			writeTestFile(t, filepath.Join(dir, "cgroup.procs"), "1\n")
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mk("pybox-stale1", old, false)
	mk("pybox-stale2", old, false)
	mk("pybox-fresh", time.Now(), false)                      // may belong to a pybox starting now
	mk("pybox-populated", old, true)                          // still running
	mk("other-stale", old, false)                             // not ours
	writeTestFile(t, filepath.Join(parent, "pybox-file"), "") // not a group
	os.Chtimes(filepath.Join(parent, "pybox-file"), old, old)

	if n := Sweep(&v2Manager{parent: parent}, time.Minute); n != 2 {
		t.Errorf("Sweep removed %d groups, want 2", n)
	}
	for name, wantGone := range map[string]bool{
		"pybox-stale1": true, "pybox-stale2": true, "pybox-fresh": false,
		"pybox-populated": false, "other-stale": false, "pybox-file": false,
	} {
		_, err := os.Stat(filepath.Join(parent, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != wantGone {
			t.Errorf("%s: removed = %v, want %v", name, gone, wantGone)
		}
	}
	if n := Sweep(&v2Manager{parent: filepath.Join(parent, "missing")}, 0); n != 0 {
		t.Errorf("Sweep of a missing parent removed %d", n)
	}
}
