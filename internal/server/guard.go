package server

import (
	"net/http"
	"strconv"

	"github.com/pybox-dev/pybox/internal/audit"
)

// EventMCP names the audit records of requests to the MCP endpoint that
// were refused before reaching it (no key, or a wrong one). Tool calls are
// not recorded under it: each goes through a /v1 route and gets that
// route's record.
const EventMCP = "mcp"

// RequireKey serves next (the MCP endpoint, /mcp) only to requests that
// carry an API key this server accepts, as the /v1 routes do; others get
// 401 and an audit record. It authenticates only: next must make its own
// requests through Handler with the caller's key, so that each one is
// checked for the key's tenant, its rate, its sessions and its policy, and
// recorded.
func (s *Server) RequireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p := s.authenticate(r); p != nil {
			a := &attempt{rec: audit.Record{Event: EventMCP, RequestID: requestID(r), Remote: remoteHost(r)}}
			w.Header().Set("X-Request-ID", a.rec.RequestID)
			aw := &auditWriter{ResponseWriter: w, s: s, a: a}
			aw.Header().Set("WWW-Authenticate", `Bearer realm="pybox"`)
			writeProblem(aw, p)
			s.metrics.requests.WithLabelValues("/mcp", strconv.Itoa(aw.status)).Inc()
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TenantOf names the tenant of a request's API key, for a handler behind
// RequireKey that binds its own state (MCP sessions) to the tenant.
func (s *Server) TenantOf(r *http.Request) (string, bool) {
	t, p := s.authenticate(r)
	if p != nil {
		return "", false
	}
	return t.Name, true
}
