//go:build linux

package driver

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestRunLikePython runs programs through the driver's run mode and as
// files, with plain `python3 -I -B -u main.py` from the driver's directory,
// and wants the same stdout, stderr and wait status, with the file's path
// read as /pybox/main.py. Known differences: the driver's frames below the
// program count towards the recursion limit (4 of them), a SyntaxError
// chained to another one raised from code (exec of a bad string) has its
// carets drawn by the traceback module, and __loader__ is None.
// $PYBOX_TEST_PYTHONS adds interpreters: it has passed with 3.8 to 3.13.
func TestRunLikePython(t *testing.T) {
	for _, tc := range []struct {
		name, code string
		args       []string
		since      string // the first version where it holds (python < 3.11 prints an
		// exception whose str() fails its own way)
	}{
		{name: "hello", code: "print('hi')"},
		{name: "no newline", code: "import sys\nsys.stdout.write('partial')"},
		{name: "exit 3", code: "import sys\nsys.exit(3)"},
		{name: "exit none", code: "import sys\nsys.exit()"},
		{name: "exit message", code: "raise SystemExit('msg')"},
		{name: "exit in atexit order", code: "import atexit\natexit.register(print, 'bye')\nraise SystemExit(4)"},
		{name: "error", code: "def f():\n    return 1/0\n\nf()"},
		{name: "error without newline", code: "x = 1\n1/0"},
		{name: "error then atexit", code: "import atexit\natexit.register(print, 'bye')\n1/0"},
		{name: "chained", code: "try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('v') from e"},
		{name: "context", code: "try:\n    {}['k']\nexcept KeyError:\n    undefined"},
		{name: "notes", code: "e = ValueError('x')\nif hasattr(e, 'add_note'):\n    e.add_note('a note')\nraise e"},
		{name: "str fails", code: "class E(Exception):\n    def __str__(self):\n        raise ValueError\nraise E()", since: "3.11"},
		{name: "syntax", code: "x = 1\nx = = 1\n"},
		{name: "indentation", code: "if True:\nprint(1)"},
		{name: "syntax in exec", code: "exec('x = = 1')"},
		{name: "indentation in exec", code: "exec('if True:\\nprint(1)')"},
		{name: "sigint", code: "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)"},
		{name: "interrupt", code: "import atexit\natexit.register(print, 'bye')\ndef f():\n    raise KeyboardInterrupt\nf()"},
		{name: "own excepthook", code: "import sys\ndef hook(t, v, tb):\n    print('hook', t.__name__, tb.tb_frame.f_code.co_filename, tb.tb_next)\nsys.excepthook = hook\n1/0"},
		{name: "warning", code: "import warnings\nwarnings.warn('careful')"},
		{name: "print_exc", code: "import traceback\ntry:\n    1/0\nexcept Exception:\n    traceback.print_exc()"},
		{name: "inspect", code: "import inspect\ndef f():\n    return 1\nprint(inspect.getsource(f), end='')"},
		{name: "main", args: []string{"a", "b c", ""},
			code: "import sys\nprint(__name__, sys.argv, __file__, __doc__, __spec__, __cached__, __package__)\nprint(sorted(globals()))"},
		{name: "docstring", code: "'''The doc.'''\nprint(__doc__)"},
		{name: "main module", code: "import __main__, sys\nprint(__main__.__file__, __main__ is sys.modules['__main__'])"},
		{name: "pickle", code: "import pickle\ndef f(): pass\nprint(pickle.loads(pickle.dumps(f)) is f)"},
		{name: "fds", code: "import os\nprint(sorted(os.listdir('/proc/self/fd')))"},
		{name: "path", code: "import sys\nprint(sys.path[0])"},
		{name: "stdin", code: "import sys\nprint(repr(sys.stdin.read()))"},
		{name: "signals", code: "import signal\nprint(signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))"},
		{name: "thread outlives main", code: "import threading\nthreading.Thread(target=lambda: print('late')).start()"},
		{name: "threads", code: "import threading\nprint(threading.active_count(), threading.current_thread() is threading.main_thread())"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachPython(t, func(t *testing.T, py python) {
				if tc.since != "" && versionLess(py.name, tc.since) {
					t.Skipf("a known difference before python %s", tc.since)
				}
				got := runDriver(t, py, tc.code, tc.args)
				want := runPlain(t, py, got.dir, tc.code, tc.args)
				if got.stdout != want.stdout || got.stderr != want.stderr || got.status != want.status {
					t.Errorf("%q\ndriver: %v\nstdout %q\nstderr:\n%s\npython: %v\nstdout %q\nstderr:\n%s",
						tc.code, got.status, got.stdout, got.stderr, want.status, want.stdout, want.stderr)
				}
			})
		})
	}
}

type outcome struct {
	dir            string
	stdout, stderr string
	status         syscall.WaitStatus
}

// runDriver runs code with the driver's run mode.
func runDriver(t *testing.T, py python, code string, args []string) outcome {
	p := startDriver(t, py)
	p.send(Request{Op: "run", Code: code, Filename: "main.py", Args: args})
	ws := p.wait()
	p.eof.Wait()
	return outcome{p.dir, p.idleOut.String(), p.idleErr.String(), ws}
}

// runPlain runs code as dir/main.py with plain python.
func runPlain(t *testing.T, py python, dir, code string, args []string) outcome {
	path := filepath.Join(dir, "main.py")
	if err := os.WriteFile(path, []byte(code), 0o444); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py.path, append([]string{"-I", "-B", "-u", path}, args...)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = testEnv(), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	r := strings.NewReplacer(path, "/pybox/main.py")
	return outcome{dir, r.Replace(stdout.String()), r.Replace(stderr.String()), cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

// versionLess reports whether version a (3.9.18) is older than b (3.11).
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 2; i++ {
		na, _ := strconv.Atoi(pa[i])
		nb, _ := strconv.Atoi(pb[i])
		if na != nb {
			return na < nb
		}
	}
	return false
}

// With a Sync nonce, run mode ends the program's output with the end
// markers (stderr, then stdout with the exit status), unless the program
// moved its streams: then nothing is written, least of all into its files.
func TestRunEndMarkers(t *testing.T) {
	forEachPython(t, func(t *testing.T, py python) {
		marker := string(SyncMarker("n0nce"))
		run := func(code string) outcome {
			p := startDriver(t, py)
			code = strings.ReplaceAll(code, "DIR", p.dir)
			p.send(Request{Op: "run", Code: code, Filename: "main.py", Sync: "n0nce"})
			ws := p.wait()
			p.eof.Wait()
			return outcome{p.dir, p.idleOut.String(), p.idleErr.String(), ws}
		}
		if o := run("print('hi')"); o.stdout != "hi\n"+marker+"0\x00" || o.stderr != marker || o.status.ExitStatus() != 0 {
			t.Errorf("ok: %+v", o)
		}
		if o := run("import sys\nsys.stderr.write('e')\nsys.exit(7)"); o.stdout != marker+"7\x00" || o.stderr != "e"+marker || o.status.ExitStatus() != 7 {
			t.Errorf("exit 7: %+v", o)
		}
		o := run("import os\nfd = os.open('DIR/out.txt', os.O_WRONLY | os.O_CREAT, 0o600)\nos.dup2(fd, 1)\nprint('to file')")
		if o.stdout != "" || o.stderr != "" {
			t.Errorf("moved stdout: markers written anyway: %+v", o)
		}
		if data, err := os.ReadFile(filepath.Join(o.dir, "out.txt")); err != nil || string(data) != "to file\n" {
			t.Errorf("the program's file holds %q (%v)", data, err)
		}
	})
}
