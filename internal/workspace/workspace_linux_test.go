package workspace

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fixture is a workspace at root/tmp, as /proc/PID/root/tmp is one, and a
// host directory outside it holding a secret the sandbox wants.
type fixture struct {
	root, ws, outside, secret string
	d                         *Dir
}

const secretText = "host secret"

func newFixture(t *testing.T, uid, gid int) *fixture {
	t.Helper()
	checkFDs(t)
	f := &fixture{root: t.TempDir(), outside: t.TempDir()}
	f.ws = filepath.Join(f.root, "tmp")
	f.secret = filepath.Join(f.outside, "secret")
	must(t, os.Mkdir(f.ws, 0o777))
	must(t, os.WriteFile(f.secret, []byte(secretText), 0o644))
	f.open(t, uid, gid)
	return f
}

func (f *fixture) open(t *testing.T, uid, gid int) {
	t.Helper()
	d, err := Open(f.root, "tmp", uid, gid)
	must(t, err)
	f.d = d
	t.Cleanup(func() { d.Close() })
}

// checkOutside fails if anything but the secret appeared outside, or the
// secret changed.
func (f *fixture) checkOutside(t *testing.T) {
	t.Helper()
	names := readNames(t, f.outside)
	if !slices.Equal(names, []string{"secret"}) {
		t.Errorf("outside the workspace: %v, want only the secret", names)
	}
	if b, err := os.ReadFile(f.secret); err != nil || string(b) != secretText {
		t.Errorf("secret = %q, %v; want it unchanged", b, err)
	}
}

func readNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", why)
	}
}

// checkFDs fails the test if it ends with more descriptors open than it
// began with. Register it first, so that it runs after other cleanups.
func checkFDs(t *testing.T) {
	t.Helper()
	count := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		must(t, err)
		return len(es)
	}
	before := count()
	t.Cleanup(func() {
		if after := count(); after > before {
			t.Errorf("%d descriptors leaked", after-before)
		}
	})
}

func TestMain(m *testing.M) {
	// The runtime opens its poller on first use; open it now so that
	// checkFDs does not count it.
	r, w, _ := os.Pipe()
	r.Close()
	w.Close()
	os.Exit(m.Run())
}

func write(t *testing.T, d *Dir, p, data string) {
	t.Helper()
	n, err := d.Write(p, strings.NewReader(data), 1<<20)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Write(%q) = %d, %v; want %d, nil", p, n, err, len(data))
	}
}

func read(d *Dir, p string) (string, error) {
	f, _, err := d.OpenFile(p, 1<<20)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	return fi.Sys().(*syscall.Stat_t)
}

func TestRoundTrip(t *testing.T) {
	f := newFixture(t, -1, -1)
	for _, p := range []string{"a.txt", "données/résumé 1.txt", "a/b/c/d.csv", "empty"} {
		data := "content of " + p
		if p == "empty" {
			data = ""
		}
		write(t, f.d, p, data)
		got, err := read(f.d, p)
		if err != nil || got != data {
			t.Errorf("read back %q = %q, %v; want %q", p, got, err, data)
		}
	}
	// Replacing keeps one file with the new content.
	write(t, f.d, "a.txt", "v2")
	if got, _ := read(f.d, "a.txt"); got != "v2" {
		t.Errorf("after overwrite: %q", got)
	}
	fh, fi, err := f.d.OpenFile("a/b/c/d.csv", 100)
	must(t, err)
	fh.Close()
	if fi.Name() != "d.csv" || fi.Size() != int64(len("content of a/b/c/d.csv")) || !fi.Mode().IsRegular() {
		t.Errorf("FileInfo: %s %d %v", fi.Name(), fi.Size(), fi.Mode())
	}
	// Modes are exact whatever the host's umask.
	old := syscall.Umask(0o077)
	write(t, f.d, "m/f", "x")
	syscall.Umask(old)
	if m := statT(t, filepath.Join(f.ws, "m")).Mode & 0o7777; m != dirMode {
		t.Errorf("new directory mode %o, want %o", m, dirMode)
	}
	if m := statT(t, filepath.Join(f.ws, "m/f")).Mode & 0o7777; m != fileMode {
		t.Errorf("new file mode %o, want %o", m, fileMode)
	}
	if names := readNames(t, f.ws); !slices.Equal(names, []string{"a", "a.txt", "données", "empty", "m"}) {
		t.Errorf("workspace holds %v", names)
	}
	f.checkOutside(t)
}

func TestChown(t *testing.T) {
	needRoot(t, "chown to another uid")
	f := newFixture(t, 12345, 23456)
	must(t, os.Mkdir(filepath.Join(f.ws, "old"), 0o755)) // exists: keeps its owner
	write(t, f.d, "old/new/f.txt", "x")
	for p, want := range map[string]uint32{"old": 0, "old/new": 12345, "old/new/f.txt": 12345} {
		st := statT(t, filepath.Join(f.ws, p))
		wantGid := want
		if want != 0 {
			wantGid = 23456
		}
		if st.Uid != want || st.Gid != wantGid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, want, wantGid)
		}
	}
}

func TestFinalSymlink(t *testing.T) {
	f := newFixture(t, -1, -1)
	rel, err := filepath.Rel(f.ws, f.secret) // "../../…/secret"
	must(t, err)
	for name, target := range map[string]string{"abs": f.secret, "rel": rel} {
		t.Run(name, func(t *testing.T) {
			link := filepath.Join(f.ws, name)
			must(t, os.Symlink(target, link))
			// Control: followed, the link does reach the secret.
			if b, err := os.ReadFile(link); err != nil || string(b) != secretText {
				t.Fatalf("control: reading through the link: %q, %v", b, err)
			}

			got, err := read(f.d, name)
			wantErr(t, "OpenFile of a link", err, ErrLink)
			if got != "" {
				t.Fatalf("OpenFile read %q through a link", got)
			}
			_, _, err = f.d.List(name, 10)
			wantErr(t, "List of a link", err, ErrLink)

			write(t, f.d, name, "upload")
			if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("after Write the name is %v, %v; want a regular file", fi.Mode(), err)
			}
			if got, _ := read(f.d, name); got != "upload" {
				t.Errorf("read back %q", got)
			}
			f.checkOutside(t)
		})
	}
}

// A hard link cannot reach outside: link(2) does not cross filesystems and
// the host never leaves the workspace's. Within it, an upload replaces the
// name and does not write through to the other name.
func TestHardLinkReplaced(t *testing.T) {
	f := newFixture(t, -1, -1)
	write(t, f.d, "orig", "original")
	must(t, os.Link(filepath.Join(f.ws, "orig"), filepath.Join(f.ws, "hard")))
	write(t, f.d, "hard", "upload")
	if got, _ := read(f.d, "orig"); got != "original" {
		t.Errorf("the other name now reads %q", got)
	}
}

func TestIntermediateSymlink(t *testing.T) {
	f := newFixture(t, -1, -1)
	rel, err := filepath.Rel(f.ws, f.outside)
	must(t, err)
	for name, target := range map[string]string{"abs": f.outside, "rel": rel, "dotdot": "../../../../../../../../.." + f.outside} {
		t.Run(name, func(t *testing.T) {
			must(t, os.Symlink(target, filepath.Join(f.ws, name)))
			// Control: followed, the link leads to the secret.
			if b, err := os.ReadFile(filepath.Join(f.ws, name, "secret")); err != nil || string(b) != secretText {
				t.Fatalf("control: reading through the link: %q, %v", b, err)
			}

			_, err := f.d.Write(name+"/f", strings.NewReader("x"), 10)
			wantErr(t, "Write below a link", err, ErrLink)
			_, err = f.d.Write(name+"/new/f", strings.NewReader("x"), 10)
			wantErr(t, "Write of a new directory below a link", err, ErrLink)
			_, err = read(f.d, name+"/secret")
			wantErr(t, "OpenFile below a link", err, ErrLink)
			_, _, err = f.d.List(name, 10)
			wantErr(t, "List of a link", err, ErrLink)
			err = f.d.Remove(name + "/secret")
			wantErr(t, "Remove below a link", err, ErrLink)
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name the path", err)
			}
			f.checkOutside(t)
		})
	}
}

func TestSpecialFiles(t *testing.T) {
	f := newFixture(t, -1, -1)
	fifo := filepath.Join(f.ws, "fifo")
	must(t, unix.Mkfifo(fifo, 0o666))
	must(t, os.Mkdir(filepath.Join(f.ws, "dir"), 0o755))
	l, err := net.Listen("unix", filepath.Join(f.ws, "sock"))
	must(t, err)
	defer l.Close()
	names := []string{"fifo", "dir", "sock"}
	if os.Geteuid() == 0 {
		must(t, unix.Mknod(filepath.Join(f.ws, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		names = append(names, "null")
	}

	// Control: a plain open of the FIFO blocks until a writer comes. It
	// cannot return before the writer below, so the check is not timed.
	plain := make(chan error, 1)
	go func() {
		f, err := os.Open(fifo)
		if err == nil {
			f.Close()
		}
		plain <- err
	}()

	for _, name := range names {
		done := make(chan error, 1)
		go func() {
			fh, _, err := f.d.OpenFile(name, 100)
			if err == nil {
				fh.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			wantErr(t, "OpenFile of "+name, err, ErrNotRegular)
		case <-time.After(10 * time.Second):
			t.Fatalf("OpenFile of %s blocked", name)
		}
	}

	select {
	case err := <-plain:
		t.Fatalf("control: a plain open of the FIFO returned (%v) with no writer", err)
	default:
	}
	// Blocks until the control's reader has opened, then releases it.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	must(t, err)
	w.Close()
	must(t, <-plain)
}

func TestDirectoryInTheWay(t *testing.T) {
	f := newFixture(t, -1, -1)
	must(t, os.MkdirAll(filepath.Join(f.ws, "x/y"), 0o755))
	_, err := f.d.Write("x", strings.NewReader("data"), 10)
	wantErr(t, "Write over a directory", err, ErrIsDir)
	if !strings.Contains(err.Error(), "directory has this name") {
		t.Errorf("message %q does not say what is in the way", err)
	}
	write(t, f.d, "file", "x")
	_, err = f.d.Write("file/y", strings.NewReader("data"), 10)
	wantErr(t, "Write below a file", err, ErrNotDir)
	_, err = read(f.d, "file/y")
	wantErr(t, "OpenFile below a file", err, ErrNotDir)
	_, err = read(f.d, "missing")
	wantErr(t, "OpenFile of a missing file", err, ErrNotFound)
	checkClean(t, f.ws, "file", "x")
}

// checkClean fails if dir holds anything but names, such as a temporary
// file or a directory a failed Write created.
func checkClean(t *testing.T, dir string, names ...string) {
	t.Helper()
	if got := readNames(t, dir); !slices.Equal(got, names) {
		t.Errorf("workspace holds %v, want %v", got, names)
	}
}

func TestTooLarge(t *testing.T) {
	f := newFixture(t, -1, -1)
	n, err := f.d.Write("ok", strings.NewReader("0123456789"), 10)
	if err != nil || n != 10 {
		t.Fatalf("Write of exactly the limit: %d, %v", n, err)
	}
	_, err = f.d.Write("new/dirs/big", strings.NewReader("0123456789a"), 10)
	wantErr(t, "Write over the limit", err, ErrTooLarge)
	_, err = f.d.Write("ok", strings.NewReader("0123456789a"), 10)
	wantErr(t, "overwrite over the limit", err, ErrTooLarge)
	if got, _ := read(f.d, "ok"); got != "0123456789" {
		t.Errorf("a refused upload changed the file: %q", got)
	}
	checkClean(t, f.ws, "ok")

	_, _, err = f.d.OpenFile("ok", 9)
	wantErr(t, "OpenFile over the limit", err, ErrTooLarge)
}

func TestNoSpace(t *testing.T) {
	needRoot(t, "mounting a small tmpfs")
	checkFDs(t)
	root := t.TempDir()
	ws := filepath.Join(root, "tmp")
	must(t, os.Mkdir(ws, 0o755))
	must(t, unix.Mount("tmpfs", ws, "tmpfs", 0, "size=64k"))
	t.Cleanup(func() { must(t, unix.Unmount(ws, 0)) })
	d, err := Open(root, "tmp", -1, -1)
	must(t, err)
	t.Cleanup(func() { d.Close() })

	big := bytes.Repeat([]byte("x"), 1<<20)
	_, err = d.Write("a/b/big", bytes.NewReader(big), 2<<20)
	wantErr(t, "Write to a full tmpfs", err, ErrNoSpace)
	checkClean(t, ws)
	write(t, d, "small", "fits")
	checkClean(t, ws, "small")
}

// TestMounts checks that the workspace may be a mount of its own (the
// sandbox's /tmp is) and that no mount below it is crossed.
func TestMounts(t *testing.T) {
	needRoot(t, "mounting tmpfs")
	checkFDs(t)
	root := t.TempDir()
	ws := filepath.Join(root, "tmp")
	inner := filepath.Join(ws, "inner")
	must(t, os.Mkdir(ws, 0o755))
	must(t, unix.Mount("tmpfs", ws, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { must(t, unix.Unmount(ws, 0)) })
	must(t, os.Mkdir(inner, 0o755))
	must(t, unix.Mount("tmpfs", inner, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { must(t, unix.Unmount(inner, 0)) })
	must(t, os.WriteFile(filepath.Join(inner, "f"), []byte("in the inner mount"), 0o644))

	d, err := Open(root, "tmp", -1, -1)
	must(t, err)
	t.Cleanup(func() { d.Close() })
	write(t, d, "f", "x")
	_, err = read(d, "inner/f")
	wantErr(t, "OpenFile across a mount", err, ErrLink)
	_, err = d.Write("inner/g", strings.NewReader("x"), 10)
	wantErr(t, "Write across a mount", err, ErrLink)
	es, trunc, err := d.List("", 10)
	must(t, err)
	if got := paths(es); !slices.Equal(got, []string{"f", "inner"}) || trunc {
		t.Errorf("List = %v, %v; want the mount point listed and not entered", got, trunc)
	}
}

func TestOpen(t *testing.T) {
	checkFDs(t)
	root := t.TempDir()
	must(t, os.Mkdir(filepath.Join(root, "ws"), 0o755))
	must(t, os.Symlink("ws", filepath.Join(root, "link")))
	must(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o644))
	for _, tc := range []struct {
		sub  string
		want error
	}{
		{"ws", nil},
		{"", nil},
		{"link", ErrLink},
		{"missing", ErrNotFound},
		{"file", ErrNotDir},
		{"../ws", ErrInvalidPath},
		{"/ws", ErrInvalidPath},
	} {
		d, err := Open(root, tc.sub, -1, -1)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("Open(%q) = %v, want %v", tc.sub, err, tc.want)
		}
		if d != nil {
			d.Close()
		}
	}
	// The root is the host's path and is followed: /proc/PID/root is a
	// magic link.
	d, err := Open(filepath.Join("/proc", strconv.Itoa(os.Getpid()), "root"), strings.TrimPrefix(root, "/")+"/ws", -1, -1)
	if err != nil {
		t.Fatalf("Open through /proc/PID/root: %v", err)
	}
	d.Close()
}

func paths(es []Entry) []string {
	var ps []string
	for _, e := range es {
		ps = append(ps, e.Path)
	}
	return ps
}

func TestList(t *testing.T) {
	f := newFixture(t, -1, -1)
	write(t, f.d, "b.txt", "12345")
	write(t, f.d, "a/x/deep.txt", "1")
	write(t, f.d, "a-c", "")
	must(t, os.Symlink(f.outside, filepath.Join(f.ws, "a/out")))
	must(t, unix.Mkfifo(filepath.Join(f.ws, "a/fifo"), 0o600))
	must(t, os.WriteFile(filepath.Join(f.ws, "a", tempPrefix+"0"), nil, 0o600))
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(f.ws, "b.txt"), mtime, mtime))

	es, trunc, err := f.d.List("", 100)
	must(t, err)
	want := []string{"a", "a-c", "a/fifo", "a/out", "a/x", "a/x/deep.txt", "b.txt"}
	if got := paths(es); !slices.Equal(got, want) || trunc {
		t.Fatalf("List = %v, %v; want %v, false", got, trunc, want)
	}
	byPath := map[string]Entry{}
	for _, e := range es {
		byPath[e.Path] = e
	}
	for p, typ := range map[string]string{"a": "dir", "a/fifo": "other", "a/out": "symlink", "b.txt": "file"} {
		if byPath[p].Type != typ {
			t.Errorf("%s: type %q, want %q", p, byPath[p].Type, typ)
		}
	}
	if e := byPath["b.txt"]; e.Size != 5 || e.Mode != fileMode || !e.ModTime.Equal(mtime) {
		t.Errorf("b.txt: %+v", e)
	}
	if e := byPath["a/out"]; e.Target != f.outside {
		t.Errorf("link target %q, want %q", e.Target, f.outside)
	}

	es, _, err = f.d.List("a/x", 100)
	must(t, err)
	if got := paths(es); !slices.Equal(got, []string{"a/x/deep.txt"}) {
		t.Errorf("List(a/x) = %v", got)
	}
	_, _, err = f.d.List("b.txt", 100)
	wantErr(t, "List of a file", err, ErrNotDir)
	_, _, err = f.d.List("a/out", 100)
	wantErr(t, "List of a link", err, ErrLink)

	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{0, 1, 3, 6} {
			es, trunc, err := f.d.List("", n)
			must(t, err)
			if len(es) != n || !trunc {
				t.Errorf("List(max %d) = %d entries, truncated %v", n, len(es), trunc)
			}
		}
		if _, trunc, _ := f.d.List("", 7); trunc {
			t.Errorf("List(max 7) of 7 entries says truncated")
		}
	})

	t.Run("depth", func(t *testing.T) {
		deep := filepath.Join(f.ws, "deep", strings.Repeat("d/", MaxDepth+1))
		must(t, os.MkdirAll(deep, 0o755))
		es, trunc, err := f.d.List("deep", 1000)
		must(t, err)
		if !trunc || len(es) != MaxDepth-1 {
			t.Errorf("List of a tree deeper than %d: %d entries, truncated %v", MaxDepth, len(es), trunc)
		}
		last := es[len(es)-1].Path
		if n := strings.Count(last, "/") + 1; n != MaxDepth {
			t.Errorf("deepest entry has %d components, want %d", n, MaxDepth)
		}
		// Anything listed can be named.
		must(t, CheckPath(last))
	})
}

func TestRemove(t *testing.T) {
	f := newFixture(t, -1, -1)
	must(t, os.Symlink(f.secret, filepath.Join(f.ws, "link")))
	must(t, os.Symlink(f.outside, filepath.Join(f.ws, "dirlink")))
	must(t, f.d.Remove("link"))
	must(t, f.d.Remove("dirlink"))
	f.checkOutside(t)

	write(t, f.d, "a/b/f", "x")
	wantErr(t, "Remove of a non-empty directory", f.d.Remove("a"), ErrNotEmpty)
	must(t, f.d.Remove("a/b/f"))
	must(t, f.d.Remove("a/b"))
	must(t, f.d.Remove("a"))
	wantErr(t, "Remove of a missing file", f.d.Remove("a"), ErrNotFound)
	wantErr(t, "Remove of a bad path", f.d.Remove("../x"), ErrInvalidPath)
	checkClean(t, f.ws)
}

// TestSwapRace swaps a directory with a link to the outside as fast as it
// can while the host writes, reads and lists below it: what a sandbox
// would do to win the time between a check and a use.
func TestSwapRace(t *testing.T) {
	f := newFixture(t, -1, -1)
	must(t, os.Mkdir(filepath.Join(f.ws, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(f.ws, "d/secret"), []byte("inside"), 0o644))
	must(t, os.Symlink(f.outside, filepath.Join(f.ws, "l")))

	stop := make(chan struct{})
	swapped := make(chan error)
	go func() {
		d, l := filepath.Join(f.ws, "d"), filepath.Join(f.ws, "l")
		for {
			select {
			case <-stop:
				swapped <- nil
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, l, unix.RENAME_EXCHANGE); err != nil {
				swapped <- err
				return
			}
		}
	}()

	var wrote, refused, naive int
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		_, err := f.d.Write("d/f", strings.NewReader("upload"), 100)
		switch {
		case err == nil:
			wrote++
		case errors.Is(err, ErrLink):
			refused++
		default:
			t.Fatalf("Write: %v", err)
		}
		if got, err := read(f.d, "d/secret"); err == nil && got != "inside" {
			t.Fatalf("OpenFile read %q", got)
		}
		if es, _, err := f.d.List("d", 10); err == nil {
			for _, e := range es {
				if e.Path == "d/secret" && e.Size != int64(len("inside")) {
					t.Fatalf("List entered the outside: %+v", e)
				}
			}
		}
		// Control: a path-based write, as the host must not do.
		if os.WriteFile(filepath.Join(f.ws, "d/naive"), nil, 0o644) == nil {
			naive++
		}
	}
	close(stop)
	must(t, <-swapped)

	// Control: the naive writes landed outside, so the race was run.
	if _, err := os.Lstat(filepath.Join(f.outside, "naive")); err != nil {
		t.Fatalf("control: no path-based write went through the link in %d tries: %v", naive, err)
	}
	must(t, os.Remove(filepath.Join(f.outside, "naive")))
	t.Logf("Write: %d stored, %d refused (ErrLink)", wrote, refused)
	if wrote == 0 || refused == 0 {
		t.Errorf("the swap was not exercised both ways: %d stored, %d refused", wrote, refused)
	}
	f.checkOutside(t)
}
