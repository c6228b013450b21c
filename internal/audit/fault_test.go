package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestWriteFailure: a failed (partial) write fails that Append, leaves no
// trace in the file, and the log goes on.
func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	l := open(t, Options{Dir: dir, wrapFile: func(f *os.File) logFile { return faultFile{File: f, failWrite: &fail} }})
	appendN(t, l, 5, "ok")
	size := fileSize(t, filepath.Join(dir, currentName))
	fail.Store(true)
	r := rec("lost")
	if err := l.Append(r); err == nil {
		t.Fatal("Append succeeded with the write failing")
	}
	if got := fileSize(t, filepath.Join(dir, currentName)); got != size {
		t.Fatalf("file is %d bytes after a failed write, was %d", got, size)
	}
	fail.Store(false)
	appendN(t, l, 1, "again")
	l.Close()
	rep := mustVerify(t, dir)
	recs := readRecords(t, dir)
	if rep.Records != 6 || recs[5].Message != "again0" || recs[5].Seq != 6 {
		t.Fatalf("%+v\n%+v", rep, recs)
	}
}

// TestSyncFailure: after a failed fsync nothing written since the last good
// one can be trusted, so the Log refuses everything until reopened.
func TestSyncFailure(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	l := open(t, Options{Dir: dir, wrapFile: func(f *os.File) logFile { return faultFile{File: f, failSync: &fail} }})
	appendN(t, l, 3, "ok")
	fail.Store(true)
	if err := l.Append(rec("lost")); err == nil {
		t.Fatal("Append succeeded with fsync failing")
	}
	fail.Store(false)
	if err := l.Append(rec("refused")); !errors.Is(err, ErrBroken) {
		t.Fatalf("Append after a failed fsync: %v, want ErrBroken", err)
	}
	l.Close()
	l = open(t, Options{Dir: dir})
	appendN(t, l, 1, "reopened")
	l.Close()
	rep := mustVerify(t, dir)
	recs := readRecords(t, dir)
	if rep.Records != 4 || recs[3].Message != "reopened0" || recs[3].Seq != 4 {
		t.Fatalf("%+v\n%+v", rep, recs)
	}
}

// TestRotationFailure: a rotation that cannot rename (something is in the
// way) breaks the log without losing acknowledged records.
func TestRotationFailure(t *testing.T) {
	dir := t.TempDir()
	// The first file will be renamed to audit-…1.jsonl: put a directory there.
	blocker := filepath.Join(dir, rotatedName(1))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	l := open(t, Options{Dir: dir, MaxFileBytes: 1000})
	var acked int
	var err error
	for acked = 0; acked < 100; acked++ {
		if err = l.Append(rec(fmt.Sprint("r", acked))); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("after %d records: %v, want ErrBroken", acked, err)
	}
	if err := l.Append(rec("x")); !errors.Is(err, ErrBroken) {
		t.Fatalf("%v", err)
	}
	l.Close()
	os.Remove(blocker)
	l = open(t, Options{Dir: dir, MaxFileBytes: 1000})
	appendN(t, l, 20, "after")
	l.Close()
	if rep := mustVerify(t, dir); rep.Records != uint64(acked+20) {
		t.Fatalf("%d acked, then 20: %+v", acked, rep)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
