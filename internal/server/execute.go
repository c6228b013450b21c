package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// execute runs code once in a fresh sandbox (POST /v1/execute). The
// answer is 200 whatever the code did; the status is in the result.
func (s *Server) execute(w http.ResponseWriter, r *http.Request) {
	var req api.ExecuteRequest
	if !s.decodeCode(w, r, &req, &req.Code) {
		return
	}
	a := attemptOf(r)
	limits, p := s.limits(req.Limits)
	if p != nil {
		writeProblem(w, p)
		return
	}
	spec := &sandbox.Spec{Code: []byte(req.Code), Filename: req.Filename, Args: req.Args, Limits: limits}
	if err := spec.Validate(); err != nil {
		writeProblem(w, badRequest(strings.TrimPrefix(err.Error(), sandbox.ErrInvalidSpec.Error()+": ")))
		return
	}
	if v := s.checkPolicy(a, req.Code); !v.Allowed {
		s.metrics.executions.WithLabelValues("execute", s.backend, string(api.StatusPolicyViolation)).Inc()
		writeJSON(w, http.StatusOK, &sandbox.Result{Status: sandbox.StatusPolicyViolation, Message: v.Summary(),
			Violations: v.Violations, Layers: sandbox.NoLayers(s.backend)})
		return
	}
	acquireStart := time.Now()
	release, p := s.acquire(r.Context())
	if p != nil {
		writeProblem(w, p)
		return
	}
	defer release()
	conn, _, setup, err := s.launcher.Get(r.Context(), limits)
	if err != nil {
		writeProblem(w, s.sandboxProblem(err))
		return
	}
	s.metrics.phase.WithLabelValues("acquire").Observe(time.Since(acquireStart).Seconds())
	var stream *eventStream
	if wantsStream(r) {
		a.streaming = true
		stream = startStream(w)
		spec.Stdout = streamWriter{stream, api.EventStdout}
		spec.Stderr = streamWriter{stream, api.EventStderr}
	}
	runStart := time.Now()
	res, err := conn.Run(r.Context(), spec)
	s.metrics.phase.WithLabelValues("run").Observe(time.Since(runStart).Seconds())
	if err != nil {
		p := s.sandboxProblem(err)
		if stream != nil {
			a.problem = p.Type
			s.finishStream(a, stream, p.Status, api.EventError, &p.Problem)
			return
		}
		writeProblem(w, p)
		return
	}
	res.SetupMS = sandbox.Millis(setup)
	res.WallMS += res.SetupMS
	a.noteResult(s.backend, res.Layers, res.Status, res.ExitCode, res.WallMS, res.CPUMS, res.PeakMemoryBytes, res.StdoutBytes, res.StderrBytes)
	s.metrics.executions.WithLabelValues("execute", s.backend, string(res.Status)).Inc()
	if stream != nil {
		s.finishStream(a, stream, http.StatusOK, api.EventResult, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// checkPolicy applies the tenant's static policy to code, recording the
// code and the verdict in the attempt.
func (s *Server) checkPolicy(a *attempt, code string) policy.Verdict {
	keep := s.cfg.Audit != nil && s.cfg.Audit.KeepCode()
	a.noteCode(code, keep)
	c := s.cfg.Policy
	if a.tenant != nil && a.tenant.Policy != nil {
		c = a.tenant.Policy
	}
	if s.cfg.ForcePolicy != nil {
		c = s.cfg.ForcePolicy
	}
	start := time.Now()
	v := c.Check([]byte(code))
	s.metrics.phase.WithLabelValues("policy").Observe(time.Since(start).Seconds())
	a.notePolicy(v)
	return v
}

type streamWriter struct {
	e    *eventStream
	name string
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.e.output(w.name, p)
	return len(p), nil
}

// decodeCode reads a request body that carries code into v (code points
// at its Code field) and applies the request limits on code, or answers
// the problem.
func (s *Server) decodeCode(w http.ResponseWriter, r *http.Request, v any, code *string) bool {
	p := decodeJSON(w, r, s.cfg.MaxBodyBytes, v, false)
	if p == nil {
		p = s.checkCode(*code)
	}
	if p != nil {
		writeProblem(w, p)
		return false
	}
	return true
}

// checkCode applies the request limits on code.
func (s *Server) checkCode(code string) *problem {
	if int64(len(code)) > s.cfg.MaxCodeBytes {
		p := newProblem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "Code too large",
			fmt.Sprintf("the code is %d bytes; the server accepts at most %d. Upload data as files instead of inlining it", len(code), s.cfg.MaxCodeBytes))
		p.Field = "code"
		return p
	}
	if lines := strings.Count(code, "\n") + 1; lines > s.cfg.MaxCodeLines {
		p := newProblem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "Code too long",
			fmt.Sprintf("the code has %d lines; the server accepts at most %d. Split the work into several cells or upload data as files", lines, s.cfg.MaxCodeLines))
		p.Field = "code"
		return p
	}
	if strings.ContainsRune(code, 0) {
		p := badRequest("the code contains a NUL byte")
		p.Field = "code"
		return p
	}
	return nil
}
