package sandbox

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultLimitsValid(t *testing.T) {
	l := DefaultLimits()
	if err := l.Validate(); err != nil {
		t.Fatalf("DefaultLimits().Validate() = %v", err)
	}
	want := Limits{MemoryBytes: 256 << 20, CPU: 0.5, Timeout: 30 * time.Second, Pids: 128, TmpfsBytes: 64 << 20, MaxOutputBytes: 1 << 20}
	if l != want {
		t.Errorf("DefaultLimits() = %+v, want %+v", l, want)
	}
}

func TestLimitsValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Limits)
		flag   string // "" means valid
	}{
		{"defaults", func(l *Limits) {}, ""},
		{"memory at minimum", func(l *Limits) { l.MemoryBytes = 16 << 20 }, ""},
		{"memory below minimum", func(l *Limits) { l.MemoryBytes = 16<<20 - 1 }, "--memory"},
		{"memory zero", func(l *Limits) { l.MemoryBytes = 0 }, "--memory"},
		{"memory negative", func(l *Limits) { l.MemoryBytes = -1 }, "--memory"},
		{"cpu at minimum", func(l *Limits) { l.CPU = 0.01 }, ""},
		{"cpu at maximum", func(l *Limits) { l.CPU = 1024 }, ""},
		{"cpu zero", func(l *Limits) { l.CPU = 0 }, "--cpu"},
		{"cpu too small", func(l *Limits) { l.CPU = 0.009 }, "--cpu"},
		{"cpu negative", func(l *Limits) { l.CPU = -1 }, "--cpu"},
		{"cpu too large", func(l *Limits) { l.CPU = 1024.5 }, "--cpu"},
		{"cpu infinite", func(l *Limits) { l.CPU = math.Inf(1) }, "--cpu"},
		// flag.Float64 accepts "NaN"; NaN compares false with everything.
		{"cpu NaN", func(l *Limits) { l.CPU = math.NaN() }, "--cpu"},
		{"timeout at minimum", func(l *Limits) { l.Timeout = time.Millisecond }, ""},
		{"timeout at maximum", func(l *Limits) { l.Timeout = 24 * time.Hour }, ""},
		{"timeout zero", func(l *Limits) { l.Timeout = 0 }, "--timeout"},
		{"timeout below 1ms", func(l *Limits) { l.Timeout = time.Millisecond - 1 }, "--timeout"},
		{"timeout negative", func(l *Limits) { l.Timeout = -time.Second }, "--timeout"},
		{"timeout above 24h", func(l *Limits) { l.Timeout = 24*time.Hour + 1 }, "--timeout"},
		{"pids at minimum", func(l *Limits) { l.Pids = MinPids }, ""},
		{"pids below minimum", func(l *Limits) { l.Pids = MinPids - 1 }, "--pids"},
		{"pids at maximum", func(l *Limits) { l.Pids = 1 << 20 }, ""},
		{"pids zero", func(l *Limits) { l.Pids = 0 }, "--pids"},
		{"pids negative", func(l *Limits) { l.Pids = -5 }, "--pids"},
		{"pids too many", func(l *Limits) { l.Pids = 1<<20 + 1 }, "--pids"},
		{"tmpfs at minimum", func(l *Limits) { l.TmpfsBytes = 1 << 20 }, ""},
		{"tmpfs too small", func(l *Limits) { l.TmpfsBytes = 1<<20 - 1 }, "--tmpfs-size"},
		{"tmpfs zero", func(l *Limits) { l.TmpfsBytes = 0 }, "--tmpfs-size"},
		{"output at minimum", func(l *Limits) { l.MaxOutputBytes = 1024 }, ""},
		{"output too small", func(l *Limits) { l.MaxOutputBytes = 1023 }, "--max-output"},
		{"output negative", func(l *Limits) { l.MaxOutputBytes = -1 }, "--max-output"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := DefaultLimits()
			c.modify(&l)
			err := l.Validate()
			if c.flag == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", l, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error naming %s", l, c.flag)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error %v does not wrap ErrInvalidSpec", err)
			}
			if !strings.Contains(err.Error(), c.flag+" ") {
				t.Errorf("error %q does not name %s", err, c.flag)
			}
		})
	}
}

func validSpec() Spec {
	return Spec{Code: []byte("print('hi')\n"), Limits: DefaultLimits()}
}

func TestSpecValidate(t *testing.T) {
	cases := []struct {
		name    string
		modify  func(*Spec)
		wantErr []string // substrings; nil means valid
	}{
		{"minimal", func(s *Spec) {}, nil},
		{"empty code", func(s *Spec) { s.Code = nil }, nil},
		{"non-UTF-8 code", func(s *Spec) { s.Code = []byte{0xff, 0xfe, 'x'} }, nil},
		{"bad limits first", func(s *Spec) { s.Limits.Pids = 0; s.Filename = "x/y.py" }, []string{"--pids"}},

		{"filename plain", func(s *Spec) { s.Filename = "main.py" }, nil},
		{"filename with dashes", func(s *Spec) { s.Filename = "my-script_2.py" }, nil},
		{"filename with dir", func(s *Spec) { s.Filename = "dir/main.py" }, []string{`filename "dir/main.py"`, "plain name ending in .py"}},
		{"filename absolute", func(s *Spec) { s.Filename = "/main.py" }, []string{"filename"}},
		{"filename trailing slash", func(s *Spec) { s.Filename = "main.py/" }, []string{"filename"}},
		{"filename not .py", func(s *Spec) { s.Filename = "main.txt" }, []string{"filename"}},
		{"filename no extension", func(s *Spec) { s.Filename = "main" }, []string{"filename"}},
		{"filename dotdot", func(s *Spec) { s.Filename = ".." }, []string{"filename"}},
		{"filename parent .py", func(s *Spec) { s.Filename = "../x.py" }, []string{"filename"}},
		{"filename NUL", func(s *Spec) { s.Filename = "a\x00.py" }, []string{"filename"}},

		{"args fine", func(s *Spec) { s.Args = []string{"", "-v", "a b", "ünï"} }, nil},
		{"arg with NUL", func(s *Spec) { s.Args = []string{"ok", "bad\x00arg"} }, []string{"NUL"}},
		{"code with NUL", func(s *Spec) { s.Code = []byte("print(1)\x00") }, []string{"source code contains a NUL byte"}},

		{"file in /data", func(s *Spec) { s.Files = []File{{HostPath: "/h/x.csv", SandboxPath: "/data/x.csv"}} }, nil},
		{"file in /tmp", func(s *Spec) { s.Files = []File{{HostPath: "/h/in.txt", SandboxPath: "/tmp/in.txt"}} }, nil},
		{"file at top level", func(s *Spec) { s.Files = []File{{HostPath: "/h/x", SandboxPath: "/x.csv"}} }, nil},
		{"file name shares a reserved prefix", func(s *Spec) { s.Files = []File{{HostPath: "/h/x", SandboxPath: "/procedures.txt"}} }, nil},
		{"file under /devdata", func(s *Spec) { s.Files = []File{{HostPath: "/h/x", SandboxPath: "/devdata/x"}} }, nil},
		{"several files", func(s *Spec) {
			s.Files = []File{{HostPath: "/h/a", SandboxPath: "/data/a"}, {HostPath: "/h/b", SandboxPath: "/tmp/b"}}
		}, nil},
	}
	badPaths := []struct {
		path string
		msg  string
	}{
		{"data/x.csv", "must be absolute"},
		{"", "must be absolute"},
		{"./x", "must be absolute"},
		{"/data/../etc/passwd", "must be clean"},
		{"/data/./x", "must be clean"},
		{"/data//x", "must be clean"},
		{"/data/x/", "must be clean"},
		{"/..", "must be clean"},
		{"/data/x\x00y", "must be clean"},
		{"/", "must name a file, not a directory"},
		{"/tmp", "must name a file, not a directory"},
		{"/proc", "may not be under /proc"},
		{"/proc/self/environ", "may not be under /proc"},
		{"/dev/null", "may not be under /dev"},
		{"/sys/kernel/x", "may not be under /sys"},
		{"/etc/passwd", "may not be under /etc"},
		{"/etc", "may not be under /etc"},
		{"/usr/lib/python3/x.py", "may not be under /usr"},
		{"/lib/x.so", "may not be under /lib"},
		{"/lib64/ld.so", "may not be under /lib64"},
		{"/bin/sh", "may not be under /bin"},
		{"/sbin/init", "may not be under /sbin"},
		{"/pybox", "may not be under /pybox"},
		{"/pybox/boot.py", "may not be under /pybox"},
	}
	for _, b := range badPaths {
		cases = append(cases, struct {
			name    string
			modify  func(*Spec)
			wantErr []string
		}{
			name: "file " + b.path,
			modify: func(s *Spec) {
				s.Files = []File{{HostPath: "/data/ok.csv", SandboxPath: "/data/ok.csv"}, {HostPath: "/host/in", SandboxPath: b.path}}
			},
			wantErr: []string{"--file /host/in:" + b.path + ": ", b.msg},
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			c.modify(&s)
			err := s.Validate()
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", c.wantErr)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error %v does not wrap ErrInvalidSpec", err)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestExited(t *testing.T) {
	lim := DefaultLimits()
	for _, c := range []struct {
		name      string
		code      int
		oomKills  int64
		truncated bool
		status    Status
		msgHas    string
	}{
		{"ok", 0, 0, false, StatusOK, ""},
		{"error", 3, 0, false, StatusError, "exited with status 3"},
		{"killed for memory", 137, 1, false, StatusMemoryLimit, "memory limit of 256 MiB"},
		{"a child killed for memory", 0, 2, false, StatusOK, "OOM killer ended 2 other process(es)"},
		{"output cut", 0, 0, true, StatusOutputLimit, "output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Result{StdoutTruncated: c.truncated}
			r.Exited(c.code, c.oomKills, lim)
			if r.Status != c.status || r.ExitCode != c.code {
				t.Errorf("status %s, exit %d; want %s, %d", r.Status, r.ExitCode, c.status, c.code)
			}
			if c.msgHas == "" && r.Message != "" || !strings.Contains(r.Message, c.msgHas) {
				t.Errorf("message %q, want one with %q", r.Message, c.msgHas)
			}
		})
	}
}

func TestEnded(t *testing.T) {
	lim := DefaultLimits()
	for _, c := range []struct {
		name      string
		code      int
		signal    string
		reason    Status
		oomKills  int64
		truncated bool
		status    Status
		msgHas    string
	}{
		{"ok", 0, "", "", 0, false, StatusOK, ""},
		{"error", 2, "", "", 0, false, StatusError, "status 2"},
		{"timeout", 137, "SIGKILL", StatusTimeout, 0, false, StatusTimeout, "timed out after 30s"},
		{"killed for memory", 137, "SIGKILL", "", 1, false, StatusMemoryLimit, "memory limit of 256 MiB"},
		{"a child killed for memory", 0, "", "", 1, false, StatusOK, "OOM killer ended 1 other"},
		{"flood", 137, "SIGKILL", StatusOutputLimit, 0, true, StatusOutputLimit, "more than 8×"},
		{"output cut", 0, "", "", 0, true, StatusOutputLimit, "output"},
		{"cancelled", 137, "SIGKILL", StatusKilled, 0, false, StatusKilled, "cancelled"},
		{"file size", 153, "SIGXFSZ", "", 0, false, StatusKilled, "scratch limit"},
		{"cpu time", 152, "SIGXCPU", "", 0, false, StatusKilled, "CPU time limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Result{StdoutTruncated: c.truncated}
			r.Ended(c.code, c.signal, c.reason, c.oomKills, 8, lim)
			if r.Status != c.status || r.ExitCode != c.code || r.Signal != c.signal {
				t.Errorf("status %s, exit %d, signal %q; want %s, %d, %q", r.Status, r.ExitCode, r.Signal, c.status, c.code, c.signal)
			}
			if c.msgHas == "" && r.Message != "" || !strings.Contains(r.Message, c.msgHas) {
				t.Errorf("message %q, want one with %q", r.Message, c.msgHas)
			}
		})
	}
}
