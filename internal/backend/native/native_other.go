//go:build !linux

package native

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Backend is unavailable outside Linux.
type Backend struct{}

// Interpreter describes a host Python installation.
type Interpreter struct{ Real, Version string }

// Description is what doctor reports.
type Description struct{}

// New fails: namespaces, seccomp and Landlock are Linux mechanisms.
func New(Config) (*Backend, error) {
	return nil, errors.Join(sandbox.ErrUnavailable, errors.ErrUnsupported)
}

// Name implements sandbox.Backend.
func (*Backend) Name() string { return "native" }

// Run implements sandbox.Backend.
func (*Backend) Run(context.Context, *sandbox.Spec) (*sandbox.Result, error) {
	return nil, errors.ErrUnsupported
}

// Interpreter is unavailable.
func (*Backend) Interpreter(context.Context, string) (*Interpreter, error) {
	return nil, errors.ErrUnsupported
}

// Describe is unavailable.
func (*Backend) Describe() Description { return Description{} }

// Sandbox is unavailable outside Linux; its methods are those of the Linux
// build, so that the packages using it build everywhere.
type Sandbox struct{}

// Start is unavailable.
func (*Backend) Start(context.Context, *sandbox.Spec, io.Writer, io.Writer) (*Sandbox, error) {
	return nil, errors.ErrUnsupported
}

// SweepLeftovers is unavailable.
func (*Backend) SweepLeftovers(time.Duration) int { return 0 }

func (*Sandbox) Control() (io.WriteCloser, io.ReadCloser) { return nil, nil }
func (*Sandbox) SetOutput(io.Writer, io.Writer)           {}
func (*Sandbox) SetDeadline(time.Duration)                {}
func (*Sandbox) Kill(sandbox.Status)                      {}
func (*Sandbox) Usage() (sandbox.Usage, error)            { return sandbox.Usage{}, errors.ErrUnsupported }
func (*Sandbox) Layers() sandbox.Layers                   { return sandbox.Layers{} }
func (*Sandbox) RootPath() string                         { return "" }
func (*Sandbox) FileOwner() (uid, gid int)                { return -1, -1 }
func (*Sandbox) Done() <-chan struct{}                    { return nil }
func (*Sandbox) Wait() (*sandbox.Result, error)           { return nil, errors.ErrUnsupported }

// Forker is unavailable.
type Forker struct{}

// NewForker is unavailable.
func (*Backend) NewForker(sandbox.Limits, string) *Forker { return &Forker{} }

// Start is unavailable.
func (*Forker) Start(context.Context, *sandbox.Spec, io.Writer, io.Writer) (*Sandbox, error) {
	return nil, errors.ErrUnsupported
}

// Close does nothing.
func (*Forker) Close() {}
