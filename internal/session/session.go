package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Errors of Session.Execute that are the caller's to report.
var (
	// ErrBusy: a cell is already running in the session.
	ErrBusy = errors.New("a cell is already running in this session; wait for it to finish")
	// ErrEnded wraps the reason a session is gone (see EndedError).
	ErrEnded = errors.New("session ended")
)

// EndedError says why a session can no longer run cells.
type EndedError struct{ Reason string }

func (e *EndedError) Error() string { return "session ended: " + e.Reason }
func (e *EndedError) Unwrap() error { return ErrEnded }

// Options tune cell execution.
type Options struct {
	// Grace is how long a cell has to stop after KeyboardInterrupt before
	// the session is killed (default 2 s).
	Grace time.Duration
}

// Session is one long-lived sandbox whose driver keeps a namespace across
// cells. One cell runs at a time.
type Session struct {
	ID      string
	conn    *Conn
	opts    Options
	Created time.Time
	Warm    bool
	SetupMS float64
	// Owner is the tenant the session belongs to; set before the session
	// is published, never changed.
	Owner string

	run   sync.Mutex // held while a cell runs
	busy  atomic.Bool
	count atomic.Int64

	outSplit, errSplit *driver.Splitter

	mu       sync.Mutex
	lastUsed time.Time
	ended    string // why the session is gone; "" while alive
}

// New makes a session of a ready Conn; the session owns it from now on.
func New(conn *Conn, opts Options) *Session {
	if opts.Grace <= 0 {
		opts.Grace = 2 * time.Second
	}
	s := &Session{ID: newID(), conn: conn, opts: opts, Created: time.Now(), lastUsed: time.Now()}
	// Output between cells (a thread that prints on its own) belongs to no
	// cell and is dropped.
	s.outSplit, s.errSplit = driver.NewSplitter(nil), driver.NewSplitter(nil)
	conn.box.SetOutput(s.outSplit, s.errSplit)
	go func() {
		<-conn.box.Done()
		s.markEnded(s.deathReason())
	}()
	return s
}

func newID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	return "s-" + hex.EncodeToString(b[:])
}

// deathReason describes how the sandbox ended, once it has.
func (s *Session) deathReason() string {
	res, err := s.conn.box.Wait()
	switch {
	case err != nil:
		return err.Error()
	case res.Status == sandbox.StatusMemoryLimit:
		return fmt.Sprintf("the session's Python process was killed for exceeding the %s memory limit; variables are lost, create a new session", sandbox.HumanBytes(s.conn.limits.MemoryBytes))
	case res.Status == sandbox.StatusTimeout:
		return "a cell ran past its timeout and did not stop on KeyboardInterrupt, so the session was killed; create a new session"
	case res.Status == sandbox.StatusOutputLimit:
		return "a cell flooded its output and did not stop on KeyboardInterrupt, so the session was killed; create a new session"
	case res.Signal != "":
		return fmt.Sprintf("the session's Python process was killed by %s; create a new session", res.Signal)
	default:
		return fmt.Sprintf("the session's Python process exited with status %d (os._exit or a crash); create a new session", res.ExitCode)
	}
}

func (s *Session) markEnded(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == "" {
		s.ended = reason
	}
}

// Ended returns why the session is gone, or "" while it lives.
func (s *Session) Ended() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Busy reports whether a cell is running.
func (s *Session) Busy() bool { return s.busy.Load() }

// LastUsed is when the last cell finished (or the session was made).
func (s *Session) LastUsed() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUsed
}

// Executions is how many cells were started.
func (s *Session) Executions() int64 { return s.count.Load() }

// Limits are the session's limits.
func (s *Session) Limits() sandbox.Limits { return s.conn.limits }

// Layers are the isolation layers of the session's sandbox.
func (s *Session) Layers() sandbox.Layers { return s.conn.box.Layers() }

// Box is the session's sandbox (for workspace access).
func (s *Session) Box() Box { return s.conn.box }

// Close kills the session's sandbox and waits for its teardown.
func (s *Session) Close(reason string) {
	s.markEnded(reason)
	s.conn.Close()
}

// StreamFunc receives a cell's output as it is printed: stream is
// "stdout" or "stderr". It must not block for long: it runs on the
// goroutine that drains the sandbox.
type StreamFunc func(stream string, p []byte)

// Execute runs one cell. timeout <= 0 means the session's. The error is
// ErrBusy, an *EndedError, or a failure to talk to the sandbox; what the
// code did (including dying) is in the result.
func (s *Session) Execute(ctx context.Context, code string, timeout time.Duration, stream StreamFunc) (*api.CellResult, error) {
	if !s.run.TryLock() {
		return nil, ErrBusy
	}
	defer s.run.Unlock()
	if r := s.Ended(); r != "" {
		return nil, &EndedError{r}
	}
	s.busy.Store(true)
	defer s.busy.Store(false)
	defer func() {
		s.mu.Lock()
		s.lastUsed = time.Now()
		s.mu.Unlock()
	}()

	lim := s.conn.limits
	if timeout <= 0 || timeout > lim.Timeout {
		timeout = lim.Timeout
	}
	n := s.count.Add(1)
	nonce := newID()
	marker := driver.SyncMarker(nonce)

	// Per-cell captures; a flood interrupts the cell like a timeout does.
	// Once Execute returns, output that still arrives for the cell (the
	// program kept a copy of fd 1 and its marker never came) is dropped.
	flood := make(chan struct{}, 1)
	var active atomic.Bool
	active.Store(true)
	defer active.Store(false)
	capture := func(name string) (*sandbox.Capture, func([]byte)) {
		var live io.Writer
		if stream != nil {
			live = streamWriter{name, stream}
		}
		c := sandbox.NewCapture(lim.MaxOutputBytes, live)
		return c, func(p []byte) {
			if !active.Load() {
				return
			}
			c.Write(p) //nolint:errcheck // never fails
			if c.Total() > floodFactor*lim.MaxOutputBytes {
				select {
				case flood <- struct{}{}:
				default:
				}
			}
		}
	}
	stdout, outSink := capture(api.EventStdout)
	stderr, errSink := capture(api.EventStderr)
	// Each stream's marker closes its channel; an abandoned cell's never
	// does, and nothing waits for it past this cell.
	outSynced, errSynced := make(chan struct{}), make(chan struct{})
	s.outSplit.Begin(marker, outSink, func() { close(outSynced) })
	s.errSplit.Begin(marker, errSink, func() { close(errSynced) })

	before, _ := s.conn.box.Usage()
	t0 := time.Now()
	res := &api.CellResult{ExecutionCount: n}
	if err := s.conn.send(&driver.Request{Op: "exec", ID: n, Code: code, Sync: nonce}); err != nil {
		s.conn.box.Kill(sandbox.StatusKilled)
	}

	var reply *driver.Reply
	var stopReason api.Status // why pybox interrupted the cell
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	interrupted := false
	interrupt := func(why api.Status) {
		if interrupted {
			return
		}
		interrupted, stopReason = true, why
		s.conn.send(&driver.Request{Op: "interrupt"}) //nolint:errcheck // a dead driver is seen below
		timer.Reset(s.opts.Grace)
	}
	ctxDone := ctx.Done()
wait:
	for {
		select {
		case rep, ok := <-s.conn.replies:
			if !ok {
				break wait // the driver is gone
			}
			if rep.Type == "result" && rep.ID == n {
				reply = &rep
				break wait
			}
		case <-timer.C:
			if !interrupted {
				interrupt(api.StatusTimeout)
				continue
			}
			// It did not stop: the session goes.
			s.conn.box.Kill(stopReason)
			break wait
		case <-flood:
			interrupt(api.StatusOutputLimit)
		case <-ctxDone:
			ctxDone = nil
			interrupt(api.StatusKilled)
		}
	}
	res.WallMS = sandbox.Millis(time.Since(t0))

	if reply != nil {
		// The driver wrote the markers before its reply; wait until the
		// drain goroutines have passed the ones it could write. (One that
		// went elsewhere, the program having moved fd 1, is waited for a
		// second at most.)
		waits := map[int]chan struct{}{1: outSynced, 2: errSynced}
		limit := time.NewTimer(time.Second)
		defer limit.Stop()
	sync:
		for _, fd := range reply.Synced {
			select {
			case <-waits[fd]:
			case <-limit.C:
				break sync
			case <-s.conn.box.Done():
				break sync
			}
		}
	} else {
		<-s.conn.box.Done()
	}
	after, _ := s.conn.box.Usage()
	res.CPUMS = max(0, sandbox.Millis(after.CPU-before.CPU))
	res.PeakMemoryBytes = after.PeakMemoryBytes
	so, se := stdout.Output(), stderr.Output()
	res.Stdout, res.StdoutTruncated, res.StdoutBytes = so.Text, so.Truncated, so.TotalBytes
	res.Stderr, res.StderrTruncated, res.StderrBytes = se.Text, se.Truncated, se.TotalBytes

	if reply == nil {
		reason := s.deathReason()
		s.markEnded(reason)
		box, _ := s.conn.box.Wait()
		res.Status, res.Message, res.SessionEnded = sandbox.StatusKilled, reason, true
		if box != nil && box.Status != sandbox.StatusOK && box.Status != sandbox.StatusError {
			res.Status = box.Status
		}
		return res, nil
	}
	res.Value, res.Error = reply.Value, cellError(reply.Error)
	for _, d := range reply.Display {
		res.Display = append(res.Display, api.Display{MIME: d.MIME, Data: d.Data})
	}
	switch {
	case reply.Status == "interrupted" && stopReason == api.StatusTimeout:
		res.Status = api.StatusTimeout
		res.Message = fmt.Sprintf("the cell ran past its %s timeout and was interrupted (KeyboardInterrupt); the session's state is kept", timeout)
	case reply.Status == "interrupted" && stopReason == api.StatusOutputLimit:
		res.Status = api.StatusOutputLimit
		res.Message = fmt.Sprintf("the cell printed more than %d× the %s output cap and was interrupted; the middle of the output was cut", floodFactor, sandbox.HumanBytes(lim.MaxOutputBytes))
	case reply.Status == "interrupted":
		res.Status = api.StatusInterrupted
		res.Message = "the cell was interrupted (KeyboardInterrupt)"
	case reply.Status == "error":
		res.Status = api.StatusError
		if res.Error != nil {
			res.Message = res.Error.Type + ": " + res.Error.Message
		}
	case res.StdoutTruncated || res.StderrTruncated:
		res.Status = api.StatusOutputLimit
		res.Message = fmt.Sprintf("output exceeded the %s cap per stream; the middle was cut", sandbox.HumanBytes(lim.MaxOutputBytes))
	default:
		res.Status = api.StatusOK
		if n := after.OOMKills - before.OOMKills; n > 0 {
			// The session's own process lives (the cell replied): what the
			// OOM killer ended were processes the cell started.
			res.Message = fmt.Sprintf("the cell finished, but the memory limit of %s was reached and the kernel's OOM killer ended %d process(es) it started; the session's state is kept", sandbox.HumanBytes(lim.MemoryBytes), n)
		}
	}
	return res, nil
}

// floodFactor: a cell whose stream passes this many times the output cap is
// interrupted rather than drained for the rest of its timeout.
const floodFactor = 8

func cellError(e *driver.Error) *api.CellError {
	if e == nil {
		return nil
	}
	return &api.CellError{Type: e.Type, Message: e.Message, Traceback: e.Traceback}
}

type streamWriter struct {
	name string
	f    StreamFunc
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.f(w.name, p)
	return len(p), nil
}
