//go:build linux

package native

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/sandboxtest"
	"github.com/pybox-dev/pybox/internal/session"
	"golang.org/x/sys/unix"
)

// forkBackend runs every program in a sandbox forked by a fork server (one
// per interpreter), as the warm path does: the security and compatibility
// suites then prove forked sandboxes as they prove cold ones. Cases that
// need what a forked sandbox does not offer (input files, a larger
// scratch) run cold.
type forkBackend struct {
	b      *Backend
	limits sandbox.Limits
	mu     sync.Mutex
	zs     map[string]*Zygote
}

func (f *forkBackend) Name() string { return "native" }

func (f *forkBackend) zygote(ctx context.Context, python string) (*Zygote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if z := f.zs[python]; z != nil {
		select {
		case <-z.Done():
		default:
			return z, nil
		}
	}
	z, err := f.b.StartZygote(ctx, f.limits, python)
	if err != nil {
		return nil, err
	}
	f.zs[python] = z
	return z, nil
}

// groups are the cgroups of the fork servers, which live on purpose.
func (f *forkBackend) groups() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, z := range f.zs {
		data, _ := os.ReadFile("/proc/" + strconv.Itoa(z.sb.hostPID) + "/cgroup")
		for _, line := range strings.Split(string(data), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && strings.Contains(parts[2], "pybox-") {
				out = append(out, parts[2])
			}
		}
	}
	return out
}

func (f *forkBackend) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, z := range f.zs {
		z.Close()
	}
}

func (f *forkBackend) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	if len(spec.Files) > 0 || spec.Limits.TmpfsBytes > f.limits.TmpfsBytes {
		return f.b.Run(ctx, spec)
	}
	z, err := f.zygote(ctx, spec.Python)
	if err != nil {
		return nil, err
	}
	start := func(ctx context.Context, s *sandbox.Spec) (session.Box, error) {
		sb, err := z.Spawn(ctx, s, nil, nil)
		if err != nil {
			return nil, err
		}
		return sb, nil
	}
	conn, err := session.Dial(ctx, start, spec.Limits, spec.Python)
	if err != nil {
		return nil, err
	}
	return conn.Run(ctx, spec)
}

func newForkEnv(t *testing.T, errno unix.Errno) (*sandboxtest.Env, *forkBackend) {
	t.Helper()
	requireRoot(t)
	b := newBackend(t, errno)
	lim := sandbox.DefaultLimits()
	lim.Timeout = 30 * time.Second
	f := &forkBackend{b: b, limits: lim, zs: map[string]*Zygote{}}
	t.Cleanup(f.close)
	return &sandboxtest.Env{
		Backend:      f,
		Python:       defaultPython(t),
		BlockedErrno: int(errno),
		Canaries:     sandboxtest.PlantCanaries(t),
		PostCheck:    postCheckExcept(b, f.groups),
		Limits:       sandbox.DefaultLimits(),
	}, f
}

func TestForkedSecurity(t *testing.T) {
	env, _ := newForkEnv(t, testErrno)
	sandboxtest.RunSecurity(t, env, sandboxtest.SecurityCases())
}

func TestForkedCompatibility(t *testing.T) {
	env, _ := newForkEnv(t, unix.EPERM)
	sandboxtest.RunCompat(t, env, sandboxtest.CompatCases(debianPython))
}
