package docker

import (
	"log/slog"
	"syscall"
)

// Config configures the docker backend. The zero value is usable: the
// daemon from DOCKER_HOST (or the default socket), DefaultImage, runc.
type Config struct {
	// Image is the base image: anything with a python3 on PATH, for
	// example python:3.12-slim where a registry is reachable, or what
	// `pybox image build` made. pybox derives its runtime image from it
	// once (adding /pybox with the relay and the driver). Default
	// DefaultImage.
	Image string
	// Runtime is the OCI runtime the daemon uses: "" (the daemon's
	// default, normally runc), "runc", or "runsc" (gVisor) where installed.
	Runtime string
	// UID and GID are what the sandboxed program runs as; 0 means the
	// default, DefaultUID. It should be no account of the host (without
	// user-namespace remapping a container's ids are the host's).
	UID, GID int
	// SeccompErrno is what denied system calls return; default EPERM. The
	// conformance tests set a value no kernel path returns.
	SeccompErrno syscall.Errno
	// Host overrides DOCKER_HOST (for example unix:///run/docker.sock).
	Host string
	// StateDir holds what a local daemon binds into every container (a
	// minimal /dev, an empty /sys); default /var/lib/pybox/docker. It must
	// be on a file system that allows device nodes.
	StateDir string
	// Logger receives debug records and teardown errors.
	Logger *slog.Logger
}

const (
	// DefaultImage is what `pybox image build` tags.
	DefaultImage = "pybox-python:latest"
	// DefaultUID: a uid that no distribution hands out to accounts, and
	// below native's default range (1000000000 onwards).
	DefaultUID = 999_999_000
	// outputKillFactor: a stream that passes this many times the output
	// cap is a flood, and the sandbox is killed (as native does).
	outputKillFactor = 8
	// cpuPeriod is the CFS period of the CPU quota, as native's.
	cpuPeriod = 250_000
)
