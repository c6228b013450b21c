//go:build linux

package native

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/linux/cgroup"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// unifiedGroups creates real cgroup v2 groups, without controllers, in the
// host's unified hierarchy. This machine's controllers belong to v1, so the
// limits cannot be tested on v2 here (the cgroup package tests them on a
// fake cgroupfs); what this does test for real is the v2 start path:
// clone3 with CLONE_INTO_CGROUP together with pybox's namespace flags.
type unifiedGroups struct{ parent string }

func (m *unifiedGroups) Version() string  { return "v2" }
func (m *unifiedGroups) Parent() []string { return []string{m.parent} }
func (m *unifiedGroups) Create(name string, _ cgroup.Resources) (cgroup.Group, error) {
	dir := filepath.Join(m.parent, "pybox-"+name)
	return &unifiedGroup{dir: dir}, os.Mkdir(dir, 0o755)
}

type unifiedGroup struct{ dir string }

func (g *unifiedGroup) Dir() string { return g.dir }
func (g *unifiedGroup) Attach(pid int) error {
	return os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}
func (g *unifiedGroup) JoinFiles() ([]*os.File, error) {
	f, err := os.OpenFile(filepath.Join(g.dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return []*os.File{f}, nil
}
func (g *unifiedGroup) Stats() (cgroup.Stats, error) { return cgroup.Stats{}, nil }
func (g *unifiedGroup) Kill() error {
	return os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0)
}
func (g *unifiedGroup) Destroy() error {
	for i := 0; i < 100; i++ {
		if err := os.Remove(g.dir); err == nil || os.IsNotExist(err) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("removing %s", g.dir)
}

func TestBornInsideV2Group(t *testing.T) {
	requireRoot(t)
	const unified = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(unified, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skip("no cgroup2 hierarchy at " + unified)
	}
	parent, err := os.MkdirTemp(unified, "pybox-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(parent)
	b := newBackend(t, unix.EPERM)
	b.cgroups = &unifiedGroups{parent: parent}

	// The program reports which v2 group it is in, as the host sees it:
	// the group pybox created must list it from its very first instruction.
	seen := make(chan string, 1)
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ents, _ := os.ReadDir(parent)
			for _, e := range ents {
				procs, _ := os.ReadFile(filepath.Join(parent, e.Name(), "cgroup.procs"))
				if len(strings.Fields(string(procs))) >= 2 { // reaper and program
					seen <- e.Name()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		seen <- ""
	}()
	res := runCode(t, b, "import time; print(open('/proc/self/cgroup').read().strip().splitlines()[-1]); time.sleep(1)", nil)
	if res.Status != sandbox.StatusOK {
		t.Fatalf("status %s: %s %s", res.Status, res.Message, res.Stderr)
	}
	if group := <-seen; !strings.HasPrefix(group, "pybox-") {
		t.Errorf("no pybox group under %s ever held the sandbox's processes", parent)
	}
	// Inside, the cgroup namespace is rooted at that group.
	if !strings.Contains(res.Stdout, "0::/") {
		t.Errorf("program sees its v2 group as %q, want the namespace root", res.Stdout)
	}
	if ents, _ := os.ReadDir(parent); len(ents) > 0 {
		for _, e := range ents {
			if e.IsDir() {
				t.Errorf("group %s left behind", e.Name())
			}
		}
	}
}
