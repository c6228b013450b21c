package driver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// recorder is a cell's sink and done, and the idle sink.
type recorder struct {
	cell, idle bytes.Buffer
	dones      int
}

func (r *recorder) begin(s *Splitter, marker []byte) {
	s.Begin(marker, func(p []byte) { r.cell.Write(p) }, func() { r.dones++ })
}

func newRecorded() (*Splitter, *recorder) {
	r := &recorder{}
	return NewSplitter(func(p []byte) { r.idle.Write(p) }), r
}

func TestSplitterEverySplit(t *testing.T) {
	marker := SyncMarker("3f2a")
	fake := string(SyncMarker("other"))
	for _, tc := range []struct{ before, after string }{
		{"out\n", "late\n"},
		{"", ""},
		{"no newline", ""},
		{"\x00\x00pybox-sync:3f2", "\x00"}, // almost the marker, before it
		{"x" + fake + "y", fake},           // another cell's marker is data
		{"\x00pybox-sync:3f2a ", "\x00pybox-sync:3f2a\x00"}, // after it, the marker is idle data
	} {
		stream := tc.before + string(marker) + tc.after
		for i := 0; i <= len(stream); i++ {
			s, r := newRecorded()
			r.begin(s, marker)
			s.Write([]byte(stream[:i]))
			s.Write([]byte(stream[i:]))
			if r.cell.String() != tc.before || r.idle.String() != tc.after || r.dones != 1 {
				t.Errorf("%q split at %d: cell %q, idle %q, %d dones; want %q, %q, 1",
					stream, i, r.cell.String(), r.idle.String(), r.dones, tc.before, tc.after)
			}
		}
	}
}

func TestSplitterByteByByte(t *testing.T) {
	marker := SyncMarker("n")
	s, r := newRecorded()
	r.begin(s, marker)
	stream := "a\x00b\x00pybox\x00pybox-sync:m\x00" + string(marker) + "after"
	for i := range len(stream) {
		s.Write([]byte{stream[i]})
	}
	if want := "a\x00b\x00pybox\x00pybox-sync:m\x00"; r.cell.String() != want || r.idle.String() != "after" || r.dones != 1 {
		t.Errorf("cell %q, idle %q, %d dones; want %q, after, 1", r.cell.String(), r.idle.String(), r.dones, want)
	}
}

// TestSplitterHolding checks that bytes are held back only while they
// could start the marker.
func TestSplitterHolding(t *testing.T) {
	marker := SyncMarker("n")
	s, r := newRecorded()
	r.begin(s, marker)
	step := func(in, cell string) {
		t.Helper()
		s.Write([]byte(in))
		if r.cell.String() != cell {
			t.Errorf("after writing %q: cell %q, want %q", in, r.cell.String(), cell)
		}
	}
	step("ab\x00pybox-s", "ab")
	step("X", "ab\x00pybox-sX")
	step("\x00", "ab\x00pybox-sX")
	step("\x00", "ab\x00pybox-sX\x00")
	step("pybox-sync:", "ab\x00pybox-sX\x00")
	s.Close() // the stream ended: the held bytes are the cell's
	if want := "ab\x00pybox-sX\x00\x00pybox-sync:"; r.cell.String() != want || r.dones != 0 {
		t.Errorf("after Close: cell %q, %d dones; want %q, 0", r.cell.String(), r.dones, want)
	}
}

func TestSplitterCells(t *testing.T) {
	s, r := newRecorded()
	s.Write([]byte("early "))
	r1, r2 := &recorder{}, &recorder{}
	r1.begin(s, SyncMarker("one"))
	s.Write([]byte("1\x00pybox-sync:"))
	// Begin with a cell pending abandons it: its held bytes are its own.
	r2.begin(s, SyncMarker("two"))
	s.Write([]byte("2" + string(SyncMarker("one")) + "2" + string(SyncMarker("two")) + "idle"))
	if r1.cell.String() != "1\x00pybox-sync:" || r1.dones != 0 {
		t.Errorf("abandoned cell: %q, %d dones", r1.cell.String(), r1.dones)
	}
	if want := "2" + string(SyncMarker("one")) + "2"; r2.cell.String() != want || r2.dones != 1 {
		t.Errorf("second cell: %q, %d dones; want %q, 1", r2.cell.String(), r2.dones, want)
	}
	if r.idle.String() != "early idle" {
		t.Errorf("idle %q, want %q", r.idle.String(), "early idle")
	}
	// A nil idle sink discards.
	s = NewSplitter(nil)
	s.Write([]byte("gone"))
	r3 := &recorder{}
	r3.begin(s, SyncMarker("3"))
	s.Write([]byte("kept" + string(SyncMarker("3")) + "gone"))
	if r3.cell.String() != "kept" || r3.dones != 1 {
		t.Errorf("cell %q, %d dones", r3.cell.String(), r3.dones)
	}
}

// TestSplitterConcurrent runs cells as a host does: a goroutine copies the
// stream in random chunks while another begins each cell once the previous
// one is done. Run it with -race.
func TestSplitterConcurrent(t *testing.T) {
	const cells = 200
	s := NewSplitter(nil)
	var mu sync.Mutex
	got := make([]strings.Builder, cells)
	begun := make(chan int)
	go func() {
		for i := range cells {
			done := make(chan struct{})
			s.Begin(SyncMarker(fmt.Sprint(i)), func(p []byte) {
				mu.Lock()
				got[i].Write(p)
				mu.Unlock()
			}, func() { close(done) })
			begun <- i
			<-done
		}
		close(begun)
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range begun {
		out := []byte(strings.Repeat(fmt.Sprintf("cell %d\x00", i), i%7) + string(SyncMarker(fmt.Sprint(i))))
		for len(out) > 0 {
			n := min(len(out), 1+rng.IntN(8))
			s.Write(out[:n])
			out = out[n:]
		}
	}
	for i := range cells {
		if want := strings.Repeat(fmt.Sprintf("cell %d\x00", i), i%7); got[i].String() != want {
			t.Errorf("cell %d: %q, want %q", i, got[i].String(), want)
		}
	}
}

// FuzzSplitter checks the Splitter against a plain search of the whole
// stream, for any stream and any chunking.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("out\x00pybox-sync:x\x00after"), uint64(1))
	f.Add([]byte("\x00\x00pybox-sync:\x00pybox-sync:x\x00"), uint64(7))
	f.Add([]byte("\x00pybox-sync:x"), uint64(3))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		marker := SyncMarker("x")
		s, r := newRecorded()
		r.begin(s, marker)
		rng := rand.New(rand.NewPCG(seed, seed))
		for p := stream; len(p) > 0; {
			n := min(len(p), rng.IntN(len(marker)+2))
			s.Write(p[:n])
			p = p[n:]
		}
		s.Close()
		cell, idle, dones := stream, []byte(nil), 0
		if i := bytes.Index(stream, marker); i >= 0 {
			cell, idle, dones = stream[:i], stream[i+len(marker):], 1
		}
		if !bytes.Equal(r.cell.Bytes(), cell) || !bytes.Equal(r.idle.Bytes(), idle) || r.dones != dones {
			t.Errorf("%q: cell %q, idle %q, %d dones; want %q, %q, %d", stream, r.cell.Bytes(), r.idle.Bytes(), r.dones, cell, idle, dones)
		}
	})
}
