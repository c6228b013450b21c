package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/audit"
	"github.com/pybox-dev/pybox/internal/backend/docker"
	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/backend/restricted"
	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

// processStart approximates when pybox started, for --debug timings.
var processStart = time.Now()

func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	code := fs.String("c", "", "program passed in as a string")
	asJSON := fs.Bool("json", false, "print one JSON result object instead of streaming output")
	debug := fs.Bool("debug", false, "log what pybox does (and the init's step timings) to stderr")
	var files multiFlag
	fs.Var(&files, "file", "HOST:SANDBOX: place a host file read-only at an absolute sandbox path (repeatable)")
	if code, ok := parseFlags(fs, args, "Usage: pybox run [flags] (-c CODE | FILE | -) [ARGS...]", stderr); !ok {
		return code
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	maxCode, _ := config.ParseSize(cfg.MaxCodeSize)
	limits, _ := cfg.Limits()
	spec := &sandbox.Spec{Python: cfg.Python, Limits: limits}

	rest := fs.Args()
	codeSet := false
	fs.Visit(func(f *flag.Flag) { codeSet = codeSet || f.Name == "c" })
	switch {
	case codeSet:
		spec.Code, spec.Args = []byte(*code), rest
	case len(rest) == 0:
		return usageError(stderr, errNoCode)
	case rest[0] == "-":
		if spec.Code, err = readLimited(stdin, "standard input", maxCode); err != nil {
			return usageError(stderr, err)
		}
		spec.Args = rest[1:]
	default:
		f, err := os.Open(rest[0])
		if err != nil {
			return usageError(stderr, fmt.Errorf("reading script: %w", err))
		}
		spec.Code, err = readLimited(f, rest[0], maxCode)
		f.Close()
		if err != nil {
			return usageError(stderr, err)
		}
		spec.Filename = filepath.Base(rest[0])
		if !strings.HasSuffix(spec.Filename, ".py") {
			spec.Filename += ".py"
		}
		spec.Args = rest[1:]
	}
	for _, f := range files {
		host, box, ok := strings.Cut(f, ":")
		if !ok || host == "" || box == "" {
			return usageError(stderr, fmt.Errorf("--file %q: want HOST:SANDBOX, e.g. data.csv:/data/data.csv", f))
		}
		abs, err := filepath.Abs(host)
		if err != nil {
			return usageError(stderr, fmt.Errorf("--file %q: %w", f, err))
		}
		spec.Files = append(spec.Files, sandbox.File{HostPath: abs, SandboxPath: box})
	}
	if codeSet && int64(len(spec.Code)) > maxCode {
		return usageError(stderr, fmt.Errorf("-c: the code is %d bytes; --max-code-size is %s", len(spec.Code), cfg.MaxCodeSize))
	}
	if lines := bytes.Count(spec.Code, []byte("\n")) + 1; lines > cfg.MaxCodeLines {
		return usageError(stderr, fmt.Errorf("the code has %d lines; --max-code-lines is %d", lines, cfg.MaxCodeLines))
	}
	if !*asJSON {
		spec.Stdout, spec.Stderr = stdout, stderr
	}
	alog, err := openRunAudit(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		return exitFailure
	}
	if alog != nil {
		defer alog.Close()
	}
	rec := &audit.Record{Event: audit.EventExecute, Tenant: cliTenant()}
	rec.SetCode(spec.Code, alog != nil && alog.KeepCode())
	record := func() bool {
		if alog == nil {
			return true
		}
		if err := alog.Append(rec); err != nil {
			fmt.Fprintf(stderr, "pybox: writing the audit log: %v\n", err)
			return false
		}
		return true
	}

	log := logger(*debug, stderr)
	log.Debug("flags parsed", "us_since_start", time.Since(processStart).Microseconds())
	backend, err := newBackend(cfg, log)
	log.Debug("backend ready", "us_since_start", time.Since(processStart).Microseconds())
	if err != nil {
		rec.Outcome, rec.Reason, rec.Message = audit.OutcomeFailed, "backend", err.Error()
		record()
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		return exitFailure
	}
	rec.Backend = backend.Name()

	// The static policy, in this process, before any sandbox.
	rejected := func(verdict policy.Verdict) int {
		rec.Policy = &audit.PolicyVerdict{Profile: string(verdict.Profile), Allowed: verdict.Allowed, Violations: verdict.Violations}
		rec.Backend = backend.Name()
		rec.Outcome, rec.Reason, rec.Status = audit.OutcomeRejected, "policy", string(sandbox.StatusPolicyViolation)
		if !record() {
			return exitFailure
		}
		if *asJSON {
			res := &sandbox.Result{Status: sandbox.StatusPolicyViolation, Message: verdict.Summary(),
				Violations: verdict.Violations, Layers: sandbox.NoLayers(backend.Name())}
			return printJSON(stdout, res)
		}
		fmt.Fprintf(stderr, "pybox: the %s policy rejected the code before it ran (--policy sets the profile):\n", verdict.Profile)
		for _, v := range verdict.Violations {
			fmt.Fprintf(stderr, "  line %d:%d: %s\n      %s\n", v.Line, v.Col, v.Message, v.Text)
		}
		return exitPolicy
	}
	verdict := runPolicy(cfg, backend.Name()).Check(spec.Code)
	if !verdict.Allowed {
		return rejected(verdict)
	}
	rec.Policy = &audit.PolicyVerdict{Profile: string(verdict.Profile), Allowed: true}
	// If the native backend turns out to be unavailable and the restricted
	// fallback takes over, the code must pass strict before it runs there.
	backend.recheck = func() *policy.Verdict {
		v := runPolicy(cfg, backend.Name()).Check(spec.Code)
		if v.Allowed {
			rec.Policy = &audit.PolicyVerdict{Profile: string(v.Profile), Allowed: true}
			return nil
		}
		return &v
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := backend.Run(ctx, spec)
	var pv *policyRejected
	if errors.As(err, &pv) {
		return rejected(pv.verdict)
	}
	rec.Backend = backend.Name()
	if err != nil {
		rec.Outcome, rec.Reason, rec.Message = audit.OutcomeFailed, "sandbox", err.Error()
		record()
		fmt.Fprintf(stderr, "pybox: %v\n", err)
		if errors.Is(err, sandbox.ErrInvalidSpec) {
			return exitUsage
		}
		return exitFailure
	}
	rec.Outcome, rec.Status, rec.Layers = audit.OutcomeExecuted, string(res.Status), &res.Layers
	rec.ExitCode, rec.WallMS, rec.CPUMS, rec.PeakMemoryBytes = &res.ExitCode, res.WallMS, res.CPUMS, res.PeakMemoryBytes
	rec.StdoutBytes, rec.StderrBytes = res.StdoutBytes, res.StderrBytes
	if !record() {
		return exitFailure
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	if res.Status != sandbox.StatusOK && res.Status != sandbox.StatusError {
		fmt.Fprintf(stderr, "pybox: %s: %s\n", res.Status, res.Message)
	}
	return res.ExitCode
}

func printJSON(stdout io.Writer, res *sandbox.Result) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return exitFailure
	}
	return 0
}

func readLimited(r io.Reader, what string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than --max-code-size (%d bytes); pass data with --file instead", what, limit)
	}
	return data, nil
}

// runPolicy is the checker for the configured policy; the restricted
// backend, which has no kernel isolation, always gets strict.
func runPolicy(cfg *config.Config, backend string) *policy.Checker {
	if backend == "restricted" {
		return policy.MustNew(policy.Rules{Profile: policy.Strict})
	}
	return policy.MustNew(cfg.PolicyRules()) // Validate checked the rules
}

// cliTenant names the caller in audit records of pybox run.
func cliTenant() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli:uid" + strconv.Itoa(os.Getuid())
}

// openRunAudit opens the audit log for pybox run when --audit-dir names
// one. Several runs may share a log: a run waits its turn for the lock.
func openRunAudit(cfg *config.Config) (*audit.Log, error) {
	if cfg.AuditDir == "" || cfg.AuditDir == "none" {
		return nil, nil
	}
	maxFile, _ := config.ParseSize(cfg.AuditMaxFileSize)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := audit.Open(audit.Options{Dir: cfg.AuditDir, KeepCode: cfg.AuditKeepCode, MaxFileBytes: maxFile})
		if !errors.Is(err, audit.ErrLocked) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logger(debug bool, w io.Writer) *slog.Logger {
	if !debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// engine is the isolation backend a command runs on: native, or, only
// when the configuration asks for it, restricted (no kernel isolation).
type engine struct {
	native     *native.Backend
	docker     *docker.Backend
	restricted *restricted.Backend
	// fallback, when --fallback restricted is set, switches the engine to
	// restricted after the native backend turned out to be unavailable.
	fallback func(cause error) error
	// recheck applies the policy again after a fallback (restricted is
	// always strict); it returns the verdict of code it rejects.
	recheck func() *policy.Verdict
}

// policyRejected is the answer of Run when, after a fallback, the strict
// policy rejects code the configured one let through.
type policyRejected struct{ verdict policy.Verdict }

func (p *policyRejected) Error() string { return p.verdict.Summary() }

func (e *engine) Name() string {
	if e.restricted != nil {
		return e.restricted.Name()
	}
	if e.docker != nil {
		return e.docker.Name()
	}
	return e.native.Name()
}

func (e *engine) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	if e.restricted != nil {
		return e.restricted.Run(ctx, spec)
	}
	if e.docker != nil {
		return e.docker.Run(ctx, spec)
	}
	res, err := e.native.Run(ctx, spec)
	if errors.Is(err, sandbox.ErrUnavailable) {
		if e.fallback == nil {
			return nil, withFallbackHint(err)
		}
		// The kernel refused the sandbox's namespaces: the configured
		// fallback takes over, for this run and every later one.
		if err := e.fallback(err); err != nil {
			return nil, err
		}
		if e.recheck != nil {
			if v := e.recheck(); v != nil {
				return nil, &policyRejected{*v}
			}
		}
		return e.restricted.Run(ctx, spec)
	}
	return res, err
}

func withFallbackHint(err error) error {
	return fmt.Errorf("%w; pybox does not run code without kernel isolation unless configured to: fix the host (see pybox doctor), or set --fallback restricted to run with rlimits and the strict policy only (not a sandbox)", err)
}

// start is the engine's driver-sandbox starter (sessions, warm pool).
func (e *engine) start() session.StartFunc {
	if e.restricted != nil {
		return session.Adapt(e.restricted.Start)
	}
	if e.docker != nil {
		return session.Adapt(e.docker.Start)
	}
	return session.Adapt(e.native.Start)
}

// newBackend picks the backend. pybox never downgrades isolation on its
// own: restricted runs only when --backend or --fallback names it, and
// then the log (and every result's layers) says so.
//
// --backend docker uses the docker backend or fails; --backend auto takes
// native where the kernel allows it, else docker, and logs why (pybox
// doctor says the same).
func newBackend(cfg *config.Config, log *slog.Logger) (*engine, error) {
	switch cfg.Backend {
	case "restricted":
		return newRestricted(cfg, log, "--backend restricted")
	case "docker":
		d, err := docker.New(context.Background(), dockerConfig(cfg, log))
		if err == nil {
			return &engine{docker: d}, nil
		}
		if !errors.Is(err, sandbox.ErrUnavailable) || cfg.Fallback != "restricted" {
			return nil, withFallbackHint(err)
		}
		return newRestricted(cfg, log, fmt.Sprintf("--fallback restricted (docker: %v)", err))
	case "auto":
		b, nerr := native.New(nativeConfig(cfg, log))
		if nerr == nil {
			log.Info("--backend auto: native")
			return &engine{native: b}, nil
		}
		d, derr := docker.New(context.Background(), dockerConfig(cfg, log))
		if derr == nil {
			log.Warn("--backend auto: docker, as the native backend is unavailable", "native", nerr.Error())
			return &engine{docker: d}, nil
		}
		err := fmt.Errorf("--backend auto: native: %v; docker: %w", nerr, derr)
		if cfg.Fallback != "restricted" {
			return nil, withFallbackHint(err)
		}
		return newRestricted(cfg, log, fmt.Sprintf("--fallback restricted (%v)", err))
	}
	b, err := native.New(nativeConfig(cfg, log))
	if err == nil {
		e := &engine{native: b}
		if cfg.Fallback == "restricted" {
			e.fallback = func(cause error) error {
				r, err := newRestricted(cfg, log, fmt.Sprintf("--fallback restricted (native: %v)", cause))
				if err != nil {
					return err
				}
				e.native, e.restricted = nil, r.restricted
				return nil
			}
		}
		return e, nil
	}
	if !errors.Is(err, sandbox.ErrUnavailable) {
		return nil, err
	}
	if cfg.Fallback != "restricted" {
		return nil, withFallbackHint(err)
	}
	return newRestricted(cfg, log, fmt.Sprintf("--fallback restricted (native: %v)", err))
}

func newRestricted(cfg *config.Config, log *slog.Logger, why string) (*engine, error) {
	r, err := restricted.New(restricted.Config{Logger: log})
	if err != nil {
		return nil, err
	}
	log.Warn("restricted backend: NO kernel isolation (no namespaces, seccomp, Landlock or cgroups); rlimits and the strict policy only", "why", why)
	return &engine{restricted: r}, nil
}

func dockerConfig(cfg *config.Config, log *slog.Logger) docker.Config {
	return docker.Config{
		Logger:       log,
		Image:        cfg.DockerImage,
		Runtime:      cfg.DockerRuntime,
		SeccompErrno: syscall.Errno(cfg.SeccompErrno),
	}
}

func nativeConfig(cfg *config.Config, log *slog.Logger) native.Config {
	return native.Config{
		Logger:       log,
		UIDBase:      cfg.UIDBase,
		UIDSlots:     cfg.UIDSlots,
		CgroupParent: cfg.CgroupParent,
		StateDir:     cfg.StateDir,
		CacheDir:     cfg.CacheDir,
		SeccompErrno: syscall.Errno(cfg.SeccompErrno),
	}
}
