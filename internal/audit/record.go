// Package audit keeps pybox's audit log: one JSON Lines record per execution
// attempt, hash-chained and fsynced before the caller replies, with rotation
// that keeps the chain across files and a verifier that finds the first
// broken, missing or reordered record.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Events.
const (
	EventExecute        = "execute"
	EventCell           = "cell"
	EventSessionCreate  = "session_create"
	EventSessionDelete  = "session_delete"
	EventFilePut        = "file_put"
	EventFileGet        = "file_get"
	EventFileDelete     = "file_delete"
	EventAuth           = "auth"
	EventAuditRecovered = "audit_recovered"
)

// Outcomes.
const (
	OutcomeExecuted = "executed"
	OutcomeRejected = "rejected"
	OutcomeAccepted = "accepted"
	OutcomeFailed   = "failed"
)

// GenesisHash is the Prev of the very first record of a log.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one audit record. Seq, Time (when zero) and Prev are set by
// Log.Append; the rest is the caller's. Zero fields are left out of the JSON
// except seq, time, prev, event and outcome.
type Record struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Prev    string    `json:"prev"` // hex sha256 of the previous record's line, without its newline
	Event   string    `json:"event"`
	Outcome string    `json:"outcome"`
	// Reason says why an attempt was rejected or failed: "policy",
	// "rate_limit", "too_large", "unauthenticated", "not_found", "quota",
	// "invalid", ...
	Reason     string `json:"reason,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`

	Tenant    string `json:"tenant,omitempty"`
	Session   string `json:"session,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Remote    string `json:"remote,omitempty"`

	CodeSHA256 string `json:"code_sha256,omitempty"`
	CodeBytes  int    `json:"code_bytes,omitempty"`
	CodeLines  int    `json:"code_lines,omitempty"`
	// Code is written only by a log opened with KeepCode; Append clears it
	// otherwise. JSON cannot carry invalid UTF-8, so such bytes appear as
	// U+FFFD here: CodeSHA256 is the digest of the bytes as received.
	Code string `json:"code,omitempty"`
	Path string `json:"path,omitempty"` // workspace file events

	Policy  *PolicyVerdict  `json:"policy,omitempty"`
	Backend string          `json:"backend,omitempty"`
	Layers  *sandbox.Layers `json:"layers,omitempty"`

	// Status is the sandbox result status: ok, error, timeout,
	// memory_limit, output_limit, killed, policy_violation.
	Status          string  `json:"status,omitempty"`
	ExitCode        *int    `json:"exit_code,omitempty"`
	WallMS          float64 `json:"wall_ms,omitempty"`
	CPUMS           float64 `json:"cpu_ms,omitempty"`
	PeakMemoryBytes int64   `json:"peak_memory_bytes,omitempty"`
	StdoutBytes     int64   `json:"stdout_bytes,omitempty"`
	StderrBytes     int64   `json:"stderr_bytes,omitempty"`

	Message string `json:"message,omitempty"`

	// DroppedBytes and Dropped are set on audit_recovered records: how many
	// bytes of torn records Open cut off the end of the log, and (the first
	// maxDroppedText of) those bytes, kept so the cut removes no evidence.
	DroppedBytes int64  `json:"dropped_bytes,omitempty"`
	Dropped      string `json:"dropped,omitempty"`
}

// PolicyVerdict is what the static policy said about the code.
type PolicyVerdict struct {
	Profile    string             `json:"profile"`
	Allowed    bool               `json:"allowed"`
	Violations []policy.Violation `json:"violations,omitempty"`
}

// CodeFields returns the code fields of a record: the hex sha256 of code,
// its size and line count, and the code itself when keep is set.
func CodeFields(code []byte, keep bool) (sha string, size, lines int, text string) {
	sum := sha256.Sum256(code)
	lines = bytes.Count(code, []byte{'\n'})
	if len(code) > 0 && code[len(code)-1] != '\n' {
		lines++
	}
	if keep {
		text = string(code)
	}
	return hex.EncodeToString(sum[:]), len(code), lines, text
}

// SetCode fills r's code fields from code; keep says whether the code
// itself goes in (a Log also drops it unless it was opened with KeepCode).
func (r *Record) SetCode(code []byte, keep bool) {
	r.CodeSHA256, r.CodeBytes, r.CodeLines, r.Code = CodeFields(code, keep)
}

// lineHash is the chain hash of one record line (without its newline).
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}
