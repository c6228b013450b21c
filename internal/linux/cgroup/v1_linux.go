package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// v1 keeps one directory per controller hierarchy. memory and pids are
// required; cpu (quota) and cpuacct (usage) are used when mounted.
type v1Manager struct {
	root    string
	parents map[string]string // controller -> absolute parent dir
	own     map[string]string // controller -> this process's own group dir
}

var v1Controllers = []string{"memory", "pids", "cpu", "cpuacct"}

func openV1(root, parent string) (*v1Manager, error) {
	m := &v1Manager{root: root, parents: map[string]string{}, own: map[string]string{}}
	for _, c := range v1Controllers {
		mount := filepath.Join(root, c)
		if _, err := os.Stat(mount); err != nil {
			if c == "memory" || c == "pids" {
				return nil, fmt.Errorf("cgroup v1 controller %q is not mounted at %s", c, mount)
			}
			continue
		}
		own, err := ownPath(c)
		if err != nil {
			return nil, err
		}
		m.own[c] = filepath.Join(mount, own)
		p := parent
		if p == "" {
			p = filepath.Join(own, "pybox")
		}
		dir := filepath.Join(mount, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			if os.IsPermission(err) {
				return nil, fmt.Errorf("%w: creating %s: %v", ErrNotDelegated, dir, err)
			}
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		if err := unix.Access(dir, unix.W_OK); err != nil {
			return nil, fmt.Errorf("%w: %s is not writable: %v", ErrNotDelegated, dir, err)
		}
		m.parents[c] = dir
	}
	return m, nil
}

func (m *v1Manager) Version() string { return "v1" }

func (m *v1Manager) Parent() []string {
	var out []string
	for _, c := range v1Controllers {
		if p, ok := m.parents[c]; ok {
			out = append(out, p)
		}
	}
	return out
}

func (m *v1Manager) Create(name string, r Resources) (Group, error) {
	g := &v1Group{dirs: map[string]string{}, home: m.own}
	for _, c := range v1Controllers {
		parent, ok := m.parents[c]
		if !ok {
			continue
		}
		dir := filepath.Join(parent, groupPrefix+name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			g.Destroy()
			return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		g.dirs[c] = dir
	}
	if err := g.apply(r); err != nil {
		g.Destroy()
		return nil, err
	}
	return g, nil
}

type v1Group struct {
	dirs map[string]string
	home map[string]string // where EnterThread's leave returns the thread
}

// EnterThread moves the calling OS thread (not its whole process) into
// the group, so that a child it forks is born there; leave moves it back.
// The caller must hold runtime.LockOSThread until leave returns.
//
// Why: migrating another process into a v1 group ("cgroup.procs") takes
// the kernel's global threadgroup lock for writing, which waits for an RCU
// grace period: 5-40 ms per sandbox on a busy host. Writing "0" to "tasks"
// moves only the current thread and skips that lock.
func (g *v1Group) EnterThread() (leave func() error, err error) {
	moved := []string{}
	leave = func() error {
		var first error
		for _, c := range moved {
			if err := writeFile(g.home[c], "tasks", "0"); err != nil && first == nil {
				first = fmt.Errorf("returning thread to %s cgroup: %w", c, err)
			}
		}
		return first
	}
	for _, c := range v1Controllers {
		dir, ok := g.dirs[c]
		if !ok {
			continue
		}
		if err := writeFile(dir, "tasks", "0"); err != nil {
			leave() //nolint:errcheck // reported by the caller's fallback
			return nil, fmt.Errorf("moving thread into %s cgroup: %w", c, err)
		}
		moved = append(moved, c)
	}
	return leave, nil
}

func (g *v1Group) apply(r Resources) error {
	mem := g.dirs["memory"]
	// Order matters on v1: memsw must stay >= limit, so set the limit first.
	if err := writeFile(mem, "memory.limit_in_bytes", strconv.FormatInt(r.MemoryBytes, 10)); err != nil {
		return err
	}
	// memsw exists only with swap accounting; without it there is no swap
	// to charge, and swappiness 0 keeps the group's pages in memory.
	if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
		if err := writeFile(mem, "memory.memsw.limit_in_bytes", strconv.FormatInt(r.MemoryBytes, 10)); err != nil {
			return err
		}
	}
	if err := writeFile(mem, "memory.swappiness", "0"); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := writeFile(g.dirs["pids"], "pids.max", strconv.Itoa(r.Pids)); err != nil {
		return err
	}
	if cpu, ok := g.dirs["cpu"]; ok && r.CPU > 0 {
		q, p := cpuQuota(r.CPU)
		if err := writeFile(cpu, "cpu.cfs_period_us", strconv.FormatInt(p, 10)); err != nil {
			return err
		}
		if err := writeFile(cpu, "cpu.cfs_quota_us", strconv.FormatInt(q, 10)); err != nil {
			return err
		}
	}
	return nil
}

func (g *v1Group) Dir() string { return "" }

func (g *v1Group) Attach(pid int) error {
	for _, c := range v1Controllers {
		if dir, ok := g.dirs[c]; ok {
			if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
				return fmt.Errorf("joining %s cgroup: %w", c, err)
			}
		}
	}
	return nil
}

func (g *v1Group) JoinFiles() ([]*os.File, error) {
	var files []*os.File
	seen := map[string]bool{} // co-mounted controllers (cpu,cpuacct) share a directory
	for _, c := range v1Controllers {
		dir, ok := g.dirs[c]
		if !ok || seen[dir] {
			continue
		}
		seen[dir] = true
		f, err := os.OpenFile(filepath.Join(dir, "tasks"), os.O_WRONLY, 0)
		if err != nil {
			closeFiles(files)
			return nil, fmt.Errorf("opening %s cgroup's tasks: %w", c, err)
		}
		files = append(files, f)
	}
	return files, nil
}

func (g *v1Group) Stats() (Stats, error) {
	var s Stats
	var err error
	mem := g.dirs["memory"]
	if s.PeakMemoryBytes, err = readInt(mem, "memory.max_usage_in_bytes"); err != nil {
		return s, err
	}
	// oom_kill in memory.oom_control appeared in Linux 4.13; failcnt is a
	// weaker signal (the limit was hit) used only when it is missing.
	if s.OOMKills, err = readKey(mem, "memory.oom_control", "oom_kill"); err != nil {
		s.OOMKills = 0
	}
	if acct, ok := g.dirs["cpuacct"]; ok {
		if ns, err := readInt(acct, "cpuacct.usage"); err == nil {
			s.CPUUsage = time.Duration(ns)
		}
	}
	return s, nil
}

func (g *v1Group) Kill() error {
	return killPids(filepath.Join(g.dirs["pids"], "cgroup.procs"), func(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) })
}

func (g *v1Group) Destroy() error {
	var first error
	for _, c := range v1Controllers {
		if dir, ok := g.dirs[c]; ok {
			if err := rmdirRetry(dir); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
