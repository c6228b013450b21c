//go:build !linux

package docker

import (
	"errors"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// hostCgroup is Linux's fast path to a local container's counters; on
// other systems the daemon runs in a VM and the stats API answers.
type hostCgroup struct{}

func openHostCgroup(pid int) (*hostCgroup, error) { return nil, errors.ErrUnsupported }

func (g *hostCgroup) usage() (sandbox.Usage, error) { return sandbox.Usage{}, errors.ErrUnsupported }
