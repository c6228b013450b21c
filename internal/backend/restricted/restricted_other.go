//go:build !linux

package restricted

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

var _ sandbox.Backend = (*Backend)(nil)

// Backend is unavailable outside Linux.
type Backend struct{}

// New fails: the backend's helper and its process handling are Linux's.
func New(Config) (*Backend, error) {
	return nil, errors.Join(sandbox.ErrUnavailable, errors.ErrUnsupported)
}

// Name implements sandbox.Backend.
func (*Backend) Name() string { return "restricted" }

// Layers reports nothing: nothing runs.
func (*Backend) Layers() sandbox.Layers { return sandbox.Layers{Backend: "restricted"} }

// Run implements sandbox.Backend.
func (*Backend) Run(context.Context, *sandbox.Spec) (*sandbox.Result, error) {
	return nil, errors.ErrUnsupported
}

// Process is unavailable outside Linux; its methods are those of the Linux
// build, so that the packages using it build everywhere.
type Process struct{}

// Start is unavailable.
func (*Backend) Start(context.Context, *sandbox.Spec, io.Writer, io.Writer) (*Process, error) {
	return nil, errors.ErrUnsupported
}

func (*Process) Control() (io.WriteCloser, io.ReadCloser) { return nil, nil }
func (*Process) SetOutput(io.Writer, io.Writer)           {}
func (*Process) SetDeadline(time.Duration)                {}
func (*Process) Kill(sandbox.Status)                      {}
func (*Process) Usage() (sandbox.Usage, error)            { return sandbox.Usage{}, errors.ErrUnsupported }
func (*Process) Layers() sandbox.Layers                   { return sandbox.Layers{} }
func (*Process) RootPath() string                         { return "" }
func (*Process) FileOwner() (uid, gid int)                { return -1, -1 }
func (*Process) Done() <-chan struct{}                    { return nil }
func (*Process) Wait() (*sandbox.Result, error)           { return nil, errors.ErrUnsupported }
