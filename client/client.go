// Package client is the Go client of pybox's HTTP API (package api has the
// types). Failures the server reports come back as *Error, which carries
// the problem's stable type and, for 429 and 503, when to retry.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/api"
)

// Client talks to one pybox server. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
	key  string
}

// New returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080"). hc may be nil for http.DefaultClient.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc}
}

// WithKey returns a copy of c that sends key as its API key
// (Authorization: Bearer).
func (c *Client) WithKey(key string) *Client {
	d := *c
	d.key = key
	return &d
}

// Error is a problem the server answered with.
type Error struct {
	api.Problem
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("pybox: %d %s", e.Status, e.Problem.Error())
}

// IsProblem reports whether err is a server problem of the given type
// (one of the api.Problem* constants).
func IsProblem(err error, typ string) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == typ
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, readProblem(resp)
	}
	return resp, nil
}

func readProblem(resp *http.Response) error {
	e := &Error{}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(data, &e.Problem); err != nil || e.Type == "" {
		e.Problem = api.Problem{Type: "about:blank", Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(data))}
	}
	e.Status = resp.StatusCode
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(data), "application/json"
	}
	resp, err := c.do(ctx, method, path, body, ct, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Execute runs code once in a fresh sandbox.
func (c *Client) Execute(ctx context.Context, req api.ExecuteRequest) (*api.Result, error) {
	var res api.Result
	return &res, c.call(ctx, http.MethodPost, "/v1/execute", req, &res)
}

// OutputFunc receives streamed output: stream is "stdout" or "stderr".
type OutputFunc func(stream, text string)

// ExecuteStream is Execute with output passed to out as it is printed.
func (c *Client) ExecuteStream(ctx context.Context, req api.ExecuteRequest, out OutputFunc) (*api.Result, error) {
	var res api.Result
	return &res, c.stream(ctx, "/v1/execute", req, out, &res)
}

// CreateSession starts a session.
func (c *Client) CreateSession(ctx context.Context, req api.CreateSessionRequest) (*api.Session, error) {
	var s api.Session
	return &s, c.call(ctx, http.MethodPost, "/v1/sessions", req, &s)
}

// Session describes a session.
func (c *Client) Session(ctx context.Context, id string) (*api.Session, error) {
	var s api.Session
	return &s, c.call(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &s)
}

// DeleteSession ends a session.
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/sessions/"+url.PathEscape(id), nil, nil)
}

// Run executes a cell in a session.
func (c *Client) Run(ctx context.Context, id string, req api.CellRequest) (*api.CellResult, error) {
	var res api.CellResult
	return &res, c.call(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/execute", req, &res)
}

// RunStream is Run with output passed to out as it is printed.
func (c *Client) RunStream(ctx context.Context, id string, req api.CellRequest, out OutputFunc) (*api.CellResult, error) {
	var res api.CellResult
	return &res, c.stream(ctx, "/v1/sessions/"+url.PathEscape(id)+"/execute", req, out, &res)
}

// stream posts in and reads server-sent events until the result.
func (c *Client) stream(ctx context.Context, path string, in any, out OutputFunc, res any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, path, bytes.NewReader(data), "application/json", "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	var event string
	var payload []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			payload = append(payload, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		case line == "":
			switch event {
			case api.EventStdout, api.EventStderr:
				var o api.OutputEvent
				if err := json.Unmarshal(payload, &o); err == nil && out != nil {
					out(event, o.Text)
				}
			case api.EventResult:
				return json.Unmarshal(payload, res)
			case api.EventError:
				e := &Error{}
				if err := json.Unmarshal(payload, &e.Problem); err != nil {
					return err
				}
				return e
			}
			event, payload = "", nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// filePath escapes a workspace path segment by segment.
func filePath(id, path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/v1/sessions/" + url.PathEscape(id) + "/files/" + strings.Join(parts, "/")
}

// Upload stores r at path in the session's workspace.
func (c *Client) Upload(ctx context.Context, id, path string, r io.Reader) (*api.FileInfo, error) {
	resp, err := c.do(ctx, http.MethodPut, filePath(id, path), r, "application/octet-stream", "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var fi api.FileInfo
	return &fi, json.NewDecoder(resp.Body).Decode(&fi)
}

// Download returns the content of a workspace file; the caller closes it.
func (c *Client) Download(ctx context.Context, id, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, filePath(id, path), nil, "", "application/octet-stream")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Files lists the workspace (or the directory sub of it, "" for all).
func (c *Client) Files(ctx context.Context, id, sub string) (*api.FileList, error) {
	p := "/v1/sessions/" + url.PathEscape(id) + "/files"
	if sub != "" {
		p += "?path=" + url.QueryEscape(sub)
	}
	var fl api.FileList
	return &fl, c.call(ctx, http.MethodGet, p, nil, &fl)
}

// DeleteFile removes a workspace file or empty directory.
func (c *Client) DeleteFile(ctx context.Context, id, path string) error {
	return c.call(ctx, http.MethodDelete, filePath(id, path), nil, nil)
}

// Health returns the server's /healthz.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var h api.Health
	return &h, c.call(ctx, http.MethodGet, "/healthz", nil, &h)
}

// Sessions lists the caller's sessions.
func (c *Client) Sessions(ctx context.Context) ([]api.Session, error) {
	var out struct {
		Sessions []api.Session `json:"sessions"`
	}
	return out.Sessions, c.call(ctx, http.MethodGet, "/v1/sessions", nil, &out)
}

// Limits returns what the caller's key may do on the server.
func (c *Client) Limits(ctx context.Context) (*api.LimitsInfo, error) {
	var l api.LimitsInfo
	return &l, c.call(ctx, http.MethodGet, "/v1/limits", nil, &l)
}
