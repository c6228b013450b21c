package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxDroppedText bounds the torn bytes kept in an audit_recovered record.
const maxDroppedText = 4 << 10

// chainFields are the parts of a record that the chain is made of.
type chainFields struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
}

// parseLine decodes a line's chain fields; ok is false unless it is a JSON
// object with a positive seq and a 64-digit hex prev.
func parseLine(line []byte) (c chainFields, ok bool) {
	if err := json.Unmarshal(line, &c); err != nil || c.Seq == 0 || len(c.Prev) != 64 {
		return c, false
	}
	if _, err := hex.DecodeString(c.Prev); err != nil {
		return c, false
	}
	return c, true
}

// tail is what Open needs to know about the current file.
type tail struct {
	size              int64 // after the repair
	firstSeq, lastSeq uint64
	lastHash          string
	droppedBytes      int64
	dropped           []byte // the first maxDroppedText of them
}

// repairTail cuts torn records off the end of f and fsyncs the cut. A record
// is torn when it has no newline yet or is not a record at all: a crash (or
// SIGKILL, which can stop a large write between pages) hit mid-write. Only
// the end is touched; damage further up is left for Verify to report,
// because cutting it would destroy evidence.
func repairTail(f *os.File) (tail, error) {
	var t tail
	st, err := f.Stat()
	if err != nil {
		return t, err
	}
	size := st.Size()
	end := size
	for end > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], end-1); err != nil {
			return t, err
		}
		if last[0] != '\n' {
			if end, err = lineStart(f, end); err != nil {
				return t, err
			}
			continue
		}
		start, err := lineStart(f, end-1)
		if err != nil {
			return t, err
		}
		line := make([]byte, end-1-start)
		if _, err := f.ReadAt(line, start); err != nil {
			return t, err
		}
		if c, ok := parseLine(line); ok {
			t.lastSeq, t.lastHash = c.Seq, lineHash(line)
			break
		}
		end = start
	}
	if end < size {
		t.droppedBytes = size - end
		t.dropped = make([]byte, min(size-end, maxDroppedText))
		if _, err := f.ReadAt(t.dropped, end); err != nil {
			return t, err
		}
		if err := f.Truncate(end); err != nil {
			return t, fmt.Errorf("cutting off a torn record: %w", err)
		}
		if err := f.Sync(); err != nil {
			return t, err
		}
	}
	t.size = end
	if end > 0 {
		first, err := bufio.NewReader(io.NewSectionReader(f, 0, end)).ReadBytes('\n')
		if err != nil {
			return t, err
		}
		c, ok := parseLine(first[:len(first)-1])
		if !ok {
			return t, fmt.Errorf("the first record is malformed (run 'pybox audit verify')")
		}
		t.firstSeq = c.Seq
	}
	return t, nil
}

// lineStart returns the offset just after the last newline before end (0
// if there is none).
func lineStart(r io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, min(end, 64<<10))
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := r.ReadAt(buf[:n], pos); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// lastRecordOf returns the seq and hash of a rotated file's last record.
// Rotated files were fsynced whole before their rename, so a torn one is
// damage, not a crash, and is not repaired.
func lastRecordOf(path string) (uint64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	end := st.Size()
	var last [1]byte
	if end == 0 {
		return 0, "", errors.New("the file is empty")
	}
	if _, err := f.ReadAt(last[:], end-1); err != nil {
		return 0, "", err
	}
	if last[0] != '\n' {
		return 0, "", errors.New("its last record is incomplete")
	}
	start, err := lineStart(f, end-1)
	if err != nil {
		return 0, "", err
	}
	line := make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return 0, "", err
	}
	c, ok := parseLine(line)
	if !ok {
		return 0, "", errors.New("its last record is malformed")
	}
	return c.Seq, lineHash(line), nil
}
