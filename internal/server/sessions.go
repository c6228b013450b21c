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
	sess, err := s.sessions.Create(r.Context(), limits, ttl)
	switch {
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
	w.Header().Set("Location", "/v1/sessions/"+sess.ID)
	writeJSON(w, http.StatusCreated, describe(sess, ttl))
}

// lookup finds the session named in the path, or answers 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*session.Session, time.Duration, bool) {
	id := r.PathValue("id")
	sess, ttl, err := s.sessions.Get(id)
	if err != nil {
		writeProblem(w, newProblem(http.StatusNotFound, api.ProblemNotFound, "Session not found",
			fmt.Sprintf("no session %q: it never existed, was deleted, or expired long ago; create a new one with POST /v1/sessions", id)))
		return nil, 0, false
	}
	return sess, ttl, true
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
	for _, sess := range s.sessions.List() {
		_, ttl, err := s.sessions.Get(sess.ID)
		if err == nil {
			out = append(out, describe(sess, ttl))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.sessions.Delete(id); err != nil {
		writeProblem(w, newProblem(http.StatusNotFound, api.ProblemNotFound, "Session not found", fmt.Sprintf("no session %q", id)))
		return
	}
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
	release, p := s.acquire(r.Context())
	if p != nil {
		writeProblem(w, p)
		return
	}
	defer release()
	var stream *eventStream
	var out session.StreamFunc
	if wantsStream(r) {
		stream = startStream(w)
		out = stream.output
	}
	res, err := sess.Execute(r.Context(), req.Code, timeout, out)
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
			stream.finish(api.EventError, &p.Problem)
			return
		}
		writeProblem(w, p)
		return
	}
	if stream != nil {
		stream.finish(api.EventResult, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func busy(sess *session.Session) *problem {
	p := newProblem(http.StatusConflict, api.ProblemSessionBusy, "Session busy",
		fmt.Sprintf("a cell is already running in session %s; cells of a session run one at a time", sess.ID))
	p.retryAfter = time.Second
	return p
}
