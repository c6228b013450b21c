//go:build linux

package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/internal/server"
)

// The acceptance test of the product: an agent loads a CSV into a
// session, computes with pandas, plots with matplotlib and gets the PNG
// back, through MCP (HTTP and stdio) and through the Python client, with
// the real pybox binary and the default (strict) policy.

var binary string

// sandboxPython is the interpreter inside the sandboxes: Debian's, which
// has numpy, pandas and matplotlib (.ci/run installs them).
const sandboxPython = "/usr/bin/python3"

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "pybox-agent-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755) //nolint:errcheck // the sandbox init must be able to exec it
		binary = filepath.Join(dir, "pybox")
		build := exec.Command("go", "build", "-o", binary, "../../cmd/pybox")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building pybox: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func requirements(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs sandboxes as root (CI does)")
	}
	if out, err := exec.Command(sandboxPython, "-c", "import pandas, matplotlib").CombinedOutput(); err != nil {
		t.Skipf("%s lacks pandas or matplotlib (apt-get install python3-pandas python3-matplotlib): %v %s", sandboxPython, err, out)
	}
}

// expectedTotals computes revenue per region from the CSV, in Go.
func expectedTotals(t *testing.T, data string) map[string]float64 {
	rows, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, r := range rows[1:] {
		units, _ := strconv.ParseFloat(r[2], 64)
		price, _ := strconv.ParseFloat(r[3], 64)
		out[r[0]] += units * price
	}
	return out
}

func topOf(totals map[string]float64) string {
	top := ""
	for k, v := range totals {
		if top == "" || v > totals[top] {
			top = k
		}
	}
	return top
}

func checkTotals(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("totals %v, want %v", got, want)
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 0.01 {
			t.Errorf("total of %s = %v, want %v", k, got[k], v)
		}
	}
}

func checkPNG(t *testing.T, data []byte) {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("not a PNG: % x", data[:min(len(data), 16)])
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("PNG does not decode to a chart: %+v %v", cfg, err)
	}
}

type serveProc struct {
	url, key string
	logs     *strings.Builder
}

func startServe(t *testing.T) *serveProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	key, sum := server.NewKey()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`[{"tenant": "agent", "sha256": "`+sum+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--listen", addr, "--uid-base", "1640000000", "--uid-slots", "64",
		"--cgroup-parent", "pybox-test-agent", "--warm-pool", "1", "--api-keys-file", keys,
		"--audit-dir", filepath.Join(dir, "audit"), "--python", sandboxPython)
	logs := &strings.Builder{}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) //nolint:errcheck
		cmd.Wait()                       //nolint:errcheck
		<-done
		if t.Failed() {
			t.Logf("pybox serve log:\n%s", logs.String())
		}
	})
	s := &serveProc{url: "http://" + addr, key: key, logs: logs}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pybox serve did not become ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type keyTransport struct{ key string }

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+k.key)
	return http.DefaultTransport.RoundTrip(r)
}

// runAnalyst runs the scripted analyst over an MCP session and checks
// what it found and the chart it got back.
func runAnalyst(t *testing.T, cs *sdk.ClientSession, data string) {
	t.Helper()
	a := &Analyst{CSV: data, Session: "analysis"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	history, err := Run(ctx, cs, a, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i, turn := range history {
		if turn.Result.IsError {
			t.Fatalf("turn %d (%s) failed:\n%s", i, turn.Call.Name, Text(turn.Result))
		}
	}
	if len(history) != 3 {
		t.Fatalf("%d turns, want 3 (upload, compute, plot); answer %q", len(history), a.Answer)
	}
	want := expectedTotals(t, data)
	checkTotals(t, a.Totals, want)
	if top := topOf(want); a.Top != top || !strings.HasPrefix(a.Answer, top+" earns most") {
		t.Errorf("top region %q, answer %q", a.Top, a.Answer)
	}
	imgs := Images(history[2].Result)
	if len(imgs) != 1 {
		t.Fatalf("the plot turn returned %d images:\n%s", len(imgs), Text(history[2].Result))
	}
	checkPNG(t, imgs[0])
}

func TestAgent(t *testing.T) {
	requirements(t)
	raw, err := os.ReadFile("sales.csv")
	if err != nil {
		t.Fatal(err)
	}
	data := string(raw)
	s := startServe(t)

	t.Run("mcp-http", func(t *testing.T) {
		c := sdk.NewClient(&sdk.Implementation{Name: "agent-test", Version: "1"}, nil)
		tr := &sdk.StreamableClientTransport{Endpoint: s.url + "/mcp", HTTPClient: &http.Client{Transport: keyTransport{s.key}}, MaxRetries: -1}
		cs, err := c.Connect(context.Background(), tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		runAnalyst(t, cs, data)
	})

	t.Run("mcp-stdio", func(t *testing.T) {
		cmd := exec.Command(binary, "mcp", "--python", sandboxPython, "--uid-base", "1645000000", "--uid-slots", "64",
			"--cgroup-parent", "pybox-test-agent-stdio", "--audit-dir", filepath.Join(t.TempDir(), "audit"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		c := sdk.NewClient(&sdk.Implementation{Name: "agent-test", Version: "1"}, nil)
		cs, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		runAnalyst(t, cs, data)
		cs.Close()
		if t.Failed() {
			t.Logf("pybox mcp stderr:\n%s", stderr.String())
		}
	})

	t.Run("python-client", func(t *testing.T) {
		python, err := exec.LookPath("python3")
		if err != nil {
			t.Fatal("python3 is needed for the Python client's agent (CI has it)")
		}
		out := filepath.Join(t.TempDir(), "chart.png")
		cmd := exec.Command(python, "agent.py", "--png", out)
		abs, _ := filepath.Abs("../../clients/python")
		cmd.Env = append(os.Environ(), "PYBOX_URL="+s.url, "PYBOX_API_KEY="+s.key, "PYTHONPATH="+abs)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("agent.py: %v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
		}
		var report struct {
			Answer string             `json:"answer"`
			Totals map[string]float64 `json:"totals"`
			Top    string             `json:"top"`
			PNGs   int                `json:"pngs"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("report %q: %v", stdout.String(), err)
		}
		checkTotals(t, report.Totals, expectedTotals(t, data))
		if top := topOf(expectedTotals(t, data)); report.Top != top || report.PNGs != 1 || !strings.HasPrefix(report.Answer, top+" earns most") {
			t.Errorf("report: %+v", report)
		}
		img, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		checkPNG(t, img)
	})
}
