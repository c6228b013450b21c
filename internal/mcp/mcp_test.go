package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

// fakeAPI is an in-memory pybox for the tools' own logic: session names,
// expiry, ended sessions, content. The real server is exercised by the
// tests of internal/cli and examples/agent.
type fakeAPI struct {
	mu       sync.Mutex
	next     int
	sessions map[string]map[string][]byte // id -> files
	created  int
	expire   string // a session id to answer 404 for, once
	end      string // a session id to answer 410 for
	cell     *api.CellResult
	running  map[string]bool // cells in flight, answered 409 as the server does
}

func newFake() *fakeAPI {
	return &fakeAPI{sessions: map[string]map[string][]byte{}, running: map[string]bool{}}
}

func (f *fakeAPI) Execute(ctx context.Context, req api.ExecuteRequest) (*api.Result, error) {
	return &api.Result{Status: api.StatusOK, Stdout: "ran " + req.Code + "\n"}, nil
}

func (f *fakeAPI) CreateSession(ctx context.Context, req api.CreateSessionRequest) (*api.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	time.Sleep(10 * time.Millisecond) // widen the window of a racing first use
	f.next++
	f.created++
	id := fmt.Sprintf("s%d", f.next)
	f.sessions[id] = map[string][]byte{}
	return &api.Session{ID: id}, nil
}

func (f *fakeAPI) DeleteSession(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[id] == nil {
		return &client.Error{Problem: api.Problem{Type: api.ProblemNotFound, Title: "Session not found", Status: 404}}
	}
	delete(f.sessions, id)
	return nil
}

func (f *fakeAPI) check(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case id == f.expire:
		f.expire = ""
		delete(f.sessions, id)
		return &client.Error{Problem: api.Problem{Type: api.ProblemNotFound, Title: "Session not found", Status: 404, Detail: "no session"}}
	case id == f.end:
		return &client.Error{Problem: api.Problem{Type: api.ProblemSessionEnded, Title: "Session ended", Status: 410,
			Detail: "session " + id + " has ended: memory limit reached"}}
	case f.sessions[id] == nil:
		return &client.Error{Problem: api.Problem{Type: api.ProblemNotFound, Title: "Session not found", Status: 404}}
	}
	return nil
}

func (f *fakeAPI) Run(ctx context.Context, id string, req api.CellRequest) (*api.CellResult, error) {
	if err := f.check(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.running[id] {
		f.mu.Unlock()
		return nil, &client.Error{Problem: api.Problem{Type: api.ProblemSessionBusy, Title: "Session busy", Status: 409}}
	}
	f.running[id] = true
	f.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	f.mu.Lock()
	delete(f.running, id)
	f.mu.Unlock()
	if f.cell != nil {
		return f.cell, nil
	}
	return &api.CellResult{Status: api.StatusOK, ExecutionCount: 1, Stdout: "in " + id + "\n"}, nil
}

func (f *fakeAPI) Upload(ctx context.Context, id, path string, r io.Reader) (*api.FileInfo, error) {
	if err := f.check(id); err != nil {
		return nil, err
	}
	data, _ := io.ReadAll(r)
	f.mu.Lock()
	f.sessions[id][path] = data
	f.mu.Unlock()
	return &api.FileInfo{Path: path, Size: int64(len(data))}, nil
}

func (f *fakeAPI) Download(ctx context.Context, id, path string) (io.ReadCloser, error) {
	if err := f.check(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.sessions[id][path]
	if !ok {
		return nil, &client.Error{Problem: api.Problem{Type: api.ProblemNotFound, Title: "File not found", Status: 404}}
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f *fakeAPI) Files(ctx context.Context, id, sub string) (*api.FileList, error) {
	if err := f.check(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := &api.FileList{}
	for p, d := range f.sessions[id] {
		fl.Files = append(fl.Files, api.FileInfo{Path: p, Type: "file", Size: int64(len(d))})
	}
	return fl, nil
}

func connect(t *testing.T, f *fakeAPI, scope string) *sdk.ClientSession {
	t.Helper()
	srv := NewServer(Options{Policy: "strict", SessionTTL: 10 * time.Minute,
		Limits: api.Effective{MemoryBytes: 256 << 20, CPU: 0.5, TimeoutMS: 30000, TmpfsBytes: 64 << 20}},
		func(*sdk.CallToolRequest) (API, string, error) { return f, scope, nil })
	ct, st := sdk.NewInMemoryTransports()
	ss, err := srv.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) (*sdk.CallToolResult, string) {
	t.Helper()
	r, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return r, b.String()
}

func TestDescriptions(t *testing.T) {
	o := Options{Policy: "strict", SessionTTL: 10 * time.Minute, Python: "3.11.2", Packages: []string{"numpy 1.24.2", "pandas 1.5.3"},
		Limits: api.Effective{MemoryBytes: 256 << 20, CPU: 0.5, TimeoutMS: 30000, TmpfsBytes: 64 << 20}}
	d := runDescription(o)
	for _, want := range []string{"Python 3.11.2", "no network", "256 MiB of memory", "0.5 CPU", "30s per call", "64 MiB of disk",
		"numpy 1.24.2, pandas 1.5.3", "expires after 10m", "open, eval, exec", "pd.read_csv"} {
		if !strings.Contains(d, want) {
			t.Errorf("run_python's description lacks %q:\n%s", want, d)
		}
	}
	o.Policy = "off"
	if strings.Contains(runDescription(o), "static policy") {
		t.Error("with the policy off the description must not claim one")
	}
}

// Concurrent first uses of a name make one session; names are per scope.
func TestSessionNames(t *testing.T) {
	f := newFake()
	cs := connect(t, f, "a")
	// Concurrent calls on one session queue rather than meet "busy".
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, text := call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"}); r.IsError {
				t.Errorf("concurrent call: %s", text)
			}
		}()
	}
	wg.Wait()
	if f.created != 1 {
		t.Fatalf("4 concurrent first calls made %d sessions, want 1", f.created)
	}
	_, text := call(t, cs, "run_python", map[string]any{"code": "1", "session": "other"})
	if !strings.Contains(text, "in s2") {
		t.Errorf("a second name gets a second session: %s", text)
	}
	other := connect(t, f, "b")
	if _, text := call(t, other, "run_python", map[string]any{"code": "1", "session": "main"}); !strings.Contains(text, "in s3") {
		t.Errorf("another scope's \"main\" is another session: %s", text)
	}
	// reset_session replaces the session.
	call(t, cs, "reset_session", map[string]any{"session": "main"})
	if _, ok := f.sessions["s1"]; ok {
		t.Error("reset_session left the old session")
	}
	if _, text := call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"}); !strings.Contains(text, "in s4") {
		t.Errorf("after reset: %s", text)
	}
}

// An expired session is made again, with a note; an ended one is a tool
// error with the reason, and the next call starts a new one.
func TestExpiredAndEndedSessions(t *testing.T) {
	f := newFake()
	cs := connect(t, f, "a")
	call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"}) // s1
	f.expire = "s1"
	r, text := call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"})
	if r.IsError || !strings.Contains(text, "had expired") || !strings.Contains(text, "in s2") {
		t.Errorf("expired session: isError=%v\n%s", r.IsError, text)
	}
	f.end = "s2"
	r, text = call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"})
	if !r.IsError || !strings.Contains(text, "memory limit reached") || !strings.Contains(text, "starts a new, empty session") {
		t.Errorf("ended session: isError=%v\n%s", r.IsError, text)
	}
	if _, text = call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"}); !strings.Contains(text, "in s3") {
		t.Errorf("after the end, a new session: %s", text)
	}
}

func TestCellContent(t *testing.T) {
	f := newFake()
	png := []byte("\x89PNG\r\n\x1a\nfake")
	f.cell = &api.CellResult{Status: api.StatusError, ExecutionCount: 3, Stdout: "out\n", Stderr: "warn\n",
		Value:   map[string]string{"text/plain": "42", "text/html": "<b>42</b>"},
		Display: []api.Display{{MIME: "image/png", Data: base64.StdEncoding.EncodeToString(png)}, {MIME: "text/html", Data: "<i/>"}},
		Error:   &api.CellError{Type: "ValueError", Message: "bad", Traceback: "Traceback ...\nValueError: bad\n"}}
	cs := connect(t, f, "a")
	r, text := call(t, cs, "run_python", map[string]any{"code": "1", "session": "main"})
	if !r.IsError {
		t.Error("a cell that raised is a tool error")
	}
	for _, want := range []string{"status: error", "cell 3", "--- stdout ---\nout\n", "--- stderr ---\nwarn\n", "--- value ---\n42\n", "--- error ---\nTraceback"} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
	var imgs int
	for _, c := range r.Content {
		if im, ok := c.(*sdk.ImageContent); ok {
			imgs++
			if !bytes.Equal(im.Data, png) || im.MIMEType != "image/png" {
				t.Errorf("image content: %q %s", im.Data, im.MIMEType)
			}
		}
	}
	if imgs != 1 {
		t.Errorf("%d images, want 1", imgs)
	}
	// A policy violation says where and why.
	f.cell = &api.CellResult{Status: api.StatusPolicyViolation, Violations: []api.Violation{{Rule: "import-denied", Line: 2, Col: 8, Text: "import os", Message: "Importing \"os\" is not allowed"}}}
	r, text = call(t, cs, "run_python", map[string]any{"code": "x\nimport os", "session": "main"})
	if !r.IsError || !strings.Contains(text, "line 2, col 8: Importing \"os\" is not allowed\n    import os") {
		t.Errorf("policy violation: %v\n%s", r.IsError, text)
	}
}

func TestFiles(t *testing.T) {
	f := newFake()
	cs := connect(t, f, "a")
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...)
	call(t, cs, "write_file", map[string]any{"session": "s", "path": "p.png", "content": base64.StdEncoding.EncodeToString(png), "encoding": "base64"})
	r, _ := call(t, cs, "read_file", map[string]any{"session": "s", "path": "p.png"})
	if len(r.Content) != 2 {
		t.Fatalf("an image file comes back as an image: %+v", r.Content)
	}
	if im, ok := r.Content[1].(*sdk.ImageContent); !ok || !bytes.Equal(im.Data, png) {
		t.Errorf("image: %+v", r.Content[1])
	}
	big := strings.Repeat("é", maxReadText) // 2 bytes each: cut mid-file, on a character boundary
	call(t, cs, "write_file", map[string]any{"session": "s", "path": "big.txt", "content": big})
	_, text := call(t, cs, "read_file", map[string]any{"session": "s", "path": "big.txt"})
	if !strings.Contains(text, "only the first") || !strings.HasPrefix(text, "éé") || strings.ContainsRune(text, '\uFFFD') {
		t.Errorf("long text is cut on a character boundary, with a note: %q...", text[len(text)-120:])
	}
	if _, text := call(t, cs, "list_files", map[string]any{"session": "s"}); !strings.Contains(text, "p.png\t40 bytes") {
		t.Errorf("listing: %s", text)
	}
}

// HTTPCaller forwards only the credentials and the remote address the
// handler set, and scopes names by credentials and MCP session; the
// in-process requests carry an mcp- request id.
func TestHTTPCaller(t *testing.T) {
	var seen []*http.Request
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id": "s1"}`) //nolint:errcheck
	})
	caller := HTTPCaller(h)
	req := &sdk.CallToolRequest{Extra: &sdk.RequestExtra{Header: http.Header{
		"Authorization": {"Bearer k1"}, "Cookie": {"c=1"}, RemoteHeader: {"10.0.0.7"},
	}}}
	a, scope, err := caller(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSession(context.Background(), api.CreateSessionRequest{}); err != nil {
		t.Fatal(err)
	}
	r := seen[0]
	if r.Header.Get("Authorization") != "Bearer k1" || r.Header.Get("Cookie") != "" || r.RemoteAddr != "10.0.0.7" ||
		!strings.HasPrefix(r.Header.Get("X-Request-ID"), "mcp-") || r.URL.Path != "/v1/sessions" {
		t.Errorf("in-process request: %s %v remote %s", r.URL, r.Header, r.RemoteAddr)
	}
	req.Extra.Header.Set("Authorization", "Bearer k2")
	if _, scope2, _ := caller(req); scope2 == scope {
		t.Error("two keys share a scope of session names")
	}
	// The handler overwrites a remote address the client made up.
	var got string
	probe := withRemote(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get(RemoteHeader) }))
	rr := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	rr.RemoteAddr = "192.0.2.1:5555"
	rr.Header.Set(RemoteHeader, "203.0.113.9")
	probe.ServeHTTP(httptest.NewRecorder(), rr)
	if got != "192.0.2.1" {
		t.Errorf("remote header %q, want the connection's address", got)
	}
}

// An MCP session over HTTP belongs to the tenant that opened it: another
// key that learns its id can neither use nor end it.
func TestHTTPSessionBoundToTenant(t *testing.T) {
	f := newFake()
	tenantOf := func(r *http.Request) (string, bool) {
		switch r.Header.Get("Authorization") {
		case "Bearer key-a":
			return "a", true
		case "Bearer key-b":
			return "b", true
		}
		return "", false
	}
	srv := NewServer(Options{}, func(*sdk.CallToolRequest) (API, string, error) { return f, "x", nil })
	hs := httptest.NewServer(HTTPHandler(srv, time.Minute, tenantOf))
	defer hs.Close()
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	post := func(key, session, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+key)
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		return resp
	}
	resp := post("key-a", "", init)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize as a: %d, session %q", resp.StatusCode, id)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
	if r := post("key-a", id, list); r.StatusCode != http.StatusOK {
		t.Fatalf("positive control: a uses its own session: %d", r.StatusCode)
	}
	if r := post("key-b", id, list); r.StatusCode != http.StatusForbidden {
		t.Errorf("b used a's session: %d, want 403", r.StatusCode)
	}
	if r := post("key-x", id, list); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unknown key: %d, want 401", r.StatusCode)
	}
	del, _ := http.NewRequest(http.MethodDelete, hs.URL, nil)
	del.Header.Set("Authorization", "Bearer key-b")
	del.Header.Set("Mcp-Session-Id", id)
	r, err := http.DefaultClient.Do(del)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("b ended a's session: %d, want 403", r.StatusCode)
	}
}
