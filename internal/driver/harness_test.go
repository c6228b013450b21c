//go:build linux

package driver

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// guard bounds every wait of the tests; it only turns a hang into a failure.
const guard = 30 * time.Second

// python is an interpreter the driver is tested with.
type python struct {
	name string // for subtests: "3.11.7"
	path string // the real executable, not a shim
}

var (
	pythonsOnce sync.Once
	pythonsList []python
)

// pythons returns the python3 on PATH, Debian's /usr/bin/python3 and those
// listed in $PYBOX_TEST_PYTHONS (colon-separated), each once, resolved to
// the real executable (pyenv's shim costs 30 ms a start).
func pythons(t testing.TB) []python {
	pythonsOnce.Do(func() {
		seen := map[string]bool{}
		cands := []string{"python3", "/usr/bin/python3"}
		if extra := os.Getenv("PYBOX_TEST_PYTHONS"); extra != "" {
			cands = append(cands, strings.Split(extra, ":")...)
		}
		for _, cand := range cands {
			out, err := exec.Command(cand, "-I", "-c", "import sys; print(sys.executable, sys.version.split()[0])").Output()
			if err != nil {
				continue
			}
			f := strings.Fields(string(out))
			real, err := filepath.EvalSymlinks(f[0])
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			name := f[1]
			for _, p := range pythonsList {
				if p.name == name {
					name += "-" + strings.ReplaceAll(strings.Trim(real, "/"), "/", "-")
				}
			}
			pythonsList = append(pythonsList, python{name: name, path: real})
		}
	})
	if len(pythonsList) == 0 {
		t.Skip("no python3 found on PATH or at /usr/bin/python3")
	}
	return pythonsList
}

// forEachPython runs f as a parallel subtest for each interpreter.
func forEachPython(t *testing.T, f func(t *testing.T, py python)) {
	for _, py := range pythons(t) {
		t.Run(py.name, func(t *testing.T) {
			t.Parallel()
			f(t, py)
		})
	}
}

// requireModules skips t unless py can import all of modules.
func requireModules(t *testing.T, py python, modules ...string) {
	t.Helper()
	code := "import " + strings.Join(modules, ", ")
	if out, err := exec.Command(py.path, "-I", "-c", code).CombinedOutput(); err != nil {
		t.Skipf("%s cannot import %s (apt-get install python3-numpy python3-pandas python3-matplotlib): %s",
			py.path, strings.Join(modules, ", "), lastLine(string(out)))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// testEnv is the environment of the interpreters: the test's, without a
// display, so that matplotlib picks Agg as it does in the sandbox.
func testEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPLAY=") && !strings.HasPrefix(kv, "WAYLAND_DISPLAY=") &&
			!strings.HasPrefix(kv, "MPLBACKEND=") {
			env = append(env, kv)
		}
	}
	return env
}

// writeDriver writes the driver to a fresh directory and returns its path.
func writeDriver(t testing.TB) string {
	path := filepath.Join(t.TempDir(), ".driver.py")
	if err := os.WriteFile(path, []byte(Driver), 0o444); err != nil {
		t.Fatal(err)
	}
	return path
}

// buffer collects one stream of a cell; changed gets a token after writes.
type buffer struct {
	mu      sync.Mutex
	b       []byte
	changed chan struct{}
}

func newBuffer() *buffer { return &buffer{changed: make(chan struct{}, 1)} }

func (b *buffer) write(p []byte) {
	b.mu.Lock()
	b.b = append(b.b, p...)
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// waitFor waits until the buffer holds s.
func (b *buffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(guard)
	for !strings.Contains(b.String(), s) {
		select {
		case <-b.changed:
		case <-deadline:
			t.Fatalf("no %q in the output after %v; got %q", s, guard, b.String())
		}
	}
}

// proc is a running driver, talked to as the host does.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string   // the driver's directory: sys.path[0]
	ctrl    *os.File // fd 3 of the driver, write end
	replies chan Reply
	errs    chan error // why replies closed
	stdout  *Splitter
	stderr  *Splitter
	idleOut *buffer // output between cells
	idleErr *buffer
	eof     sync.WaitGroup // the stream copiers
	exited  chan struct{}
	state   *os.ProcessState
	ready   Reply
	next    int64
}

// startDriver starts the driver under py and reads its ready frame.
func startDriver(t *testing.T, py python) *proc {
	t.Helper()
	p := startRaw(t, py)
	p.ready = p.reply()
	return p
}

// startRaw starts the driver without reading any frame.
func startRaw(t *testing.T, py python) *proc {
	t.Helper()
	var pipes [4][2]*os.File // control, replies, stdout, stderr: read, write
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pipes[i] = [2]*os.File{r, w}
	}
	path := writeDriver(t)
	p := &proc{
		t:       t,
		cmd:     exec.Command(py.path, "-I", "-B", "-u", path),
		dir:     filepath.Dir(path),
		ctrl:    pipes[0][1],
		replies: make(chan Reply, 16),
		errs:    make(chan error, 1),
		idleOut: newBuffer(),
		idleErr: newBuffer(),
		exited:  make(chan struct{}),
		next:    1,
	}
	p.stdout, p.stderr = NewSplitter(p.idleOut.write), NewSplitter(p.idleErr.write)
	p.cmd.Env = testEnv()
	p.cmd.Stdout, p.cmd.Stderr = pipes[2][1], pipes[3][1]
	p.cmd.ExtraFiles = []*os.File{pipes[0][0], pipes[1][1]}
	// Its own process group, so that cleanup also kills what the cells
	// started and the stream copiers see EOF.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]} {
		f.Close()
	}
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	go func() {
		defer pipes[1][0].Close()
		for {
			var r Reply
			if err := ReadFrame(pipes[1][0], &r); err != nil {
				p.errs <- err
				close(p.replies)
				return
			}
			p.replies <- r
		}
	}()
	for i, s := range []*Splitter{p.stdout, p.stderr} {
		r := pipes[2+i][0]
		p.eof.Add(1)
		go func() {
			defer p.eof.Done()
			io.Copy(s, r)
			s.Close()
			r.Close()
		}()
	}
	t.Cleanup(func() {
		p.ctrl.Close()
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		done := make(chan struct{})
		go func() { p.eof.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(guard):
			t.Errorf("the driver's stdout and stderr still open %v after it was killed", guard)
		}
	})
	return p
}

func (p *proc) send(req Request) {
	p.t.Helper()
	if err := WriteFrame(p.ctrl, req); err != nil {
		p.t.Fatalf("sending %s: %v", req.Op, err)
	}
}

// reply waits for the next frame of the driver.
func (p *proc) reply() Reply {
	p.t.Helper()
	select {
	case r, ok := <-p.replies:
		if !ok {
			p.t.Fatalf("reply pipe: %v; stderr between cells: %q", <-p.errs, p.idleErr.String())
		}
		return r
	case <-time.After(guard):
		p.t.Fatalf("no reply after %v", guard)
	}
	panic("unreachable")
}

// noReply checks that no frame comes within d.
func (p *proc) noReply(d time.Duration) {
	p.t.Helper()
	select {
	case r, ok := <-p.replies:
		if ok {
			p.t.Fatalf("unexpected reply %+v", r)
		}
	case <-time.After(d):
	}
}

// wait waits for the driver to exit and returns its status.
func (p *proc) wait() syscall.WaitStatus {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(guard):
		p.t.Fatalf("the driver still runs %v later", guard)
	}
	return p.state.Sys().(syscall.WaitStatus)
}

// cell is a cell sent to the driver.
type cell struct {
	p        *proc
	id       int64
	out, err *buffer
	outDone  chan struct{}
	errDone  chan struct{}
}

// result is what the host gets for a cell.
type result struct {
	Reply
	stdout, stderr string
}

// begin sends code as a cell and returns without waiting.
func (p *proc) begin(code string) *cell {
	p.t.Helper()
	c := &cell{p: p, id: p.next, out: newBuffer(), err: newBuffer(),
		outDone: make(chan struct{}), errDone: make(chan struct{})}
	p.next++
	nonce := fmt.Sprintf("%016x", rand.Uint64())
	p.stdout.Begin(SyncMarker(nonce), c.out.write, func() { close(c.outDone) })
	p.stderr.Begin(SyncMarker(nonce), c.err.write, func() { close(c.errDone) })
	p.send(Request{Op: "exec", ID: c.id, Code: code, Sync: nonce})
	return c
}

// wait waits for the cell's reply and both its markers.
func (c *cell) wait() result {
	t := c.p.t
	t.Helper()
	r := c.p.reply()
	if r.Type != "result" || r.ID != c.id {
		t.Fatalf("got %+v, want the result of cell %d", r, c.id)
	}
	for _, done := range []chan struct{}{c.outDone, c.errDone} {
		select {
		case <-done:
		case <-time.After(guard):
			t.Fatalf("cell %d: no sync marker after %v; stdout %q, stderr %q", c.id, guard, c.out, c.err)
		}
	}
	return result{r, c.out.String(), c.err.String()}
}

// exec runs code as a cell.
func (p *proc) exec(code string) result {
	p.t.Helper()
	return p.begin(code).wait()
}

// mustExec runs code as a cell that must succeed.
func (p *proc) mustExec(code string) result {
	p.t.Helper()
	r := p.exec(code)
	if r.Status != "ok" {
		p.t.Fatalf("cell %q: status %q, error %+v", code, r.Status, r.Error)
	}
	return r
}
