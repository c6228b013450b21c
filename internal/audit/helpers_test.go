package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func open(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func rec(msg string) *Record {
	return &Record{Event: EventExecute, Outcome: OutcomeExecuted, Tenant: "t", Message: msg}
}

// appendN appends n records with messages prefix0, prefix1, ...
func appendN(t testing.TB, l *Log, n int, prefix string) {
	t.Helper()
	for i := range n {
		if err := l.Append(rec(fmt.Sprintf("%s%d", prefix, i))); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// logFiles returns the log's file names in chain order.
func logFiles(t testing.TB, dir string) []string {
	t.Helper()
	rotated, err := listRotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rotated {
		names = append(names, r.name)
	}
	if _, err := os.Stat(filepath.Join(dir, currentName)); err == nil {
		names = append(names, currentName)
	}
	return names
}

// readRecords decodes every complete line of the log, in order.
func readRecords(t testing.TB, dir string) []Record {
	t.Helper()
	var recs []Record
	for _, name := range logFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<30)
		for sc.Scan() {
			if !bytes.HasSuffix(data, []byte("\n")) && len(sc.Bytes()) > 0 && bytes.HasSuffix(data, sc.Bytes()) {
				break // a torn last line
			}
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v: %q", name, err, sc.Bytes())
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(data), "\n")
}

func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t testing.TB, dir string) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Problem != nil {
		t.Fatalf("Verify: %v", rep.Problem)
	}
	return rep
}

// faultFile injects failures into the current file.
type faultFile struct {
	*os.File
	failWrite *atomic.Bool // write half the bytes, then fail
	failSync  *atomic.Bool
	syncs     *atomic.Int64
	syncHook  func() // called before every Sync
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.failWrite != nil && f.failWrite.Load() {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, fmt.Errorf("injected write failure after %d bytes", n)
	}
	return f.File.WriteAt(p, off)
}

func (f faultFile) Sync() error {
	if f.syncHook != nil {
		f.syncHook()
	}
	if f.syncs != nil {
		f.syncs.Add(1)
	}
	if f.failSync != nil && f.failSync.Load() {
		return fmt.Errorf("injected fsync failure")
	}
	return f.File.Sync()
}

// countSyncs returns a wrapFile that counts fsyncs of the log files.
func countSyncs(n *atomic.Int64) func(*os.File) logFile {
	return func(f *os.File) logFile { return faultFile{File: f, syncs: n} }
}
