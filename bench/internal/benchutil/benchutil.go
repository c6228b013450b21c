// Package benchutil holds what pybox's benchmark harnesses share: latency
// statistics, the machine's description and a free loopback port.
package benchutil

import (
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/internal/server"
)

// Pct is the p-th percentile of d (nearest rank, rounding down).
func Pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// Mean is the average of d.
func Mean(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t / time.Duration(len(d))
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Kernel names the running kernel, e.g. "Linux 6.18.44".
func Kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// Trim squeezes whitespace in s and cuts it to n bytes, for one-line
// reports of a program's output.
func Trim(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ServerAuth prepares what pybox serve needs to start as an operator
// would run it: an API key (returned, for the client) in a keys file and an
// audit log, both under dir. Rate limits are off: the harnesses measure
// the sandboxes, not the token buckets.
func ServerAuth(dir string) (args []string, key string, err error) {
	key, sum := server.NewKey()
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`[{"tenant": "bench", "sha256": "`+sum+`"}]`), 0o600); err != nil {
		return nil, "", err
	}
	return []string{"--api-keys-file", keys, "--audit-dir", filepath.Join(dir, "audit"), "--rate", "0", "--session-rate", "0"}, key, nil
}
