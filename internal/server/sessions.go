package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func describe(s *session.Session, ttl time.Duration) api.Session {
	d := api.Session{
		ID: s.ID, State: "idle", CreatedAt: stamp(s.Created), LastUsedAt: stamp(s.LastUsed()),
		ExpiresAt: stamp(s.LastUsed().Add(ttl)), Executions: s.Executions(),
		Limits: effective(s.Limits()), Layers: s.Layers(), SetupMS: s.SetupMS, Warm: s.Warm,
	}
	switch {
	case s.Ended() != "":
		d.State, d.EndReason, d.ExpiresAt = "ended", s.Ended(), ""
	case s.Busy():
		d.State = "busy"
	}
	return d
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var req api.CreateSessionRequest
	if p := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req, true); p != nil {
		writeProblem(w, p)
		return
	}
	if s.draining.Load() {
		writeProblem(w, unavailable("the server is shutting down and takes no new sessions"))
		return
	}
	limits, p := s.limits(req.Limits)
	if p != nil {
		writeProblem(w, p)
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			p := badRequest(fmt.Sprintf("ttl %q is not a positive duration such as 10m", req.TTL))
			p.Field = "ttl"
			writeProblem(w, p)
			return
		}
		ttl = d
	}
	t := attemptOf(r).tenant
	req2 := session.Request{Limits: limits, TTL: ttl}
	if t != nil {
		req2.Owner, req2.Quota = t.Name, t.MaxSessions
	}
	sess, err := s.sessions.Create(r.Context(), req2)
	switch {
	case errors.Is(err, session.ErrQuota):
		p := newProblem(http.StatusTooManyRequests, api.ProblemQuota, "Session quota reached", err.Error())
		p.retryAfter = 5 * time.Second
		writeProblem(w, p)
		return
	case errors.Is(err, session.ErrCapacity):
		p := newProblem(http.StatusTooManyRequests, api.ProblemTooMany, "Too many sessions", err.Error())
		p.retryAfter = 5 * time.Second
		writeProblem(w, p)
		return
	case errors.Is(err, sandbox.ErrInvalidSpec):
		p := badRequest(strings.TrimPrefix(err.Error(), sandbox.ErrInvalidSpec.Error()+": "))
		if strings.Contains(err.Error(), "ttl") {
			p.Field = "ttl"
		}
		writeProblem(w, p)
		return
	case err != nil:
		writeProblem(w, s.sandboxProblem(err))
		return
	}
	_, ttl, _ = s.sessions.Get(sess.ID)
	attemptOf(r).rec.Session = sess.ID
	s.cellRates.prune(func(id string) bool { _, _, err := s.sessions.Get(id); return err == nil })
	w.Header().Set("Location", "/v1/sessions/"+sess.ID)
	writeJSON(w, http.StatusCreated, describe(sess, ttl))
}

// lookup finds the caller's session named in the path, or answers 404.
// Another tenant's session is answered exactly as a missing one, so that
// ids cannot be probed; the audit record tells the two apart.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*session.Session, time.Duration, bool) {
	id := r.PathValue("id")
	a := attemptOf(r)
	sess, ttl, err := s.sessions.Get(id)
	if err == nil && !owns(a.tenant, sess) {
		a.rec.Reason = "cross_tenant"
		s.log.Warn("request for another tenant's session", "tenant", a.rec.Tenant, "session", id, "request_id", a.rec.RequestID)
		err = session.ErrNotFound
	}
	if err != nil {
		writeProblem(w, notFoundSession(id))
		return nil, 0, false
	}
	return sess, ttl, true
}

func notFoundSession(id string) *problem {
	return newProblem(http.StatusNotFound, api.ProblemNotFound, "Session not found",
		fmt.Sprintf("no session %q: it never existed, was deleted, or expired long ago; create a new one with POST /v1/sessions", id))
}

// owns says whether tenant t may use sess. Without a tenant (a handler
// called directly, outside the /v1 wrapper) nothing is owned.
func owns(t *tenant, sess *session.Session) bool {
	return t != nil && sess.Owner == t.Name
}

// ended answers 410 for a session whose sandbox is gone, saying why.
func ended(w http.ResponseWriter, sess *session.Session) {
	writeProblem(w, newProblem(http.StatusGone, api.ProblemSessionEnded, "Session ended",
		fmt.Sprintf("session %s has ended: %s", sess.ID, sess.Ended())))
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	if sess, ttl, ok := s.lookup(w, r); ok {
		writeJSON(w, http.StatusOK, describe(sess, ttl))
	}
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	out := []api.Session{}
	t := attemptOf(r).tenant
	for _, sess := range s.sessions.List() {
		if !owns(t, sess) {
			continue
		}
		_, ttl, err := s.sessions.Get(sess.ID)
		if err == nil {
			out = append(out, describe(sess, ttl))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if err := s.sessions.Delete(sess.ID); err != nil {
		writeProblem(w, notFoundSession(sess.ID))
		return
	}
	s.cellRates.forget(sess.ID)
	w.WriteHeader(http.StatusNoContent)
}

// executeCell runs a cell (POST /v1/sessions/{id}/execute).
func (s *Server) executeCell(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var req api.CellRequest
	if !s.decodeCode(w, r, &req, &req.Code) {
		return
	}
	a := attemptOf(r)
	if l := s.cellRates.limiter(sess.ID); l != nil {
		if wait, ok := take(l); !ok {
			s.metrics.rateLimited.WithLabelValues("session").Inc()
			writeProblem(w, rateLimited(wait, fmt.Sprintf("a session may run %g cells per second (burst %d)", s.cfg.SessionRate, s.cellRates.burst)))
			return
		}
	}
	var timeout time.Duration
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > sess.Limits().Timeout {
			p := badRequest(fmt.Sprintf("timeout %q must be a positive duration of at most the session's %s", req.Timeout, sess.Limits().Timeout))
			p.Field = "timeout"
			writeProblem(w, p)
			return
		}
		timeout = d
	}
	if sess.Ended() != "" {
		ended(w, sess)
		return
	}
	if sess.Busy() {
		writeProblem(w, busy(sess))
		return
	}
	if v := s.checkPolicy(a, req.Code); !v.Allowed {
		s.metrics.executions.WithLabelValues("cell", s.backend, string(api.StatusPolicyViolation)).Inc()
		writeJSON(w, http.StatusOK, &api.CellResult{Status: api.StatusPolicyViolation, Message: v.Summary(), Violations: v.Violations})
		return
	}
	acquireStart := time.Now()
	release, p := s.acquire(r.Context())
	if p != nil {
		writeProblem(w, p)
		return
	}
	defer release()
	s.metrics.phase.WithLabelValues("acquire").Observe(time.Since(acquireStart).Seconds())
	var stream *eventStream
	var out session.StreamFunc
	if wantsStream(r) {
		a.streaming = true
		stream = startStream(w)
		out = stream.output
	}
	runStart := time.Now()
	res, err := sess.Execute(r.Context(), req.Code, timeout, out)
	s.metrics.phase.WithLabelValues("run").Observe(time.Since(runStart).Seconds())
	if err != nil {
		var p *problem
		var end *session.EndedError
		switch {
		case errors.Is(err, session.ErrBusy):
			p = busy(sess)
		case errors.As(err, &end):
			p = newProblem(http.StatusGone, api.ProblemSessionEnded, "Session ended", fmt.Sprintf("session %s has ended: %s", sess.ID, end.Reason))
		default:
			p = s.sandboxProblem(err)
		}
		if stream != nil {
			a.problem = p.Type
			s.finishStream(a, stream, p.Status, api.EventError, &p.Problem)
			return
		}
		writeProblem(w, p)
		return
	}
	exit := 0
	if res.Error != nil {
		exit = 1
	}
	a.noteResult(s.backend, sess.Layers(), res.Status, exit, res.WallMS, res.CPUMS, res.PeakMemoryBytes, res.StdoutBytes, res.StderrBytes)
	s.metrics.executions.WithLabelValues("cell", s.backend, string(res.Status)).Inc()
	if stream != nil {
		s.finishStream(a, stream, http.StatusOK, api.EventResult, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// finishStream writes a streamed answer's audit record, then its last
// event; if the record cannot be written, the last event is an error.
func (s *Server) finishStream(a *attempt, e *eventStream, status int, name string, v any) {
	s.commit(a, status)
	if a.failed {
		p := newProblem(http.StatusServiceUnavailable, api.ProblemAuditUnavailable, "Audit log unavailable",
			"the server could not write this request to its audit log, so it withholds the result; the operator has been told")
		e.finish(api.EventError, &p.Problem)
		return
	}
	e.finish(name, v)
}

func busy(sess *session.Session) *problem {
	p := newProblem(http.StatusConflict, api.ProblemSessionBusy, "Session busy",
		fmt.Sprintf("a cell is already running in session %s; cells of a session run one at a time", sess.ID))
	p.retryAfter = time.Second
	return p
}
