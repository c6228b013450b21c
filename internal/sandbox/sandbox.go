// Package sandbox holds the backend-neutral vocabulary of pybox: what to run
// (Spec), within which bounds (Limits), what came of it (Result), and the
// Backend interface that every isolation mechanism implements.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"github.com/pybox-dev/pybox/internal/policy"
	"io"
	"path"
	"strings"
	"sync"
	"time"
)

// Backend runs one Spec in a fresh sandbox. Implementations must be safe for
// concurrent use: each Run gets its own processes, namespaces and scratch.
type Backend interface {
	// Name is the backend's short name as shown in results ("native").
	Name() string
	// Run executes spec and blocks until the sandbox is gone. Failures of
	// the user's code are reported in the Result; an error means the
	// sandbox could not be set up or torn down, or the spec was invalid
	// (ErrInvalidSpec).
	Run(ctx context.Context, spec *Spec) (*Result, error)
}

// ErrInvalidSpec marks errors caused by the caller's input rather than by
// the host; the message names the offending field.
var ErrInvalidSpec = errors.New("invalid sandbox spec")

// ErrUnavailable marks a backend that cannot run on this host; the message
// says which mechanism is missing and how to fix it.
var ErrUnavailable = errors.New("isolation backend unavailable")

// Limits bound what one execution may consume. Zero values mean "use the
// default" only when passed through WithDefaults.
type Limits struct {
	MemoryBytes    int64         `json:"memory_bytes"`
	CPU            float64       `json:"cpu"` // fraction of one CPU, e.g. 0.5
	Timeout        time.Duration `json:"timeout"`
	Pids           int           `json:"pids"`
	TmpfsBytes     int64         `json:"tmpfs_bytes"`
	MaxOutputBytes int64         `json:"max_output_bytes"` // kept per stream
}

// The product defaults (architecture brief): 256 MiB, half a CPU, 30 s.
const (
	DefaultMemory    = 256 << 20
	DefaultCPU       = 0.5
	DefaultTimeout   = 30 * time.Second
	DefaultPids      = 128
	DefaultTmpfs     = 64 << 20
	DefaultMaxOutput = 1 << 20
	// MinPids leaves room for the sandbox's own processes and threads (the
	// init's Go runtime while it sets up, and the reaper) besides the
	// program's.
	MinPids = 16
)

// DefaultLimits returns the product defaults.
func DefaultLimits() Limits {
	return Limits{
		MemoryBytes:    DefaultMemory,
		CPU:            DefaultCPU,
		Timeout:        DefaultTimeout,
		Pids:           DefaultPids,
		TmpfsBytes:     DefaultTmpfs,
		MaxOutputBytes: DefaultMaxOutput,
	}
}

// Validate reports the first limit that is out of range, naming it as the
// command-line flag a person would change.
func (l Limits) Validate() error {
	switch {
	case l.MemoryBytes < 16<<20:
		return fmt.Errorf("%w: --memory must be at least 16MiB (got %d bytes)", ErrInvalidSpec, l.MemoryBytes)
	case !(l.CPU >= 0.01 && l.CPU <= 1024): // also rejects NaN
		return fmt.Errorf("%w: --cpu must be between 0.01 and 1024 CPUs (got %g)", ErrInvalidSpec, l.CPU)
	case l.Timeout < time.Millisecond || l.Timeout > 24*time.Hour:
		return fmt.Errorf("%w: --timeout must be between 1ms and 24h (got %s)", ErrInvalidSpec, l.Timeout)
	case l.Pids < MinPids || l.Pids > 1<<20:
		return fmt.Errorf("%w: --pids must be between %d and 1048576 (got %d); the sandbox's own init and reaper need some", ErrInvalidSpec, MinPids, l.Pids)
	case l.TmpfsBytes < 1<<20:
		return fmt.Errorf("%w: --tmpfs-size must be at least 1MiB (got %d bytes)", ErrInvalidSpec, l.TmpfsBytes)
	case l.MaxOutputBytes < 1024:
		return fmt.Errorf("%w: --max-output must be at least 1KiB (got %d bytes)", ErrInvalidSpec, l.MaxOutputBytes)
	}
	return nil
}

// File is a host file placed read-only inside the sandbox.
type File struct {
	HostPath    string `json:"host_path"`
	SandboxPath string `json:"sandbox_path"`
}

// Spec is one execution request.
type Spec struct {
	// Code is the Python source to run as __main__.
	Code []byte
	// Filename is the base name the code runs under (tracebacks, sys.argv[0]);
	// "main.py" when empty.
	Filename string
	// Args are passed to the program as sys.argv[1:].
	Args []string
	// Python is the interpreter to use: a path or a name looked up on PATH.
	// Empty means "python3".
	Python string
	// Files are host files bound read-only into the sandbox.
	Files  []File
	Limits Limits
	// Stdout and Stderr, when set, receive the program's output live (up to
	// the head of the output cap; see Capture).
	Stdout, Stderr io.Writer
	// Driver runs pybox's driver (package driver) instead of Code: a
	// Python process that waits for requests on a control pipe pair, for
	// warm one-shots and sessions. Code, Filename and Args are unused.
	Driver bool
	// Zygote (native backend) runs pybox's fork server instead of Code: a
	// template sandbox that forks ready sandboxes on request (see
	// native.Zygote). It keeps privileges in its own user namespace, and
	// never runs user code.
	Zygote bool
	// Lifetime bounds a driver sandbox's CPU time as a second line (the
	// RLIMIT_CPU of its processes); per-execution deadlines are the
	// caller's. Zero means Limits.Timeout.
	Lifetime time.Duration
}

// Validate checks the parts of a spec that do not depend on the host.
func (s *Spec) Validate() error {
	if err := s.Limits.Validate(); err != nil {
		return err
	}
	if s.Filename != "" {
		if s.Filename != path.Base(s.Filename) || !strings.HasSuffix(s.Filename, ".py") || strings.ContainsRune(s.Filename, 0) || strings.HasPrefix(s.Filename, ".") {
			return fmt.Errorf("%w: filename %q must be a plain name ending in .py, not starting with a dot", ErrInvalidSpec, s.Filename)
		}
	}
	for _, a := range s.Args {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: arguments may not contain NUL bytes", ErrInvalidSpec)
		}
	}
	if strings.ContainsRune(string(s.Code), 0) {
		return fmt.Errorf("%w: source code contains a NUL byte", ErrInvalidSpec)
	}
	for _, f := range s.Files {
		if err := validateSandboxPath(f.SandboxPath); err != nil {
			return fmt.Errorf("%w: --file %s:%s: %v", ErrInvalidSpec, f.HostPath, f.SandboxPath, err)
		}
	}
	return nil
}

// reservedPrefixes are sandbox paths that pybox itself populates; input
// files may not shadow them.
var reservedPrefixes = []string{"/proc", "/dev", "/sys", "/etc", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/pybox"}

func validateSandboxPath(p string) error {
	if !path.IsAbs(p) {
		return errors.New("sandbox path must be absolute")
	}
	if path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return errors.New("sandbox path must be clean (no '..', '//' or trailing '/')")
	}
	if p == "/" || p == "/tmp" {
		return errors.New("sandbox path must name a file, not a directory")
	}
	for _, r := range reservedPrefixes {
		if p == r || strings.HasPrefix(p, r+"/") {
			return fmt.Errorf("sandbox path may not be under %s (reserved for the runtime)", r)
		}
	}
	return nil
}

// Status is the one-word outcome of an execution.
type Status string

const (
	StatusOK          Status = "ok"           // exited 0
	StatusError       Status = "error"        // exited non-zero (uncaught exception, sys.exit(n))
	StatusTimeout     Status = "timeout"      // wall-clock deadline reached; the tree was killed
	StatusMemoryLimit Status = "memory_limit" // the memory limit's OOM killer fired
	StatusOutputLimit Status = "output_limit" // output passed the cap; the middle was cut
	StatusKilled      Status = "killed"       // ended by a signal for another reason
	// StatusPolicyViolation: the static policy rejected the code; it never
	// reached a sandbox. Result.Violations says why.
	StatusPolicyViolation Status = "policy_violation"
)

// Output is one captured stream.
type Output struct {
	Text       string `json:"text"`
	Truncated  bool   `json:"truncated"`
	TotalBytes int64  `json:"total_bytes"`
}

// Layers says which isolation mechanisms were in force for a run. pybox
// never reports a layer that was not applied.
type Layers struct {
	Backend    string   `json:"backend"`
	Namespaces []string `json:"namespaces"`
	Seccomp    bool     `json:"seccomp"`
	Landlock   int      `json:"landlock_abi"` // 0: not applied
	Cgroup     string   `json:"cgroup"`       // "v1", "v2" or "none"
	Rootless   bool     `json:"rootless"`
	HostUID    int      `json:"host_uid"` // the host uid the sandboxed code ran as
	Warnings   []string `json:"warnings,omitempty"`
}

// SetOutput puts what the captures kept into r; a nil capture leaves its
// stream empty.
func (r *Result) SetOutput(stdout, stderr *Capture) {
	if stdout != nil {
		o := stdout.Output()
		r.Stdout, r.StdoutTruncated, r.StdoutBytes = o.Text, o.Truncated, o.TotalBytes
	}
	if stderr != nil {
		o := stderr.Output()
		r.Stderr, r.StderrTruncated, r.StderrBytes = o.Text, o.Truncated, o.TotalBytes
	}
}

// Deadline is a backend's wall-clock deadline for one sandbox: Set
// (re)arms it, and when it passes, expire runs (the backend kills the
// sandbox with StatusTimeout).
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer
}

// Set arms the deadline d from now, replacing any earlier one; d <= 0
// disarms it.
func (dl *Deadline) Set(d time.Duration, expire func()) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.timer != nil {
		dl.timer.Stop()
		dl.timer = nil
	}
	if d > 0 {
		dl.timer = time.AfterFunc(d, expire)
	}
}

// Exited fills the status of a result whose program ended by itself with
// exit status code (its output already in r): ok, error, or the limit that
// explains the failure. oomKills counts the sandbox's processes that the
// OOM killer ended. Backends that see signals and kills have more cases of
// their own.
func (r *Result) Exited(code int, oomKills int64, lim Limits) {
	r.ExitCode = code
	switch {
	case oomKills > 0 && code != 0:
		r.Status, r.Message = StatusMemoryLimit, MemoryLimitMessage(lim)
	case r.StdoutTruncated || r.StderrTruncated:
		r.Status, r.Message = StatusOutputLimit, TruncatedMessage(lim)
	case code == 0 && oomKills > 0:
		// The program succeeded, but not all of its work did: say so, or
		// a child's lost result passes unnoticed.
		r.Status, r.Message = StatusOK, ChildOOMMessage(oomKills, lim)
	case code == 0:
		r.Status, r.Message = StatusOK, ""
	default:
		r.Status, r.Message = StatusError, fmt.Sprintf("the program exited with status %d", code)
	}
}

// Ended fills exit code, signal, status and message for a backend that
// runs each sandbox in a cgroup: its program exited with code, or was
// killed by signal (its name, e.g. "SIGKILL"; code is then 128+N); reason
// is why pybox killed the sandbox ("" if it did not); oomKills counts the
// cgroup's OOM kills; a flood is output past floodFactor× the cap.
func (r *Result) Ended(code int, signal string, reason Status, oomKills int64, floodFactor int, lim Limits) {
	r.ExitCode, r.Signal = code, signal
	switch {
	case reason == StatusTimeout:
		r.Status = StatusTimeout
		r.Message = fmt.Sprintf("timed out after %s; every process of the sandbox was killed", lim.Timeout)
	case oomKills > 0 && (signal != "" || code != 0):
		r.Status, r.Message = StatusMemoryLimit, MemoryLimitMessage(lim)
	case reason == StatusOutputLimit:
		r.Status = StatusOutputLimit
		r.Message = fmt.Sprintf("output flood: more than %d× the %s output cap; the sandbox was killed and the middle of the output cut", floodFactor, HumanBytes(lim.MaxOutputBytes))
	case r.StdoutTruncated || r.StderrTruncated:
		r.Status, r.Message = StatusOutputLimit, TruncatedMessage(lim)
	case reason != "":
		r.Status = StatusKilled
		r.Message = "the execution was cancelled and the sandbox killed"
	case signal != "":
		r.Status = StatusKilled
		r.Message = "the program was killed by " + signal
		switch signal {
		case "SIGXFSZ":
			r.Message += fmt.Sprintf(" (a file reached the %s scratch limit)", HumanBytes(lim.TmpfsBytes))
		case "SIGXCPU":
			r.Message += " (CPU time limit)"
		}
	default:
		r.Exited(code, oomKills, lim) // a non-zero exit with OOM kills is handled above
	}
}

// MemoryLimitMessage says that the memory limit ended the program.
func MemoryLimitMessage(lim Limits) string {
	return fmt.Sprintf("memory limit of %s reached; the kernel's OOM killer ended the program", HumanBytes(lim.MemoryBytes))
}

// ChildOOMMessage says that the program ended well although the memory
// limit ended n of its other processes.
func ChildOOMMessage(n int64, lim Limits) string {
	return fmt.Sprintf("the program exited 0, but the memory limit of %s was reached and the kernel's OOM killer ended %d other process(es) of the sandbox", HumanBytes(lim.MemoryBytes), n)
}

// TruncatedMessage says that output was cut.
func TruncatedMessage(lim Limits) string {
	return fmt.Sprintf("output exceeded the %s cap per stream; the middle was cut", HumanBytes(lim.MaxOutputBytes))
}

// NoLayers are the layers of code that never reached a sandbox (the
// static policy rejected it): none.
func NoLayers(backend string) Layers {
	return Layers{Backend: backend, Namespaces: []string{}, Cgroup: "none"}
}

// Usage is what a sandbox consumed so far.
type Usage struct {
	CPU             time.Duration
	PeakMemoryBytes int64
	OOMKills        int64
}

// Result is what an execution produced and cost.
type Result struct {
	Status          Status  `json:"status"`
	ExitCode        int     `json:"exit_code"`
	Signal          string  `json:"signal,omitempty"`
	Message         string  `json:"message,omitempty"`
	Stdout          string  `json:"stdout"`
	Stderr          string  `json:"stderr"`
	StdoutTruncated bool    `json:"stdout_truncated"`
	StderrTruncated bool    `json:"stderr_truncated"`
	StdoutBytes     int64   `json:"stdout_bytes"`
	StderrBytes     int64   `json:"stderr_bytes"`
	WallMS          float64 `json:"wall_ms"`
	// SetupMS is the part of WallMS spent before the program's interpreter
	// was started: pybox's own cost, apart from the interpreter's start-up.
	SetupMS         float64 `json:"setup_ms"`
	CPUMS           float64 `json:"cpu_ms"`
	PeakMemoryBytes int64   `json:"peak_memory_bytes"`
	Layers          Layers  `json:"layers"`
	// Violations are the static policy's reasons, with StatusPolicyViolation.
	Violations []policy.Violation `json:"violations,omitempty"`
}
