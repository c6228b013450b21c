// Package session runs Python through pybox's driver inside a sandbox: a
// Conn is one sandbox whose driver is ready; it serves either one warm
// one-shot execution (Conn.Run) or one Session of cells. A Manager keeps
// the sessions of a server, and a Launcher hands out Conns, warm from a
// pool when it can.
//
// The invariants of the warm path hold here: a Conn is used for one
// execution or one session and then destroyed; the code that prepares
// Conns (the Launcher's pool) never sends user code.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Box is what this package needs of a started sandbox whose program is the
// driver; *native.Sandbox is one.
type Box interface {
	// Control returns the request (write) and reply (read) pipes.
	Control() (io.WriteCloser, io.ReadCloser)
	SetOutput(stdout, stderr io.Writer)
	SetDeadline(time.Duration)
	Kill(sandbox.Status)
	Usage() (sandbox.Usage, error)
	Layers() sandbox.Layers
	// RootPath and FileOwner give the host access to the workspace.
	RootPath() string
	FileOwner() (uid, gid int)
	Done() <-chan struct{}
	Wait() (*sandbox.Result, error)
}

// StartFunc starts a driver sandbox for spec (spec.Driver is set).
type StartFunc func(ctx context.Context, spec *sandbox.Spec) (Box, error)

// Conn is a sandbox whose driver said it is ready.
type Conn struct {
	box     Box
	limits  sandbox.Limits
	w       io.WriteCloser
	replies chan driver.Reply
	Python  string // the interpreter's version, from the driver
	Made    time.Time

	wmu    sync.Mutex // one frame at a time on w
	closed bool
}

// ErrDriver means the driver broke its protocol or died before it was
// ready; the sandbox has been killed.
var ErrDriver = errors.New("sandbox driver failed")

// Dial starts a driver sandbox with the given limits and waits until its
// driver is ready.
func Dial(ctx context.Context, start StartFunc, limits sandbox.Limits, python string) (*Conn, error) {
	spec := &sandbox.Spec{Driver: true, Limits: limits, Python: python, Lifetime: 24 * time.Hour}
	// ctx bounds the wait, not the sandbox: a Conn outlives the request
	// that made it (a session made on a pool miss).
	box, err := start(context.WithoutCancel(ctx), spec)
	if err != nil {
		return nil, err
	}
	w, r := box.Control()
	c := &Conn{box: box, limits: limits, w: w, replies: make(chan driver.Reply, 4), Made: time.Now()}
	go c.readReplies(r)
	// The driver's start is the interpreter's start-up: bounded like a
	// program's, by the timeout.
	timer := time.NewTimer(max(limits.Timeout, 10*time.Second))
	defer timer.Stop()
	select {
	case rep, ok := <-c.replies:
		if ok && rep.Type == "ready" {
			c.Python = rep.Python
			return c, nil
		}
		c.Close()
		return nil, fmt.Errorf("%w: it did not announce itself (%q)", ErrDriver, rep.Type)
	case <-timer.C:
		c.Close()
		return nil, fmt.Errorf("%w: not ready after %s", ErrDriver, max(limits.Timeout, 10*time.Second))
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	case <-box.Done():
		res, err := box.Wait()
		if err == nil && res != nil {
			err = fmt.Errorf("%w: it exited (%s) before it was ready: %s", ErrDriver, res.Status, sandbox.FirstLine(res.Stderr))
		}
		return nil, err
	}
}

// readReplies turns the reply pipe into frames until it closes. A frame
// that does not parse ends the stream: the program broke the protocol (it
// shares the process with the driver), and the session is over.
func (c *Conn) readReplies(r io.Reader) {
	defer close(c.replies)
	for {
		var rep driver.Reply
		if err := driver.ReadFrame(r, &rep); err != nil {
			return
		}
		select {
		case c.replies <- rep:
		case <-c.box.Done():
			return
		}
	}
}

func (c *Conn) send(req *driver.Request) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return errors.New("request pipe closed")
	}
	return driver.WriteFrame(c.w, req)
}

// closeRequests tells the driver that no request follows.
func (c *Conn) closeRequests() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.closed {
		c.closed = true
		c.w.Close()
	}
}

// Close kills the sandbox and waits until it is torn down.
func (c *Conn) Close() {
	c.box.Kill(sandbox.StatusKilled)
	<-c.box.Done()
}

// Limits are the limits the sandbox was made with.
func (c *Conn) Limits() sandbox.Limits { return c.limits }

// Box is the sandbox behind the Conn.
func (c *Conn) Box() Box { return c.box }

// Run executes spec's code once as __main__, as `pybox run` would, and
// destroys the sandbox. spec.Limits must be the Conn's (the sandbox was
// made with them); spec.Stdout and spec.Stderr receive live output.
func (c *Conn) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	if err := spec.Validate(); err != nil {
		c.Close()
		return nil, err
	}
	if len(spec.Files) > 0 {
		c.Close()
		return nil, fmt.Errorf("%w: input files need a cold sandbox", sandbox.ErrInvalidSpec)
	}
	lim := c.limits
	before, _ := c.box.Usage()
	t0 := time.Now()
	stdout := sandbox.NewCapture(lim.MaxOutputBytes, spec.Stdout)
	stderr := sandbox.NewCapture(lim.MaxOutputBytes, spec.Stderr)
	// The driver ends the program's output with markers and its exit
	// status (see driver.Request.Sync): the result is then known without
	// waiting for the process to exit. Without them (the program moved
	// its stdout, or was killed) the sandbox's own result is used.
	nonce := newID()
	end := newEndWatch()
	outSplit, errSplit := driver.NewSplitter(end.trailer), driver.NewSplitter(nil)
	outSplit.Begin(driver.SyncMarker(nonce), writeTo(stdout), end.outMarker)
	errSplit.Begin(driver.SyncMarker(nonce), writeTo(stderr), end.errMarker)
	// The sandbox watches the totals for floods: give it the captures'.
	c.box.SetOutput(counted{outSplit, stdout}, counted{errSplit, stderr})
	c.box.SetDeadline(lim.Timeout)
	stop := context.AfterFunc(ctx, func() { c.box.Kill(sandbox.StatusKilled) })
	defer stop()
	filename := spec.Filename
	if filename == "" {
		filename = "main.py"
	}
	if err := c.send(&driver.Request{Op: "run", Code: string(spec.Code), Filename: filename, Args: spec.Args, Sync: nonce}); err != nil {
		// The sandbox died before it got the code; what it says is why.
		c.box.Kill(sandbox.StatusKilled)
	}
	c.closeRequests()
	ended := make(chan struct{})
	go func() {
		c.box.Wait() //nolint:errcheck // read again below
		close(ended)
	}()
	select {
	case status := <-end.done:
		// Everything the program wrote is in; it is exiting. Account for it
		// now and let the sandbox go.
		usage, _ := c.box.Usage()
		c.box.Kill(sandbox.StatusKilled)
		res := &sandbox.Result{WallMS: sandbox.Millis(time.Since(t0)), Layers: c.box.Layers(),
			CPUMS: max(0, sandbox.Millis(usage.CPU-before.CPU)), PeakMemoryBytes: usage.PeakMemoryBytes}
		fillOutput(res, stdout, stderr)
		res.Exited(status, usage.OOMKills-before.OOMKills, lim)
		return res, nil
	case <-ended:
	}
	res, err := c.box.Wait()
	if err != nil {
		return nil, err
	}
	// The output went through the splitters, not to the sandbox's own
	// captures: all of it is in (the sandbox has ended), with any bytes
	// held back as a possible marker.
	outSplit.Close()
	errSplit.Close()
	fillOutput(res, stdout, stderr)
	if (res.Status == sandbox.StatusOK || res.Status == sandbox.StatusError) && (res.StdoutTruncated || res.StderrTruncated) {
		res.Status, res.Message = sandbox.StatusOutputLimit, sandbox.TruncatedMessage(lim)
	}
	// Account for the execution, not the sandbox's life in the pool.
	res.WallMS = sandbox.Millis(time.Since(t0))
	res.SetupMS = 0
	res.CPUMS = max(0, res.CPUMS-sandbox.Millis(before.CPU))
	return res, nil
}

// fillOutput puts the captured output in res, live output flushed first.
func fillOutput(res *sandbox.Result, stdout, stderr *sandbox.Capture) {
	stdout.FlushLive()
	stderr.FlushLive()
	res.SetOutput(stdout, stderr)
}

// counted is a splitter whose stream total is its capture's, so that a
// backend's flood check (which reads Total) still works through it.
type counted struct {
	*driver.Splitter
	c *sandbox.Capture
}

func (c counted) Total() int64 { return c.c.Total() }

func writeTo(w io.Writer) func([]byte) {
	return func(p []byte) { w.Write(p) } //nolint:errcheck // Captures never fail
}

// endWatch follows the end markers of a run on both streams: done gets the
// exit status once the stderr marker and the stdout marker with its
// trailer have passed. Only the drain goroutines call it.
type endWatch struct {
	mu         sync.Mutex
	out, err   bool   // the markers seen
	trail      []byte // bytes after the stdout marker, up to its NUL
	status     int
	haveStatus bool
	parsed     bool
	sent       bool
	done       chan int
}

func newEndWatch() *endWatch { return &endWatch{done: make(chan int, 1)} }

func (e *endWatch) outMarker() { e.mu.Lock(); e.out = true; e.mu.Unlock() }

func (e *endWatch) errMarker() {
	e.mu.Lock()
	e.err = true
	e.fire()
	e.mu.Unlock()
}

// trailer gets the stdout bytes that follow the marker (and anything the
// program's leftovers write after it, which is dropped).
func (e *endWatch) trailer(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.out || e.parsed {
		return
	}
	e.trail = append(e.trail, p...)
	status, complete, ok := driver.EndTrailer(e.trail)
	if !ok {
		e.parsed = true // not ours: wait for the exit instead
		return
	}
	if complete {
		e.status, e.parsed, e.haveStatus = status, true, true
		e.trail = nil
		e.fire()
	}
}

func (e *endWatch) fire() {
	if e.sent || !e.err || !e.haveStatus {
		return
	}
	e.sent = true
	e.done <- e.status
}

// Adapt turns a backend's Start method into a StartFunc.
func Adapt[B Box](start func(context.Context, *sandbox.Spec, io.Writer, io.Writer) (B, error)) StartFunc {
	return func(ctx context.Context, spec *sandbox.Spec) (Box, error) {
		b, err := start(ctx, spec, nil, nil)
		if err != nil {
			return nil, err // not b: a nil *T in an interface is not nil
		}
		return b, nil
	}
}
