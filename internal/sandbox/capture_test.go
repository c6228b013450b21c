package sandbox

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// reference is the obvious implementation of Capture's contract: keep
// everything, then cut the middle.
func reference(all []byte, limit int64) Output {
	if limit < 2 {
		limit = 2
	}
	total := int64(len(all))
	if total <= limit {
		return Output{Text: string(all), TotalBytes: total}
	}
	head := all[:limit/2]
	tail := all[total-(limit-limit/2):]
	marker := fmt.Sprintf("\n... [pybox: %d bytes of output cut; %d bytes in total] ...\n", total-limit, total)
	return Output{Text: string(head) + marker + string(tail), Truncated: true, TotalBytes: total}
}

// pattern returns n bytes in which every position is distinguishable, so
// that a misplaced byte shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%36]
	}
	return b
}

// syncBuffer is a live writer that may be written while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestCaptureTable(t *testing.T) {
	cases := []struct {
		name   string
		limit  int64
		writes []string
		want   Output
	}{
		{"empty", 10, nil, Output{Text: "", TotalBytes: 0}},
		{"empty write", 10, []string{""}, Output{Text: "", TotalBytes: 0}},
		{"below cap", 10, []string{"hello"}, Output{Text: "hello", TotalBytes: 5}},
		{"into the tail", 10, []string{"hello wor"}, Output{Text: "hello wor", TotalBytes: 9}},
		{"exactly the cap", 10, []string{"0123456789"}, Output{Text: "0123456789", TotalBytes: 10}},
		{"exactly the cap in pieces", 10, []string{"012", "3456", "789"}, Output{Text: "0123456789", TotalBytes: 10}},
		{
			"one byte over", 10, []string{"0123456789X"},
			Output{Text: "01234\n... [pybox: 1 bytes of output cut; 11 bytes in total] ...\n6789X", Truncated: true, TotalBytes: 11},
		},
		{
			"far over", 10, []string{strings.Repeat("a", 5) + strings.Repeat("-", 1000) + strings.Repeat("z", 5)},
			Output{Text: "aaaaa\n... [pybox: 1000 bytes of output cut; 1010 bytes in total] ...\nzzzzz", Truncated: true, TotalBytes: 1010},
		},
		{
			"odd limit keeps the larger half at the end", 7, []string{"ABCdefghijWXYZ"},
			Output{Text: "ABC\n... [pybox: 7 bytes of output cut; 14 bytes in total] ...\nWXYZ", Truncated: true, TotalBytes: 14},
		},
		{
			"limit below 2 is raised to 2", 0, []string{"abc"},
			Output{Text: "a\n... [pybox: 1 bytes of output cut; 3 bytes in total] ...\nc", Truncated: true, TotalBytes: 3},
		},
		{
			"ring wraps several times", 6, []string{"abc", "de", "fg", "hi", "jk", "lm", "n"},
			Output{Text: "abc\n... [pybox: 8 bytes of output cut; 14 bytes in total] ...\nlmn", Truncated: true, TotalBytes: 14},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := NewCapture(c.limit, nil)
			for _, w := range c.writes {
				n, err := cp.Write([]byte(w))
				if n != len(w) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v; a capture must accept everything", len(w), n, err)
				}
			}
			if got := cp.Output(); got != c.want {
				t.Errorf("Output() =\n%+v\nwant\n%+v", got, c.want)
			}
			if cp.Total() != c.want.TotalBytes {
				t.Errorf("Total() = %d, want %d", cp.Total(), c.want.TotalBytes)
			}
		})
	}
}

// TestCaptureChunkingInvariant: how the stream is split into writes must
// not change what is kept.
func TestCaptureChunkingInvariant(t *testing.T) {
	data := pattern(10_000)
	for _, limit := range []int64{2, 3, 10, 11, 1024, 4096, 9_999, 10_000, 10_001, 1 << 20} {
		one := NewCapture(limit, nil)
		one.Write(data)
		want := one.Output()
		if ref := reference(data, limit); want != ref {
			t.Fatalf("limit %d: one big write differs from the reference", limit)
		}
		for _, chunk := range []int{1, 2, 3, 7, 64, 1000, 4999, 5000, 5001} {
			t.Run(fmt.Sprintf("limit=%d/chunk=%d", limit, chunk), func(t *testing.T) {
				cp := NewCapture(limit, nil)
				for i := 0; i < len(data); i += chunk {
					cp.Write(data[i:min(i+chunk, len(data))])
				}
				if got := cp.Output(); got != want {
					t.Errorf("chunked output differs from one write:\n got %q\nwant %q", abbreviate(got.Text), abbreviate(want.Text))
				}
			})
		}
	}
}

// TestCaptureMatchesReference is a property test: random write sizes
// (deterministic seed) around the head/tail boundaries and the ring size.
func TestCaptureMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(20240601))
	for iter := 0; iter < 500; iter++ {
		limit := int64(2 + rng.Intn(64))
		if iter%10 == 0 {
			limit = int64(1 + rng.Intn(4096))
		}
		var all []byte
		var writes []int
		cp := NewCapture(limit, nil)
		nWrites := rng.Intn(40)
		for i := 0; i < nWrites; i++ {
			var n int
			switch rng.Intn(4) {
			case 0:
				n = rng.Intn(4) // tiny, including empty
			case 1:
				n = rng.Intn(int(limit)) // below the ring size
			case 2:
				n = int(limit/2) + rng.Intn(3) - 1 // around a half
			default:
				n = rng.Intn(3 * int(limit)) // may exceed the whole cap
			}
			n = max(n, 0)
			p := make([]byte, n)
			for j := range p {
				p[j] = byte('A' + (len(all)+j)%58)
			}
			all = append(all, p...)
			writes = append(writes, n)
			cp.Write(p)
			if got, want := cp.Output(), reference(all, limit); got != want {
				t.Fatalf("iteration %d, limit %d, writes %v:\n got %q\nwant %q", iter, limit, writes, got.Text, want.Text)
			}
		}
	}
}

func TestCaptureWriteDoesNotKeepCallerBuffer(t *testing.T) {
	cp := NewCapture(8, nil)
	buf := []byte("abcdefghijkl")
	cp.Write(buf)
	for i := range buf {
		buf[i] = '!'
	}
	want := "abcd\n... [pybox: 4 bytes of output cut; 12 bytes in total] ...\nijkl"
	if got := cp.Output().Text; got != want {
		t.Errorf("Output changed when the caller reused its buffer: %q, want %q", got, want)
	}
}

func TestCaptureLive(t *testing.T) {
	cases := []struct {
		name     string
		limit    int64
		writes   []string
		liveHead string // what live has seen before FlushLive
	}{
		{"below head", 10, []string{"abc"}, "abc"},
		{"exactly head", 10, []string{"ab", "cde"}, "abcde"},
		{"into tail, no cut", 10, []string{"abcdefgh"}, "abcde"},
		{"cut", 10, []string{"abc", "defghijklmnop", "qrstuvwxyz"}, "abcde"},
		{"first write crosses everything", 4, []string{"0123456789"}, "01"},
		{"nothing", 10, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			live := &syncBuffer{}
			cp := NewCapture(c.limit, live)
			for _, w := range c.writes {
				cp.Write([]byte(w))
			}
			if got := live.String(); got != c.liveHead {
				t.Errorf("live before FlushLive = %q, want only the head %q", got, c.liveHead)
			}
			cp.FlushLive()
			out := cp.Output()
			if got := live.String(); got != out.Text {
				t.Errorf("live after FlushLive = %q, want the same as Output %q", got, out.Text)
			}
			if out.Truncated && !strings.Contains(live.String(), "bytes of output cut") {
				t.Errorf("live output lacks the cut marker: %q", live.String())
			}
		})
	}
	t.Run("nil live", func(t *testing.T) {
		cp := NewCapture(10, nil)
		cp.Write(pattern(100))
		cp.FlushLive() // must not panic
	})
}

func TestCaptureConcurrent(t *testing.T) {
	const (
		writers = 8
		writes  = 500
		limit   = 4096
	)
	live := &syncBuffer{}
	cp := NewCapture(limit, live)
	line := func(w, i int) string { return fmt.Sprintf("w%d-%04d|", w, i) } // 8 bytes
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				cp.Write([]byte(line(w, i)))
				if i%50 == 0 {
					cp.Output() // readers run concurrently with writers
					cp.Total()
				}
			}
		}()
	}
	wg.Wait()
	total := int64(writers * writes * 8)
	if cp.Total() != total {
		t.Fatalf("Total() = %d, want %d", cp.Total(), total)
	}
	out := cp.Output()
	if !out.Truncated || out.TotalBytes != total {
		t.Fatalf("Output() Truncated=%v TotalBytes=%d, want true, %d", out.Truncated, out.TotalBytes, total)
	}
	marker := fmt.Sprintf("\n... [pybox: %d bytes of output cut; %d bytes in total] ...\n", total-limit, total)
	head, tail, ok := strings.Cut(out.Text, marker)
	if !ok {
		t.Fatalf("marker %q missing", marker)
	}
	if len(head) != limit/2 || len(tail) != limit/2 {
		t.Fatalf("head %d bytes, tail %d bytes, want %d each", len(head), len(tail), limit/2)
	}
	// Writes are atomic: each 8-byte line is intact (the halves are
	// multiples of 8, so lines stay aligned).
	for _, part := range []string{head, tail} {
		for i := 0; i < len(part); i += 8 {
			l := part[i : i+8]
			var w, n int
			if _, err := fmt.Sscanf(l, "w%d-%04d|", &w, &n); err != nil || line(w, n) != l {
				t.Fatalf("torn line %q at offset %d", l, i)
			}
		}
	}
	cp.FlushLive()
	if live.String() != out.Text {
		t.Errorf("live output differs from Output after concurrent writes")
	}
}

func abbreviate(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:100] + "..." + s[len(s)-100:]
}

// A cut never splits a character: head and tail stay valid UTF-8 around
// the marker, whatever the byte positions of the cap.
func TestCaptureCutsOnCharacterBoundaries(t *testing.T) {
	text := strings.Repeat("héllo wörld — ✓ 𝄞 ", 200)
	for limit := int64(20); limit < 60; limit++ {
		c := NewCapture(limit, nil)
		c.Write([]byte(text))
		out := c.Output()
		if !out.Truncated {
			t.Fatalf("limit %d: not truncated", limit)
		}
		if !utf8.ValidString(out.Text) {
			t.Errorf("limit %d: output is not valid UTF-8: %q", limit, out.Text)
		}
	}
}

func TestSink(t *testing.T) {
	var s Sink
	if s.Pass([]byte("dropped")) != 0 || s.Get() != nil {
		t.Fatal("a sink without a writer must drop, and count nothing")
	}
	c := NewCapture(4, nil)
	s.Set(c)
	s.Pass([]byte("abc"))
	if total := s.Pass([]byte("defgh")); total != 8 {
		t.Errorf("total %d after 8 bytes into a Capture", total)
	}
	var b strings.Builder
	s.Set(&b) // swapped while in use: a writer that does not count
	if total := s.Pass([]byte("x")); total != 0 || b.String() != "x" || s.Get() != &b {
		t.Errorf("after the swap: total %d, %q", total, b.String())
	}
}

func TestDeadline(t *testing.T) {
	var dl Deadline
	fired := make(chan string, 2)
	dl.Set(time.Hour, func() { fired <- "first" })
	dl.Set(time.Millisecond, func() { fired <- "rearmed" }) // replaces the first
	if got := <-fired; got != "rearmed" {
		t.Fatalf("fired %q", got)
	}
	dl.Set(10*time.Millisecond, func() { fired <- "disarmed" })
	dl.Set(0, nil)
	select {
	case got := <-fired:
		t.Fatalf("a disarmed deadline fired (%q)", got)
	case <-time.After(50 * time.Millisecond):
	}
}
