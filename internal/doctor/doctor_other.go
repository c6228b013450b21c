//go:build !linux

package doctor

import (
	"context"
	"runtime"

	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Run reports that the native backend needs Linux.
func Run(context.Context, native.Config, string, sandbox.Limits, string) []Check {
	return []Check{{"native backend", Unavailable, "needs Linux; this is " + runtime.GOOS}}
}
