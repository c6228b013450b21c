package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pybox-dev/pybox/client"
)

// RemoteHeader carries the MCP client's address from the HTTP handler to
// the tool calls (the SDK hands tools the request's header, not its
// address). HTTPHandler sets it after deleting what the client sent, so
// a client cannot choose what the audit log records as its address.
const RemoteHeader = "X-Pybox-Mcp-Remote"

// baseURL is the authority of in-process requests; nothing listens on it.
const baseURL = "http://pybox.in-process"

// inProcess is an http.RoundTripper that serves each request with the
// API's own handler, in this process: tool calls take exactly the path of
// /v1 requests (authentication, rate limits, policy, audit) without a
// socket. Responses are buffered, so it suits bounded answers only (the
// server caps files and output).
type inProcess struct {
	h      http.Handler
	header http.Header // the caller's credentials, set on every request
	remote string
	reqID  string
	n      atomic.Int64
}

func (t *inProcess) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	r := req.Clone(req.Context())
	for k, v := range t.header {
		r.Header[k] = v
	}
	r.RemoteAddr = t.remote
	r.RequestURI = r.URL.RequestURI()
	// One id per tool call, numbered per /v1 request it makes, so that
	// the audit log shows which records one MCP call produced.
	r.Header.Set("X-Request-ID", t.reqID+"-"+strconv.FormatInt(t.n.Add(1), 10))
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := &bufferedResponse{header: http.Header{}}
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, fmt.Errorf("in-process request %s %s aborted: %v", r.Method, r.URL.Path, v)
		}
	}()
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: req,
	}, nil
}

type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }
func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bufferedResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// newRequestID names one tool call in the audit log.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	return "mcp-" + hex.EncodeToString(b[:])
}

// LocalCaller serves the tools of a `pybox mcp` process over stdio: every
// call goes to h (the process's own API handler) with key, the one
// tenant's key, and all calls share one scope of session names.
func LocalCaller(h http.Handler, key string) Caller {
	hdr := http.Header{"Authorization": {"Bearer " + key}}
	return func(req *sdk.CallToolRequest) (API, string, error) {
		t := &inProcess{h: h, header: hdr, remote: "stdio", reqID: newRequestID()}
		return client.New(baseURL, &http.Client{Transport: t}), "stdio", nil
	}
}

// HTTPCaller serves the tools of the MCP endpoint of `pybox serve`: each
// call goes to h (the API's handler) with the credentials of the HTTP
// request that carried it, so it acts as that key's tenant. Session names
// are scoped by those credentials and by the MCP session.
func HTTPCaller(h http.Handler) Caller {
	return func(req *sdk.CallToolRequest) (API, string, error) {
		if req.Extra == nil || req.Extra.Header == nil {
			return nil, "", fmt.Errorf("this tool call arrived without its HTTP request's headers")
		}
		hdr := http.Header{}
		for _, k := range []string{"Authorization", "X-Api-Key"} {
			if v := req.Extra.Header.Values(k); len(v) > 0 {
				hdr[k] = v
			}
		}
		remote := req.Extra.Header.Get(RemoteHeader)
		if remote == "" {
			remote = "mcp"
		}
		sum := sha256.Sum256([]byte(hdr.Get("Authorization") + "\x00" + hdr.Get("X-Api-Key")))
		scope := hex.EncodeToString(sum[:8])
		if req.Session != nil {
			scope += "/" + req.Session.ID()
		}
		t := &inProcess{h: h, header: hdr, remote: remote, reqID: newRequestID()}
		return client.New(baseURL, &http.Client{Transport: t}), scope, nil
	}
}

// HTTPHandler is the streamable HTTP transport of srv, to be mounted
// behind the server's key check (server.RequireKey). tenantOf names a
// request's tenant: each MCP session is bound to the tenant that opened
// it, so that another key cannot use or end it even if it learns its id
// (the SDK answers 403). Idle MCP sessions close after idle, and the
// pybox sessions they made are ended with them.
func HTTPHandler(srv *sdk.Server, idle time.Duration, tenantOf func(*http.Request) (string, bool)) http.Handler {
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{SessionTimeout: idle})
	verify := func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		t, ok := tenantOf(r)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: t}, nil
	}
	bound := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	return withRemote(bearerKey(bound))
}

// bearerKey copies an X-API-Key into Authorization, where the SDK's
// token check looks: the server accepts either header.
func bearerKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && r.Header.Get("X-API-Key") != "" {
			r.Header.Set("Authorization", "Bearer "+r.Header.Get("X-API-Key"))
		}
		next.ServeHTTP(w, r)
	})
}

// withRemote sets RemoteHeader to the connection's address, replacing
// whatever the client sent.
func withRemote(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(RemoteHeader)
		r.Header.Set(RemoteHeader, remoteHost(r.RemoteAddr))
		next.ServeHTTP(w, r)
	})
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
