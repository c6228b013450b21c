package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

func newSession(t *testing.T, st *stack, req api.CreateSessionRequest) *api.Session {
	t.Helper()
	s, err := st.c.CreateSession(ctx(t), req)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return s
}

func cell(t *testing.T, st *stack, id, code string) *api.CellResult {
	t.Helper()
	res, err := st.c.Run(ctx(t), id, api.CellRequest{Code: code})
	if err != nil {
		t.Fatalf("cell %q: %v", code, err)
	}
	return res
}

func problemOf(t *testing.T, err error, status int, typ string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a %d %s problem, got %v", status, typ, err)
	}
	if e.Status != status || e.Type != typ {
		t.Fatalf("want %d %s, got %d %s: %s", status, typ, e.Status, e.Type, e.Detail)
	}
	return e
}

func TestSessionKeepsStateAndShowsValues(t *testing.T) { inBothModes(t, testSessionKeepsState) }

func testSessionKeepsState(t *testing.T, exec bool) {
	st := newStack(t, options{warm: 1, exec: exec})
	s := newSession(t, st, api.CreateSessionRequest{})
	if !s.Warm || s.State != "idle" {
		t.Errorf("session from a filled pool: warm=%v state=%s", s.Warm, s.State)
	}
	cell(t, st, s.ID, "x = 1\ndef f(a):\n    return a * 2")
	cell(t, st, s.ID, "x += 1")
	r := cell(t, st, s.ID, "print('x is', x)\nf(x)")
	if r.Status != api.StatusOK || r.Stdout != "x is 2\n" || r.Value["text/plain"] != "4" {
		t.Fatalf("state across cells: %+v", r)
	}
	if r.ExecutionCount != 3 {
		t.Errorf("execution_count = %d, want 3", r.ExecutionCount)
	}
	if r := cell(t, st, s.ID, "y = None\ny"); r.Value != nil {
		t.Errorf("None shows no value, got %v", r.Value)
	}
	// The traceback's line numbers refer to the cell.
	r = cell(t, st, s.ID, "a = 1\nb = 0\na / b")
	if r.Status != api.StatusError || r.Error == nil || r.Error.Type != "ZeroDivisionError" {
		t.Fatalf("error cell: %+v", r)
	}
	if !strings.Contains(r.Error.Traceback, `File "<cell 5>", line 3`) || !strings.Contains(r.Error.Traceback, "a / b") || strings.Contains(r.Error.Traceback, ".driver.py") {
		t.Errorf("traceback should point at cell 5 line 3 and hide the driver:\n%s", r.Error.Traceback)
	}
	r = cell(t, st, s.ID, "def g(:\n  pass")
	if r.Status != api.StatusError || r.Error == nil || r.Error.Type != "SyntaxError" {
		t.Errorf("syntax error: %+v", r)
	}
	// stderr is its own stream; output without a newline is kept whole.
	r = cell(t, st, s.ID, "import sys\nsys.stderr.write('warn')\nprint('no newline', end='')")
	if r.Stdout != "no newline" || r.Stderr != "warn" {
		t.Errorf("streams: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	// exit() in a cell is an error, not the end of the session.
	r = cell(t, st, s.ID, "import sys\nsys.exit(3)")
	if r.Status != api.StatusError || r.Error == nil || r.Error.Type != "SystemExit" {
		t.Errorf("sys.exit in a cell: %+v", r)
	}
	if r := cell(t, st, s.ID, "x"); r.Value["text/plain"] != "2" {
		t.Errorf("session lost its state after SystemExit: %+v", r)
	}
	got, err := st.c.Session(ctx(t), s.ID)
	if err != nil || got.Executions != 9 || got.State != "idle" {
		t.Errorf("GET session: %+v, %v", got, err)
	}
	if err := st.c.DeleteSession(ctx(t), s.ID); err != nil {
		t.Fatal(err)
	}
	_, err = st.c.Run(ctx(t), s.ID, api.CellRequest{Code: "x"})
	problemOf(t, err, 404, api.ProblemNotFound)
}

func TestCellTimeoutInterruptsAndKeepsSession(t *testing.T) {
	st := newStack(t, options{grace: time.Second})
	s := newSession(t, st, api.CreateSessionRequest{})
	cell(t, st, s.ID, "kept = 'yes'")
	for _, code := range []string{"import time\ntime.sleep(60)", "while True:\n    pass"} {
		r, err := st.c.Run(ctx(t), s.ID, api.CellRequest{Code: code, Timeout: "500ms"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != api.StatusTimeout || r.SessionEnded || r.Error == nil || r.Error.Type != "KeyboardInterrupt" {
			t.Fatalf("%q: want an interrupted timeout, got %+v", code, r)
		}
	}
	if r := cell(t, st, s.ID, "kept"); r.Value["text/plain"] != "'yes'" {
		t.Fatalf("state lost after interrupts: %+v", r)
	}
	// A cell that ignores KeyboardInterrupt: the session is killed, and its
	// next use says why.
	r, err := st.c.Run(ctx(t), s.ID, api.CellRequest{Code: "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)", Timeout: "500ms"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != api.StatusTimeout || !r.SessionEnded {
		t.Fatalf("uninterruptible cell: %+v", r)
	}
	_, err = st.c.Run(ctx(t), s.ID, api.CellRequest{Code: "kept"})
	e := problemOf(t, err, 410, api.ProblemSessionEnded)
	if !strings.Contains(e.Detail, "timeout") || !strings.Contains(e.Detail, "create a new session") {
		t.Errorf("410 should say why: %s", e.Detail)
	}
	got, err := st.c.Session(ctx(t), s.ID)
	if err != nil || got.State != "ended" || got.EndReason == "" {
		t.Errorf("ended session: %+v %v", got, err)
	}
}

func TestSessionDeathIsReported(t *testing.T) {
	st := newStack(t, options{})
	cases := []struct {
		name, code string
		status     api.Status
		reason     string
	}{
		{"os._exit", "import os\nos._exit(7)", api.StatusKilled, "exited with status 7"},
		{"memory", "b = bytearray(512 << 20)\nb[::4096] = b'x' * len(b[::4096])", api.StatusMemoryLimit, "memory limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSession(t, st, api.CreateSessionRequest{})
			r := cell(t, st, s.ID, c.code)
			if r.Status != c.status || !r.SessionEnded || !strings.Contains(r.Message, c.reason) {
				t.Fatalf("want %s with %q, got %+v", c.status, c.reason, r)
			}
			_, err := st.c.Run(ctx(t), s.ID, api.CellRequest{Code: "1"})
			e := problemOf(t, err, 410, api.ProblemSessionEnded)
			if !strings.Contains(e.Detail, c.reason) {
				t.Errorf("next use: %s", e.Detail)
			}
		})
	}
}

// TestCellChildOOMNoted: a cell whose child the memory limit kills
// finishes ok, says so, and the session lives on with its state.
func TestCellChildOOMNoted(t *testing.T) {
	st := newStack(t, options{})
	s := newSession(t, st, api.CreateSessionRequest{Limits: &api.Limits{Memory: "64MiB"}})
	r := cell(t, st, s.ID, "import subprocess, sys\nx = 41\nr = subprocess.run([sys.executable, '-c', 'x = bytearray(1 << 30)'])\nr.returncode")
	if r.Status != api.StatusOK || r.Value["text/plain"] != "-9" || r.SessionEnded || !strings.Contains(r.Message, "OOM killer ended 1 process(es) it started") {
		t.Fatalf("%+v", r)
	}
	if r := cell(t, st, s.ID, "x + 1"); r.Status != api.StatusOK || r.Value["text/plain"] != "42" || r.Message != "" {
		t.Fatalf("the next cell: %+v", r)
	}
}

func TestCellStreamsOutput(t *testing.T) {
	st := newStack(t, options{})
	s := newSession(t, st, api.CreateSessionRequest{})
	var mu sync.Mutex
	var events []string
	var firstAt time.Time
	res, err := st.c.RunStream(ctx(t), s.ID, api.CellRequest{Code: "import time, sys\nprint('first', flush=True)\ntime.sleep(1)\nprint('é' * 3)\nsys.stderr.write('err\\n')\n42"},
		func(stream, text string) {
			mu.Lock()
			defer mu.Unlock()
			if firstAt.IsZero() {
				firstAt = time.Now()
			}
			events = append(events, stream+":"+text)
		})
	done := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != api.StatusOK || res.Value["text/plain"] != "42" || res.Stdout != "first\néé\u00e9\n" {
		t.Fatalf("streamed result: %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	byStream := map[string]string{}
	for _, e := range events {
		name, text, _ := strings.Cut(e, ":")
		byStream[name] += text
	}
	if byStream["stdout"] != "first\néé\u00e9\n" || byStream["stderr"] != "err\n" || !strings.HasPrefix(events[0], "stdout:first") {
		t.Errorf("events: %q", events)
	}
	// The first line reached the client while the cell was still sleeping.
	if done.Sub(firstAt) < 500*time.Millisecond {
		t.Errorf("first output arrived %s before the end: not streamed", done.Sub(firstAt))
	}
}

func TestSessionRichOutput(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pandas, matplotlib").Run(); err != nil {
		t.Skip("Debian's python3 with pandas and matplotlib is needed (apt-get install python3-pandas python3-matplotlib; .ci/run installs them)")
	}
	st := newStack(t, options{python: py})
	s := newSession(t, st, api.CreateSessionRequest{Limits: &api.Limits{Memory: "512MiB"}})
	r := cell(t, st, s.ID, "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2], 'b': [3, 4]})\ndf")
	if r.Status != api.StatusOK || !strings.Contains(r.Value["text/html"], "<table") || !strings.Contains(r.Value["text/plain"], "a  b") {
		t.Fatalf("DataFrame value: %+v", r)
	}
	r = cell(t, st, s.ID, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.figure()\nplt.bar([1], [2])\nNone")
	if r.Status != api.StatusOK || len(r.Display) != 2 {
		t.Fatalf("want two figures, got %+v", r)
	}
	for _, d := range r.Display {
		png, err := base64.StdEncoding.DecodeString(d.Data)
		if d.MIME != "image/png" || err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("display item %s is not a PNG (%v)", d.MIME, err)
		}
	}
	if r := cell(t, st, s.ID, "len(plt.get_fignums())"); r.Value["text/plain"] != "0" {
		t.Errorf("figures are closed once shown, got %v", r.Value)
	}
}

func TestSessionFiles(t *testing.T) {
	st := newStack(t, options{})
	s := newSession(t, st, api.CreateSessionRequest{})
	c := ctx(t)
	if _, err := st.c.Upload(c, s.ID, "data/in.csv", strings.NewReader("a,b\n1,2\n")); err != nil {
		t.Fatal(err)
	}
	// The program sees the file, owns it, and writes its own.
	r := cell(t, st, s.ID, "import os\nprint(open('data/in.csv').read().split())\nopen('data/in.csv', 'a').write('3,4\\n')\nopen('out.txt', 'w').write('result')\nos.symlink('/etc/passwd', 'link')\nos.symlink('/pybox', 'dirlink')")
	if r.Status != api.StatusOK || r.Stdout != "['a,b', '1,2']\n" {
		t.Fatalf("sandbox reading the upload: %+v", r)
	}
	fl, err := st.c.Files(c, s.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, f := range fl.Files {
		types[f.Path] = f.Type
	}
	if types["data/in.csv"] != "file" || types["out.txt"] != "file" || types["link"] != "symlink" || types["data"] != "dir" {
		t.Errorf("listing: %+v", fl.Files)
	}
	download := func(p string) (string, error) {
		rc, err := st.c.Download(c, s.ID, p)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	if got, err := download("out.txt"); err != nil || got != "result" {
		t.Errorf("download out.txt: %q %v", got, err)
	}
	if got, err := download("data/in.csv"); err != nil || got != "a,b\n1,2\n3,4\n" {
		t.Errorf("download of a file the sandbox changed: %q %v", got, err)
	}
	// Links planted by the sandbox are never followed.
	_, err = download("link")
	problemOf(t, err, 400, api.ProblemInvalidPath)
	_, err = download("dirlink/.driver.py")
	problemOf(t, err, 400, api.ProblemInvalidPath)
	before, _ := os.ReadFile("/etc/passwd")
	if _, err := st.c.Upload(c, s.ID, "link", strings.NewReader("pwned")); err != nil {
		t.Fatalf("upload over a link replaces the link: %v", err)
	}
	if after, _ := os.ReadFile("/etc/passwd"); !bytes.Equal(before, after) {
		t.Fatal("an upload wrote through a sandbox symlink to the host's /etc/passwd")
	}
	// Bad paths get 400 and name the problem.
	for _, p := range []string{"../escape", "a/../../b", "/etc/x", "a//b"} {
		_, err := st.c.Upload(c, s.ID, p, strings.NewReader("x"))
		var e *client.Error
		if !errors.As(err, &e) || e.Status/100 != 4 {
			t.Errorf("upload to %q: want a 4xx problem, got %v", p, err)
		}
	}
	_, err = download("missing.txt")
	problemOf(t, err, 404, api.ProblemNotFound)
	if err := st.c.DeleteFile(c, s.ID, "out.txt"); err != nil {
		t.Fatal(err)
	}
	if r := cell(t, st, s.ID, "import os\nos.path.exists('out.txt')"); r.Value["text/plain"] != "False" {
		t.Errorf("deleted file still there: %+v", r)
	}
}

func TestSessionFileQuotas(t *testing.T) {
	st := newStack(t, options{
		config: func(c *Config) { c.MaxFileBytes = 1 << 20; c.MaxFiles = 5 },
	})
	s := newSession(t, st, api.CreateSessionRequest{Limits: &api.Limits{TmpfsSize: "2MiB"}})
	c := ctx(t)
	_, err := st.c.Upload(c, s.ID, "big.bin", bytes.NewReader(make([]byte, 2<<20)))
	problemOf(t, err, 413, api.ProblemTooLarge)
	cell(t, st, s.ID, "open('fill', 'wb').write(b'x' * (1900 << 10))")
	_, err = st.c.Upload(c, s.ID, "more.bin", bytes.NewReader(make([]byte, 900<<10)))
	problemOf(t, err, 507, api.ProblemNoSpace)
	cell(t, st, s.ID, "import os\nos.remove('fill')\nfor i in range(6): open(f'f{i}', 'w').close()")
	_, err = st.c.Upload(c, s.ID, "one-more", strings.NewReader("x"))
	problemOf(t, err, 507, api.ProblemNoSpace)
}

func TestSessionBusyAndCapacity(t *testing.T) {
	st := newStack(t, options{maxSessions: 2})
	a := newSession(t, st, api.CreateSessionRequest{})
	newSession(t, st, api.CreateSessionRequest{})
	_, err := st.c.CreateSession(ctx(t), api.CreateSessionRequest{})
	if e := problemOf(t, err, 429, api.ProblemTooMany); e.RetryAfter <= 0 {
		t.Error("429 without Retry-After")
	}
	started := make(chan struct{})
	go func() {
		close(started)
		st.c.Run(ctx(t), a.ID, api.CellRequest{Code: "import time\ntime.sleep(2)"}) //nolint:errcheck
	}()
	<-started
	waitFor(t, 10*time.Second, "cell running", func() bool {
		s, err := st.c.Session(ctx(t), a.ID)
		return err == nil && s.State == "busy"
	})
	_, err = st.c.Run(ctx(t), a.ID, api.CellRequest{Code: "1"})
	problemOf(t, err, 409, api.ProblemSessionBusy)
	// Deleting frees a place.
	if err := st.c.DeleteSession(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	newSession(t, st, api.CreateSessionRequest{})
}

func TestSessionExpires(t *testing.T) {
	st := newStack(t, options{})
	s := newSession(t, st, api.CreateSessionRequest{TTL: "1s"})
	waitFor(t, 10*time.Second, "session expired", func() bool {
		got, err := st.c.Session(ctx(t), s.ID)
		return err == nil && got.State == "ended"
	})
	_, err := st.c.Run(ctx(t), s.ID, api.CellRequest{Code: "1"})
	e := problemOf(t, err, 410, api.ProblemSessionEnded)
	if !strings.Contains(e.Detail, "idle") {
		t.Errorf("410 after expiry should say so: %s", e.Detail)
	}
	if st.sessions.Count() != 0 {
		t.Errorf("expired session still counted")
	}
}

// A cell can keep writing to its stdout after its result was sent (it hid
// the end-of-cell marker and left a thread behind); the late output must
// neither crash the server nor leak into another answer.
func TestLateOutputAfterStreamedCell(t *testing.T) {
	st := newStack(t, options{})
	s := newSession(t, st, api.CreateSessionRequest{})
	code := `import os, threading, time
fd = os.dup(1)
os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
def late():
    time.sleep(1.5)
    for _ in range(200):
        os.write(fd, b"late\n")
threading.Thread(target=late).start()`
	if _, err := st.c.RunStream(ctx(t), s.ID, api.CellRequest{Code: code}, func(string, string) {}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	r := cell(t, st, s.ID, "print('next')")
	if r.Status != api.StatusOK || strings.Contains(r.Stdout, "late") {
		t.Fatalf("after late output: %+v", r)
	}
	if _, err := st.c.Health(ctx(t)); err != nil {
		t.Fatalf("server gone after late output: %v", err)
	}
}

// A program that closes its stdout cannot be sent the end-of-cell marker
// there; later cells must neither wait for it nor leave a goroutine behind.
func TestClosedStdoutLeaksNothing(t *testing.T) {
	st := newStack(t, options{})
	s := newSession(t, st, api.CreateSessionRequest{})
	if r := cell(t, st, s.ID, "import os, sys\nsys.stdout.flush()\nos.close(1)"); r.Status != api.StatusOK {
		t.Fatalf("closing stdout: %+v", r)
	}
	cell(t, st, s.ID, "x = 1") // settle
	before := runtime.NumGoroutine()
	for i := 0; i < 10; i++ {
		if r := cell(t, st, s.ID, "x += 1\nimport sys\nsys.stderr.write('e')"); r.Status != api.StatusOK || r.Stderr != "e" {
			t.Fatalf("cell after closing stdout: %+v", r)
		}
	}
	waitFor(t, 5*time.Second, "goroutines back to their number", func() bool { return runtime.NumGoroutine() <= before+2 })
}
