//go:build linux

package restricted

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
	"github.com/pybox-dev/pybox/internal/workspace"
)

var _ session.Box = (*Process)(nil)

func (e *env) dial(t *testing.T) *session.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := session.Dial(ctx, session.Adapt(e.b.Start), sandbox.DefaultLimits(), e.py)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSession runs cells through the server's session machinery: state is
// kept between cells, the workspace is RootPath()+"/tmp" both ways, a cell
// past its timeout is interrupted and the session lives on.
func TestSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := session.New(e.dial(t), session.Options{})
	box := s.Box()
	defer func() {
		s.Close("test done")
		<-box.Done()
		if _, err := os.Stat(box.RootPath()); !os.IsNotExist(err) {
			t.Errorf("the session's directory is still there: %v", err)
		}
	}()
	ctx := context.Background()
	exec := func(code string, timeout time.Duration) map[string]string {
		t.Helper()
		r, err := s.Execute(ctx, code, timeout, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "ok" {
			t.Fatalf("%q: %+v", code, r)
		}
		return r.Value
	}
	exec("x = 41\nopen('made-by-cell.txt', 'w').write('from the cell')", 0)
	if v := exec("x + 1", 0); v["text/plain"] != "42" {
		t.Errorf("state not kept: x + 1 = %v", v)
	}
	if l := s.Layers(); l.Backend != "restricted" || len(l.Warnings) == 0 || l.Warnings[0] != Warning {
		t.Errorf("layers %+v", l)
	}

	root := box.RootPath()
	if data, err := os.ReadFile(filepath.Join(root, "tmp", "made-by-cell.txt")); err != nil || string(data) != "from the cell" {
		t.Errorf("the cell's file at RootPath()/tmp: %q %v", data, err)
	}
	uid, gid := box.FileOwner()
	d, err := workspace.Open(root, "tmp", uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write("up/loaded.txt", strings.NewReader("from the host"), 1<<20); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if v := exec("open('up/loaded.txt').read()", 0); v["text/plain"] != "'from the host'" {
		t.Errorf("uploaded file reads %v", v)
	}
	// The program can write into what was uploaded for it.
	exec("open('up/reply.txt', 'w').write('ok')", 0)

	r, err := s.Execute(ctx, "import time\nprint('sleeping', flush=True)\ntime.sleep(1000)", 500*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "timeout" || r.SessionEnded || r.Stdout != "sleeping\n" {
		t.Errorf("interrupted cell: %+v", r)
	}
	if v := exec("x", 0); v["text/plain"] != "41" {
		t.Errorf("state after the interrupt: %v", v)
	}
	if u, err := box.Usage(); err != nil || u.CPU <= 0 || u.PeakMemoryBytes <= 0 {
		t.Errorf("usage %+v %v", u, err)
	}
}

// TestConnRun runs a one-shot through a warm driver, as the server's pool
// does.
func TestConnRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t)
	box := c.Box()
	spec := e.spec("import os, sys\nprint('hello', __file__, 'PYBOX_ROOT' in os.environ, sys.argv[1:])\nsys.exit(4)", nil)
	spec.Args = []string{"arg"}
	res, err := c.Run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	<-box.Done()
	want := "hello " + filepath.Join(box.RootPath(), "pybox", "main.py") + " False ['arg']\n"
	if res.Status != sandbox.StatusError || res.ExitCode != 4 || res.Stdout != want {
		t.Errorf("got %+v, want stdout %q and exit 4", res, want)
	}
	if res.Layers.Backend != "restricted" {
		t.Errorf("layers %+v", res.Layers)
	}
}

// TestConnRunTimeout: a warm one-shot past its deadline is killed, tree
// and all.
func TestConnRunTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lim := sandbox.DefaultLimits()
	lim.Timeout = time.Second
	ctx := context.Background()
	c, err := session.Dial(ctx, session.Adapt(e.b.Start), lim, e.py)
	if err != nil {
		t.Fatal(err)
	}
	spec := &sandbox.Spec{Code: []byte("import os, time\nos.fork()\ntime.sleep(1000)"), Limits: lim}
	res, err := c.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	<-c.Box().Done()
	if res.Status != sandbox.StatusTimeout {
		t.Errorf("%+v", res)
	}
}
