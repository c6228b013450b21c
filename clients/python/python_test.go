//go:build linux

package python

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPythonClient builds pybox and runs the Python client's tests
// (clients/python/tests) with `python3 -m unittest`; they start their own
// `pybox serve` from PYBOX_BIN, with a uid range and cgroup parent of
// their own (tests/pyboxserver.py).
func TestPythonClient(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the tests run sandboxes as root (CI does)")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to test the Python client (CI installs it)")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755) //nolint:errcheck // the sandbox init must be able to exec the binary
	bin := filepath.Join(dir, "pybox")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/pybox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pybox: %v\n%s", err, out)
	}
	env := append(os.Environ(), "PYBOX_BIN="+bin, "PYTHONDONTWRITEBYTECODE=1")
	// The sandbox's interpreter: Debian's, with numpy, pandas and
	// matplotlib, for the figure test (.ci/run installs them).
	if exec.Command("/usr/bin/python3", "-c", "import pandas, matplotlib").Run() == nil {
		env = append(env, "PYBOX_SANDBOX_PYTHON=/usr/bin/python3")
	} else {
		t.Log("/usr/bin/python3 lacks pandas or matplotlib: the figure test skips")
	}
	cmd := exec.Command(python, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("%s -m unittest:\n%s", python, out)
	if err != nil {
		t.Fatalf("the Python client's tests failed: %v", err)
	}
}
