package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeTestFile creates a file the way a test (not the code under test) does.
func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readBack reads a file written by the code under test. writeFile creates
// missing files with mode 0 (on a real cgroupfs they always exist), so make
// it readable first in case the test does not run as root.
func readBack(t *testing.T, path string) string {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatalf("reading back %s: %v", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCPUQuota(t *testing.T) {
	cases := []struct {
		cpu   float64
		quota int64
	}{
		{0.5, 125000},
		{1, 250000},
		{2.5, 625000},
		{0.25, 62500},
		{0.01, 2500},
		{0.015, 3750},
		// Fractions of a microsecond round to the nearest.
		{0.29, 72500},
		{0.57, 142500},
		{0.58, 145000},
		{0.1234567, 30864},
		{0.0000026 + 0.5, 125001},
		// The kernel refuses quotas below 1 ms.
		{0.001, 1000},
		{0.0039, 1000},
		{0, 1000},
		{1024, 256000000},
	}
	for _, c := range cases {
		t.Run("cpu="+strconv.FormatFloat(c.cpu, 'g', -1, 64), func(t *testing.T) {
			q, p := cpuQuota(c.cpu)
			if p != 250000 {
				t.Errorf("period = %d, want 250000", p)
			}
			if q != c.quota {
				t.Errorf("cpuQuota(%v) quota = %d, want %d", c.cpu, q, c.quota)
			}
		})
	}
}

func TestReadInt(t *testing.T) {
	cases := []struct {
		name    string
		content *string // nil: file missing
		want    int64
		wantErr bool
	}{
		{"number", ptr("123\n"), 123, false},
		{"spaces", ptr("  42  \n"), 42, false},
		{"zero", ptr("0\n"), 0, false},
		{"max", ptr("max\n"), -1, false},
		{"large", ptr("9223372036854771712\n"), 9223372036854771712, false},
		{"empty", ptr(""), 0, true},
		{"garbage", ptr("abc\n"), 0, true},
		{"two values", ptr("50000 100000\n"), 0, true},
		{"missing file", nil, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.content != nil {
				writeTestFile(t, filepath.Join(dir, "f"), *c.content)
			}
			got, err := readInt(dir, "f")
			if (err != nil) != c.wantErr {
				t.Fatalf("readInt(%q) error = %v, wantErr %v", derefOr(c.content, "<missing>"), err, c.wantErr)
			}
			if !c.wantErr && got != c.want {
				t.Errorf("readInt(%q) = %d, want %d", *c.content, got, c.want)
			}
			if c.content == nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("missing file: error %v does not wrap os.ErrNotExist", err)
			}
		})
	}
}

func TestReadKey(t *testing.T) {
	const events = "low 0\nhigh 5\nmax 3\noom 2\noom_kill 1\noom_group_kill 7\n"
	cases := []struct {
		name    string
		content string
		key     string
		want    int64
		wantErr string // substring of the error; "" means success
	}{
		{"first key", events, "low", 0, ""},
		{"middle key", events, "max", 3, ""},
		{"exact match not prefix", events, "oom_kill", 1, ""},
		{"longer key", events, "oom_group_kill", 7, ""},
		{"cpu.stat", "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n", "usage_usec", 123456, ""},
		{"no trailing newline", "a 1\nb 2", "b", 2, ""},
		{"tabs and spaces", "a\t \t9\n", "a", 9, ""},
		{"missing key", events, "oom_kil", 0, `has no key "oom_kil"`},
		{"three fields skipped", "oom_kill 1 2\n", "oom_kill", 0, "has no key"},
		{"non-numeric value", "oom_kill x\n", "oom_kill", 0, "invalid syntax"},
		{"empty file", "", "oom_kill", 0, "has no key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTestFile(t, filepath.Join(dir, "memory.events"), c.content)
			got, err := readKey(dir, "memory.events", c.key)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("readKey(%q) error = %v, want one containing %q", c.key, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readKey(%q): %v", c.key, err)
			}
			if got != c.want {
				t.Errorf("readKey(%q) = %d, want %d", c.key, got, c.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if _, err := readKey(t.TempDir(), "memory.events", "oom_kill"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error = %v, want os.ErrNotExist", err)
		}
	})
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "pids.max"), "max\n")
	if err := writeFile(dir, "pids.max", "16"); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, filepath.Join(dir, "pids.max")); got != "16" {
		t.Errorf("pids.max = %q, want %q (the write must replace, not append)", got, "16")
	}
	// A failing write names the file and value and keeps the cause.
	err := writeFile(filepath.Join(dir, "no-such-dir"), "pids.max", "16")
	if err == nil || !strings.Contains(err.Error(), `pids.max="16"`) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("writeFile into a missing dir: error = %v, want one naming pids.max=\"16\" and wrapping ErrNotExist", err)
	}
}

// TestOwnPath checks ownPath against this process's real /proc/self/cgroup
// (the function reads that file itself, so the content cannot be injected).
func TestOwnPath(t *testing.T) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrls == "" {
			want[""] = p
			continue
		}
		for _, c := range strings.Split(ctrls, ",") {
			want[c] = p
		}
	}
	if len(want) == 0 {
		t.Skip("/proc/self/cgroup lists no hierarchy")
	}
	for c, p := range want {
		t.Run("controller="+c, func(t *testing.T) {
			got, err := ownPath(c)
			if err != nil {
				t.Fatal(err)
			}
			if got != p {
				t.Errorf("ownPath(%q) = %q, want %q", c, got, p)
			}
			if !strings.HasPrefix(got, "/") {
				t.Errorf("ownPath(%q) = %q is not absolute", c, got)
			}
		})
	}
	t.Run("unknown controller", func(t *testing.T) {
		_, err := ownPath("no-such-controller")
		if err == nil || !strings.Contains(err.Error(), `"no-such-controller"`) {
			t.Errorf("error = %v, want one naming the controller", err)
		}
	})
	if _, ok := want[""]; !ok {
		t.Run("no v2 line", func(t *testing.T) {
			if _, err := ownPath(""); err == nil {
				t.Error("ownPath(\"\") succeeded without a 0:: line")
			}
		})
	}
}

func TestRmdirRetry(t *testing.T) {
	t.Run("empty dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "g")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := rmdirRetry(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dir still exists: %v", err)
		}
	})
	t.Run("already gone", func(t *testing.T) {
		if err := rmdirRetry(filepath.Join(t.TempDir(), "never-created")); err != nil {
			t.Errorf("removing a missing dir: %v, want nil", err)
		}
	})
	t.Run("becomes removable while retrying", func(t *testing.T) {
		// Like a group whose last task is still exiting: the first attempts
		// fail, a later one succeeds.
		dir := filepath.Join(t.TempDir(), "g")
		writeTestFile(t, filepath.Join(dir, "busy"), "")
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(30 * time.Millisecond)
			os.Remove(filepath.Join(dir, "busy"))
		}()
		err := rmdirRetry(dir)
		<-done
		if err != nil {
			t.Fatalf("rmdirRetry did not retry until the dir emptied: %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("dir still exists: %v", err)
		}
	})
	t.Run("never removable", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "g")
		writeTestFile(t, filepath.Join(dir, "busy"), "")
		start := time.Now()
		err := rmdirRetry(dir)
		if err == nil || !strings.Contains(err.Error(), "removing cgroup "+dir) {
			t.Fatalf("error = %v, want one naming %s", err, dir)
		}
		if el := time.Since(start); el < 500*time.Millisecond {
			t.Errorf("gave up after %v; it should retry for about a second", el)
		}
	})
}

func TestKillPids(t *testing.T) {
	cases := []struct {
		name       string
		content    *string
		stubborn   bool // the "kernel" never empties the list
		wantKilled []int
		wantErr    bool
	}{
		{"missing file", nil, false, nil, false},
		{"empty", ptr(""), false, nil, false},
		{"one pid", ptr("123\n"), false, []int{123}, false},
		{"several pids", ptr("12\n34\n56\n"), false, []int{12, 34, 56}, false},
		{"garbage skipped", ptr("12\nxyz\n34\n"), false, []int{12, 34}, false},
		{"survivors", ptr("77\n"), true, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cgroup.procs")
			if c.content != nil {
				writeTestFile(t, file, *c.content)
			}
			var killed []int
			kill := func(pid int) error {
				killed = append(killed, pid)
				if !c.stubborn {
					// The kernel drops killed processes from the list.
					data, _ := os.ReadFile(file)
					var rest []string
					for _, f := range strings.Fields(string(data)) {
						if f != strconv.Itoa(pid) {
							rest = append(rest, f)
						}
					}
					if len(rest) == 1 && rest[0] == "xyz" {
						rest = nil // the garbage line is not a process
					}
					os.WriteFile(file, []byte(strings.Join(rest, "\n")), 0o644)
				}
				return errors.New("ESRCH") // errors are ignored
			}
			err := killPids(file, kill)
			if (err != nil) != c.wantErr {
				t.Fatalf("killPids error = %v, wantErr %v", err, c.wantErr)
			}
			if c.stubborn {
				if len(killed) < 2 {
					t.Errorf("killed %v: survivors should be killed again", killed)
				}
				if !strings.Contains(err.Error(), "survived SIGKILL") {
					t.Errorf("error = %v, want 'survived SIGKILL'", err)
				}
				return
			}
			if !slices.Equal(killed, c.wantKilled) {
				t.Errorf("killed %v, want %v", killed, c.wantKilled)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// TestHelpersConcurrent makes sure the helpers do not share state: several
// goroutines read different groups at once (go test -race).
func TestHelpersConcurrent(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "memory.events"), "oom_kill 3\n")
	writeTestFile(t, filepath.Join(dir, "memory.peak"), "4096\n")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if v, err := readKey(dir, "memory.events", "oom_kill"); err != nil || v != 3 {
					t.Errorf("readKey = %d, %v", v, err)
					return
				}
				if v, err := readInt(dir, "memory.peak"); err != nil || v != 4096 {
					t.Errorf("readInt = %d, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
