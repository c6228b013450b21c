//go:build linux

package docker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// testErrno is what the filter returns in the security suite: a value no
// kernel path returns, so "blocked by seccomp" cannot be confused with
// "reached the kernel and failed".
const testErrno = unix.Errno(4000)

// testImage is the base image of the conformance tests: what `pybox image
// build --with-science` makes (Debian's python3 with numpy, pandas and
// matplotlib); PYBOX_DOCKER_IMAGE overrides it.
func testImage() string {
	if img := os.Getenv("PYBOX_DOCKER_IMAGE"); img != "" {
		return img
	}
	return DefaultImage
}

// newBackend connects to the daemon, or skips the test when there is
// none. With PYBOX_REQUIRE_DOCKER=1 (CI) a missing daemon or image fails.
func newBackend(t testing.TB, errno unix.Errno) *Backend {
	t.Helper()
	b, err := New(context.Background(), Config{Image: testImage(), SeccompErrno: errno})
	if err != nil {
		if os.Getenv("PYBOX_REQUIRE_DOCKER") == "1" {
			t.Fatalf("docker backend unavailable, and PYBOX_REQUIRE_DOCKER=1: %v", err)
		}
		t.Skipf("no docker daemon or image here (set PYBOX_REQUIRE_DOCKER=1 to make this a failure): %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func runCode(t *testing.T, b *Backend, code string, mod func(*sandbox.Spec)) *sandbox.Result {
	t.Helper()
	spec := &sandbox.Spec{Code: []byte(code), Limits: sandbox.DefaultLimits()}
	if mod != nil {
		mod(spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := b.Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRunSmoke(t *testing.T) {
	b := newBackend(t, unix.EPERM)
	res := runCode(t, b, "import os, sys\nprint('hello', __file__, os.getuid(), sys.argv[1:])\nprint('err', file=sys.stderr)\nsys.exit(3)", func(s *sandbox.Spec) { s.Args = []string{"a"} })
	if res.Status != sandbox.StatusError || res.ExitCode != 3 || !strings.HasPrefix(res.Stdout, "hello /pybox/main.py 999999000 ['a']") || res.Stderr != "err\n" {
		t.Errorf("%+v", res)
	}
	if res.PeakMemoryBytes <= 0 || res.Layers.Backend != "docker" {
		t.Errorf("peak memory %d, layers %+v", res.PeakMemoryBytes, res.Layers)
	}
	t.Logf("wall %.1f ms setup %.1f ms peak %d", res.WallMS, res.SetupMS, res.PeakMemoryBytes)
}
