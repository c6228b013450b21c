package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestChainAcrossRotations(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit") // Open creates it
	l := open(t, Options{Dir: dir, MaxFileBytes: 2000})
	appendN(t, l, 300, "a")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening continues the chain, including from a just-rotated state.
	l = open(t, Options{Dir: dir, MaxFileBytes: 2000})
	appendN(t, l, 45, "b")
	l.Close()

	rep := mustVerify(t, dir)
	files := logFiles(t, dir)
	if rep.Records != 345 || rep.FirstSeq != 1 || rep.LastSeq != 345 || rep.Files != len(files) || len(files) < 10 {
		t.Fatalf("report %+v for %d files", rep, len(files))
	}
	if len(rep.Warnings) != 0 || len(rep.Notes) != 0 {
		t.Fatalf("warnings %v notes %v", rep.Warnings, rep.Notes)
	}
	recs := readRecords(t, dir)
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	for _, name := range files {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 2000 {
			t.Errorf("%s is %d bytes, over MaxFileBytes", name, st.Size())
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", name, st.Mode())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode())
	}
	last := recs[len(recs)-1]
	lines := readLines(t, filepath.Join(dir, files[len(files)-1]))
	if got := lineHash([]byte(lines[len(lines)-2][:len(lines[len(lines)-2])-1])); got != rep.LastHash || last.Message != "b44" {
		t.Fatalf("last hash %s, report %s, last %+v", got, rep.LastHash, last)
	}
}

func TestRecordFields(t *testing.T) {
	code := []byte("import os\nprint(1)")
	sha, n, lines, text := CodeFields(code, false)
	if sum := sha256.Sum256(code); sha != hex.EncodeToString(sum[:]) || n != 18 || lines != 2 || text != "" {
		t.Fatalf("CodeFields = %s %d %d %q", sha, n, lines, text)
	}
	if _, _, lines, _ := CodeFields([]byte("a\nb\n"), true); lines != 2 {
		t.Fatalf("lines = %d", lines)
	}
	if _, _, lines, _ := CodeFields(nil, true); lines != 0 {
		t.Fatalf("lines = %d", lines)
	}

	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, Options{Dir: dir, KeepCode: keep})
			r := rec("x")
			r.SetCode(code, true) // the log's setting wins
			exit := 0
			r.ExitCode = &exit
			if err := l.Append(r); err != nil {
				t.Fatal(err)
			}
			l.Close()
			got := readRecords(t, dir)[0]
			if (got.Code != "") != keep || got.CodeSHA256 != r.CodeSHA256 || got.CodeLines != 2 || got.ExitCode == nil || *got.ExitCode != 0 {
				t.Fatalf("record %+v", got)
			}
			if got.Time.Location().String() != "UTC" || got.Time.IsZero() || got.Prev != GenesisHash || got.Seq != 1 {
				t.Fatalf("record %+v", got)
			}
		})
	}
}

func TestConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Int64
	l := open(t, Options{Dir: dir, MaxFileBytes: 16 << 10, wrapFile: countSyncs(&syncs)})
	const workers, each = 16, 100
	var wg sync.WaitGroup
	seqs := make([][]uint64, workers)
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				r := rec(fmt.Sprintf("g%d-%d", g, i))
				if err := l.Append(r); err != nil {
					t.Error(err)
					return
				}
				seqs[g] = append(seqs[g], r.Seq)
			}
		})
	}
	wg.Wait()
	l.Close()
	rep := mustVerify(t, dir)
	if rep.Records != workers*each {
		t.Fatalf("%d records", rep.Records)
	}
	bySeq := map[uint64]string{}
	seen := map[string]bool{}
	for _, r := range readRecords(t, dir) {
		if seen[r.Message] {
			t.Fatalf("%s twice", r.Message)
		}
		seen[r.Message] = true
		bySeq[r.Seq] = r.Message
	}
	for g := range workers {
		for i, s := range seqs[g] {
			if want := fmt.Sprintf("g%d-%d", g, i); bySeq[s] != want {
				t.Fatalf("seq %d is %q, Append said %q", s, bySeq[s], want)
			}
		}
	}
	t.Logf("%d records, %d fsyncs of log files (group commit)", rep.Records, syncs.Load())
}

// TestGroupCommit holds the first fsync until more appenders have queued,
// and checks that they all go out with one write and one fsync.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	var syncs atomic.Int64
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	l := open(t, Options{Dir: dir, wrapFile: func(f *os.File) logFile {
		return faultFile{File: f, syncs: &syncs, syncHook: func() {
			entered <- struct{}{}
			<-release
		}}
	}})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.Append(rec("first")); err != nil {
			t.Error(err)
		}
	})
	<-entered // the writer is in its first fsync
	const n = 10
	for i := range n {
		wg.Go(func() {
			if err := l.Append(rec(fmt.Sprint("later", i))); err != nil {
				t.Error(err)
			}
		})
	}
	for queued := 0; queued < n; {
		l.mu.Lock()
		queued = len(l.queue)
		l.mu.Unlock()
	}
	close(release)
	wg.Wait()
	if got := syncs.Load(); got != 2 {
		t.Fatalf("%d fsyncs for 1+%d records queued behind one; want 2", got, n)
	}
	l.Close()
	if rep := mustVerify(t, dir); rep.Records != n+1 {
		t.Fatalf("%d records", rep.Records)
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	appendN(t, l, 1, "x")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	l = open(t, Options{Dir: dir})
	appendN(t, l, 1, "y")
	l.Close()
	if rep := mustVerify(t, dir); rep.Records != 2 {
		t.Fatalf("%d records", rep.Records)
	}
}

// A record larger than MaxFileBytes gets a file of its own.
func TestOversizedRecord(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Options{Dir: dir, MaxFileBytes: 500, KeepCode: true})
	appendN(t, l, 2, "small")
	big := rec("big")
	big.SetCode(make([]byte, 2000), true)
	if err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2, "after")
	l.Close()
	rep := mustVerify(t, dir)
	if rep.Records != 5 || rep.Files != 3 {
		t.Fatalf("%+v", rep)
	}
}
