package server

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/pybox-dev/pybox/api"
)

// wantsStream reports whether the client asked for server-sent events.
func wantsStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// eventStream writes server-sent events. Output arrives on the goroutines
// that drain the sandbox, which must never wait for a slow client: chunks
// go through a bounded queue, and if the client falls that far behind the
// stream skips chunks (the final result event still has the whole capped
// output) and says so once.
type eventStream struct {
	mu     sync.Mutex // output runs on two drain goroutines, and may outlive finish
	closed bool
	w      http.ResponseWriter
	flush  func()
	ch     chan sse
	done   chan struct{}
	carry  map[string][]byte // an incomplete UTF-8 sequence per stream
	lag    bool
}

type sse struct {
	name string
	data any
}

const streamQueue = 1024

func startStream(w http.ResponseWriter) *eventStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	flush()
	e := &eventStream{w: w, flush: flush, ch: make(chan sse, streamQueue), done: make(chan struct{}), carry: map[string][]byte{}}
	go e.loop()
	return e
}

func (e *eventStream) loop() {
	defer close(e.done)
	for ev := range e.ch {
		e.write(ev)
	}
}

func (e *eventStream) write(ev sse) {
	data, err := json.Marshal(ev.data)
	if err != nil {
		return
	}
	fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", ev.name, data) //nolint:errcheck // the client went away
	e.flush()
}

// output queues one chunk of a stream.
func (e *eventStream) output(stream string, p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return // a straggler after the result: the cell is over
	}
	buf := append(e.carry[stream], p...)
	// Hold back a trailing incomplete character for the next chunk.
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	e.carry[stream] = append([]byte(nil), buf[cut:]...)
	if cut == 0 {
		return
	}
	select {
	case e.ch <- sse{stream, api.OutputEvent{Text: string(buf[:cut])}}:
	default:
		if !e.lag {
			e.lag = true
			select {
			case e.ch <- sse{stream, api.OutputEvent{Text: "\n[pybox: the client read too slowly; some live output was skipped, the result event has it]\n"}}:
			default:
			}
		}
	}
}

// finish sends the last event after everything queued.
func (e *eventStream) finish(name string, v any) {
	e.mu.Lock()
	e.closed = true
	close(e.ch)
	e.mu.Unlock()
	<-e.done
	e.write(sse{name, v})
}
