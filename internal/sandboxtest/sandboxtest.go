// Package sandboxtest is the backend-neutral conformance kit: attack
// programs with their positive controls, compatibility programs, host
// canaries, and the runner that holds any sandbox.Backend to them. The
// suites are written once; each backend's tests call RunSecurity and
// RunCompat with an Env describing the backend under test.
package sandboxtest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Effect is the marker an attack program prints when its effect happened
// (a secret was read, a write landed, a call reached the kernel). The
// sandboxed run must never print it; the bare control must.
const Effect = "EFFECT:"

// Env is the backend under test and what the runner needs to know of it.
type Env struct {
	Backend sandbox.Backend
	// Python is the interpreter the sandbox runs, also used bare for the
	// positive controls.
	Python string
	// BlockedErrno is what the backend's seccomp filter returns for a
	// denied call (a distinctive value in tests).
	BlockedErrno int
	// Canaries planted on the host for the whole suite.
	Canaries *Canaries
	// PostCheck verifies host post-conditions after each case (no leaked
	// processes, cgroups, files, mounts, fds). It may be nil.
	PostCheck func(t *testing.T)
	// Limits are the base limits; a case may adjust them.
	Limits sandbox.Limits
}

// Case is one attack or compatibility program.
type Case struct {
	Name  string
	Class string
	// Code is a Python program template; see Expand for its placeholders.
	Code string
	// Control is the bare twin run on the host without the sandbox (in a
	// throwaway directory) to prove the attack works where nothing stops
	// it. Empty means Code itself. "-" means the case has no meaningful
	// bare control (documented with Why).
	Control string
	// Why explains a case that is not obvious, or why it has no control.
	Why string
	// Limits adjusts the sandbox limits for this case.
	Limits func(*sandbox.Limits)
	// Statuses the sandboxed run may end with; empty means any status.
	Statuses []sandbox.Status
	// Check, if set, makes further assertions on the sandboxed result.
	Check func(t *testing.T, r *sandbox.Result)
	// Want is a substring the sandboxed stdout must contain
	// (compatibility cases).
	Want string
	// Python overrides Env.Python for this case (for example Debian's
	// interpreter for numpy).
	Python string
	// Files are placed read-only into the sandbox.
	Files []sandbox.File
}

// Expand fills a program template. Placeholders:
//
//	{{CANARY}}           the secret string planted in every canary
//	{{CANARY_FILE}}      a root-only host file holding the secret
//	{{CANARY_ENV}}       the name of an environment variable of the host process
//	{{CANARY_PORT}}      a TCP port listening on host 127.0.0.1
//	{{CANARY_UNIX}}      a host unix socket path
//	{{CANARY_ABSTRACT}}  a host abstract unix socket name (without the NUL)
//	{{BLOCKED_ERRNO}}    the errno seccomp returns for denied calls
//	{{SCRATCH}}          a writable directory (/tmp in the sandbox)
//	{{PRELUDE}}          helpers: sc(nr, *args) -> errno, effect(msg), reached(nr, ...), try_open(paths, flags, what)
func (e *Env) Expand(code, scratch string) string {
	c := e.Canaries
	code = strings.ReplaceAll(code, "{{PRELUDE}}", Prelude)
	r := strings.NewReplacer(
		"{{CANARY}}", c.Secret,
		"{{CANARY_FILE}}", c.File,
		"{{CANARY_ENV}}", c.EnvVar,
		"{{CANARY_PORT}}", fmt.Sprint(c.Port),
		"{{CANARY_UNIX}}", c.UnixPath,
		"{{CANARY_ABSTRACT}}", c.Abstract,
		"{{BLOCKED_ERRNO}}", fmt.Sprint(e.BlockedErrno),
		"{{SCRATCH}}", scratch,
	)
	return r.Replace(code)
}

// Prelude is Python that attack programs may include with {{PRELUDE}}.
// sc() calls a raw syscall and returns 0 or the errno, so a case can tell
// a call that reached the kernel (EFAULT, EBADF, EINVAL, ...) from one the
// filter blocked (BLOCKED_ERRNO).
const Prelude = `
import ctypes, os, sys
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return 0 if r != -1 else ctypes.get_errno()
BLOCKED = {{BLOCKED_ERRNO}}
def effect(msg):
    print("EFFECT: " + str(msg), flush=True)
def try_open(paths, flags, what):
    """Open each path with flags; print EFFECT (what % path) for each that opens."""
    for p in paths:
        try:
            fd = os.open(p, flags)
        except OSError as e:
            print(p, "->", e.strerror)
            continue
        os.close(fd)
        effect(what % p)
def reached(nr, *args, label=None):
    """Print EFFECT if the syscall got past the filter to the kernel."""
    e = sc(nr, *args)
    if e != BLOCKED:
        effect("%s reached the kernel (errno %d)" % (label or nr, e))
    else:
        print("blocked:", label or nr)
`

// RunControl runs code bare on the host, in a fresh temporary directory,
// with the test process's environment (so the environment canary is
// visible), and returns its combined output.
func (e *Env) RunControl(t *testing.T, python, code string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-c", e.Expand(code, dir))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run() //nolint:errcheck // the output is what matters
	return out.String()
}

// RunSandboxed runs code in the backend and returns the result.
func (e *Env) RunSandboxed(t *testing.T, c *Case) *sandbox.Result {
	t.Helper()
	lim := e.Limits
	if c.Limits != nil {
		c.Limits(&lim)
	}
	python := e.Python
	if c.Python != "" {
		python = c.Python
	}
	spec := &sandbox.Spec{Code: []byte(e.Expand(c.Code, "/tmp")), Python: python, Limits: lim, Files: c.Files}
	ctx, cancel := context.WithTimeout(context.Background(), lim.Timeout+60*time.Second)
	defer cancel()
	res, err := e.Backend.Run(ctx, spec)
	if err != nil {
		t.Fatalf("backend.Run: %v", err)
	}
	return res
}

// RunSecurity runs attack cases. For each: the positive control must show
// the effect bare; the sandboxed run must not, must not leak any canary,
// must end with an allowed status, and the host post-conditions must hold.
func RunSecurity(t *testing.T, e *Env, cases []Case) {
	seen := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		if seen[c.Name] {
			t.Fatalf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		t.Run(c.Class+"/"+c.Name, func(t *testing.T) {
			if c.Control != "-" {
				control := c.Control
				if control == "" {
					control = c.Code
				}
				python := e.Python
				if c.Python != "" {
					python = c.Python
				}
				out := e.RunControl(t, python, control)
				if !strings.Contains(out, Effect) {
					t.Fatalf("positive control did not show the effect, so this case proves nothing.\ncontrol output:\n%s", clip(out))
				}
			}
			before := e.Canaries.settle()
			res := e.RunSandboxed(t, c)
			combined := res.Stdout + res.Stderr
			if strings.Contains(combined, Effect) {
				t.Errorf("ATTACK SUCCEEDED inside the sandbox (status %s):\n%s", res.Status, clip(combined))
			}
			if leak := e.Canaries.Find(combined); leak != "" {
				t.Errorf("canary leaked (%s) into sandbox output:\n%s", leak, clip(combined))
			}
			if n := e.Canaries.Accepted() - before; n > 0 {
				t.Errorf("a host canary socket accepted %d connection(s) from the sandbox", n)
			}
			if res.Signal == "SIGSYS" && !strings.Contains(c.Why, "SIGSYS") {
				t.Errorf("sandboxed program died of SIGSYS; pybox's filter must answer with an errno")
			}
			if len(c.Statuses) > 0 && !hasStatus(c.Statuses, res.Status) {
				t.Errorf("status %q, want one of %v (message %q)\noutput:\n%s", res.Status, c.Statuses, res.Message, clip(combined))
			}
			if c.Check != nil {
				c.Check(t, res)
			}
			if e.PostCheck != nil {
				e.PostCheck(t)
			}
		})
	}
}

// RunCompat runs compatibility cases: each must exit 0 with Want in its
// output, and never die of a signal.
func RunCompat(t *testing.T, e *Env, cases []Case) {
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			res := e.RunSandboxed(t, c)
			if res.Status != sandbox.StatusOK {
				t.Errorf("status %q (exit %d, signal %q, %s), want ok\nstdout:\n%s\nstderr:\n%s",
					res.Status, res.ExitCode, res.Signal, res.Message, clip(res.Stdout), clip(res.Stderr))
			}
			if res.Signal != "" {
				t.Errorf("killed by %s", res.Signal)
			}
			if c.Want != "" && !strings.Contains(res.Stdout, c.Want) {
				t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s", c.Want, clip(res.Stdout), clip(res.Stderr))
			}
			if c.Check != nil {
				c.Check(t, res)
			}
			if e.PostCheck != nil {
				e.PostCheck(t)
			}
		})
	}
}

func hasStatus(list []sandbox.Status, s sandbox.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:2000] + "\n...[clipped]...\n" + s[len(s)-2000:]
	}
	return s
}
