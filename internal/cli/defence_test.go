//go:build linux

package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/audit"
	"github.com/pybox-dev/pybox/internal/server"
)

// runPybox runs the pybox binary and returns its stdout, stderr and exit
// code.
func runPybox(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("pybox %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// runArgs are the flags of a pybox run in these tests: a uid range of
// their own.
func runArgs(extra ...string) []string {
	return append([]string{"run", "--uid-base", "1900000000", "--uid-slots", "16"}, extra...)
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs sandboxes as root (CI does)")
	}
}

// pybox run applies the static policy (strict by default) before any
// sandbox: exit 126 and the reasons, or a policy_violation result.
func TestRunPolicy(t *testing.T) {
	requireRoot(t)
	out, errOut, code := runPybox(t, "", runArgs("-c", "print('ran')\nimport socket\n")...)
	if code != exitPolicy || out != "" || !strings.Contains(errOut, "line 2:8: Importing \"socket\" is not allowed: the sandbox has no network") ||
		!strings.Contains(errOut, "import socket") {
		t.Errorf("strict: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = runPybox(t, "", runArgs("--json", "-c", "eval('1')")...)
	var res api.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Status != api.StatusPolicyViolation ||
		len(res.Violations) != 1 || res.Violations[0].Rule != "call-denied" {
		t.Errorf("--json: exit %d, %v, %+v", code, err, res)
	}
	// Positive controls: standard lets os through, off lets everything.
	if out, errOut, code := runPybox(t, "", runArgs("--policy", "standard", "-c", "import os; print(os.getcwd())")...); code != 0 || out != "/tmp\n" {
		t.Errorf("standard: exit %d %q %q", code, out, errOut)
	}
	if out, errOut, code := runPybox(t, "", runArgs("--policy", "off", "-c", "import socket; print('imported')")...); code != 0 || out != "imported\n" {
		t.Errorf("off: exit %d %q %q", code, out, errOut)
	}
	// Code the parser cannot read is refused, not waved through.
	if _, errOut, code := runPybox(t, "", runArgs("-c", "def f(:\n  pass")...); code != exitPolicy || !strings.Contains(errOut, "could not be parsed") {
		t.Errorf("unparsable: exit %d %q", code, errOut)
	}
}

func TestRunCodeLimits(t *testing.T) {
	requireRoot(t)
	_, errOut, code := runPybox(t, "", runArgs("--policy", "off", "--max-code-lines", "3", "-c", "a=1\nb=2\nc=3\nd=4")...)
	if code != exitUsage || !strings.Contains(errOut, "the code has 4 lines; --max-code-lines is 3") {
		t.Errorf("lines: exit %d %q", code, errOut)
	}
	_, errOut, code = runPybox(t, strings.Repeat("#", 100), runArgs("--max-code-size", "64", "-")...)
	if code != exitUsage || !strings.Contains(errOut, "larger than --max-code-size (64 bytes)") {
		t.Errorf("size: exit %d %q", code, errOut)
	}
}

// Runs that share an audit log take turns, and the chain holds.
func TestRunAudit(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "audit")
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runPybox(t, "", runArgs("--audit-dir", dir, "--policy", "off", "-c", "print(1)")...)
		}()
	}
	wg.Wait()
	runPybox(t, "", runArgs("--audit-dir", dir, "--audit-keep-code", "-c", "import socket")...)
	out, errOut, code := runPybox(t, "", "audit", "verify", "--dir", dir)
	if code != 0 || !strings.Contains(out, "ok: 5 records") {
		t.Fatalf("verify: exit %d %q %q", code, out, errOut)
	}
	f, err := os.Open(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		json.Unmarshal(sc.Bytes(), &r) //nolint:errcheck
		recs = append(recs, r)
	}
	executed := 0
	for _, r := range recs[:4] {
		if r.Outcome == audit.OutcomeExecuted && r.Status == "ok" && r.ExitCode != nil && *r.ExitCode == 0 && r.Layers != nil && r.Code == "" {
			executed++
		}
	}
	last := recs[4]
	if executed != 4 || last.Outcome != audit.OutcomeRejected || last.Reason != "policy" || last.Code != "import socket" ||
		!strings.HasPrefix(last.Tenant, "cli:") {
		t.Errorf("records %+v", recs)
	}
}

func TestKeyCommands(t *testing.T) {
	out, _, code := runPybox(t, "", "key", "new", "--tenant", "alice")
	var key, sum string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "key: "); ok {
			key = v
		}
		if v, ok := strings.CutPrefix(l, "sha256: "); ok {
			sum = v
		}
	}
	if code != 0 || !strings.HasPrefix(key, server.KeyPrefix) || len(key) < 40 || sum != server.HashKey(key) ||
		!strings.Contains(out, `{"tenant":"alice","sha256":"`+sum+`"}`) {
		t.Fatalf("key new: exit %d\n%s", code, out)
	}
	if out, _, code := runPybox(t, key+"\n", "key", "hash"); code != 0 || strings.TrimSpace(out) != sum {
		t.Errorf("key hash: exit %d %q, want %s", code, out, sum)
	}
	if _, _, code := runPybox(t, "", "key", "hash"); code != exitUsage {
		t.Errorf("key hash of nothing: exit %d", code)
	}
}

// pybox serve refuses to start without keys unless told, loudly, to run
// open.
func TestServeNeedsKeys(t *testing.T) {
	requireRoot(t)
	_, errOut, code := runPybox(t, "", "serve", "--listen", freePort(t), "--audit-dir", t.TempDir(), "--warm-pool", "0",
		"--uid-base", "1750000000", "--uid-slots", "4", "--cgroup-parent", "pybox-test-nokeys")
	if code != exitFailure || !strings.Contains(errOut, "no API keys are configured") || !strings.Contains(errOut, "pybox key new") {
		t.Fatalf("serve without keys: exit %d %q", code, errOut)
	}
	addr := freePort(t)
	cmd := exec.Command(binary, "serve", "--listen", addr, "--insecure-no-auth", "--audit-dir", t.TempDir(), "--warm-pool", "0",
		"--uid-base", "1750000000", "--uid-slots", "4", "--cgroup-parent", "pybox-test-nokeys", "--log-format", "text")
	var logs strings.Builder
	var mu sync.Mutex
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	defer func() { cmd.Process.Kill(); cmd.Wait() }() //nolint:errcheck
	waitUntil(t, 20*time.Second, "the open server's warning", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "insecure-no-auth")
	})
}

// Where the native backend is unavailable, pybox refuses to run unless the
// configuration names the restricted fallback; then the result says so
// and the strict policy is forced. The host is simulated with a user
// namespace in which no further user namespace may be made.
func TestFallbackToRestricted(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	const script = `echo 1 > /proc/sys/user/max_user_namespaces && exec unshare -U --map-user=1000 --map-group=1000 "$@"`
	noUserns := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command("unshare", append([]string{"-U", "-r", "sh", "-c", script, "sh", binary}, args...)...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	// Positive control: the simulated host really has no user namespaces.
	if _, errOut, code := noUserns("run", "--python", "/usr/bin/python3", "-c", "print(1)"); code != exitFailure ||
		!strings.Contains(errOut, "user namespaces") || !strings.Contains(errOut, "--fallback restricted") {
		t.Fatalf("without a fallback: exit %d %q", code, errOut)
	}
	out, errOut, code := noUserns("run", "--python", "/usr/bin/python3", "--fallback", "restricted", "--json", "-c", "print(6*7)")
	var res api.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Stdout != "42\n" || res.Layers.Backend != "restricted" ||
		len(res.Layers.Namespaces) != 0 || res.Layers.Seccomp || len(res.Layers.Warnings) == 0 || !strings.Contains(res.Layers.Warnings[0], "no kernel isolation") {
		t.Fatalf("with --fallback restricted: exit %d %v %+v\n%s", code, err, res, errOut)
	}
	// The repl falls back too, and says on which backend it runs.
	cmd := exec.Command("unshare", "-U", "-r", "sh", "-c", script, "sh", binary, "repl", "--python", "/usr/bin/python3", "--fallback", "restricted")
	cmd.Stdin = strings.NewReader("print(6*7)\nimport os\n")
	var rout, rerr strings.Builder
	cmd.Stdout, cmd.Stderr = &rout, &rerr
	if err := cmd.Run(); err != nil || !strings.Contains(rout.String(), "restricted backend: NO kernel isolation") || !strings.Contains(rout.String(), "42\n") ||
		!strings.Contains(rerr.String(), `Importing "os" is not allowed`) {
		t.Errorf("repl with --fallback restricted: %v\nstdout %q\nstderr %q", err, rout.String(), rerr.String())
	}
	// Strict is forced on restricted, whatever --policy says.
	if _, errOut, code := noUserns("run", "--python", "/usr/bin/python3", "--fallback", "restricted", "--policy", "off", "-c", "import os"); code != exitPolicy ||
		!strings.Contains(errOut, "strict policy rejected") {
		t.Errorf("policy off on restricted: exit %d %q", code, errOut)
	}
}
