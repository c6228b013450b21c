package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/audit"
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Auditor is where the server writes one record per attempt. Append must
// return only once the record is durable: the reply waits for it.
type Auditor interface {
	Append(*audit.Record) error
	KeepCode() bool
}

// attempt is the audit record of one /v1 request, filled in as the
// request goes, and written just before the answer is sent.
type attempt struct {
	rec       audit.Record
	tenant    *tenant
	problem   string // the problem type answered, if any
	streaming bool   // an SSE answer: written before the final event instead
	committed bool
	failed    bool // the audit log refused the record; the answer was replaced
}

type attemptKey struct{}

func attemptOf(r *http.Request) *attempt {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		return &attempt{} // a handler called outside the /v1 wrapper (tests)
	}
	return a
}

// events names the audit event of each route.
var events = map[string]string{
	"POST /v1/execute":                         audit.EventExecute,
	"POST /v1/sessions":                        audit.EventSessionCreate,
	"GET /v1/sessions":                         "session_list",
	"GET /v1/sessions/{id}":                    "session_get",
	"DELETE /v1/sessions/{id}":                 audit.EventSessionDelete,
	"POST /v1/sessions/{id}/execute":           audit.EventCell,
	"GET /v1/sessions/{id}/files":              "file_list",
	"PUT /v1/sessions/{id}/files/{path...}":    audit.EventFilePut,
	"GET /v1/sessions/{id}/files/{path...}":    audit.EventFileGet,
	"DELETE /v1/sessions/{id}/files/{path...}": audit.EventFileDelete,
	"GET /v1/limits":                           "limits",
}

// Compiled on first use: every pybox process, a sandbox init included,
// would pay for it at start.
var requestIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`) })

// requestID is the client's X-Request-ID when it is sane, else a new one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-ID"); requestIDRE().MatchString(id) {
		return id
	}
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	return hex.EncodeToString(b[:])
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// auditWriter writes the attempt's record when the answer's status is
// set, before any of the answer reaches the client. If the record cannot
// be written, the answer becomes a 503: pybox does not answer what it
// could not put on record.
type auditWriter struct {
	http.ResponseWriter
	s      *Server
	a      *attempt
	status int
}

func (w *auditWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if !w.a.streaming {
		w.s.commit(w.a, code)
	}
	if w.a.failed {
		w.s.writeAuditFailure(w.ResponseWriter)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.a.failed && !w.a.streaming {
		return len(p), nil // the answer was replaced
	}
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && (!w.a.failed || w.a.streaming) {
		f.Flush()
	}
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) writeAuditFailure(w http.ResponseWriter) {
	p := newProblem(http.StatusServiceUnavailable, api.ProblemAuditUnavailable, "Audit log unavailable",
		"the server could not write this request to its audit log, so it does not answer it; the operator has been told (see the server log)")
	p.retryAfter = 5 * 1e9
	writeProblem(w, p)
}

// commit writes the attempt's record with the answer's status.
func (s *Server) commit(a *attempt, status int) {
	if a.committed || s.cfg.Audit == nil {
		a.committed = true
		return
	}
	a.committed = true
	r := &a.rec
	r.HTTPStatus = status
	if r.Outcome == "" {
		switch {
		case status < 300 && (r.Event == audit.EventExecute || r.Event == audit.EventCell):
			r.Outcome = audit.OutcomeExecuted
		case status < 400:
			r.Outcome = audit.OutcomeAccepted
		case status < 500:
			r.Outcome = audit.OutcomeRejected
		default:
			r.Outcome = audit.OutcomeFailed
		}
	}
	if r.Reason == "" && a.problem != "" {
		r.Reason = reasonOf(a.problem)
	}
	if err := s.cfg.Audit.Append(r); err != nil {
		a.failed = true
		s.metrics.auditErrors.Inc()
		s.log.Error("audit log refused a record; the request is answered 503", "err", err, "request_id", r.RequestID)
		return
	}
	if r.Outcome == audit.OutcomeRejected {
		s.metrics.rejections.WithLabelValues(r.Reason).Inc()
	}
}

// reasonOf turns a problem type into an audit reason ("too-large" →
// "too_large").
func reasonOf(problemType string) string {
	i := strings.LastIndexByte(problemType, '/')
	return strings.ReplaceAll(problemType[i+1:], "-", "_")
}

// noteCode records the code of an execution attempt.
func (a *attempt) noteCode(code string, keep bool) {
	a.rec.SetCode([]byte(code), keep)
}

// notePolicy records the policy's verdict.
func (a *attempt) notePolicy(v policy.Verdict) {
	a.rec.Policy = &audit.PolicyVerdict{Profile: string(v.Profile), Allowed: v.Allowed, Violations: v.Violations}
	if !v.Allowed {
		a.rec.Outcome, a.rec.Reason, a.rec.Status = audit.OutcomeRejected, "policy", string(sandbox.StatusPolicyViolation)
	}
}

// noteResult records how an execution ended.
func (a *attempt) noteResult(backend string, layers sandbox.Layers, status sandbox.Status, exit int, wall, cpu float64, peak, out, errb int64) {
	l := layers
	a.rec.Backend, a.rec.Layers, a.rec.Status = backend, &l, string(status)
	a.rec.ExitCode = &exit
	a.rec.WallMS, a.rec.CPUMS, a.rec.PeakMemoryBytes = wall, cpu, peak
	a.rec.StdoutBytes, a.rec.StderrBytes = out, errb
}

func withAttempt(ctx context.Context, a *attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}
