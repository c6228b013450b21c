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
	c.box.SetOutput(stdout, stderr)
	c.box.SetDeadline(lim.Timeout)
	stop := context.AfterFunc(ctx, func() { c.box.Kill(sandbox.StatusKilled) })
	defer stop()
	filename := spec.Filename
	if filename == "" {
		filename = "main.py"
	}
	if err := c.send(&driver.Request{Op: "run", Code: string(spec.Code), Filename: filename, Args: spec.Args}); err != nil {
		// The sandbox died before it got the code; what it says is why.
		c.box.Kill(sandbox.StatusKilled)
	}
	c.closeRequests()
	res, err := c.box.Wait()
	if err != nil {
		return nil, err
	}
	// Account for the execution, not the sandbox's life in the pool.
	res.WallMS = sandbox.Millis(time.Since(t0))
	res.SetupMS = 0
	res.CPUMS = max(0, res.CPUMS-sandbox.Millis(before.CPU))
	return res, nil
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
