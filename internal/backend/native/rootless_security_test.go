//go:build linux

package native

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/sandboxtest"
)

// cliBackend runs sandboxes through the pybox binary as another user, so
// that the conformance kit holds unprivileged mode to the same attacks as
// root mode.
type cliBackend struct {
	bin, home string
	uid       int
	errno     int
}

var _ sandbox.Backend = (*cliBackend)(nil)

func (c *cliBackend) Name() string { return "native (unprivileged, via the CLI)" }

func (c *cliBackend) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	l := spec.Limits
	// The suite attacks the sandbox itself: no static policy in front.
	args := []string{"run", "--json", "--policy", "off", "--python", spec.Python,
		"--memory", fmt.Sprint(l.MemoryBytes), "--cpu", fmt.Sprint(l.CPU), "--timeout", l.Timeout.String(),
		"--pids", fmt.Sprint(l.Pids), "--tmpfs-size", fmt.Sprint(l.TmpfsBytes), "--max-output", fmt.Sprint(l.MaxOutputBytes),
		"--seccomp-errno", fmt.Sprint(c.errno)}
	for _, f := range spec.Files {
		args = append(args, "--file", f.HostPath+":"+f.SandboxPath)
	}
	args = append(args, "-")
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + c.home, "LANG=C.UTF-8"}
	cmd.Dir = c.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.uid), Groups: []uint32{}}}
	cmd.Stdin = bytes.NewReader(spec.Code)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pybox run as uid %d: %v: %s", c.uid, err, errb.String())
	}
	var res sandbox.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("decoding result: %v: %s", err, out.String())
	}
	return &res, nil
}

// unprivilegedClasses are the attack classes whose expectations do not
// depend on cgroups. Resource exhaustion and process limits run on
// rlimits alone when unprivileged, with other statuses; TestRootless
// covers those separately.
var unprivilegedClasses = map[string]bool{
	"host-files": true, "writes": true, "runtime": true, "procfs": true, "network": true,
	"kernel": true, "python": true, "info-leak": true, "persistence": true,
}

// TestRootlessSecurity runs the attack suite through `pybox run` as the
// unprivileged user nobody.
func TestRootlessSecurity(t *testing.T) {
	requireRoot(t)
	requireDebianPython(t)
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Skip("user namespaces are disabled (user.max_user_namespaces = 0)")
	}
	bin := buildPybox(t)
	home := nobodyDir(t)
	env := &rootlessEnv{bin: bin, home: home, baseline: processesOf(nobodyUID)}
	base := snapshot()
	var cases []sandboxtest.Case
	for _, c := range sandboxtest.SecurityCases() {
		if unprivilegedClasses[c.Class] {
			cases = append(cases, c)
		}
	}
	if len(cases) < 60 {
		t.Fatalf("only %d unprivileged cases selected", len(cases))
	}
	sandboxtest.RunSecurity(t, &sandboxtest.Env{
		Backend:      &cliBackend{bin: bin, home: home, uid: nobodyUID, errno: int(testErrno)},
		Python:       debianPython,
		BlockedErrno: int(testErrno),
		Canaries:     sandboxtest.PlantCanaries(t),
		Limits:       sandbox.DefaultLimits(),
		PostCheck: func(t *testing.T) {
			env.noLeftovers(t)
			if now := snapshot(); now.mounts != base.mounts {
				t.Errorf("host mounts: %d, baseline %d", now.mounts, base.mounts)
			}
		},
	}, cases)
}
