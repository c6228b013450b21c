package sandboxtest

import (
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// SecurityCases are the attack programs, one group per class of
// shared/docs/security-testing.md. Each prints Effect when its attack
// worked; see Case for the contract and Expand for placeholders.
//
// Conventions of the groups (security_<class>.go):
//   - A line that prints the Effect marker must not be able to raise:
//     a traceback quotes the failing line, and a quoted marker would
//     read as a success. Programs call effect() from the Prelude.
//   - Controls run bare as root on the test machine. They never write,
//     chmod, chown or delete outside {{SCRATCH}}, never send traffic but
//     to 127.0.0.1, never signal a process they did not start, and probe
//     dangerous calls (mount, reboot, kexec, modules) only with arguments
//     the kernel rejects before doing anything.
//   - The sandboxed program, where the real attack would harm the host
//     if containment failed (sysctl writes, host binaries), stops at the
//     step that proves the breach (an open for writing) and does not
//     carry out the damage.
//
// PythonCases are the Python-level tricks alone (also in SecurityCases):
// the static policy's tests check which it catches, while the security
// suite checks that the kernel contains every one of them.
func PythonCases() []Case { return append([]Case(nil), pythonCases...) }

func SecurityCases() []Case {
	var all []Case
	for _, group := range [][]Case{
		hostFileCases,
		writeCases,
		runtimeCases,
		procfsCases,
		networkCases,
		processCases,
		kernelCases,
		resourceCases,
		pythonCases,
		infoLeakCases,
		persistenceCases,
	} {
		all = append(all, group...)
	}
	return all
}

var anyStatus []sandbox.Status

// Helpers for Limits and Check.

// limits returns a Limits adjuster applying the given changes.
func limits(timeout time.Duration, mod func(*sandbox.Limits)) func(*sandbox.Limits) {
	return func(l *sandbox.Limits) {
		if timeout > 0 {
			l.Timeout = timeout
		}
		if mod != nil {
			mod(l)
		}
	}
}

// checks runs several Check functions in turn.
func checks(fs ...func(*testing.T, *sandbox.Result)) func(*testing.T, *sandbox.Result) {
	return func(t *testing.T, r *sandbox.Result) {
		t.Helper()
		for _, f := range fs {
			f(t, r)
		}
	}
}

// messageHas asserts that pybox explained the status in words containing
// one of subs.
func messageHas(subs ...string) func(*testing.T, *sandbox.Result) {
	return func(t *testing.T, r *sandbox.Result) {
		t.Helper()
		for _, s := range subs {
			if strings.Contains(r.Message, s) {
				return
			}
		}
		t.Errorf("status %s: message %q does not say %q", r.Status, r.Message, subs)
	}
}

// wallUnder asserts the run ended within d: pybox neither waited for a
// process that should have died with the sandbox nor overran a timeout.
func wallUnder(d time.Duration) func(*testing.T, *sandbox.Result) {
	return func(t *testing.T, r *sandbox.Result) {
		t.Helper()
		if r.WallMS > float64(d.Milliseconds()) {
			t.Errorf("the run took %.0f ms, want under %s (status %s, %s)", r.WallMS, d, r.Status, r.Message)
		}
	}
}

// stdoutHas asserts that the sandboxed program got as far as printing s
// (so a "contained" verdict is not just a crash before the attack).
func stdoutHas(s string) func(*testing.T, *sandbox.Result) {
	return func(t *testing.T, r *sandbox.Result) {
		t.Helper()
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("stdout lacks %q, so the attack did not run to its end (status %s, %s)\nstdout:\n%s\nstderr:\n%s",
				s, r.Status, r.Message, clip(r.Stdout), clip(r.Stderr))
		}
	}
}

// noSignal asserts the program was not killed by a signal.
func noSignal(t *testing.T, r *sandbox.Result) {
	t.Helper()
	if r.Signal != "" {
		t.Errorf("killed by %s (status %s, %s)", r.Signal, r.Status, r.Message)
	}
}

// Python shared by several programs.

// done is printed by programs when the attack ran to its end; cases
// check for it with stdoutHas(done) so that a crash before the attack does
// not count as containment.
const done = "ATTACK-FINISHED"

const pyFinish = `
print("` + done + `", flush=True)
`
