package sandbox

import (
	"fmt"
	"io"
	"sync"
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
	tail := c.tailBytes()
	kept := int64(len(c.head) + len(tail))
	if kept == c.total {
		return Output{Text: string(c.head) + string(tail), TotalBytes: c.total}
	}
	marker := fmt.Sprintf("\n... [pybox: %d bytes of output cut; %d bytes in total] ...\n", c.total-kept, c.total)
	return Output{Text: string(c.head) + marker + string(tail), Truncated: true, TotalBytes: c.total}
}

// FlushLive writes to the live writer what it has not yet seen: the marker
// (if anything was cut) and the tail. Call it once, after the stream ends.
func (c *Capture) FlushLive() {
	if c.live == nil {
		return
	}
	out := c.Output()
	c.mu.Lock()
	head := len(c.head)
	c.mu.Unlock()
	if len(out.Text) > head {
		io.WriteString(c.live, out.Text[head:]) //nolint:errcheck
	}
}
