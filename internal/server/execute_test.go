package server

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// A warm one-shot behaves as `pybox run` does: same statuses, exit codes
// and tracebacks.
func TestExecuteOneShot(t *testing.T) { inBothModes(t, testExecuteOneShot) }

func testExecuteOneShot(t *testing.T, exec bool) {
	st := newStack(t, options{warm: 2, exec: exec})
	cases := []struct {
		name, code string
		args       []string
		status     api.Status
		exit       int
		stdout     string
		stderrHas  string
	}{
		{"ok", "print(1+1)", nil, api.StatusOK, 0, "2\n", ""},
		{"argv and main", "import sys\nprint(__name__, sys.argv)", []string{"a", "b c"}, api.StatusOK, 0, "__main__ ['/pybox/main.py', 'a', 'b c']\n", ""},
		{"exit code", "import sys\nsys.exit(3)", nil, api.StatusError, 3, "", ""},
		{"traceback", "x = 1\n1/0", nil, api.StatusError, 1, "", "File \"/pybox/main.py\", line 2, in <module>\n    1/0\n"},
		{"syntax error", "def f(:", nil, api.StatusError, 1, "", "SyntaxError"},
		{"atexit", "import atexit\natexit.register(lambda: print('bye'))", nil, api.StatusOK, 0, "bye\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: c.code, Args: c.args})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.status || res.ExitCode != c.exit || res.Stdout != c.stdout || !strings.Contains(res.Stderr, c.stderrHas) {
				t.Fatalf("got status %s exit %d stdout %q stderr %q", res.Status, res.ExitCode, res.Stdout, res.Stderr)
			}
			if strings.Contains(res.Stderr, ".driver.py") {
				t.Errorf("the driver shows in the traceback:\n%s", res.Stderr)
			}
			if res.Layers.Backend != "native" || !res.Layers.Seccomp {
				t.Errorf("layers: %+v", res.Layers)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "import time\ntime.sleep(30)", Limits: &api.Limits{Timeout: "500ms"}})
		if err != nil || res.Status != api.StatusTimeout {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("output limit", func(t *testing.T) {
		res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "print('x' * (3 << 20))"})
		if err != nil || res.Status != api.StatusOutputLimit || !res.StdoutTruncated || res.StdoutBytes < 3<<20 {
			t.Fatalf("%+v %v", res.Status, err)
		}
	})
	t.Run("memory limit", func(t *testing.T) {
		res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "b = bytearray(400 << 20)\nb[::4096] = b'x' * len(b[::4096])"})
		if err != nil || res.Status != api.StatusMemoryLimit {
			t.Fatalf("%+v %v", res, err)
		}
	})
	// A child ended by the memory limit while the program exits 0: ok,
	// and the message says what happened to the child.
	t.Run("child killed for memory", func(t *testing.T) {
		res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "import subprocess, sys\nr = subprocess.run([sys.executable, '-c', 'x = bytearray(1 << 30)'])\nprint('child', r.returncode)", Limits: &api.Limits{Memory: "64MiB"}})
		if err != nil || res.Status != api.StatusOK || res.Stdout != "child -9\n" || !strings.Contains(res.Message, "OOM killer ended 1 other process") {
			t.Fatalf("%+v %v", res, err)
		}
	})
	// Nothing one execution leaves behind is seen by the next.
	t.Run("isolated from each other", func(t *testing.T) {
		st.c.Execute(ctx(t), api.ExecuteRequest{Code: "open('/tmp/left', 'w').write('x')\nimport os\nos.system('sleep 60 &')"}) //nolint:errcheck
		res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "import os\nprint(os.path.exists('/tmp/left'), len([p for p in os.listdir('/proc') if p.isdigit()]))"})
		// Two processes: pid 1 and the program.
		if err != nil || res.Stdout != "False 2\n" {
			t.Fatalf("a later execution sees an earlier one: %q %v", res.Stdout, err)
		}
	})
	// A request's own limits apply: 64 MiB is too little for 100 MB.
	res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "b = bytearray(100 << 20)\nb[::4096] = b'x' * len(b[::4096])", Limits: &api.Limits{Memory: "64MiB"}})
	if err != nil || res.Status != api.StatusMemoryLimit {
		t.Fatalf("custom limits: %+v %v", res, err)
	}
	if hits := st.launcher.Stats().Hits; hits == 0 {
		t.Errorf("no execution was served from the warm pool")
	}
}

func TestExecuteStreams(t *testing.T) {
	st := newStack(t, options{warm: 1})
	got := map[string]string{}
	res, err := st.c.ExecuteStream(ctx(t), api.ExecuteRequest{Code: "import sys\nprint('out')\nprint('err', file=sys.stderr)"}, func(stream, text string) {
		got[stream] += text
	})
	if err != nil || res.Status != api.StatusOK || res.Stdout != "out\n" {
		t.Fatalf("%+v %v", res, err)
	}
	if got["stdout"] != "out\n" || got["stderr"] != "err\n" {
		t.Errorf("events %q", got)
	}
}

// Bad input gets its own status and a problem body, never a 500.
func TestExecuteRejectsBadInput(t *testing.T) {
	st := newStack(t, options{config: func(c *Config) { c.MaxBodyBytes = 4096; c.MaxCodeBytes = 1024 }})
	post := func(body, ctype string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, st.http.URL+"/v1/execute", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := st.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	cases := []struct {
		name, body, ctype string
		status            int
	}{
		{"bad json", `{"code": `, "application/json", 400},
		{"unknown field", `{"code": "1", "cod": 2}`, "application/json", 400},
		{"wrong type", `{"code": 1}`, "application/json", 400},
		{"empty", ``, "application/json", 400},
		{"trailing", `{"code": "1"} {}`, "application/json", 400},
		{"too large body", `{"code": "` + strings.Repeat("x", 5000) + `"}`, "application/json", 413},
		{"too much code", `{"code": "` + strings.Repeat("x", 2000) + `"}`, "application/json", 413},
		{"media type", `code=1`, "application/x-www-form-urlencoded", 415},
		{"bad limit", `{"code": "1", "limits": {"memory": "lots"}}`, "application/json", 400},
		{"limit over max", `{"code": "1", "limits": {"timeout": "1000h"}}`, "application/json", 400},
		{"bad filename", `{"code": "1", "filename": "../x.py"}`, "application/json", 400},
	}
	for _, c := range cases {
		resp := post(c.body, c.ctype)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: got %d %s, want %d problem+json", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), c.status)
		}
	}
	_, err := st.c.Session(ctx(t), "s-nope")
	problemOf(t, err, 404, api.ProblemNotFound)
}

// Past its concurrency the server queues briefly, then answers 503 with
// Retry-After.
func TestExecuteCapacity(t *testing.T) {
	st := newStack(t, options{concurrent: 1, queueWait: 200 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.c.Execute(ctx(t), api.ExecuteRequest{Code: "import time\ntime.sleep(3)"}) //nolint:errcheck
	}()
	waitFor(t, 10*time.Second, "execution running", func() bool { return st.srv.running.Load() == 1 })
	_, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "print(1)"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Type != api.ProblemUnavailable || e.RetryAfter <= 0 {
		t.Fatalf("want 503 with Retry-After, got %v", err)
	}
	wg.Wait()
	if res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: "print(1)"}); err != nil || res.Status != sandbox.StatusOK {
		t.Fatalf("after the slot is free: %+v %v", res, err)
	}
}

// A one-shot's result comes from the end markers the driver writes when
// the program is done (no wait for the process to exit), or, when the
// program moved its streams or never reached the end, from the sandbox's
// exit. Both paths give the same answers as a cold run would.
func TestOneShotEndPaths(t *testing.T) {
	inBothModes(t, func(t *testing.T, exec bool) {
		st := newStack(t, options{exec: exec, warm: 1})
		big := strings.Repeat("x", 100000)
		cases := []struct {
			name, code     string
			status         api.Status
			exit           int
			stdout, stderr string
		}{
			{"ok", "print('hi')", api.StatusOK, 0, "hi\n", ""},
			{"sys.exit", "import sys\nprint('a')\nsys.exit(3)", api.StatusError, 3, "a\n", ""},
			{"exception", "print('b')\nraise ValueError('boom')", api.StatusError, 1, "b\n", "ValueError: boom"},
			{"os._exit skips the markers", "import os, sys\nsys.stdout.write('c')\nsys.stdout.flush()\nos._exit(5)", api.StatusError, 5, "c", ""},
			{"all of a large output", "import sys\nsys.stdout.write('" + big + "')\nsys.stderr.write('e' * 70000)", api.StatusOK, 0, big, strings.Repeat("e", 70000)},
			{"stdout moved to a file", "import os\nfd = os.open('/tmp/out.txt', os.O_WRONLY | os.O_CREAT)\nos.dup2(fd, 1)\nprint('to file')\nos.write(2, b'err\\n')", api.StatusOK, 0, "", "err\n"},
			{"a forged marker is plain output", "print('\\x00pybox-sync:guess\\x000\\x00', 'after')", api.StatusOK, 0, "\x00pybox-sync:guess\x000\x00 after\n", ""},
			{"a child outlives the program", "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\nprint('parent done')", api.StatusOK, 0, "parent done\n", ""},
		}
		for _, c := range cases {
			res, err := st.c.Execute(ctx(t), api.ExecuteRequest{Code: c.code})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if res.Status != c.status || res.ExitCode != c.exit || res.Stdout != c.stdout || !strings.Contains(res.Stderr, c.stderr) {
				t.Errorf("%s: status %s exit %d stdout %.80q stderr %.200q", c.name, res.Status, res.ExitCode, res.Stdout, res.Stderr)
			}
		}
	})
}
