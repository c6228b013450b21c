package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// execute runs code once in a fresh sandbox (POST /v1/execute). The
// answer is 200 whatever the code did; the status is in the result.
func (s *Server) execute(w http.ResponseWriter, r *http.Request) {
	var req api.ExecuteRequest
	if !s.decodeCode(w, r, &req, &req.Code) {
		return
	}
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
	var stream *eventStream
	if wantsStream(r) {
		stream = startStream(w)
		spec.Stdout = streamWriter{stream, api.EventStdout}
		spec.Stderr = streamWriter{stream, api.EventStderr}
	}
	res, err := conn.Run(r.Context(), spec)
	if err != nil {
		p := s.sandboxProblem(err)
		if stream != nil {
			stream.finish(api.EventError, &p.Problem)
			return
		}
		writeProblem(w, p)
		return
	}
	res.SetupMS = sandbox.Millis(setup)
	res.WallMS += res.SetupMS
	if stream != nil {
		stream.finish(api.EventResult, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
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
	if strings.ContainsRune(code, 0) {
		p := badRequest("the code contains a NUL byte")
		p.Field = "code"
		return p
	}
	return nil
}
