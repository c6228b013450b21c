package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Kinds of Problem.
const (
	// KindBroken: a record's hash does not match the next record's prev (or
	// the first record's prev is not GenesisHash): it was changed after it
	// was written, or the next one was not written by this log.
	KindBroken = "broken"
	// KindMissing: a seq gap no later record fills: records, or a whole
	// file, were removed.
	KindMissing = "missing"
	// KindReordered: seq goes back, or a gap is filled further on.
	KindReordered = "reordered"
	// KindTorn: a last line without its newline. At the end of the current
	// file it is a warning (a crash mid-write; Open repairs it), anywhere
	// else a failure.
	KindTorn = "torn"
	// KindMalformed: not a record, an empty rotated file, or a rotated
	// file whose name does not match its first record.
	KindMalformed = "malformed"
)

// Problem is where and how the log is damaged. Line is 1-based.
type Problem struct {
	Kind    string `json:"kind"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Seq     uint64 `json:"seq,omitempty"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.Seq == 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s:%d (seq %d): %s", p.File, p.Line, p.Seq, p.Message)
}

// Report is what Verify found.
type Report struct {
	Dir      string   `json:"dir"`
	Files    int      `json:"files"`
	Records  uint64   `json:"records"` // records intact before the first problem
	FirstSeq uint64   `json:"first_seq,omitempty"`
	LastSeq  uint64   `json:"last_seq,omitempty"`  // of the last intact record
	LastHash string   `json:"last_hash,omitempty"` // of the last intact record's line: kept elsewhere, it shows a cut tail
	Notes    []string `json:"notes,omitempty"`
	// Warnings are problems that are not damage: a torn last record.
	Warnings []Problem `json:"warnings,omitempty"`
	// Problem is the first damage found; nil when the chain is intact.
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the chain is intact.
func (r *Report) OK() bool { return r.Problem == nil }

// Verify checks the audit log in dir: every line a record, seqs consecutive
// across files, and every record's prev the hash of the line before it. It
// stops at the first problem, which goes in the Report; the error is only
// for logs it could not read.
//
// If the oldest file starts above seq 1 (older files were deliberately
// removed) that is a note, not a problem, and the chain is checked from
// there; its first prev is taken on trust. A chain proves order and
// integrity relative to its last hash, not authorship: whoever can write the
// files can rewrite the whole chain from the point they change, and cutting
// records off the end is only detected against a LastHash kept elsewhere.
//
// Verify takes no lock, so it may run beside a writer; a record being
// written then shows as a torn warning, and a rotation during the run can
// show as a spurious problem: run it again.
func Verify(dir string) (Report, error) {
	rep := Report{Dir: dir}
	rotated, err := listRotated(dir)
	if err != nil {
		return rep, fmt.Errorf("reading audit directory: %w", err)
	}
	files := make([]string, 0, len(rotated)+1)
	for _, r := range rotated {
		files = append(files, r.name)
	}
	if _, err := os.Stat(filepath.Join(dir, currentName)); err == nil {
		files = append(files, currentName)
	} else if !errors.Is(err, os.ErrNotExist) {
		return rep, err
	}
	v := &verifier{rep: &rep}
	for _, name := range files {
		if err := v.file(dir, name, name == currentName); err != nil {
			return rep, err
		}
		if v.done {
			break
		}
	}
	if v.pending != nil {
		rep.Problem = v.pending // a gap nothing later filled
	}
	return rep, nil
}

type verifier struct {
	rep     *Report
	scratch []byte
	done    bool

	last       uint64 // seq of the last record checked (0: none yet)
	lastHash   string
	hashBefore string // of the record before last
	lastFile   string
	lastLine   int

	// pending is a seq gap being looked for further on: found, it is
	// reordering; not found, records are missing.
	pending        *Problem
	missLo, missHi uint64 // the gap, inclusive
}

func (v *verifier) file(dir, name string, current bool) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("reading audit log: %w", err)
	}
	defer f.Close()
	if v.pending == nil {
		v.rep.Files++
	}
	br := bufio.NewReaderSize(f, 256<<10)
	lineNo := 0
	for {
		line, complete, err := v.readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		lineNo++
		c, ok := parseLine(line)
		if v.pending != nil {
			if ok && complete && c.Seq >= v.missLo && c.Seq <= v.missHi {
				v.pending.Kind = KindReordered
				v.pending.Message = fmt.Sprintf("seq %d comes before seq %d, which is at %s:%d: records were moved", v.pending.Seq, c.Seq, name, lineNo)
				v.rep.Problem, v.pending, v.done = v.pending, nil, true
				return nil
			}
			continue
		}
		if !complete {
			p := Problem{Kind: KindTorn, File: name, Line: lineNo,
				Message: fmt.Sprintf("the last record is incomplete (%d bytes, no newline): the writer stopped while writing it", len(line))}
			if current {
				p.Message += "; it was never acknowledged, and the next Open cuts it off and records that"
				v.rep.Warnings = append(v.rep.Warnings, p)
			} else {
				p.Message += ", but only the current file may end that way"
				v.fail(p)
			}
			return nil
		}
		if !ok {
			v.fail(Problem{Kind: KindMalformed, File: name, Line: lineNo, Message: "not an audit record (a JSON object with seq and prev)"})
			return nil
		}
		if lineNo == 1 && !current {
			if want, _ := parseRotatedName(name); c.Seq != want {
				v.fail(Problem{Kind: KindMalformed, File: name, Line: 1, Seq: c.Seq,
					Message: fmt.Sprintf("the file is named for seq %d but starts at seq %d", want, c.Seq)})
				return nil
			}
		}
		if !v.link(name, lineNo, c) {
			if v.rep.Problem != nil {
				return nil
			}
			continue // a gap: look further on
		}
		v.hashBefore = v.lastHash
		v.last, v.lastHash, v.lastFile, v.lastLine = c.Seq, lineHash(line), name, lineNo
		v.rep.Records++
		v.rep.LastSeq, v.rep.LastHash = c.Seq, v.lastHash
	}
	if lineNo == 0 && !current && v.pending == nil {
		v.fail(Problem{Kind: KindMalformed, File: name, Line: 0, Message: "a rotated file is empty, but rotation only moves full files"})
	}
	return nil
}

// link checks record c against the one before it. false: a problem was
// found (v.rep.Problem) or a gap is pending.
func (v *verifier) link(name string, lineNo int, c chainFields) bool {
	here := Problem{File: name, Line: lineNo, Seq: c.Seq}
	if v.last == 0 {
		v.rep.FirstSeq = c.Seq
		if c.Seq != 1 {
			v.rep.Notes = append(v.rep.Notes, fmt.Sprintf(
				"the log starts at seq %d (%s): the files before it were removed, so the chain is checked from there", c.Seq, name))
			return true
		}
		if c.Prev != GenesisHash {
			here.Kind = KindBroken
			here.Message = "the first record's prev is not 64 zeros: the start of the log was changed"
			v.fail(here)
			return false
		}
		return true
	}
	switch {
	case c.Seq == v.last+1:
		if c.Prev != v.lastHash {
			// The damage is in the record already counted: take it back.
			v.rep.Records--
			v.rep.LastSeq, v.rep.LastHash = v.last-1, v.hashBefore
			if v.rep.Records == 0 {
				v.rep.FirstSeq, v.rep.LastSeq = 0, 0
			}
			v.fail(Problem{Kind: KindBroken, File: v.lastFile, Line: v.lastLine, Seq: v.last,
				Message: fmt.Sprintf("record was changed after it was written (its hash does not match the prev of seq %d at %s:%d), or that record was not written by this log",
					c.Seq, name, lineNo)})
			return false
		}
		return true
	case c.Seq <= v.last:
		here.Kind = KindReordered
		here.Message = fmt.Sprintf("seq %d comes after seq %d (at %s:%d): records were moved or copied", c.Seq, v.last, v.lastFile, v.lastLine)
		v.fail(here)
		return false
	}
	here.Kind = KindMissing
	what := fmt.Sprintf("seq %d is", v.last+1)
	if c.Seq-v.last > 2 {
		what = fmt.Sprintf("seqs %d-%d are", v.last+1, c.Seq-1)
	}
	here.Message = fmt.Sprintf("%s missing after seq %d (at %s:%d): records were removed", what, v.last, v.lastFile, v.lastLine)
	if lineNo == 1 && name != v.lastFile {
		here.Message = fmt.Sprintf("%s missing between %s and %s: a file or records were removed", what, v.lastFile, name)
	}
	v.pending, v.missLo, v.missHi = &here, v.last+1, c.Seq-1
	return false
}

func (v *verifier) fail(p Problem) {
	v.rep.Problem, v.done = &p, true
}

// readLine returns the next line without its newline; complete is false
// for a last line without one. The line is valid until the next call.
func (v *verifier) readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	v.scratch = v.scratch[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			v.scratch = append(v.scratch, chunk...)
			continue
		case err == io.EOF:
			if len(chunk)+len(v.scratch) == 0 {
				return nil, false, io.EOF
			}
			return append(v.scratch, chunk...), false, nil
		case err != nil:
			return nil, false, err
		}
		if len(v.scratch) > 0 {
			chunk = append(v.scratch, chunk...)
		}
		return chunk[:len(chunk)-1], true, nil
	}
}
