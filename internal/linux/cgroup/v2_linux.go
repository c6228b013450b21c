package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func isV2(root string) bool {
	var st unix.Statfs_t
	return unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

type v2Manager struct {
	parent string // absolute directory under which groups are created
}

var neededV2 = []string{"memory", "pids", "cpu"}

// openV2 prepares parent (default: a "pybox" sibling of pybox's own group) so that its children
// can use the memory, pids and cpu controllers. cgroup v2 forbids processes
// in a group whose controllers are delegated to children ("no internal
// processes"), so sandboxes go into a dedicated child group, never into
// pybox's own.
func openV2(root, parent string) (*v2Manager, error) {
	if parent == "" {
		own, err := ownPath("")
		if err != nil {
			return nil, err
		}
		// pybox's own group has a process (pybox), so it cannot hand
		// controllers to children; sandboxes go next to it instead.
		parent = filepath.Join(filepath.Dir(own), "pybox")
	}
	return newV2(root, parent)
}

// newV2 is openV2 with an explicit root, so tests can point it at a fake
// cgroupfs.
func newV2(root, parent string) (*v2Manager, error) {
	dir := filepath.Join(root, parent)
	avail, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("reading cgroup.controllers: %w", err)
	}
	for _, c := range neededV2 {
		if !containsWord(string(avail), c) {
			return nil, fmt.Errorf("cgroup v2 controller %q is not available (cgroup.controllers: %q)", c, strings.TrimSpace(string(avail)))
		}
	}
	// Enable the controllers on every level from the root down to dir.
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("cgroup parent %q is outside %s", parent, root)
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if err := enableControllers(cur); err != nil {
			return nil, err
		}
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			if os.IsPermission(err) {
				return nil, fmt.Errorf("%w: creating %s: %v", ErrNotDelegated, cur, err)
			}
			return nil, fmt.Errorf("creating %s: %w", cur, err)
		}
	}
	if err := enableControllers(cur); err != nil {
		return nil, err
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return nil, fmt.Errorf("%w: %s is not writable: %v", ErrNotDelegated, dir, err)
	}
	return &v2Manager{parent: dir}, nil
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func enableControllers(dir string) error {
	cur, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("reading %s/cgroup.subtree_control: %w", dir, err)
	}
	var add []string
	for _, c := range neededV2 {
		if !containsWord(string(cur), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := writeFile(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
		if os.IsPermission(err) {
			return fmt.Errorf("%w: %v", ErrNotDelegated, err)
		}
		return fmt.Errorf("enabling controllers in %s (a group with processes cannot delegate; set cgroup_parent to an empty group): %w", dir, err)
	}
	return nil
}

func (m *v2Manager) Version() string  { return "v2" }
func (m *v2Manager) Parent() []string { return []string{m.parent} }

func (m *v2Manager) Create(name string, r Resources) (Group, error) {
	dir := filepath.Join(m.parent, groupPrefix+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup: %w", err)
	}
	g := &v2Group{dir: dir}
	if err := g.apply(r); err != nil {
		os.Remove(dir)
		return nil, err
	}
	return g, nil
}

type v2Group struct{ dir string }

func (g *v2Group) apply(r Resources) error {
	mem := strconv.FormatInt(r.MemoryBytes, 10)
	if err := writeFile(g.dir, "memory.max", mem); err != nil {
		return err
	}
	// swap 0: a sandbox must not push the host into swap to get around
	// its memory limit.
	if err := writeFile(g.dir, "memory.swap.max", "0"); err != nil && !os.IsNotExist(err) {
		return err
	}
	// Kill the whole sandbox on OOM, not a random thread of it.
	if err := writeFile(g.dir, "memory.oom.group", "1"); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := writeFile(g.dir, "pids.max", strconv.Itoa(r.Pids)); err != nil {
		return err
	}
	if r.CPU > 0 {
		q, p := cpuQuota(r.CPU)
		if err := writeFile(g.dir, "cpu.max", fmt.Sprintf("%d %d", q, p)); err != nil {
			return err
		}
	}
	return nil
}

func (g *v2Group) Dir() string { return g.dir }

func (g *v2Group) Attach(pid int) error {
	return writeFile(g.dir, "cgroup.procs", strconv.Itoa(pid))
}

func (g *v2Group) JoinFiles() ([]*os.File, error) {
	f, err := os.OpenFile(filepath.Join(g.dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup.procs: %w", err)
	}
	return []*os.File{f}, nil
}

func (g *v2Group) Stats() (Stats, error) {
	var s Stats
	var err error
	// memory.peak exists since Linux 5.19.
	if s.PeakMemoryBytes, err = readInt(g.dir, "memory.peak"); err != nil {
		if s.PeakMemoryBytes, err = readInt(g.dir, "memory.current"); err != nil {
			return s, err
		}
	}
	if s.OOMKills, err = readKey(g.dir, "memory.events", "oom_kill"); err != nil {
		return s, err
	}
	usec, err := readKey(g.dir, "cpu.stat", "usage_usec")
	if err != nil {
		return s, err
	}
	s.CPUUsage = time.Duration(usec) * time.Microsecond
	return s, nil
}

func (g *v2Group) Kill() error {
	// cgroup.kill (5.14+) kills atomically, even a forking tree.
	if err := writeFile(g.dir, "cgroup.kill", "1"); err == nil {
		return nil
	}
	return killPids(filepath.Join(g.dir, "cgroup.procs"), func(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) })
}

func (g *v2Group) Destroy() error { return rmdirRetry(g.dir) }
