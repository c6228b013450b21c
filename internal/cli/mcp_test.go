//go:build linux

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/internal/audit"
)

// These tests drive pybox's MCP tools with the official SDK's client, over
// both transports: `pybox mcp` as a subprocess on stdio, and /mcp of a real
// `pybox serve`.

// toolText joins the text content of a tool result.
func toolText(r *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func toolImages(r *sdk.CallToolResult) [][]byte {
	var out [][]byte
	for _, c := range r.Content {
		if im, ok := c.(*sdk.ImageContent); ok && im.MIMEType == "image/png" {
			out = append(out, im.Data)
		}
	}
	return out
}

func callTool(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) *sdk.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: protocol error %v", name, args, err)
	}
	return r
}

// expectTool checks a tool result's error flag and that its text holds
// every want.
func expectTool(t *testing.T, r *sdk.CallToolResult, isError bool, want ...string) {
	t.Helper()
	text := toolText(r)
	if r.IsError != isError {
		t.Errorf("isError = %v, want %v; text:\n%s", r.IsError, isError, text)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("tool text lacks %q:\n%s", w, text)
		}
	}
}

// readAudit returns the records of an audit directory.
func readAudit(t *testing.T, dir string) []audit.Record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out []audit.Record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r audit.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("audit line %q: %v", sc.Text(), err)
			}
			out = append(out, r)
		}
	}
	return out
}

func wantTools(t *testing.T, cs *sdk.ClientSession) {
	t.Helper()
	lt, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tool := range lt.Tools {
		got[tool.Name] = tool.Description
	}
	for _, name := range []string{"run_python", "reset_session", "list_files", "read_file", "write_file"} {
		if got[name] == "" {
			t.Errorf("tool %s missing or undescribed: %v", name, got)
		}
	}
	// The description tells the model what the sandbox allows.
	for _, w := range []string{"no network", "MiB of memory", "per call", "static policy", "session"} {
		if !strings.Contains(got["run_python"], w) {
			t.Errorf("run_python's description lacks %q:\n%s", w, got["run_python"])
		}
	}
}

// The common tool conversation of both transports: one-shots, a session
// with state, files, values, tracebacks, policy, limits and bad arguments.
func exerciseTools(t *testing.T, cs *sdk.ClientSession) {
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "print('hello from mcp')"}), false, "status: ok", "hello from mcp")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "x = 41", "session": "main"}), false, "status: ok", `session "main"`)
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "x + 1", "session": "main"}), false, "--- value ---\n42")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "def f():\n    return 1/0\nf()", "session": "main"}), true,
		"status: error", "ZeroDivisionError", "<cell 3>", "line 2")
	// Policy violations and limits are tool errors with the reasons.
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "import subprocess", "session": "main"}), true,
		"policy_violation", "line 1", "subprocess")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "import socket"}), true, "policy_violation", "socket")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "while True:\n    pass", "session": "spin"}), true, "status: timeout")
	// Files: written, listed, read back, and read by the code.
	expectTool(t, callTool(t, cs, "write_file", map[string]any{"session": "main", "path": "in/data.txt", "content": "a,b\n1,2\n"}), false, "in/data.txt", "8 bytes")
	expectTool(t, callTool(t, cs, "list_files", map[string]any{"session": "main"}), false, "in/data.txt\t8 bytes")
	expectTool(t, callTool(t, cs, "read_file", map[string]any{"session": "main", "path": "in/data.txt"}), false, "a,b\n1,2\n")
	expectTool(t, callTool(t, cs, "write_file", map[string]any{"session": "main", "path": "blob.bin", "content": "AAEC/w==", "encoding": "base64"}), false, "4 bytes")
	r := callTool(t, cs, "read_file", map[string]any{"session": "main", "path": "blob.bin"})
	expectTool(t, r, false, "binary file")
	if len(r.Content) != 2 {
		t.Errorf("a binary file comes back as an embedded blob: %+v", r.Content)
	} else if res, ok := r.Content[1].(*sdk.EmbeddedResource); !ok || !bytes.Equal(res.Resource.Blob, []byte{0, 1, 2, 255}) {
		t.Errorf("blob content: %+v", r.Content[1])
	}
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "import csv\nlen(list(csv.reader(iter(['a,b', '1,2']))))", "session": "main"}), false, "--- value ---\n2")
	expectTool(t, callTool(t, cs, "read_file", map[string]any{"session": "main", "path": "missing.txt"}), true, "File not found")
	expectTool(t, callTool(t, cs, "read_file", map[string]any{"session": "main", "path": "../etc/passwd"}), true, "Invalid path")
	// State survives until reset.
	expectTool(t, callTool(t, cs, "reset_session", map[string]any{"session": "main"}), false, "reset")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "x", "session": "main"}), true, "NameError")
	expectTool(t, callTool(t, cs, "list_files", map[string]any{"session": "main"}), false, "is empty")
	// Bad arguments are tool errors, not transport errors.
	expectTool(t, callTool(t, cs, "run_python", map[string]any{}), true, "code")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": 5}), true, "code")
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "1", "session": "no spaces/slashes"}), true, "session name")
	expectTool(t, callTool(t, cs, "write_file", map[string]any{"session": "main", "path": "x", "content": "!!", "encoding": "base64"}), true, "base64")
	expectTool(t, callTool(t, cs, "write_file", map[string]any{"session": "main", "path": "x", "content": "", "encoding": "rot13"}), true, "encoding")
	// An unknown tool is a protocol error.
	if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "rm_rf", Arguments: map[string]any{}}); err == nil {
		t.Error("an unknown tool must be a protocol error")
	}
}

func TestMCPStdio(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs sandboxes as root (CI does)")
	}
	auditDir := filepath.Join(t.TempDir(), "audit")
	cmd := exec.Command(binary, "mcp", "--uid-base", "1610000000", "--uid-slots", "64", "--cgroup-parent", "pybox-test-mcp-stdio",
		"--audit-dir", auditDir, "--timeout", "3s")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	c := sdk.NewClient(&sdk.Implementation{Name: "pybox-test", Version: "1"}, nil)
	ctx := context.Background()
	cs, err := c.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("pybox mcp stderr:\n%s", stderr.String())
		}
	}()
	if init := cs.InitializeResult(); init.ServerInfo.Name != "pybox" || init.Instructions == "" {
		t.Errorf("initialize: %+v", init)
	}
	wantTools(t, cs)
	exerciseTools(t, cs)
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	// Closing stdin ends the process cleanly, and it leaves nothing behind.
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Errorf("pybox mcp exit: %v", cmd.ProcessState)
	}
	left := &serveProc{uidBase: 1610000000, cgroup: "pybox-test-mcp-stdio"}
	waitUntil(t, 10*time.Second, "no sandbox left", func() bool {
		return len(left.sandboxProcesses()) == 0 && len(left.sandboxGroups()) == 0
	})
	// Every tool call went through the API and is on record, as the
	// process's one tenant, under an mcp- request id.
	recs := readAudit(t, auditDir)
	var cells, policy int
	for _, r := range recs {
		if r.Event == audit.EventAuditRecovered {
			continue
		}
		if r.Tenant != mcpTenant || !strings.HasPrefix(r.RequestID, "mcp-") || r.Remote != "stdio" {
			t.Errorf("audit record not of the stdio tenant: %+v", r)
		}
		if r.Event == audit.EventCell {
			cells++
		}
		if r.Reason == "policy" {
			policy++
		}
	}
	if cells < 5 || policy != 2 {
		t.Errorf("audit: %d cell records and %d policy rejections (want >= 5 and 2) of %d", cells, policy, len(recs))
	}
	if out, errOut, code := runPybox(t, "", "audit", "verify", "--dir", auditDir); code != 0 {
		t.Errorf("audit verify: %d %s %s", code, out, errOut)
	}
}

// keyTransport adds an API key to every request, as a bearer token or,
// with xAPIKey, in X-API-Key.
type keyTransport struct {
	key     string
	xAPIKey bool
}

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if k.xAPIKey {
		r.Header.Set("X-API-Key", k.key)
	} else {
		r.Header.Set("Authorization", "Bearer "+k.key)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// stopOnCleanup ends the server with SIGTERM when the test is over (before
// startServer's cleanup would SIGKILL it) and checks that it left no
// sandbox process or cgroup behind.
func stopOnCleanup(t *testing.T, s *serveProc) {
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pybox serve exit: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("pybox serve did not exit after SIGTERM")
			return
		}
		waitUntil(t, 10*time.Second, "no sandbox left", func() bool {
			return len(s.sandboxProcesses()) == 0 && len(s.sandboxGroups()) == 0
		})
	})
}

func connectHTTP(t *testing.T, s *serveProc, key, version string) (*sdk.ClientSession, error) {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "pybox-test", Version: "1"}, nil)
	tr := &sdk.StreamableClientTransport{Endpoint: s.url + "/mcp", HTTPClient: &http.Client{Transport: keyTransport{key: key}}, MaxRetries: -1}
	return c.Connect(context.Background(), tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
}

func TestMCPHTTP(t *testing.T) {
	s := startServer(t, 1_620_000_000, "pybox-test-mcp-http", "--policy", "strict", "--timeout", "3s")
	stopOnCleanup(t, s)
	ctx := context.Background()

	// Without a key, or with a wrong one, /mcp answers 401 and nothing
	// of MCP; with the key (the positive control) it serves.
	for _, key := range []string{"", "pbx_not-a-key"} {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("POST /mcp with key %q: %d, want 401 with WWW-Authenticate", key, resp.StatusCode)
		}
		if cs, err := connectHTTP(t, s, key, ""); err == nil {
			cs.Close()
			t.Errorf("an MCP client with key %q connected", key)
		}
	}

	for _, version := range []string{"2025-06-18", ""} { // a current client, and the SDK's newest protocol
		t.Run("protocol="+version, func(t *testing.T) {
			cs, err := connectHTTP(t, s, s.key, version)
			if err != nil {
				t.Fatalf("connect with the key: %v", err)
			}
			wantTools(t, cs)
			exerciseTools(t, cs)
			// Sessions made through MCP are the tenant's: the REST API
			// with the same key sees them.
			sessions, err := s.c.Sessions(ctx)
			if err != nil || len(sessions) == 0 {
				t.Errorf("the tenant's sessions: %v %v", sessions, err)
			}
			cs.Close()
			// The MCP session's end ends the pybox sessions it made.
			waitUntil(t, 10*time.Second, "sessions ended with the MCP session", func() bool {
				l, err := s.c.Sessions(ctx)
				return err == nil && len(l) == 0
			})
		})
	}

	// The server takes the key in X-API-Key too.
	tr := &sdk.StreamableClientTransport{Endpoint: s.url + "/mcp", HTTPClient: &http.Client{Transport: keyTransport{key: s.key, xAPIKey: true}}, MaxRetries: -1}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "pybox-test", Version: "1"}, nil).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect with X-API-Key: %v", err)
	}
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "print(2 + 2)", "session": "x"}), false, "4")
	cs.Close()

	recs := readAudit(t, s.auditDir)
	var unauth, viaMCP int
	for _, r := range recs {
		if r.Event == "mcp" && r.Outcome == audit.OutcomeRejected && r.HTTPStatus == 401 {
			unauth++
		}
		if strings.HasPrefix(r.RequestID, "mcp-") {
			viaMCP++
			if r.Tenant != "t1" || r.Remote != "127.0.0.1" {
				t.Errorf("an MCP tool call's record: %+v", r)
			}
		}
	}
	if unauth < 4 || viaMCP < 20 {
		t.Errorf("audit: %d refused /mcp requests (want >= 4), %d records of tool calls (want >= 20)", unauth, viaMCP)
	}
}

// The key's rate limit holds for tool calls: MCP is not a way around it.
func TestMCPHTTPRateLimit(t *testing.T) {
	s := startServer(t, 1_630_000_000, "pybox-test-mcp-rate", "--rate", "0.01", "--burst", "3")
	stopOnCleanup(t, s)
	cs, err := connectHTTP(t, s, s.key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	// startServer's readiness check used none of the key's tokens (healthz).
	for i := 0; i < 3; i++ {
		expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "1"}), false, "status: ok")
	}
	expectTool(t, callTool(t, cs, "run_python", map[string]any{"code": "1"}), true, "Rate limited", "Retry after")
}
