package driver

import (
	"bytes"
	"sync"
)

// Splitter cuts one output stream of a session (stdout or stderr) into the
// output of each cell, at the SyncMarker the driver writes after the cell.
//
// One goroutine copies the stream into Write; another may call Begin before
// it sends each cell's exec Request. Until Begin, and after each cell's
// marker, bytes go to the idle sink: output of the user's background
// threads or processes between cells. After Begin(marker, sink, done) bytes
// go to sink until the marker: the marker itself is dropped, done is called
// once, and what follows goes to the idle sink until the next Begin.
//
// Bytes are never lost or reordered. A marker may be split across Writes:
// the Splitter then holds back the end of a Write for as long as it could
// be the start of the marker (at most len(marker)-1 bytes), and passes it
// on as soon as it cannot. Sinks and done are called with the Splitter's
// lock held, in stream order; they must not retain the slice they are
// given, nor call the Splitter.
type Splitter struct {
	mu     sync.Mutex
	idle   func([]byte)
	marker []byte // nil between cells
	sink   func([]byte)
	done   func()
	held   []byte // a proper prefix of marker, seen at the end of the stream
}

// NewSplitter returns a Splitter with no cell begun. idle receives the
// bytes that arrive between cells; nil discards them.
func NewSplitter(idle func([]byte)) *Splitter {
	return &Splitter{idle: idle}
}

// Begin starts a cell: bytes go to sink until marker (non-empty), then done
// is called. A cell still waiting for its marker is abandoned: the bytes
// held for it go to its sink and its done is never called.
func (s *Splitter) Begin(marker []byte, sink func([]byte), done func()) {
	if len(marker) == 0 {
		panic("driver: Splitter.Begin with an empty marker")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release()
	s.marker, s.sink, s.done = bytes.Clone(marker), sink, done
}

// Write passes p on to the sinks. It never fails.
func (s *Splitter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	if len(s.held) > 0 {
		// Rare: only a Write ending in a prefix of the marker leaves bytes
		// held.
		p = append(s.held, p...)
		s.held = nil
	}
	for len(p) > 0 {
		if s.marker == nil {
			emit(s.idle, p)
			break
		}
		if i := bytes.Index(p, s.marker); i >= 0 {
			emit(s.sink, p[:i])
			p = p[i+len(s.marker):]
			done := s.done
			s.marker, s.sink, s.done = nil, nil, nil
			if done != nil {
				done()
			}
			continue
		}
		k := partial(p, s.marker)
		emit(s.sink, p[:len(p)-k])
		s.held = bytes.Clone(p[len(p)-k:])
		break
	}
	return n, nil
}

// Close passes on the bytes held back at the end of the stream, to the
// current cell's sink. The cell stays begun: its done is not called.
func (s *Splitter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release()
	return nil
}

func (s *Splitter) release() {
	if len(s.held) > 0 {
		emit(s.sink, s.held)
		s.held = nil
	}
}

// partial returns the length of the longest suffix of p that is a proper
// prefix of marker.
func partial(p, marker []byte) int {
	tail := p[max(0, len(p)-len(marker)+1):]
	for i := range tail { // the earliest start is the longest suffix
		if tail[i] == marker[0] && bytes.HasPrefix(marker, tail[i:]) {
			return len(tail) - i
		}
	}
	return 0
}

func emit(sink func([]byte), p []byte) {
	if sink != nil && len(p) > 0 {
		sink(p)
	}
}
