//go:build linux

package native

import (
	"strings"
	"testing"
)

// doctor proves each layer from inside a real sandbox. As root on this
// kind of machine every layer must be active; unprivileged, the missing
// cgroup delegation must be reported as degraded, never as active.
func TestDoctor(t *testing.T) {
	requireRoot(t)
	bin := buildPybox(t)
	layers := []string{"user namespace", "pid namespace", "mount namespace", "net namespace", "ipc namespace",
		"uts namespace", "cgroup namespace", "seccomp", "no_new_privs", "capabilities", "landlock", "cgroup", "privileges", "rlimits",
		"warm path"}

	t.Run("root", func(t *testing.T) {
		r := runAs(t, 0, t.TempDir(), "", bin, "doctor")
		if r.code != 0 {
			t.Fatalf("pybox doctor exited %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, l := range layers {
			if !hasLine(r.stdout, l, "active") {
				t.Errorf("layer %q is not reported active:\n%s", l, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "mode 2 in the sandbox") || !strings.Contains(r.stdout, "runs as host uid") {
			t.Errorf("doctor does not show what it verified:\n%s", r.stdout)
		}
		if !strings.Contains(r.stdout, "a forked sandbox has its own pid, mount") || !strings.Contains(r.stdout, "each runs as host uids of its own") {
			t.Errorf("doctor does not say what it verified of the warm path:\n%s", r.stdout)
		}
		// Without the fork server, it says how warm sandboxes are made.
		r = runAs(t, 0, t.TempDir(), "", bin, "doctor", "--warm-mode", "exec")
		if !hasLine(r.stdout, "warm path", "info") || !strings.Contains(r.stdout, "--warm-mode exec") {
			t.Errorf("doctor --warm-mode exec:\n%s", r.stdout)
		}
	})

	t.Run("unprivileged", func(t *testing.T) {
		r := runAs(t, nobodyUID, nobodyDir(t), "", bin, "doctor", "--python", debianPython)
		if r.code != 1 {
			t.Errorf("unprivileged doctor exited %d, want 1 (a layer is degraded):\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !hasLine(r.stdout, "warm path", "info") || !strings.Contains(r.stdout, "no fork server without cgroups") {
			t.Errorf("unprivileged doctor does not say that there is no fork server:\n%s", r.stdout)
		}
		if !hasLine(r.stdout, "cgroup", "degraded") || !hasLine(r.stdout, "privileges", "degraded") {
			t.Errorf("missing cgroups and rootless mode must be reported as degraded:\n%s", r.stdout)
		}
		for _, l := range []string{"user namespace", "pid namespace", "mount namespace", "net namespace", "seccomp", "landlock", "capabilities"} {
			if !hasLine(r.stdout, l, "active") {
				t.Errorf("layer %q is not reported active unprivileged:\n%s", l, r.stdout)
			}
		}
	})
}

// hasLine reports whether out has a line for layer with the given state.
func hasLine(out, layer, state string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, layer+" ") && len(strings.Fields(strings.TrimPrefix(line, layer))) > 0 &&
			strings.Fields(strings.TrimPrefix(line, layer))[0] == state {
			return true
		}
	}
	return false
}
