package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// loadOpenAPI parses and validates api/openapi.yaml.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("loading api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi: %q, want 3.0.3", doc.OpenAPI)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" || op.Summary == "" || op.Description == "" {
				t.Errorf("%s: every operation needs an operationId, a summary and a description", where)
			}
			if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q is also used by %s", where, op.OperationID, prev)
			}
			ids[op.OperationID] = where
		}
	}
}

// TestOpenAPIRoutes checks that the document has exactly the server's
// routes. It needs no sandbox: the route table is static.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	cfg := DefaultConfig(sandbox.DefaultLimits())
	cfg.NoAuth = true
	srv, err := New(cfg, "none", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, pattern := range srv.Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			t.Errorf("route %q has no method; every route must name one", pattern)
			continue
		}
		// {name...} matches the rest of the path; OpenAPI writes {name}.
		path = strings.ReplaceAll(path, "...}", "}")
		served[method+" "+path] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("routes the server serves but api/openapi.yaml does not document:\n\t%s", strings.Join(missing, "\n\t"))
	}
	if len(extra) > 0 {
		t.Errorf("operations api/openapi.yaml documents but the server does not serve:\n\t%s", strings.Join(extra, "\n\t"))
	}
}

// exchange is one request of the scenario and what it must get.
type exchange struct {
	name   string
	method string
	path   string // percent-encoded, with the query
	ctype  string // the request's Content-Type
	accept string
	body   string
	status int // the status the scenario expects
	// problem is the expected problem type, e.g. api.ProblemNotFound, for
	// answers with a problem body; field its expected field, if any, or
	// anyField.
	problem, field string
	// request says what the document must think of the request itself:
	// reqValid (the default), reqInvalid (the scenario breaks it on
	// purpose and the document must say so) or reqUnchecked.
	request int
	// hdr are extra request headers (an Authorization here replaces the
	// stack's key).
	hdr map[string]string
}

// anyField leaves a problem's field unchecked.
const anyField = "\x00any"

const (
	reqValid = iota
	reqInvalid
	reqUnchecked
)

// answer is a response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
	events []sseEvent // of an event stream
}

type sseEvent struct {
	name string
	data string
}

func (a *answer) decode(t *testing.T, v any) {
	t.Helper()
	if a == nil {
		t.Fatal("no answer to decode")
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decoding %T from %s: %v", v, a.body, err)
	}
}

// apiChecker sends exchanges to a live server and checks every answer
// against the document.
type apiChecker struct {
	doc    *openapi3.T
	router routers.Router
	base   string
	hc     *http.Client
	opts   *openapi3filter.Options

	mu   sync.Mutex
	seen map[string]bool // operationIds exercised
}

var registerSSEDecoder sync.Once

func newAPIChecker(t *testing.T, doc *openapi3.T, base string, hc *http.Client) *apiChecker {
	t.Helper()
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("gorillamux.NewRouter: %v", err)
	}
	// An event stream's body is checked as a string here; its events are
	// parsed and checked one by one in checkEvents.
	registerSSEDecoder.Do(func() {
		openapi3filter.RegisterBodyDecoder("text/event-stream",
			func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
				b, err := io.ReadAll(r)
				return string(b), err
			})
	})
	// Redirects are answers too: the document must describe what the
	// server says, not where a client would end up.
	client := *hc
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &apiChecker{doc: doc, router: router, base: base, hc: &client, seen: map[string]bool{},
		opts: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
}

// do runs one exchange as a subtest and returns its answer (nil if the
// request could not be sent).
func (c *apiChecker) do(t *testing.T, x exchange) *answer {
	t.Helper()
	var a *answer
	t.Run(x.name, func(t *testing.T) {
		var err error
		if a, err = c.send(context.Background(), x); err != nil {
			t.Fatalf("%s %s: %v", x.method, x.path, err)
		}
		c.check(t, x, a)
	})
	return a
}

func (c *apiChecker) newRequest(ctx context.Context, x exchange) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, x.method, c.base+x.path, strings.NewReader(x.body))
	if err != nil {
		return nil, err
	}
	if x.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if x.ctype != "" {
		req.Header.Set("Content-Type", x.ctype)
	}
	if x.accept != "" {
		req.Header.Set("Accept", x.accept)
	}
	for k, v := range x.hdr {
		req.Header.Set(k, v)
	}
	return req, nil
}

// send sends x and reads the whole answer; it may run on any goroutine.
func (c *apiChecker) send(ctx context.Context, x exchange) (*answer, error) {
	req, err := c.newRequest(ctx, x)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// check checks a's status against the scenario and a against the document.
func (c *apiChecker) check(t *testing.T, x exchange, a *answer) {
	t.Helper()
	where := fmt.Sprintf("%s %s", x.method, x.path)
	if a.status != x.status {
		t.Errorf("%s: status %d, the scenario expects %d; body: %s", where, a.status, x.status, abbrev(a.body))
	}
	ctx := context.Background()
	req, err := c.newRequest(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := c.router.FindRoute(routingRequest(req))
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		// Described in info.description: a path that is not clean, or
		// that no route serves.
		switch x.status {
		case http.StatusBadRequest:
			c.checkShared(t, where, "InvalidPath", a)
		case http.StatusNotFound:
			c.checkShared(t, where, "NotFound", a)
		default:
			t.Fatalf("%s: the document has no path for this request", where)
		}
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if x.status != http.StatusMethodNotAllowed {
			t.Fatalf("%s: the document has no operation for this method", where)
		}
		c.checkShared(t, where, "MethodNotAllowed", a)
	case err != nil:
		t.Fatalf("%s: finding the document's route: %v", where, err)
	default:
		c.mu.Lock()
		c.seen[route.Operation.OperationID] = true
		c.mu.Unlock()
		where = fmt.Sprintf("%s (%s)", where, route.Operation.OperationID)
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.opts}
		err := openapi3filter.ValidateRequest(ctx, in)
		switch {
		case x.request == reqValid && err != nil:
			t.Errorf("%s: the document rejects the request, which the scenario means to be valid: %v", where, err)
		case x.request == reqInvalid && err == nil:
			t.Errorf("%s: the document accepts the request, which the scenario means to be invalid (a schema is too loose)", where)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: a.status, Header: a.header,
			Body: io.NopCloser(bytes.NewReader(a.body)), Options: c.opts}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s: the answer does not match the document: %v\n\tstatus %d, Content-Type %q, body: %s",
				where, err, a.status, a.header.Get("Content-Type"), abbrev(a.body))
		}
		if mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type")); mt == "text/event-stream" {
			c.checkEvents(t, where, route.Operation.OperationID, a)
		}
	}
	c.checkProblem(t, where, x, a)
}

// checkShared checks an answer given outside any operation (unknown
// route, method not allowed) against components/responses/name.
func (c *apiChecker) checkShared(t *testing.T, where, name string, a *answer) {
	t.Helper()
	ref := c.doc.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		t.Fatalf("the document has no components/responses/%s", name)
	}
	resp := ref.Value
	for h, hr := range resp.Headers {
		if hr.Value.Required && a.header.Get(h) == "" {
			t.Errorf("%s: header %s missing (components/responses/%s requires it)", where, h, name)
		}
	}
	ct := a.header.Get("Content-Type")
	mt := resp.Content.Get(ct)
	if mt == nil {
		t.Fatalf("%s: Content-Type %q is not one of components/responses/%s", where, ct, name)
	}
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %s", where, err, abbrev(a.body))
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%s: body does not match components/responses/%s: %v\n\tbody: %s", where, name, err, abbrev(a.body))
	}
}

// checkProblem checks a problem answer's own consistency and its type.
func (c *apiChecker) checkProblem(t *testing.T, where string, x exchange, a *answer) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	if mt != "application/problem+json" {
		if x.problem != "" {
			t.Errorf("%s: expected a problem of type %s, got Content-Type %q", where, x.problem, mt)
		}
		if a.status >= 400 && a.status != http.StatusServiceUnavailable { // readyz answers 503 with a Health
			t.Errorf("%s: error status %d without a problem body (Content-Type %q)", where, a.status, mt)
		}
		return
	}
	var p api.Problem
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Errorf("%s: problem body: %v", where, err)
		return
	}
	if p.Status != a.status {
		t.Errorf("%s: problem says status %d, the answer's is %d", where, p.Status, a.status)
	}
	switch {
	case x.problem == "":
		t.Errorf("%s: unexpected problem %s (%s)", where, p.Type, p.Detail)
	case p.Type != x.problem:
		t.Errorf("%s: problem type %s, want %s (%s)", where, p.Type, x.problem, p.Detail)
	}
	if x.field != anyField && p.Field != x.field {
		t.Errorf("%s: problem field %q, want %q (%s)", where, p.Field, x.field, p.Detail)
	}
}

// checkEvents parses an event stream and checks each event's data against
// its schema: output events, then exactly one result or error event.
func (c *apiChecker) checkEvents(t *testing.T, where, op string, a *answer) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(a.body))
	sc.Buffer(nil, 64<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		case line == "":
			a.events = append(a.events, ev)
			ev = sseEvent{}
		default:
			t.Errorf("%s: unexpected line in the event stream: %q", where, line)
		}
	}
	if ev != (sseEvent{}) {
		t.Errorf("%s: the event stream ends inside an event: %+v", where, ev)
	}
	result := map[string]string{"execute": "Result", "executeCell": "CellResult"}[op]
	schemas := map[string]string{api.EventStdout: "OutputEvent", api.EventStderr: "OutputEvent",
		api.EventResult: result, api.EventError: "Problem"}
	for i, ev := range a.events {
		last := i == len(a.events)-1
		final := ev.name == api.EventResult || ev.name == api.EventError
		if final != last {
			t.Errorf("%s: event %d of %d is %q; result or error must come last, once", where, i+1, len(a.events), ev.name)
		}
		name := schemas[ev.name]
		if name == "" {
			t.Errorf("%s: event %q is not one the document describes", where, ev.name)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
			t.Errorf("%s: event %q: data is not JSON: %v: %s", where, ev.name, err, ev.data)
			continue
		}
		if err := c.doc.Components.Schemas[name].Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
			t.Errorf("%s: event %q does not match schema %s: %v\n\tdata: %s", where, ev.name, name, err, abbrev([]byte(ev.data)))
		}
	}
	if len(a.events) == 0 {
		t.Errorf("%s: empty event stream", where)
	}
}

// routingRequest returns req with the slashes inside a file path encoded,
// so that the document's {path}, which gorilla/mux matches as one
// segment, matches a path with directories as the server's {path...} does.
func routingRequest(req *http.Request) *http.Request {
	esc := req.URL.EscapedPath()
	const files = "/files/"
	i := strings.Index(esc, files)
	if !strings.HasPrefix(esc, "/v1/sessions/") || i < 0 {
		return req
	}
	r := req.Clone(req.Context())
	u := *req.URL
	u.RawPath = esc[:i+len(files)] + strings.ReplaceAll(esc[i+len(files):], "/", "%2F")
	u.Path, _ = url.PathUnescape(u.RawPath)
	r.URL = &u
	return r
}

func abbrev(b []byte) string {
	const limit = 600
	if len(b) > limit {
		return fmt.Sprintf("%s... (%d bytes)", b[:limit], len(b))
	}
	return string(b)
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestOpenAPIResponses drives a real server through every operation and
// the main problem cases, and checks each answer against the document.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	strictKey, strictSum := NewKey()
	st := newStack(t, options{warm: 1, maxSessions: 2, config: func(c *Config) {
		c.MaxBodyBytes = 64 << 10
		c.MaxCodeBytes = 16 << 10
		c.MaxFileBytes = 4 << 10
		c.MaxFiles = 8
		c.Tenants = append(c.Tenants, Tenant{Name: "strict", KeySHA256: strictSum, Policy: policy.MustNew(policy.Rules{})})
	}})
	c := newAPIChecker(t, doc, st.http.URL, st.hc)
	const jsonCT = "application/json"
	post := func(name, path, body string, status int) exchange {
		return exchange{name: name, method: http.MethodPost, path: path, ctype: jsonCT, body: body, status: status}
	}
	bad := func(x exchange, typ, field string, request int) exchange {
		x.problem, x.field, x.request = typ, field, request
		return x
	}

	c.do(t, exchange{name: "healthz", method: http.MethodGet, path: "/healthz", status: 200})
	c.do(t, exchange{name: "readyz", method: http.MethodGet, path: "/readyz", status: 200})
	c.do(t, exchange{name: "metrics", method: http.MethodGet, path: "/metrics", status: 200})
	c.do(t, exchange{name: "limits", method: http.MethodGet, path: "/v1/limits", status: 200})
	c.do(t, bad(exchange{name: "no valid key", method: http.MethodGet, path: "/v1/limits", status: 401,
		hdr: map[string]string{"Authorization": "Bearer pbx_wrong"}}, api.ProblemUnauthorized, "", reqValid))
	var rejected api.Result
	x := post("policy violation", "/v1/execute", `{"code":"import socket"}`, 200)
	x.hdr = map[string]string{"Authorization": "Bearer " + strictKey}
	c.do(t, x).decode(t, &rejected)
	if rejected.Status != api.StatusPolicyViolation || len(rejected.Violations) != 1 {
		t.Errorf("policy violation: %+v", rejected)
	}

	// One-shots.
	var res api.Result
	c.do(t, post("execute ok", "/v1/execute", `{"code":"print('hi')","filename":"hello.py","args":["a"]}`, 200)).decode(t, &res)
	if res.Status != api.StatusOK || res.Stdout != "hi\n" {
		t.Errorf("execute ok: status %s, stdout %q", res.Status, res.Stdout)
	}
	c.do(t, post("execute error", "/v1/execute", `{"code":"1/0"}`, 200)).decode(t, &res)
	if res.Status != api.StatusError || !strings.Contains(res.Stderr, "ZeroDivisionError") {
		t.Errorf("execute error: status %s, stderr %q", res.Status, res.Stderr)
	}
	c.do(t, post("execute timeout", "/v1/execute", `{"code":"import time\ntime.sleep(30)","limits":{"timeout":"1s"}}`, 200)).decode(t, &res)
	if res.Status != api.StatusTimeout {
		t.Errorf("execute timeout: status %s (%s)", res.Status, res.Message)
	}
	stream := post("execute streamed", "/v1/execute", `{"code":"import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)"}`, 200)
	stream.accept = "text/event-stream"
	if a := c.do(t, stream); a != nil && len(a.events) < 3 {
		t.Errorf("execute streamed: events %+v, want stdout, stderr and result", a.events)
	}
	c.do(t, bad(post("execute bad JSON", "/v1/execute", `{"code":`, 400), api.ProblemBadRequest, "", reqInvalid))
	c.do(t, bad(post("execute empty body", "/v1/execute", "", 400), api.ProblemBadRequest, "", reqInvalid))
	c.do(t, bad(post("execute unknown field", "/v1/execute", `{"code":"1","memory":"1G"}`, 400), api.ProblemBadRequest, "memory", reqInvalid))
	c.do(t, bad(post("execute wrong type", "/v1/execute", `{"code":1}`, 400), api.ProblemBadRequest, "code", reqInvalid))
	// encoding/json names only the leaf of an unknown nested field ("ram").
	c.do(t, bad(post("execute unknown limit", "/v1/execute", `{"code":"1","limits":{"ram":"1G"}}`, 400), api.ProblemBadRequest, anyField, reqInvalid))
	c.do(t, bad(post("execute bad limit", "/v1/execute", `{"code":"1","limits":{"memory":"lots"}}`, 400), api.ProblemInvalidLimits, "limits.memory", reqValid))
	c.do(t, bad(post("execute limit above maximum", "/v1/execute", `{"code":"1","limits":{"timeout":"1h"}}`, 400), api.ProblemInvalidLimits, "limits.timeout", reqValid))
	c.do(t, bad(post("execute bad filename", "/v1/execute", `{"code":"1","filename":"../x.py"}`, 400), api.ProblemBadRequest, "", reqInvalid))
	c.do(t, bad(post("execute NUL in code", "/v1/execute", `{"code":"\u0000"}`, 400), api.ProblemBadRequest, "code", reqUnchecked))
	c.do(t, bad(post("execute code too large", "/v1/execute", jsonBody(api.ExecuteRequest{Code: "#" + strings.Repeat("x", 20<<10)}), 413),
		api.ProblemTooLarge, "code", reqValid))
	c.do(t, bad(post("execute body too large", "/v1/execute", jsonBody(map[string]any{"code": "1", "args": []string{strings.Repeat("x", 70<<10)}}), 413),
		api.ProblemTooLarge, "", reqValid))
	wrongCT := post("execute wrong content type", "/v1/execute", `{"code":"1"}`, 415)
	wrongCT.ctype = "text/plain"
	c.do(t, bad(wrongCT, api.ProblemUnsupported, "", reqInvalid))

	// A session.
	var sess api.Session
	a := c.do(t, post("create session", "/v1/sessions", "", 201))
	a.decode(t, &sess)
	if sess.ID == "" || sess.State != "idle" {
		t.Fatalf("create session: %+v", sess)
	}
	sp := "/v1/sessions/" + url.PathEscape(sess.ID)
	if loc := a.header.Get("Location"); loc != sp {
		t.Errorf("create session: Location %q, want %q", loc, sp)
	}
	c.do(t, bad(post("create session bad ttl", "/v1/sessions", `{"ttl":"soon"}`, 400), api.ProblemBadRequest, "ttl", reqValid))
	c.do(t, bad(post("create session ttl above maximum", "/v1/sessions", `{"ttl":"1000h"}`, 400), api.ProblemBadRequest, "ttl", reqValid))
	c.do(t, bad(post("create session bad limits", "/v1/sessions", `{"limits":{"memory":"1TiB"}}`, 400), api.ProblemInvalidLimits, "limits.memory", reqValid))
	c.do(t, bad(post("create session unknown field", "/v1/sessions", `{"timeout":"1s"}`, 400), api.ProblemBadRequest, "timeout", reqInvalid))
	c.do(t, exchange{name: "get session", method: http.MethodGet, path: sp, status: 200})
	var list struct{ Sessions []api.Session }
	c.do(t, exchange{name: "list sessions", method: http.MethodGet, path: "/v1/sessions", status: 200}).decode(t, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != sess.ID {
		t.Errorf("list sessions: %+v, want just %s", list.Sessions, sess.ID)
	}

	// Cells.
	var cell api.CellResult
	c.do(t, post("cell ok", sp+"/execute", `{"code":"x = 6*7"}`, 200)).decode(t, &cell)
	c.do(t, post("cell value", sp+"/execute", `{"code":"x"}`, 200)).decode(t, &cell)
	if cell.Status != api.StatusOK || cell.Value["text/plain"] != "42" || cell.ExecutionCount != 2 {
		t.Errorf("cell value: %+v", cell)
	}
	c.do(t, post("cell error", sp+"/execute", `{"code":"1/0"}`, 200)).decode(t, &cell)
	if cell.Status != api.StatusError || cell.Error == nil || cell.Error.Type != "ZeroDivisionError" {
		t.Errorf("cell error: %+v", cell)
	}
	c.do(t, post("cell timeout", sp+"/execute", `{"code":"import time\ntime.sleep(30)","timeout":"1s"}`, 200)).decode(t, &cell)
	if cell.Status != api.StatusTimeout || cell.SessionEnded {
		t.Errorf("cell timeout: %+v", cell)
	}
	stream = post("cell streamed", sp+"/execute", `{"code":"import sys\nfor i in range(3): print(i, flush=True)\nprint('e', file=sys.stderr)\nx"}`, 200)
	stream.accept = "text/event-stream"
	if a := c.do(t, stream); a != nil {
		var out string
		for _, ev := range a.events {
			var o api.OutputEvent
			if ev.name == api.EventStdout && json.Unmarshal([]byte(ev.data), &o) == nil {
				out += o.Text
			}
		}
		if out != "0\n1\n2\n" {
			t.Errorf("cell streamed: stdout events say %q, want 0 1 2", out)
		}
	}
	c.do(t, bad(post("cell bad timeout", sp+"/execute", `{"code":"1","timeout":"forever"}`, 400), api.ProblemBadRequest, "timeout", reqValid))
	c.do(t, bad(post("cell timeout above session's", sp+"/execute", `{"code":"1","timeout":"1h"}`, 400), api.ProblemBadRequest, "timeout", reqValid))
	c.do(t, bad(post("cell unknown field", sp+"/execute", `{"code":"1","limits":{}}`, 400), api.ProblemBadRequest, "limits", reqInvalid))
	wrongCT = post("cell wrong content type", sp+"/execute", `{"code":"1"}`, 415)
	wrongCT.ctype = "application/x-www-form-urlencoded"
	c.do(t, bad(wrongCT, api.ProblemUnsupported, "", reqInvalid))
	c.do(t, bad(post("cell unknown session", "/v1/sessions/s-nope/execute", `{"code":"1"}`, 404), api.ProblemNotFound, "", reqValid))

	// A second cell while one runs.
	slow := post("slow cell", sp+"/execute", `{"code":"import time\ntime.sleep(2)"}`, 200)
	slowDone := make(chan *answer, 1)
	go func() {
		a, err := c.send(context.Background(), slow)
		if err != nil {
			t.Errorf("slow cell: %v", err)
		}
		slowDone <- a
	}()
	waitFor(t, 10*time.Second, "the slow cell to start", func() bool {
		s, _, err := st.sessions.Get(sess.ID)
		return err == nil && s.Busy()
	})
	c.do(t, exchange{name: "get busy session", method: http.MethodGet, path: sp, status: 200}).decode(t, &sess)
	if sess.State != "busy" {
		t.Errorf("get busy session: state %q", sess.State)
	}
	c.do(t, bad(post("cell while busy", sp+"/execute", `{"code":"1"}`, 409), api.ProblemSessionBusy, "", reqValid))
	if a := <-slowDone; a != nil {
		t.Run(slow.name, func(t *testing.T) { c.check(t, slow, a) })
	}

	// Files.
	fp := func(p string) string { return sp + "/files/" + p }
	put := func(name, p, body string, status int) exchange {
		return exchange{name: name, method: http.MethodPut, path: fp(p), ctype: "application/octet-stream", body: body, status: status}
	}
	get := func(name, p string, status int) exchange {
		return exchange{name: name, method: http.MethodGet, path: fp(p), status: status}
	}
	del := func(name, p string, status int) exchange {
		return exchange{name: name, method: http.MethodDelete, path: fp(p), status: status}
	}
	var fi api.FileInfo
	c.do(t, put("upload", "data/in%20put.csv", "a,b\n1,2\n", 201)).decode(t, &fi)
	if fi.Path != "data/in put.csv" || fi.Size != 8 {
		t.Errorf("upload: %+v", fi)
	}
	var fl api.FileList
	c.do(t, exchange{name: "list files", method: http.MethodGet, path: sp + "/files", status: 200}).decode(t, &fl)
	if !slices.ContainsFunc(fl.Files, func(f api.FileInfo) bool { return f.Path == "data" && f.Type == "dir" }) ||
		!slices.ContainsFunc(fl.Files, func(f api.FileInfo) bool { return f.Path == "data/in put.csv" && f.Type == "file" }) {
		t.Errorf("list files: %+v, want data/ and data/in put.csv", fl)
	}
	c.do(t, exchange{name: "list a directory", method: http.MethodGet, path: sp + "/files?path=data", status: 200})
	c.do(t, bad(exchange{name: "list a bad path", method: http.MethodGet, path: sp + "/files?path=" + url.QueryEscape("a/../b"), status: 400},
		api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(exchange{name: "list a missing directory", method: http.MethodGet, path: sp + "/files?path=nope", status: 404},
		api.ProblemNotFound, "", reqValid))
	if a := c.do(t, get("download", "data/in%20put.csv", 200)); a != nil && string(a.body) != "a,b\n1,2\n" {
		t.Errorf("download: %q", a.body)
	}
	c.do(t, post("cell reads the upload", sp+"/execute", `{"code":"open('data/in put.csv').read()"}`, 200)).decode(t, &cell)
	if cell.Value["text/plain"] != `'a,b\n1,2\n'` {
		t.Errorf("cell reads the upload: %+v", cell)
	}
	c.do(t, bad(get("download a missing file", "nope.txt", 404), api.ProblemNotFound, "", reqValid))
	c.do(t, bad(get("download a directory", "data", 409), api.ProblemInvalidPath, "", reqValid))
	c.do(t, post("cell makes a link and a big file", sp+"/execute",
		`{"code":"import os\nos.symlink('/etc/passwd', 'link')\nopen('big.bin', 'wb').write(b'x' * 5000)"}`, 200))
	c.do(t, bad(get("download through a link", "link", 400), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(put("upload through a link", "link/x", "x", 400), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(get("download a file above the limit", "big.bin", 413), api.ProblemTooLarge, "", reqValid))
	c.do(t, bad(put("upload a file above the limit", "big2.bin", strings.Repeat("x", 5000), 413), api.ProblemTooLarge, "", reqValid))
	// The mux would clean a literal "..": encoded, it reaches the handler.
	c.do(t, bad(put("upload with ..", "a/%2e%2e/b", "x", 400), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(put("upload with NUL", "a%00b", "x", 400), api.ProblemInvalidPath, "", reqValid))
	// A literal ".." or "//" never reaches the mux, which would redirect.
	c.do(t, bad(get("download with a literal ..", "a/../data/in%20put.csv", 400), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(del("delete with a literal //", "data//in%20put.csv", 400), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(put("upload a file over a directory's parent", "data/in%20put.csv/x", "x", 404), api.ProblemNotFound, "", reqValid))
	c.do(t, bad(put("upload a reserved name", ".pybox-upload-x", "x", 400), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(put("upload over a directory", "data", "x", 409), api.ProblemInvalidPath, "", reqValid))
	c.do(t, bad(del("delete a directory that is not empty", "data", 409), api.ProblemInvalidPath, "", reqValid))
	c.do(t, del("delete a file", "data/in%20put.csv", 204))
	c.do(t, bad(del("delete it again", "data/in%20put.csv", 404), api.ProblemNotFound, "", reqValid))
	c.do(t, del("delete an empty directory", "data", 204))
	c.do(t, bad(del("delete with ..", "%2e%2e/x", 400), api.ProblemInvalidPath, "", reqValid))
	// The count quota: what the sandbox made counts too.
	c.do(t, post("cell fills the workspace", sp+"/execute", `{"code":"for i in range(8): open(f'f{i}', 'w').close()"}`, 200))
	c.do(t, exchange{name: "list a truncated workspace", method: http.MethodGet, path: sp + "/files", status: 200}).decode(t, &fl)
	if !fl.Truncated {
		t.Errorf("list a truncated workspace: %d entries, not truncated", len(fl.Files))
	}
	c.do(t, bad(put("upload to a full workspace", "one-more", "x", 507), api.ProblemNoSpace, "", reqValid))

	// Routes and methods that do not exist.
	c.do(t, bad(exchange{name: "unknown route", method: http.MethodGet, path: "/v1/nope", status: 404}, api.ProblemNotFound, "", reqUnchecked))
	c.do(t, bad(exchange{name: "unknown session route", method: http.MethodGet, path: sp + "/bogus", status: 404}, api.ProblemNotFound, "", reqUnchecked))
	c.do(t, bad(exchange{name: "trailing slash", method: http.MethodGet, path: "/v1/sessions/", status: 400}, api.ProblemInvalidPath, "", reqUnchecked))
	c.do(t, bad(exchange{name: "wrong method", method: http.MethodPatch, path: sp, status: 405}, api.ProblemMethodNotAllowed, "", reqUnchecked))
	c.do(t, bad(exchange{name: "wrong method on healthz", method: http.MethodPost, path: "/healthz", status: 405}, api.ProblemMethodNotAllowed, "", reqUnchecked))

	// A second session reaches the maximum of 2; the code of its only cell
	// ends it.
	var other api.Session
	c.do(t, post("create a second session", "/v1/sessions", `{"limits":{"memory":"128MiB"},"ttl":"1m"}`, 201)).decode(t, &other)
	c.do(t, bad(post("create one too many", "/v1/sessions", `{}`, 429), api.ProblemTooMany, "", reqValid))
	op := "/v1/sessions/" + url.PathEscape(other.ID)
	c.do(t, post("cell ends its session", op+"/execute", `{"code":"import os\nos._exit(3)"}`, 200)).decode(t, &cell)
	if !cell.SessionEnded {
		t.Errorf("cell ends its session: %+v", cell)
	}
	c.do(t, exchange{name: "get an ended session", method: http.MethodGet, path: op, status: 200}).decode(t, &other)
	if other.State != "ended" || other.EndReason == "" {
		t.Errorf("get an ended session: %+v", other)
	}
	c.do(t, bad(post("cell in an ended session", op+"/execute", `{"code":"1"}`, 410), api.ProblemSessionEnded, "", reqValid))
	c.do(t, bad(exchange{name: "list files of an ended session", method: http.MethodGet, path: op + "/files", status: 410}, api.ProblemSessionEnded, "", reqValid))
	c.do(t, bad(exchange{name: "upload to an ended session", method: http.MethodPut, path: op + "/files/x", body: "x", ctype: "application/octet-stream", status: 410},
		api.ProblemSessionEnded, "", reqValid))
	c.do(t, exchange{name: "delete an ended session", method: http.MethodDelete, path: op, status: 204})

	// Deleting a session.
	c.do(t, exchange{name: "delete session", method: http.MethodDelete, path: sp, status: 204})
	c.do(t, bad(exchange{name: "get after delete", method: http.MethodGet, path: sp, status: 404}, api.ProblemNotFound, "", reqValid))
	c.do(t, bad(post("cell after delete", sp+"/execute", `{"code":"1"}`, 404), api.ProblemNotFound, "", reqValid))
	c.do(t, bad(exchange{name: "list files after delete", method: http.MethodGet, path: sp + "/files", status: 404}, api.ProblemNotFound, "", reqValid))
	c.do(t, bad(get("download after delete", "x", 404), api.ProblemNotFound, "", reqValid))
	c.do(t, bad(del("delete a file after delete", "x", 404), api.ProblemNotFound, "", reqValid))
	c.do(t, bad(exchange{name: "delete after delete", method: http.MethodDelete, path: sp, status: 404}, api.ProblemNotFound, "", reqValid))

	// Draining: no new work, with Retry-After.
	st.srv.Drain()
	c.do(t, exchange{name: "healthz while draining", method: http.MethodGet, path: "/healthz", status: 200})
	c.do(t, exchange{name: "readyz while draining", method: http.MethodGet, path: "/readyz", status: 503})
	c.do(t, bad(post("execute while draining", "/v1/execute", `{"code":"1"}`, 503), api.ProblemUnavailable, "", reqValid))
	c.do(t, bad(post("create session while draining", "/v1/sessions", "", 503), api.ProblemUnavailable, "", reqValid))

	// Every operation was exercised.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !c.seen[op.OperationID] {
				t.Errorf("the scenario never exercised %s %s (%s)", method, path, op.OperationID)
			}
		}
	}
}
