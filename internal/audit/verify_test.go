package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tamperLog writes 60 records in files of 1000 bytes (6 records each: ten
// files) and returns the dir and the file names.
func tamperLog(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	l := open(t, Options{Dir: dir, MaxFileBytes: 1000})
	appendN(t, l, 60, "m")
	l.Close()
	files := logFiles(t, dir)
	if len(files) < 5 {
		t.Fatalf("only %d files", len(files))
	}
	return dir, files
}

// seqAt is the seq of line (1-based) of file, before tampering.
func seqAt(t *testing.T, dir, file string, line int) uint64 {
	t.Helper()
	c, ok := parseLine([]byte(strings.TrimSuffix(readLines(t, filepath.Join(dir, file))[line-1], "\n")))
	if !ok {
		t.Fatalf("%s:%d is not a record", file, line)
	}
	return c.Seq
}

func TestVerifyDetectsTampering(t *testing.T) {
	type want struct {
		kind string
		file int // index into the files; -1: the current file
		line int
		seq  int // offset from the seq originally at (file, line)
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string, files []string)
		want   want
	}{
		{"field edited", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, files[2])
			lines := readLines(t, p)
			lines[2] = strings.Replace(lines[2], `"tenant":"t"`, `"tenant":"u"`, 1)
			writeLines(t, p, lines)
		}, want{KindBroken, 2, 3, 0}},
		{"line deleted", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, files[2])
			lines := readLines(t, p)
			writeLines(t, p, append(lines[:2], lines[3:]...))
		}, want{KindMissing, 2, 3, 1}},
		{"lines swapped", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, files[2])
			lines := readLines(t, p)
			lines[2], lines[3] = lines[3], lines[2]
			writeLines(t, p, lines)
		}, want{KindReordered, 2, 3, 1}},
		{"rotated file deleted", func(t *testing.T, dir string, files []string) {
			if err := os.Remove(filepath.Join(dir, files[2])); err != nil {
				t.Fatal(err)
			}
		}, want{KindMissing, 3, 1, 0}},
		{"line appended with a wrong prev", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, currentName)
			lines := readLines(t, p)
			last, _ := parseLine([]byte(strings.TrimSuffix(lines[len(lines)-2], "\n")))
			forged := fmt.Sprintf(`{"seq":%d,"time":"2030-01-01T00:00:00Z","prev":"%s","event":"execute","outcome":"executed"}`+"\n",
				last.Seq+1, strings.Repeat("ab", 32))
			writeLines(t, p, append(lines, forged))
		}, want{KindBroken, -1, -1, 0}}, // the last genuine record: its hash is not the forged prev
		{"first prev changed", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, files[0])
			lines := readLines(t, p)
			lines[0] = strings.Replace(lines[0], GenesisHash, strings.Repeat("1", 64), 1)
			writeLines(t, p, lines)
		}, want{KindBroken, 0, 1, 0}},
		{"torn line in a rotated file", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, files[1])
			lines := readLines(t, p)
			n := len(lines) - 1 // the last element is ""
			lines[n-1] = lines[n-1][:20]
			writeLines(t, p, lines[:n])
		}, want{KindTorn, 1, -1, 0}},
		{"garbage line", func(t *testing.T, dir string, files []string) {
			p := filepath.Join(dir, files[1])
			lines := readLines(t, p)
			lines[1] = "hello\n"
			writeLines(t, p, lines)
		}, want{KindMalformed, 1, 2, 0}},
		{"record moved back across files", func(t *testing.T, dir string, files []string) {
			p, q := filepath.Join(dir, files[1]), filepath.Join(dir, files[3])
			from, to := readLines(t, p), readLines(t, q)
			to = append(to[:len(to)-1], from[0])
			writeLines(t, q, to)
		}, want{KindReordered, 3, -1, 0}},
		{"rotated file renamed", func(t *testing.T, dir string, files []string) {
			first, _ := parseRotatedName(files[1])
			if err := os.Rename(filepath.Join(dir, files[1]), filepath.Join(dir, rotatedName(first+1))); err != nil {
				t.Fatal(err)
			}
		}, want{KindMalformed, 1, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, files := tamperLog(t)
			// Where the problem should be, read before tampering.
			file := currentName
			if tt.want.file >= 0 {
				file = files[tt.want.file]
			}
			line := tt.want.line
			if line < 0 {
				line = len(readLines(t, filepath.Join(dir, file))) - 1
			}
			seq := seqAt(t, dir, file, line) + uint64(tt.want.seq)
			if tt.want.kind == KindMalformed && tt.name == "rotated file renamed" {
				first, _ := parseRotatedName(file)
				file = rotatedName(first + 1)
			}
			if tt.want.kind == KindTorn || tt.name == "garbage line" {
				seq = 0
			}
			if tt.name == "record moved back across files" {
				seq, _ = parseRotatedName(files[1])
				line++
			}

			tt.tamper(t, dir, files)
			rep, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := rep.Problem
			if p == nil {
				t.Fatalf("not detected: %+v", rep)
			}
			t.Logf("%s: %v", p.Kind, p)
			if p.Kind != tt.want.kind || p.File != file || p.Line != line || p.Seq != seq {
				t.Fatalf("got %s at %s:%d seq %d; want %s at %s:%d seq %d",
					p.Kind, p.File, p.Line, p.Seq, tt.want.kind, file, line, seq)
			}
		})
	}
}

func TestVerifyNotes(t *testing.T) {
	t.Run("oldest file removed", func(t *testing.T) {
		dir, files := tamperLog(t)
		os.Remove(filepath.Join(dir, files[0]))
		os.Remove(filepath.Join(dir, files[1]))
		rep := mustVerify(t, dir)
		first, _ := parseRotatedName(files[2])
		if rep.FirstSeq != first || rep.LastSeq != 60 || len(rep.Notes) != 1 {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("torn end of the current file", func(t *testing.T) {
		dir, _ := tamperLog(t)
		f, err := os.OpenFile(filepath.Join(dir, currentName), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(`{"seq":61,"time":"20`)
		f.Close()
		rep := mustVerify(t, dir)
		if rep.LastSeq != 60 || len(rep.Warnings) != 1 || rep.Warnings[0].Kind != KindTorn {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("empty", func(t *testing.T) {
		rep := mustVerify(t, t.TempDir())
		if rep.Records != 0 || rep.Files != 0 {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		if _, err := Verify(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Fatal("no error")
		}
	})
}

// On damage, the report counts only the records before it.
func TestVerifyCountsIntactRecords(t *testing.T) {
	dir, files := tamperLog(t)
	p := filepath.Join(dir, files[2])
	lines := readLines(t, p)
	broken := seqAt(t, dir, files[2], 3)
	lines[2] = strings.Replace(lines[2], `"tenant":"t"`, `"tenant":"u"`, 1)
	writeLines(t, p, lines)
	rep, err := Verify(dir)
	if err != nil || rep.Problem == nil {
		t.Fatal(err, rep.Problem)
	}
	before := seqAt(t, dir, files[2], 2)
	if rep.Records != broken-1 || rep.LastSeq != broken-1 || rep.LastHash != lineHash([]byte(strings.TrimSuffix(lines[1], "\n"))) || before != broken-1 {
		t.Fatalf("%+v", rep)
	}
}
