// Package server is pybox's HTTP API (version 1, described by
// api/openapi.yaml): one-shot executions in fresh sandboxes, sessions
// whose state persists between cells, and session workspaces. It turns
// every failure into an application/problem+json answer with a stable
// type; bad input never gets a 500.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/audit"
	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

// Config bounds what clients may ask of the server.
type Config struct {
	// Defaults are the limits of a request that sets none; Max the
	// highest a request may set.
	Defaults, Max sandbox.Limits
	// MaxConcurrent executions (one-shots and cells) run at once; beyond
	// that a request waits up to QueueWait, then gets 503.
	MaxConcurrent int
	QueueWait     time.Duration
	// MaxCodeBytes bounds the code of a request; MaxBodyBytes any JSON
	// body.
	MaxCodeBytes int64
	MaxBodyBytes int64
	// MaxCodeLines bounds the lines of a request's code.
	MaxCodeLines int
	// Workspace quotas.
	MaxFileBytes int64
	MaxFiles     int
	Version      string
	Logger       *slog.Logger

	// Tenants are the API keys the server accepts. NoAuth serves everyone
	// as one tenant, "anonymous", without a key: only for trusted hosts.
	Tenants []Tenant
	NoAuth  bool
	// Policy is the static policy of tenants that have none of their own
	// (default strict); ForcePolicy, when set, replaces every tenant's
	// (the restricted backend forces strict).
	Policy      *policy.Checker
	ForcePolicy *policy.Checker
	// Rate and Burst: the default token bucket per key (requests per
	// second on /v1 routes; 0: none). SessionRate and SessionBurst: the
	// bucket of each session's cells. MaxSessionsPerKey: the default
	// quota of live sessions per key (0: none beyond MaxSessions).
	Rate, SessionRate   float64
	Burst, SessionBurst int
	MaxSessionsPerKey   int
	// Audit receives one record per /v1 request; nil keeps none.
	Audit Auditor
}

// DefaultConfig returns the product defaults around the given limits.
func DefaultConfig(defaults sandbox.Limits) Config {
	return Config{
		Defaults: defaults,
		Max: sandbox.Limits{
			MemoryBytes:    max(defaults.MemoryBytes, 2<<30),
			CPU:            max(defaults.CPU, 1),
			Timeout:        max(defaults.Timeout, 10*time.Minute),
			Pids:           max(defaults.Pids, 1024),
			TmpfsBytes:     max(defaults.TmpfsBytes, 1<<30),
			MaxOutputBytes: max(defaults.MaxOutputBytes, 16<<20),
		},
		MaxConcurrent:     16,
		QueueWait:         2 * time.Second,
		MaxCodeBytes:      1 << 20,
		MaxCodeLines:      20000,
		Rate:              20,
		Burst:             40,
		SessionRate:       10,
		SessionBurst:      20,
		MaxSessionsPerKey: 16,
		MaxBodyBytes:      2 << 20,
		MaxFileBytes:      32 << 20,
		MaxFiles:          1000,
	}
}

// Server serves the API. Its sandboxes come from the Launcher; sessions
// live in the Manager.
type Server struct {
	cfg      Config
	log      *slog.Logger
	launcher *session.Launcher
	sessions *session.Manager
	backend  string
	mux      *http.ServeMux

	slots    chan struct{} // one per running execution
	running  atomic.Int64
	draining atomic.Bool
	wg       sync.WaitGroup // executions in flight

	tenants   []*tenant
	anonymous *tenant // with NoAuth
	metrics   *metrics
	cellRates sessionRates
}

// New builds a server; it owns neither the launcher nor the manager.
func New(cfg Config, backend string, l *session.Launcher, m *session.Manager) (*Server, error) {
	if err := cfg.Defaults.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Max.Validate(); err != nil {
		return nil, fmt.Errorf("server maxima: %w", err)
	}
	if cfg.MaxConcurrent <= 0 {
		return nil, errors.New("server: MaxConcurrent must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.MustNew(policy.Rules{Profile: policy.Strict})
	}
	if cfg.MaxCodeLines <= 0 {
		return nil, errors.New("server: MaxCodeLines must be positive")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, launcher: l, sessions: m, backend: backend,
		slots: make(chan struct{}, cfg.MaxConcurrent)}
	if err := s.setupTenants(); err != nil {
		return nil, err
	}
	if cfg.NoAuth {
		s.log.Warn("serving without API keys (--insecure-no-auth): anyone who reaches the listener can run code and read every session; use only on a trusted host")
	}
	s.metrics = newMetrics(s)
	s.cellRates = sessionRates{rate: cfg.SessionRate, burst: max(cfg.SessionBurst, 1), m: map[string]*rate.Limiter{}}
	s.mux = http.NewServeMux()
	for _, r := range s.routes() {
		s.mux.HandleFunc(r.pattern, r.handler)
	}
	return s, nil
}

// routes is the API's route table; openapi.yaml documents exactly these
// (a test checks both ways).
func (s *Server) routes() []route {
	return []route{
		{"GET /healthz", s.healthz},
		{"GET /readyz", s.readyz},
		{"GET /metrics", s.serveMetrics},
		{"GET /v1/limits", s.getLimits},
		{"POST /v1/execute", s.execute},
		{"POST /v1/sessions", s.createSession},
		{"GET /v1/sessions", s.listSessions},
		{"GET /v1/sessions/{id}", s.getSession},
		{"DELETE /v1/sessions/{id}", s.deleteSession},
		{"POST /v1/sessions/{id}/execute", s.executeCell},
		{"GET /v1/sessions/{id}/files", s.listFiles},
		{"PUT /v1/sessions/{id}/files/{path...}", s.putFile},
		{"GET /v1/sessions/{id}/files/{path...}", s.getFile},
		{"DELETE /v1/sessions/{id}/files/{path...}", s.deleteFile},
	}
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

// Routes lists the patterns the server serves ("GET /healthz", ...).
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.routes() {
		out = append(out, r.pattern)
	}
	return out
}

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux would redirect a path with "//", "." or ".." to its
		// clean form, and a workspace path such as "a//b" or "../x" would
		// silently become another file. Refuse instead.
		if p := r.URL.Path; p != "/" && (path.Clean(p) != p || strings.HasSuffix(p, "/")) {
			writeProblem(w, newProblem(http.StatusBadRequest, api.ProblemInvalidPath, "Invalid path",
				fmt.Sprintf("the URL path %q is not clean: it has an empty, \".\" or \"..\" segment or a trailing slash", p)))
			return
		}
		// Unknown routes and methods get problem bodies too.
		_, pattern := s.mux.Handler(r)
		if pattern == "" {
			rec := &statusProbe{}
			s.mux.ServeHTTP(rec, r)
			switch rec.status {
			case http.StatusMethodNotAllowed:
				w.Header().Set("Allow", rec.Header().Get("Allow"))
				writeProblem(w, newProblem(http.StatusMethodNotAllowed, api.ProblemMethodNotAllowed, "Method not allowed",
					fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.Header().Get("Allow"))))
			default:
				writeProblem(w, newProblem(http.StatusNotFound, api.ProblemNotFound, "Not found",
					fmt.Sprintf("no route %s %s; see openapi.yaml", r.Method, r.URL.Path)))
			}
			return
		}
		if !strings.Contains(pattern, " /v1/") {
			s.serveRoute(w, r, pattern)
			return
		}
		s.serveAPI(w, r, pattern)
	})
}

// serveAPI serves a /v1 route: a request id, the key, the key's rate, and
// one audit record whatever the outcome.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, pattern string) {
	a := &attempt{rec: audit.Record{Event: events[pattern], RequestID: requestID(r), Remote: remoteHost(r)}}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/sessions/"); ok {
		a.rec.Session, _, _ = strings.Cut(rest, "/")
	}
	w.Header().Set("X-Request-ID", a.rec.RequestID)
	aw := &auditWriter{ResponseWriter: w, s: s, a: a}
	defer func() {
		if aw.status == 0 {
			aw.WriteHeader(http.StatusOK)
		}
		if !a.committed {
			s.commit(a, aw.status)
		}
		s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(aw.status)).Inc()
	}()
	t, p := s.authenticate(r)
	if p != nil {
		aw.Header().Set("WWW-Authenticate", `Bearer realm="pybox"`)
		writeProblem(aw, p)
		return
	}
	a.tenant, a.rec.Tenant = t, t.Name
	if t.limiter != nil {
		if wait, ok := take(t.limiter); !ok {
			s.metrics.rateLimited.WithLabelValues("key").Inc()
			writeProblem(aw, rateLimited(wait, fmt.Sprintf("this API key may make %g requests per second (burst %d)", t.Rate, t.Burst)))
			return
		}
	}
	s.serveRoute(aw, r.WithContext(withAttempt(r.Context(), a)), pattern)
}

// serveRoute runs the route's handler, turning a panic into a 500.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, pattern string) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "route", pattern, "panic", v)
			writeProblem(w, newProblem(http.StatusInternalServerError, api.ProblemInternal, "Internal error",
				"pybox failed while handling this request; the error was logged"))
		}
	}()
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// statusProbe records what the mux would answer for an unmatched route.
type statusProbe struct {
	h      http.Header
	status int
}

func (p *statusProbe) Header() http.Header {
	if p.h == nil {
		p.h = http.Header{}
	}
	return p.h
}
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }

// Drain stops taking new work: readyz fails and new executions and
// sessions get 503, while running ones go on.
func (s *Server) Drain() { s.draining.Store(true) }

// Wait blocks until no execution is running or ctx is done.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire takes an execution slot, waiting up to QueueWait.
func (s *Server) acquire(ctx context.Context) (release func(), p *problem) {
	if s.draining.Load() {
		return nil, unavailable("the server is shutting down and takes no new work; retry on another instance")
	}
	s.wg.Add(1)
	select {
	case s.slots <- struct{}{}:
	default:
		t := time.NewTimer(s.cfg.QueueWait)
		defer t.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-t.C:
			s.wg.Done()
			p := newProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "At capacity",
				fmt.Sprintf("%d executions are running, the server's maximum; retry shortly", s.cfg.MaxConcurrent))
			p.retryAfter = time.Second
			return nil, p
		case <-ctx.Done():
			s.wg.Done()
			return nil, unavailable("the request was cancelled while queued")
		}
	}
	s.running.Add(1)
	return func() {
		s.running.Add(-1)
		<-s.slots
		s.wg.Done()
	}, nil
}

func unavailable(detail string) *problem {
	p := newProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "Unavailable", detail)
	p.retryAfter = time.Second
	return p
}

func (s *Server) health() api.Health {
	h := api.Health{Status: "ok", Sessions: s.sessions.Count(), Executions: int(s.running.Load()),
		WarmReady: s.launcher.Stats().Ready, Backend: s.backend, Version: s.cfg.Version,
		Goroutines: runtime.NumGoroutine()}
	if s.draining.Load() {
		h.Status = "draining"
	}
	return h
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.health())
}

// readyz fails while draining, so that a load balancer sends no more work.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	h := s.health()
	if h.Status != "ok" {
		writeJSON(w, http.StatusServiceUnavailable, h)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// limits resolves a request's limits against the defaults and maxima.
func (s *Server) limits(req *api.Limits) (sandbox.Limits, *problem) {
	l := s.cfg.Defaults
	if req == nil {
		return l, nil
	}
	bad := func(field, detail string) (sandbox.Limits, *problem) {
		p := newProblem(http.StatusBadRequest, api.ProblemInvalidLimits, "Invalid limits", detail)
		p.Field = "limits"
		if field != "" {
			p.Field += "." + field
		}
		return l, p
	}
	mx := s.cfg.Max
	size := func(field, v string, dst *int64, limit int64) *problem {
		if v == "" {
			return nil
		}
		n, err := config.ParseSize(v)
		if err != nil {
			_, p := bad(field, err.Error())
			return p
		}
		if n > limit {
			_, p := bad(field, fmt.Sprintf("%s is above the server's maximum of %d bytes", v, limit))
			return p
		}
		*dst = n
		return nil
	}
	if p := size("memory", req.Memory, &l.MemoryBytes, mx.MemoryBytes); p != nil {
		return l, p
	}
	if p := size("tmpfs_size", req.TmpfsSize, &l.TmpfsBytes, mx.TmpfsBytes); p != nil {
		return l, p
	}
	if p := size("max_output", req.MaxOutput, &l.MaxOutputBytes, mx.MaxOutputBytes); p != nil {
		return l, p
	}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil {
			return bad("timeout", fmt.Sprintf("%q is not a duration such as 30s or 1m30s", req.Timeout))
		}
		if d > mx.Timeout {
			return bad("timeout", fmt.Sprintf("%s is above the server's maximum of %s", d, mx.Timeout))
		}
		l.Timeout = d
	}
	if req.CPU != 0 {
		if req.CPU > mx.CPU {
			return bad("cpu", fmt.Sprintf("%g CPUs is above the server's maximum of %g", req.CPU, mx.CPU))
		}
		l.CPU = req.CPU
	}
	if req.Pids != 0 {
		if req.Pids > mx.Pids {
			return bad("pids", fmt.Sprintf("%d is above the server's maximum of %d", req.Pids, mx.Pids))
		}
		l.Pids = req.Pids
	}
	if err := l.Validate(); err != nil {
		return bad("", err.Error())
	}
	return l, nil
}

func effective(l sandbox.Limits) api.Effective {
	return api.Effective{MemoryBytes: l.MemoryBytes, CPU: l.CPU, TimeoutMS: l.Timeout.Milliseconds(),
		Pids: l.Pids, TmpfsBytes: l.TmpfsBytes, MaxOutputBytes: l.MaxOutputBytes}
}

// sandboxProblem maps a failure to get or run a sandbox.
func (s *Server) sandboxProblem(err error) *problem {
	switch {
	case errors.Is(err, sandbox.ErrInvalidSpec):
		return badRequest(err.Error())
	case errors.Is(err, context.Canceled):
		return unavailable("the request was cancelled")
	}
	s.log.Error("sandbox failure", "err", err)
	return unavailable("pybox could not set up a sandbox: " + err.Error())
}
