// Package api holds the wire types of pybox's HTTP API (version 1): what
// clients send and what the server answers. The server, the Go client
// (package client) and the OpenAPI document (openapi.yaml) all describe
// these types; a test keeps the document and the routes in step.
package api

import (
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Result is the outcome of a one-shot execution, the same object as
// `pybox run --json` prints.
type Result = sandbox.Result

// Layers says which isolation mechanisms were in force.
type Layers = sandbox.Layers

// Status is the one-word outcome of an execution or a cell.
type Status = sandbox.Status

// The statuses, as in `pybox run --json`.
const (
	StatusOK          = sandbox.StatusOK
	StatusError       = sandbox.StatusError
	StatusTimeout     = sandbox.StatusTimeout
	StatusMemoryLimit = sandbox.StatusMemoryLimit
	StatusOutputLimit = sandbox.StatusOutputLimit
	StatusKilled      = sandbox.StatusKilled
	// StatusPolicyViolation: the static policy rejected the code before it
	// ran; Violations say where and why.
	StatusPolicyViolation = sandbox.StatusPolicyViolation
	// StatusInterrupted: a cell ended by KeyboardInterrupt at the client's
	// request; the session lives on.
	StatusInterrupted Status = "interrupted"
)

// Limits a request may set; zero fields take the server's defaults, and
// each must be within the server's maxima. Sizes are strings such as
// "256MiB" or plain byte counts; durations such as "30s".
type Limits struct {
	Memory    string  `json:"memory,omitempty"`
	CPU       float64 `json:"cpu,omitempty"`
	Timeout   string  `json:"timeout,omitempty"`
	Pids      int     `json:"pids,omitempty"`
	TmpfsSize string  `json:"tmpfs_size,omitempty"`
	MaxOutput string  `json:"max_output,omitempty"`
}

// ExecuteRequest is the body of POST /v1/execute.
type ExecuteRequest struct {
	Code string `json:"code"`
	// Filename is the script's base name (tracebacks, sys.argv[0]);
	// default main.py.
	Filename string   `json:"filename,omitempty"`
	Args     []string `json:"args,omitempty"`
	Limits   *Limits  `json:"limits,omitempty"`
}

// CreateSessionRequest is the body of POST /v1/sessions (may be empty).
type CreateSessionRequest struct {
	Limits *Limits `json:"limits,omitempty"`
	// TTL is how long the session may stay idle before it expires
	// (default and maximum set by the server).
	TTL string `json:"ttl,omitempty"`
}

// Session describes a session.
type Session struct {
	ID         string    `json:"id"`
	State      string    `json:"state"` // "idle", "busy" or "ended"
	CreatedAt  string    `json:"created_at"`
	LastUsedAt string    `json:"last_used_at"`
	ExpiresAt  string    `json:"expires_at,omitempty"` // absent once ended
	Executions int64     `json:"executions"`
	EndReason  string    `json:"end_reason,omitempty"`
	Limits     Effective `json:"limits"`
	Layers     Layers    `json:"layers"`
	// SetupMS is how long creating the session took on the server.
	SetupMS float64 `json:"setup_ms"`
	// Warm says whether the session's sandbox came from the warm pool.
	Warm bool `json:"warm"`
}

// Effective are the limits in force, in plain units.
type Effective struct {
	MemoryBytes    int64   `json:"memory_bytes"`
	CPU            float64 `json:"cpu"`
	TimeoutMS      int64   `json:"timeout_ms"`
	Pids           int     `json:"pids"`
	TmpfsBytes     int64   `json:"tmpfs_bytes"`
	MaxOutputBytes int64   `json:"max_output_bytes"`
}

// CellRequest is the body of POST /v1/sessions/{id}/execute.
type CellRequest struct {
	Code string `json:"code"`
	// Timeout for this cell, at most the session's; default the session's.
	Timeout string `json:"timeout,omitempty"`
}

// Display is one rich output: image/png (base64), text/html, text/plain.
type Display struct {
	MIME string `json:"mime"`
	Data string `json:"data"`
}

// CellError is an exception raised by a cell. Traceback line numbers
// refer to the cell ("<cell N>").
type CellError struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

// CellResult is the outcome of one cell.
type CellResult struct {
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
	// ExecutionCount numbers the session's cells from 1, as a notebook
	// does; tracebacks name the cell "<cell N>".
	ExecutionCount  int64  `json:"execution_count"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	StdoutBytes     int64  `json:"stdout_bytes"`
	StderrBytes     int64  `json:"stderr_bytes"`
	// Value is the last expression's value as a REPL shows it, by MIME
	// type: text/plain (its repr) and, for objects that have one (pandas
	// DataFrames), text/html.
	Value   map[string]string `json:"value,omitempty"`
	Display []Display         `json:"display,omitempty"`
	Error   *CellError        `json:"error,omitempty"`
	WallMS  float64           `json:"wall_ms"`
	CPUMS   float64           `json:"cpu_ms"`
	// PeakMemoryBytes is the session's peak so far.
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
	// SessionEnded is set when the session did not survive the cell.
	SessionEnded bool `json:"session_ended,omitempty"`
	// Violations are the static policy's reasons, with status
	// policy_violation (the cell did not run).
	Violations []Violation `json:"violations,omitempty"`
}

// Violation is one reason the static policy gave for rejecting code.
type Violation = policy.Violation

// Stream events of a cell run with Accept: text/event-stream. Each event's
// data is JSON: "stdout" and "stderr" carry {"text": "..."} as printed;
// the last event, "result", carries the CellResult (or, for one-shots, the
// Result). An "error" event carries a Problem.
const (
	EventStdout = "stdout"
	EventStderr = "stderr"
	EventResult = "result"
	EventError  = "error"
)

// OutputEvent is the data of a stdout or stderr event.
type OutputEvent struct {
	Text string `json:"text"`
}

// FileInfo describes one entry of a session's workspace.
type FileInfo struct {
	Path    string `json:"path"`
	Type    string `json:"type"` // "file", "dir", "symlink", "other"
	Size    int64  `json:"size"`
	Mode    string `json:"mode"`
	ModTime string `json:"mod_time"`
}

// FileList is the answer of GET /v1/sessions/{id}/files.
type FileList struct {
	Files     []FileInfo `json:"files"`
	Truncated bool       `json:"truncated"`
}

// Problem is an RFC 9457 error body (application/problem+json). Type is a
// stable URI naming the kind of error; clients switch on it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the request field at fault, where there is one.
	Field string `json:"field,omitempty"`
}

// Error implements error so that clients can return a Problem.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// Problem types.
const (
	ProblemBadRequest       = "https://pybox.dev/problems/bad-request"
	ProblemInvalidLimits    = "https://pybox.dev/problems/invalid-limits"
	ProblemNotFound         = "https://pybox.dev/problems/not-found"
	ProblemSessionEnded     = "https://pybox.dev/problems/session-ended"
	ProblemSessionBusy      = "https://pybox.dev/problems/session-busy"
	ProblemTooLarge         = "https://pybox.dev/problems/too-large"
	ProblemTooMany          = "https://pybox.dev/problems/too-many-requests"
	ProblemUnavailable      = "https://pybox.dev/problems/unavailable"
	ProblemInvalidPath      = "https://pybox.dev/problems/invalid-path"
	ProblemNoSpace          = "https://pybox.dev/problems/no-space"
	ProblemUnsupported      = "https://pybox.dev/problems/unsupported-media-type"
	ProblemMethodNotAllowed = "https://pybox.dev/problems/method-not-allowed"
	ProblemInternal         = "https://pybox.dev/problems/internal"
	// ProblemUnauthorized: no API key, or one the server does not know.
	ProblemUnauthorized = "https://pybox.dev/problems/unauthorized"
	// ProblemRateLimited: the key's or the session's request rate was
	// passed; Retry-After says when to come back.
	ProblemRateLimited = "https://pybox.dev/problems/rate-limited"
	// ProblemQuota: the key holds its maximum number of sessions.
	ProblemQuota = "https://pybox.dev/problems/quota"
	// ProblemAuditUnavailable: the audit log could not record the request,
	// so the server refused to answer it (it fails closed).
	ProblemAuditUnavailable = "https://pybox.dev/problems/audit-unavailable"
)

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"` // "ok", "draining", "starting"
	// Sessions and Executions are in use now; Ready is the warm pool.
	Sessions   int    `json:"sessions"`
	Executions int    `json:"executions"`
	WarmReady  int    `json:"warm_ready"`
	Backend    string `json:"backend"`
	Version    string `json:"version"`
	// Goroutines of the server process, for leak checks in soak tests.
	Goroutines int `json:"goroutines"`
}

// LimitsInfo is the answer of GET /v1/limits: what the caller's API key
// may do on this server. Zero rates mean "no limit".
type LimitsInfo struct {
	Tenant string `json:"tenant"`
	// Policy is the static policy profile the key's code is checked with.
	Policy string `json:"policy"`
	// Request limits on code.
	MaxCodeBytes int64 `json:"max_code_bytes"`
	MaxCodeLines int   `json:"max_code_lines"`
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// Token buckets: requests per second and burst, per key and per
	// session (cells).
	RatePerSecond        float64 `json:"rate_per_second"`
	RateBurst            int     `json:"rate_burst"`
	SessionRatePerSecond float64 `json:"session_rate_per_second"`
	SessionRateBurst     int     `json:"session_rate_burst"`
	// Sessions the key holds now, and may hold at most.
	Sessions    int `json:"sessions"`
	MaxSessions int `json:"max_sessions"`
	// MaxConcurrent executions on the whole server.
	MaxConcurrent int `json:"max_concurrent"`
	// Sandbox limits: what a request gets by default and may ask for.
	Defaults Effective `json:"defaults"`
	Maxima   Effective `json:"maxima"`
	// Workspace quotas.
	MaxFileBytes int64 `json:"max_file_bytes"`
	MaxFiles     int   `json:"max_files"`
}
