package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/api"
)

// problem is an error with its HTTP answer.
type problem struct {
	api.Problem
	retryAfter time.Duration
}

func (p *problem) Error() string { return p.Problem.Error() }

func newProblem(status int, typ, title, detail string) *problem {
	return &problem{Problem: api.Problem{Type: typ, Title: title, Status: status, Detail: detail}}
}

func badRequest(detail string) *problem {
	return newProblem(http.StatusBadRequest, api.ProblemBadRequest, "Bad request", detail)
}

// writeProblem answers with an RFC 9457 body.
func writeProblem(w http.ResponseWriter, p *problem) {
	if aw, ok := w.(*auditWriter); ok {
		aw.a.problem = p.Type
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(max(1, p.retryAfter.Round(time.Second)/time.Second))))
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(&p.Problem) //nolint:errcheck // the client went away
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// decodeJSON reads one JSON object of at most limit bytes into v, refusing
// unknown fields and trailing data: a misspelt field must not silently
// fall back to a default. An empty body is allowed when emptyOK.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any, emptyOK bool) *problem {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newProblem(http.StatusUnsupportedMediaType, api.ProblemUnsupported, "Unsupported media type",
				fmt.Sprintf("send the body as application/json (got %q)", ct))
		}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return newProblem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "Request body too large",
				fmt.Sprintf("the body is larger than %d bytes; send less code or upload data as files", limit))
		case errors.Is(err, io.EOF):
			if emptyOK {
				return nil
			}
			return badRequest("the body is empty; send a JSON object")
		case errors.As(err, &syn):
			return badRequest(fmt.Sprintf("the body is not valid JSON (at byte %d): %v", syn.Offset, err))
		case errors.As(err, &typ):
			p := badRequest(fmt.Sprintf("field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value))
			p.Field = typ.Field
			return p
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			p := badRequest(fmt.Sprintf("unknown field %q; see the API document (openapi.yaml) for the fields of this request", name))
			p.Field = name
			return p
		default:
			return badRequest("the body is not a valid JSON object: " + err.Error())
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return newProblem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "Request body too large",
				fmt.Sprintf("the body is larger than %d bytes", limit))
		}
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}
