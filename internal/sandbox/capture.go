package sandbox

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Capture keeps the head and the tail of a stream whose total size is
// unbounded, so that a flood costs fixed memory while both the start of the
// output and how it ended stay visible. It is safe for concurrent use.
//
// The first limit/2 bytes are kept (and passed to Live as they arrive); after
// that a ring of the last limit/2 bytes is kept. If the stream fits in limit
// bytes, nothing is cut.
type Capture struct {
	mu    sync.Mutex
	limit int64
	head  []byte
	tail  []byte // ring buffer once full
	tpos  int    // next write position in tail when the ring is full
	full  bool
	total int64
	live  io.Writer
	// liveDone records that live output stopped at the head boundary.
	liveDone bool
}

// NewCapture returns a Capture keeping at most limit bytes. live may be nil.
func NewCapture(limit int64, live io.Writer) *Capture {
	if limit < 2 {
		limit = 2
	}
	return &Capture{limit: limit, live: live}
}

func (c *Capture) headCap() int64 { return c.limit / 2 }
func (c *Capture) tailCap() int   { return int(c.limit - c.limit/2) }

// Write never fails: a sandbox must never block on its output.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if room := c.headCap() - int64(len(c.head)); room > 0 {
		k := min(int64(len(p)), room)
		c.head = append(c.head, p[:k]...)
		if c.live != nil {
			c.live.Write(p[:k]) //nolint:errcheck // live output is best effort
		}
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	tc := c.tailCap()
	if len(p) >= tc {
		c.tail = append(c.tail[:0], p[len(p)-tc:]...)
		c.tpos, c.full = 0, true
		return n, nil
	}
	if !c.full {
		free := tc - len(c.tail)
		if len(p) <= free {
			c.tail = append(c.tail, p...)
			if len(c.tail) == tc {
				c.full, c.tpos = true, 0
			}
			return n, nil
		}
		c.tail = append(c.tail, p[:free]...)
		p = p[free:]
		c.full, c.tpos = true, 0
	}
	for len(p) > 0 {
		k := copy(c.tail[c.tpos:], p)
		p = p[k:]
		c.tpos = (c.tpos + k) % tc
	}
	return n, nil
}

// Total is the number of bytes written so far.
func (c *Capture) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *Capture) tailBytes() []byte {
	if !c.full {
		return c.tail
	}
	out := make([]byte, 0, len(c.tail))
	out = append(out, c.tail[c.tpos:]...)
	return append(out, c.tail[:c.tpos]...)
}

// Output returns what was kept. When bytes were cut, a marker line stands
// where they were.
func (c *Capture) Output() Output {
	c.mu.Lock()
	defer c.mu.Unlock()
	head, marker, tail := c.parts()
	return Output{Text: string(head) + marker + string(tail), Truncated: marker != "", TotalBytes: c.total}
}

// parts splits what was kept into head, marker ("" when nothing was cut)
// and tail. Cuts fall on character boundaries, so that the kept text stays
// valid UTF-8. The caller holds c.mu.
func (c *Capture) parts() (head []byte, marker string, tail []byte) {
	head, tail = c.head, c.tailBytes()
	if int64(len(head)+len(tail)) == c.total {
		return head, "", tail
	}
	if i := lastRuneStart(head); i >= 0 && !utf8.FullRune(head[i:]) {
		head = head[:i]
	}
	for j := 0; j < utf8.UTFMax-1 && len(tail) > 0 && !utf8.RuneStart(tail[0]); j++ {
		tail = tail[1:]
	}
	cut := c.total - int64(len(head)+len(tail))
	return head, fmt.Sprintf("\n... [pybox: %d bytes of output cut; %d bytes in total] ...\n", cut, c.total), tail
}

// lastRuneStart is the index of the last UTF-8 start byte among b's final
// bytes, or -1.
func lastRuneStart(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return -1
}

// FlushLive writes to the live writer what it has not yet seen: the marker
// (if anything was cut) and the tail. Call it once, after the stream ends.
func (c *Capture) FlushLive() {
	if c.live == nil {
		return
	}
	c.mu.Lock()
	_, marker, tail := c.parts()
	c.mu.Unlock()
	// The live writer has seen the whole head already.
	io.WriteString(c.live, marker) //nolint:errcheck
	c.live.Write(tail)             //nolint:errcheck
}

// HumanBytes writes n as people write sizes: "256 MiB", "64 KiB", or bytes.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Millis is d in milliseconds with microsecond precision, as results
// report durations.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// FirstLine is the first non-blank line of s, for one-line error messages
// made of a program's output.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Sink is where one stream of a sandboxed program goes while a backend
// drains it. The writer can be swapped meanwhile: a warm sandbox gets its
// capture when it is handed out, a session a new one per cell.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

// Set makes w the stream's writer from now on (nil drops the stream).
func (s *Sink) Set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// Get returns the current writer.
func (s *Sink) Get() io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w
}

// Pass hands p to the writer and returns how much the writer has taken in
// all, if it counts (a Capture does; see Total), for the flood check.
func (s *Sink) Pass(p []byte) (total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return 0
	}
	s.w.Write(p) //nolint:errcheck // a sink never blocks the program on errors
	if c, ok := s.w.(interface{ Total() int64 }); ok {
		return c.Total()
	}
	return 0
}
