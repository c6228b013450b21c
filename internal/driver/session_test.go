//go:build linux

package driver

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReady(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		if p.ready.Type != "ready" || !strings.HasPrefix(p.ready.Python, "3.") || p.ready.PID != p.cmd.Process.Pid {
			t.Errorf("ready frame %+v, want type ready, python 3.x, pid %d", p.ready, p.cmd.Process.Pid)
		}
		if p.ready.Python != py.name {
			t.Errorf("ready says python %q, the interpreter is %s", p.ready.Python, py.name)
		}
	})
}

func TestCellValues(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		for _, tc := range []struct {
			code           string
			value          map[string]string // nil: no value
			stdout, stderr string
		}{
			{code: "x = 1"},
			{code: "x += 1"},
			{code: "x", value: plain("2")},
			{code: "None"},
			{code: "print(None)", stdout: "None\n"}, // print's value is None
			{code: `print("a"); 1+1`, value: plain("2"), stdout: "a\n"},
			{code: "_ * 10", value: plain("20")}, // _ is the last value
			{code: "if True:\n    3"},
			{code: "for i in range(2):\n    i"},
			{code: ""},
			{code: "# only a comment\n"},
			{code: "import sys\nsys.stderr.write('e1\\n')\nprint('o1')", stdout: "o1\n", stderr: "e1\n"},
			{code: `print("no newline", end="")`, stdout: "no newline"},
			{code: `import sys; sys.stderr.write("err, no newline")`, value: plain("15"), stderr: "err, no newline"},
			{code: `print("\x00pybox-sync:not-this-one\x00", end="")`, stdout: "\x00pybox-sync:not-this-one\x00"},
			{code: "'é\\u2603'", value: plain("'é\u2603'")},
			{code: "'<b>&amp;</b>'", value: plain("'<b>&amp;</b>'")}, // Go escapes <, > and & in JSON
			{code: "class R:\n    def __repr__(self):\n        raise ValueError('nope')\nR()",
				value: plain("<repr failed: ValueError: nope>")},
			{code: "class H:\n    def _repr_html_(self):\n        return '<b>h</b>'\n    def __repr__(self):\n        return 'H()'\nH()",
				value: map[string]string{"text/plain": "H()", "text/html": "<b>h</b>"}},
			{code: "H", value: plain("<class '__main__.H'>")}, // a class's _repr_html_ is unbound
			{code: "class B:\n    _repr_html_ = 'not callable'\nB", value: plain("<class '__main__.B'>")},
			// __future__ imports work in a cell and stay on, as in IPython.
			{code: "from __future__ import annotations\ndef f(a: Undefined) -> int: pass\nf.__annotations__",
				value: plain("{'a': 'Undefined', 'return': 'int'}")},
			{code: "def g(b: Nope): pass\ng.__annotations__", value: plain("{'b': 'Nope'}")},
		} {
			r := p.exec(tc.code)
			if r.Status != "ok" || r.Error != nil {
				t.Errorf("cell %q: status %q, error %+v", tc.code, r.Status, r.Error)
				continue
			}
			if !reflect.DeepEqual(r.Value, tc.value) {
				t.Errorf("cell %q: value %q, want %q", tc.code, r.Value, tc.value)
			}
			if r.stdout != tc.stdout || r.stderr != tc.stderr {
				t.Errorf("cell %q: stdout %q, stderr %q; want %q, %q", tc.code, r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
			if len(r.Display) != 0 {
				t.Errorf("cell %q: display %+v", tc.code, r.Display)
			}
		}
		if s := p.idleOut.String() + p.idleErr.String(); s != "" {
			t.Errorf("output between cells: %q", s)
		}
	})
}

func plain(s string) map[string]string { return map[string]string{"text/plain": s} }

func TestValueTruncated(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		r := p.mustExec("'x' * 300000")
		text := r.Value["text/plain"]
		want := "'" + strings.Repeat("x", 256<<10-1) + "… [truncated 37858 chars]"
		if text != want {
			t.Errorf("value of %d chars ends %q, want %d chars ending %q", len(text), text[len(text)-40:], len(want), want[len(want)-40:])
		}
	})
}

// TestLargeFrames sends a request and gets a reply and output of several
// MiB, more than a pipe holds.
func TestLargeFrames(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		r := p.mustExec("x = '" + strings.Repeat("é", 10<<20) + "'\nprint('y' * 5000000)\nlen(x)")
		if r.Value["text/plain"] != "10485760" || len(r.stdout) != 5000001 {
			t.Errorf("len(x) = %v, %d bytes of stdout", r.Value, len(r.stdout))
		}
		r = p.mustExec("x[:3] + 'x' * (20 << 20)")
		if v := r.Value["text/plain"]; len(v) < 256<<10 || !strings.HasPrefix(v, "'ééé") {
			t.Errorf("value of %d bytes starting %q", len(v), v[:min(len(v), 10)])
		}
	})
}

func TestCellErrors(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		p.mustExec("def boom():\n    return {}['k']")
		for _, tc := range []struct {
			code, typ, msg string
			status         string
			tb             []string // in order, each at the start of a line
		}{
			{code: "x = 1\n1/0", typ: "ZeroDivisionError", msg: "division by zero",
				tb: []string{"Traceback (most recent call last):\n", `  File "<cell 2>", line 2, in <module>` + "\n", "    1/0\n", "ZeroDivisionError: division by zero\n"}},
			{code: "\n\nboom()", typ: "KeyError", msg: "'k'",
				tb: []string{`  File "<cell 3>", line 3, in <module>` + "\n", "    boom()\n",
					`  File "<cell 1>", line 2, in boom` + "\n", "    return {}['k']\n", "KeyError: 'k'\n"}},
			{code: "import json\njson.loads('{')", typ: "json.decoder.JSONDecodeError",
				msg: "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"},
			{code: "class E(Exception):\n    pass\nraise E('m')", typ: "__main__.E", msg: "m",
				tb: []string{`  File "<cell 5>", line 3, in <module>` + "\n", "E: m\n"}}, // as Python prints it
			{code: "x = = 1", typ: "SyntaxError", msg: "invalid syntax (<cell 6>, line 1)",
				tb: []string{`  File "<cell 6>", line 1` + "\n", "    x = = 1\n", "SyntaxError: invalid syntax\n"}},
			{code: "x = 1\n  y = 2", typ: "IndentationError", msg: "unexpected indent (<cell 7>, line 2)",
				tb: []string{`  File "<cell 7>", line 2` + "\n", "    y = 2\n"}},
			{code: "return 1", typ: "SyntaxError", msg: "'return' outside function (<cell 8>, line 1)"},
			{code: "exit()", typ: "SystemExit", msg: "None"},
			{code: "import sys\nsys.exit(3)", typ: "SystemExit", msg: "3",
				tb: []string{`  File "<cell 10>", line 2, in <module>` + "\n", "    sys.exit(3)\n", "SystemExit: 3\n"}},
			{code: "raise SystemExit('bye')", typ: "SystemExit", msg: "bye"},
			{code: "raise KeyboardInterrupt", typ: "KeyboardInterrupt", status: "interrupted",
				tb: []string{`  File "<cell 12>", line 1, in <module>` + "\n", "KeyboardInterrupt\n"}},
			{code: "try:\n    1/0\nexcept Exception as e:\n    raise ValueError('v') from e", typ: "ValueError", msg: "v",
				tb: []string{`  File "<cell 13>", line 2, in <module>` + "\n", "ZeroDivisionError: division by zero\n",
					"The above exception was the direct cause of the following exception:\n", `  File "<cell 13>", line 4, in <module>` + "\n"}},
		} {
			r := p.exec(tc.code)
			if tc.status == "" {
				tc.status = "error"
			}
			if r.Status != tc.status || r.Error == nil || r.Value != nil {
				t.Errorf("cell %q: status %q, value %v, error %+v; want status %s and an error", tc.code, r.Status, r.Value, r.Error, tc.status)
				continue
			}
			e := r.Error
			if e.Type != tc.typ || (tc.msg != "" && e.Message != tc.msg) {
				t.Errorf("cell %q: error %s %q, want %s %q", tc.code, e.Type, e.Message, tc.typ, tc.msg)
			}
			checkTraceback(t, tc.code, e.Traceback, tc.tb)
			if r.stdout != "" || r.stderr != "" {
				t.Errorf("cell %q: stdout %q, stderr %q; errors go in the reply only", tc.code, r.stdout, r.stderr)
			}
		}
		// The session survives all of them.
		if r := p.mustExec("x"); r.Value["text/plain"] != "1" {
			t.Errorf("x = %v after the errors, want 1", r.Value)
		}
		// As in the REPL, sys.last_value is the last error, for pdb.pm().
		if r := p.mustExec("import sys\nsys.last_type.__name__"); r.Value["text/plain"] != "'ValueError'" {
			t.Errorf("sys.last_type = %v, want ValueError", r.Value)
		}
	})
}

// checkTraceback checks that tb holds the lines of want in order and none
// of the driver's frames.
func checkTraceback(t *testing.T, code, tb string, want []string) {
	t.Helper()
	if strings.Contains(tb, ".driver.py") || strings.Contains(tb, "call_user") {
		t.Errorf("cell %q: traceback shows the driver:\n%s", code, tb)
	}
	rest := "\n" + tb
	for _, w := range want {
		i := strings.Index(rest, "\n"+w)
		if i < 0 {
			t.Errorf("cell %q: traceback has no line %q after the previous one:\n%s", code, w, tb)
			return
		}
		rest = rest[i+len(w):]
	}
}

func TestInterrupt(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		// An interrupt between cells is ignored, and does not reach the next cell.
		p.send(Request{Op: "interrupt"})
		p.mustExec("import time")
		for _, tc := range []struct{ name, code string }{
			{"sleep", "print('started', flush=True)\ntime.sleep(60)"},
			{"busy", "print('started', flush=True)\nwhile True:\n    pass"},
			{"thread-join", "import threading\nth = threading.Thread(target=time.sleep, args=(60,), daemon=True)\nth.start()\nprint('started', flush=True)\nth.join()"},
		} {
			c := p.begin(tc.code)
			c.out.waitFor(t, "started\n")
			start := time.Now()
			p.send(Request{Op: "interrupt"})
			r := c.wait()
			t.Logf("%s: interrupted %v after the request", tc.name, time.Since(start))
			if r.Status != "interrupted" || r.Error == nil || r.Error.Type != "KeyboardInterrupt" {
				t.Fatalf("%s: status %q, error %+v; want interrupted", tc.name, r.Status, r.Error)
			}
			// The interrupt may land as print returns, or later.
			checkTraceback(t, tc.code, r.Error.Traceback, []string{fmt.Sprintf(`  File "<cell %d>", line `, c.id), "KeyboardInterrupt\n"})
			if r.stdout != "started\n" || r.stderr != "" {
				t.Errorf("%s: stdout %q, stderr %q", tc.name, r.stdout, r.stderr)
			}
			if r := p.mustExec("1+1"); r.Value["text/plain"] != "2" {
				t.Errorf("after %s: 1+1 = %v", tc.name, r.Value)
			}
		}
	})
}

// TestInterruptDue checks an interrupt when Python's SIGINT handler is
// already due but the main thread blocks on in a system call: what a SIGINT
// that lands just before the call leaves. Here another thread takes a
// SIGINT while the main thread, with SIGINT blocked, reads a pipe.
func TestInterruptDue(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		c := p.begin(`import os, signal, threading, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
r, w = os.pipe()
def trip():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    wchan, deadline = "/proc/self/task/%d/wchan" % os.getpid(), time.time() + 10
    while "pipe" not in open(wchan).read():  # the main thread is in the read
        if time.time() > deadline:
            print("no wchan", flush=True)
            os.write(w, b"x")
            return
    os.kill(os.getpid(), signal.SIGINT)  # only this thread can take it
    print("due", flush=True)
threading.Thread(target=trip, daemon=True).start()
os.read(r, 1)`)
		c.out.waitFor(t, "\n")
		if c.out.String() != "due\n" {
			c.wait()
			t.Skipf("the kernel does not show where the main thread waits: %q", c.out.String())
		}
		p.send(Request{Op: "interrupt"})
		if r := c.wait(); r.Status != "interrupted" {
			t.Fatalf("status %q, error %+v; want interrupted", r.Status, r.Error)
		}
		// The SIGINT the interrupt sent is still pending: not for this cell.
		if r := p.mustExec("import time\ntime.sleep(0.05)\n1+1"); r.Value["text/plain"] != "2" {
			t.Errorf("the next cell: %v", r.Value)
		}
	})
}

func TestInterruptIgnored(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		c := p.begin("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('started', flush=True)\ntime.sleep(60)")
		c.out.waitFor(t, "started\n")
		p.send(Request{Op: "interrupt"})
		// TestInterrupt is the positive control: there the reply comes in
		// milliseconds.
		p.noReply(500 * time.Millisecond)
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		if ws := p.wait(); ws.Signal() != syscall.SIGKILL {
			t.Errorf("driver ended with %v, want killed", ws)
		}
	})
}

func TestSessionClose(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		p.mustExec("import atexit\natexit.register(print, 'bye')")
		p.ctrl.Close()
		if ws := p.wait(); ws.ExitStatus() != 0 {
			t.Errorf("driver ended with %v after the control pipe closed, want status 0", ws)
		}
		p.eof.Wait()
		if out, err := p.idleOut.String(), p.idleErr.String(); out != "bye\n" || err != "" {
			t.Errorf("stdout %q, stderr %q at close; want the atexit handler's bye", out, err)
		}
	})
}

func TestNoInheritedFDs(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		// Children list their fds with what they are: our pipes must not
		// be among them. (Other fds may come from whatever ran go test.)
		pipes := func(r result) (fds3, fds4 string, rest string) {
			head, rest, _ := strings.Cut(r.stdout, "\n")
			f := strings.Fields(head)
			return "pipe:[" + f[0] + "]", "pipe:[" + f[1] + "]", rest
		}
		lsl := "import os, subprocess\nprint(os.fstat(3).st_ino, os.fstat(4).st_ino, flush=True)\n"
		for _, code := range []string{
			lsl + "os.system('ls -l /proc/self/fd')",
			lsl + "subprocess.run(['ls', '-l', '/proc/self/fd'], close_fds=False)",
		} {
			r := p.mustExec(code)
			if p3, p4, ls := pipes(r); strings.Contains(ls, p3) || strings.Contains(ls, p4) || !strings.Contains(ls, " 0 -> ") {
				t.Errorf("%q: a child has fd 3 (%s) or 4 (%s):\n%s", code, p3, p4, ls)
			}
		}
		// The positive control: an inheritable copy of fd 4 is seen.
		r := p.mustExec(lsl + "os.dup2(4, 9, inheritable=True)\nos.system('ls -l /proc/self/fd')\nos.close(9)")
		if _, p4, ls := pipes(r); !strings.Contains(ls, " 9 -> "+p4) {
			t.Errorf("with fd 9 an inheritable copy of fd 4 (%s), a child has:\n%s", p4, ls)
		}
	})
}

func TestPickle(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		p.mustExec("def double(x):\n    return 2 * x\nclass Point:\n    def __init__(self, x):\n        self.x = x")
		for _, tc := range [][2]string{
			{"import pickle\npickle.loads(pickle.dumps(double))(21)", "42"},
			{"pickle.loads(pickle.dumps(Point(3))).x", "3"},
			{"import __main__, sys\n__main__ is sys.modules['__main__'], __name__", "(True, '__main__')"},
			// A pool pickles the function to call by reference to __main__.
			{"import multiprocessing as mp\nwith mp.get_context('fork').Pool(2) as pool:\n    r = pool.map(double, [1, 2, 3])\nr", "[2, 4, 6]"},
		} {
			code, want := tc[0], tc[1]
			if r := p.mustExec(code); r.Value["text/plain"] != want {
				t.Errorf("cell %q = %v, want %s", code, r.Value, want)
			}
		}
	})
}

// TestFork checks that a child forked in a cell and not ended there does
// not answer for the cell as well.
func TestFork(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		r := p.mustExec("import os\nme = os.getpid()\nchild = os.fork()\nif child:\n    os.waitpid(child, 0)\nprint('parent' if os.getpid() == me else 'child')")
		if r.stdout != "child\nparent\n" {
			t.Errorf("stdout %q, want the child's line, then the parent's", r.stdout)
		}
		if r := p.mustExec("os.getpid() == me"); r.Value["text/plain"] != "True" {
			t.Errorf("the next cell ran in another process: %v", r.Value)
		}
	})
}

// TestStreamsReplaced checks that the markers reach fds 1 and 2 whatever
// the user did to sys.stdout and the fds.
func TestStreamsReplaced(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		r := p.mustExec("import io, os, sys\nsys.stdout = io.StringIO()\nprint('hidden')\nos.write(1, b'raw')")
		if r.stdout != "raw" {
			t.Errorf("stdout %q, want raw", r.stdout)
		}
		r = p.mustExec("sys.stdout = sys.__stdout__\nprint('back')")
		if r.stdout != "back\n" {
			t.Errorf("stdout %q, want back", r.stdout)
		}
		p.mustExec("sys.stdout.close()\nsys.stderr = None\ndel sys.__stdout__")
		r = p.exec("print(1)")
		if r.Error == nil || r.Error.Type != "ValueError" {
			t.Errorf("print to a closed stdout: %+v, want a ValueError", r.Error)
		}
		p.mustExec("os.set_blocking(1, False)\nos.write(1, b'nb')")
		// With fd 2 closed there is no stderr marker (and no stderr): the
		// reply and the stdout marker still come.
		c := p.begin("os.close(2)")
		if r := p.reply(); r.Status != "ok" {
			t.Fatalf("os.close(2): %+v", r)
		}
		select {
		case <-c.outDone:
		case <-time.After(guard):
			t.Fatalf("no stdout marker")
		}
		c = p.begin("os.write(1, b'ok')")
		if r := p.reply(); r.Value["text/plain"] != "2" {
			t.Errorf("os.write after closing fd 2: %+v", r)
		}
		select {
		case <-c.outDone:
		case <-time.After(guard):
			t.Fatalf("no stdout marker")
		}
		if got := c.out.String(); got != "ok" {
			t.Errorf("stdout %q, want ok", got)
		}
	})
}

func TestFigures(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		p := startDriver(t, py)
		// A stand-in for pyplot: fast, and big enough for the reply's cap.
		p.mustExec(`import sys, types
plt = types.ModuleType("matplotlib.pyplot")
class Fig:
    def __init__(self, size): self.size = size
    def savefig(self, f, format):
        assert format == "png"
        if self.size < 0: raise RuntimeError("broken")
        f.write(b"P" * self.size)
figs = {}
plt.get_fignums = lambda: sorted(figs)
plt.figure = lambda n: figs[n]
def close(which):
    assert which == "all"
    figs.clear()
plt.close = close
sys.modules["matplotlib.pyplot"] = plt`)
		r := p.mustExec("figs.update({1: Fig(3), 2: Fig(-1), 3: Fig(15 << 20), 4: Fig(12 << 20), 5: Fig(3)})")
		big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("P"), 15<<20))
		want := []Display{
			{"image/png", "UFBQ"},
			{"text/plain", "<figure 2 could not be rendered: RuntimeError: broken>"},
			{"image/png", big},
			{"text/plain", "<image omitted: the reply would exceed 32 MiB>"},
			{"image/png", "UFBQ"},
		}
		if !reflect.DeepEqual(r.Display, want) {
			t.Errorf("display %.200v, want %.200v", r.Display, want)
		}
		if r := p.mustExec("len(figs)"); r.Value["text/plain"] != "0" || len(r.Display) != 0 {
			t.Errorf("after a cell: len(figs) = %v, display %v", r.Value, r.Display)
		}
		// Figures are shown after a failing cell too.
		r = p.exec("figs[7] = Fig(3)\n1/0")
		if r.Status != "error" || !reflect.DeepEqual(r.Display, []Display{{"image/png", "UFBQ"}}) {
			t.Errorf("failing cell with a figure: status %s, display %v", r.Status, r.Display)
		}
	})
}

func TestRichOutput(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		requireModules(t, py, "numpy", "pandas", "matplotlib")
		p := startDriver(t, py)
		r := p.mustExec("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
		if !strings.Contains(r.Value["text/html"], "<table") || !strings.Contains(r.Value["text/plain"], "a  b") {
			t.Errorf("DataFrame value %q, want text/html with a table", r.Value)
		}
		r = p.mustExec("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')")
		if len(r.Display) != 1 || r.Display[0].MIME != "image/png" {
			t.Fatalf("display %.200v, want one PNG", r.Display)
		}
		png, err := base64.StdEncoding.DecodeString(r.Display[0].Data)
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("display is not a PNG: %v, %q", err, png[:min(len(png), 16)])
		}
		if r := p.mustExec("plt.get_fignums()"); r.Value["text/plain"] != "[]" || len(r.Display) != 0 {
			t.Errorf("figures left open after the cell: %v, display %d", r.Value, len(r.Display))
		}
		// A figure that fails to draw (bad mathtext) becomes a note.
		r = p.mustExec("fig = plt.figure()\nfig.text(0.5, 0.5, r'$\\frac{$')\nplt.figure()\nplt.plot([1])\nNone")
		if len(r.Display) != 2 || r.Display[0].MIME != "text/plain" ||
			!strings.HasPrefix(r.Display[0].Data, "<figure 1 could not be rendered: ValueError: ") || r.Display[1].MIME != "image/png" {
			t.Errorf("display %.300v, want a note for figure 1 and a PNG", r.Display)
		}
	})
}

func TestProtocolErrors(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		for _, tc := range []struct {
			name, frame, stderr string
		}{
			{"oversize", "\x04\x00\x00\x01", "over the 64 MiB limit"},
			{"truncated", "\x00\x00\x00\x10{}", "in the middle of a frame"},
			{"bad json", frame(`{x`), "bad request frame"},
			{"not an object", frame(`[]`), "not one JSON object"},
			{"trailing bytes", frame(`{} `), "not one JSON object"},
			{"unknown op", frame(`{"op":"no"}`), "unknown op 'no'"},
			{"bad field", frame(`{"op":"exec","code":1234}`), "code is not a str"},
			{"bad args", frame(`{"op":"run","args":["a",1]}`), "args is not a list"},
		} {
			p := startDriver(t, py)
			p.ctrl.Write([]byte(tc.frame))
			p.ctrl.Close()
			ws := p.wait()
			p.eof.Wait()
			if ws.ExitStatus() != 70 || !strings.Contains(p.idleErr.String(), tc.stderr) || strings.Count(p.idleErr.String(), "\n") != 1 {
				t.Errorf("%s: status %v, stderr %q; want 70 and one line with %q", tc.name, ws, p.idleErr.String(), tc.stderr)
			}
		}
	})
}

// frame is body with its header.
func frame(body string) string {
	return string([]byte{0, 0, byte(len(body) >> 8), byte(len(body))}) + body
}
