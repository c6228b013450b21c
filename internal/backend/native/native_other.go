//go:build !linux

package native

import (
	"context"
	"errors"

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
