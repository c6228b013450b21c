package audit

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test's child: append records from several goroutines as fast
// as possible, rotating often, and report each record on fd 3 once Append
// has returned (that is, once it is fsynced), until SIGKILLed.
const crashDirEnv = "PYBOX_AUDIT_CRASH_DIR"

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the crash test's child process")
	}
	l, err := Open(Options{Dir: dir, MaxFileBytes: 64 << 10, KeepCode: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: Open:", err)
		os.Exit(3)
	}
	ack := bufio.NewWriter(os.NewFile(3, "ack"))
	var mu sync.Mutex
	round := os.Getenv("PYBOX_AUDIT_CRASH_ROUND")
	for g := range 4 {
		go func() {
			rnd := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for i := 0; ; i++ {
				r := rec(fmt.Sprintf("round%s-g%d-%d", round, g, i))
				// Mostly small records, some spanning many pages: a write
				// SIGKILL stops between pages leaves a torn line.
				code := make([]byte, rnd.IntN(200))
				switch rnd.IntN(16) {
				case 0, 1:
					code = make([]byte, rnd.IntN(40<<10))
				case 2:
					code = make([]byte, 128<<10+rnd.IntN(128<<10))
				}
				for j := range code {
					code[j] = 'a' + byte(j%26)
				}
				r.SetCode(code, true)
				if len(code) > 128<<10 {
					mu.Lock()
					fmt.Fprintf(ack, "big\n") // a good moment to kill
					ack.Flush()
					mu.Unlock()
				}
				if err := l.Append(r); err != nil {
					fmt.Fprintln(os.Stderr, "child: Append:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(ack, "%d %s\n", r.Seq, r.Message)
				ack.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashSafety SIGKILLs a writer at random moments, over and over on one
// log, and checks after each kill that every record the writer had been
// told was written is there, unchanged, that the chain verifies (a torn
// last line allowed), and that Open repairs a torn line and says so.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	acked := map[uint64]string{} // every acknowledged record, all rounds
	torn := 0
	const rounds = 12
	for round := range rounds {
		// Kill after a random number of acknowledged records (0: while the
		// child may still be starting or repairing), then a random delay.
		// In odd rounds, wait for a large record to be on its way too, which
		// makes a kill mid-write (and a torn line) likelier.
		killAfter := rnd.IntN(200)
		if round%4 == 0 {
			killAfter = 0
		}
		onBig := round%2 == 1
		delay := time.Duration(rnd.IntN(3000)) * time.Microsecond
		if onBig {
			delay = time.Duration(rnd.IntN(1500)) * time.Microsecond
		}

		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, "PYBOX_AUDIT_CRASH_ROUND="+strconv.Itoa(round))
		cmd.ExtraFiles = []*os.File{pw}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		reached := make(chan struct{})
		done := make(chan map[uint64]string)
		go func() {
			got := map[uint64]string{}
			sc := bufio.NewScanner(pr)
			closed := killAfter == 0
			for sc.Scan() {
				if sc.Text() == "big" {
					if !closed && len(got) >= killAfter {
						close(reached)
						closed = true
					}
					continue
				}
				seqStr, msg, _ := strings.Cut(sc.Text(), " ")
				seq, _ := strconv.ParseUint(seqStr, 10, 64)
				got[seq] = msg
				if !closed && !onBig && len(got) >= killAfter {
					close(reached)
					closed = true
				}
			}
			pr.Close()
			done <- got
		}()
		if killAfter > 0 {
			<-reached
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		err = cmd.Wait()
		got := <-done
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended by %v, not by SIGKILL: %s", round, err, stderr.String())
		}
		for seq, msg := range got {
			acked[seq] = msg
		}

		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem != nil {
			t.Fatalf("round %d (kill after %d records + %v): %v", round, killAfter, delay, rep.Problem)
		}
		onDisk := map[uint64]string{}
		for _, r := range readRecords(t, dir) {
			onDisk[r.Seq] = r.Message
		}
		for seq, msg := range acked {
			if onDisk[seq] != msg {
				t.Fatalf("round %d: acknowledged seq %d (%s) is %q on disk", round, seq, msg, onDisk[seq])
			}
		}
		t.Logf("round %d: killed after %d acks (on a large record: %v) + %v; %d records in %d files; torn: %v",
			round, len(got), onBig, delay, rep.Records, rep.Files, len(rep.Warnings) > 0)

		// Open repairs a torn line and records that; the chain then
		// verifies without warnings.
		l := open(t, Options{Dir: dir})
		l.Close()
		after := mustVerify(t, dir)
		if len(after.Warnings) != 0 {
			t.Fatalf("round %d: warnings after Open: %v", round, after.Warnings)
		}
		if len(rep.Warnings) > 0 {
			torn++
			recs := readRecords(t, dir)
			last := recs[len(recs)-1]
			if after.LastSeq != rep.LastSeq+1 || last.Event != EventAuditRecovered || last.DroppedBytes <= 0 {
				t.Fatalf("round %d: after repairing a torn line, last record %+v", round, last)
			}
		} else if after.LastSeq != rep.LastSeq {
			t.Fatalf("round %d: Open added records to an intact log", round)
		}
	}
	t.Logf("%d acknowledged records survived %d kills; %d kills left a torn line", len(acked), rounds, torn)
}

// TestTornLineRepair writes half a record by hand, as a crash would leave it.
func TestTornLineRepair(t *testing.T) {
	for _, tc := range []struct{ name, tail string }{
		{"no newline", `{"seq":4,"time":"2026-01-01T00:00:00Z","prev":"0000`},
		{"zeros", "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"not json, then a partial", "{\"seq\":4,\"ti\x00\x00\n{\"seq\":5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, Options{Dir: dir})
			appendN(t, l, 3, "ok")
			l.Close()
			path := filepath.Join(dir, currentName)
			good := fileSize(t, path)
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(tc.tail)
			f.Close()

			l = open(t, Options{Dir: dir})
			appendN(t, l, 1, "next")
			l.Close()
			rep := mustVerify(t, dir)
			recs := readRecords(t, dir)
			if rep.Records != 5 || len(rep.Warnings) != 0 {
				t.Fatalf("%+v", rep)
			}
			r := recs[3]
			if r.Event != EventAuditRecovered || r.Seq != 4 || r.DroppedBytes != int64(len(tc.tail)) || r.Dropped != strings.ToValidUTF8(tc.tail, "\uFFFD") {
				t.Fatalf("recovery record %+v", r)
			}
			if recs[4].Message != "next0" || recs[2].Message != "ok2" {
				t.Fatalf("%+v", recs)
			}
			if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b[good:]), `{"seq":4,`) {
				t.Fatalf("the torn bytes are still in the file: %q", b[good:])
			}
		})
	}
	t.Run("whole file torn after a rotation", func(t *testing.T) {
		dir := t.TempDir()
		l := open(t, Options{Dir: dir, MaxFileBytes: 300})
		appendN(t, l, 4, "ok") // rotates: the current file is then empty or short
		l.Close()
		os.Remove(filepath.Join(dir, currentName))
		os.WriteFile(filepath.Join(dir, currentName), []byte(`{"seq":5,"ti`), 0o600)
		l = open(t, Options{Dir: dir, MaxFileBytes: 300})
		appendN(t, l, 1, "next")
		l.Close()
		rep := mustVerify(t, dir)
		if rep.Records < 5 {
			t.Fatalf("%+v", rep)
		}
	})
}

// TestRealWriteFailure runs a child whose file size limit (RLIMIT_FSIZE)
// stops a write halfway with EFBIG: a real short write and a real error
// from the kernel, not an injected one.
func TestRealWriteFailure(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRealWriteFailureChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PYBOX_AUDIT_FSIZE_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRealWriteFailureChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

func TestRealWriteFailureChild(t *testing.T) {
	dir := os.Getenv("PYBOX_AUDIT_FSIZE_DIR")
	if dir == "" {
		t.Skip("TestRealWriteFailure's child process")
	}
	l := open(t, Options{Dir: dir})
	appendN(t, l, 3, "ok")
	path := filepath.Join(dir, currentName)
	size := fileSize(t, path)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	// Room for half a record: the write is cut short, then fails.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(size) + 50, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	err := l.Append(rec("too big"))
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Append beyond RLIMIT_FSIZE: %v, want EFBIG", err)
	}
	if got := fileSize(t, path); got != size {
		t.Fatalf("file is %d bytes after the failed write, was %d", got, size)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, "again")
	l.Close()
	rep := mustVerify(t, dir)
	recs := readRecords(t, dir)
	if rep.Records != 4 || recs[3].Message != "again0" {
		t.Fatalf("%+v", recs)
	}
}
