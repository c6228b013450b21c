package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/audit"
	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/config"
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/pool"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/server"
	"github.com/pybox-dev/pybox/internal/session"
)

func cmdServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addConfigFlags(fs)
	cf.addServerFlags(fs)
	debug := fs.Bool("debug", false, "log at debug level")
	if code, ok := parseFlags(fs, args, "Usage: pybox serve [flags]\n\nServes the HTTP API (api/openapi.yaml). SIGTERM drains: no new work, running cells finish or time out.", stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("serve takes no arguments (got %q)", fs.Args()))
	}
	cfg, err := cf.resolve(fs)
	if err != nil {
		return usageError(stderr, err)
	}
	if *debug {
		cfg.LogLevel = "debug"
	}
	log := serverLogger(cfg, stderr)
	st, err := newStack(cfg, log)
	if err != nil {
		log.Error("starting", "err", err)
		return exitFailure
	}
	ln, err := net.Listen("tcp", st.settings.Listen)
	if err != nil {
		st.close()
		log.Error("listening", "err", err)
		return exitFailure
	}
	hs := &http.Server{Handler: withMCP(st.server.Handler(), mcpHandler(st, cfg, log)), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if st.backend != nil {
		go func() {
			for {
				time.Sleep(10 * time.Second)
				st.backend.SweepLeftovers(10 * time.Second)
			}
		}()
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("serving", "listen", ln.Addr().String(), "warm_pool", st.settings.WarmPool, "max_sessions", st.settings.MaxSessions)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case err := <-served:
		st.close()
		log.Error("serving", "err", err)
		return exitFailure
	case s := <-sig:
		log.Info("draining", "signal", s.String())
	}
	// Drain: refuse new work, let running executions finish or time out
	// (a second signal cuts it short), then tear every sandbox down.
	st.server.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), st.limits.Timeout+st.settings.MaxTimeout+st.settings.Grace)
	go func() {
		<-sig
		log.Warn("second signal: killing running executions")
		cancel()
	}()
	if err := st.server.Wait(ctx); err != nil {
		log.Warn("drain cut short", "err", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	hs.Shutdown(sctx) //nolint:errcheck // streams still open are closed below
	scancel()
	cancel()
	st.close()
	log.Info("stopped")
	return 0
}

// serverLogger is the structured logger --log-format and --log-level ask
// for (Validate checked both).
func serverLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	level, _ := cfg.SlogLevel()
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// auditDirDefault is where pybox serve keeps its audit log when
// --audit-dir is not given.
func auditDirDefault() string {
	if os.Geteuid() == 0 {
		return "/var/lib/pybox/audit"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "pybox", "audit")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "pybox", "audit")
}

// serverAuth turns the configured keys and policy into the server's
// tenants.
func serverAuth(cfg *config.Config, scfg *server.Config, log *slog.Logger) error {
	rules := cfg.PolicyRules()
	scfg.Policy = policy.MustNew(rules)
	keys, err := cfg.Keys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		t := server.Tenant{Name: k.Tenant, KeySHA256: strings.ToLower(k.SHA256), Rate: k.Rate, Burst: k.Burst, MaxSessions: k.MaxSessions}
		if k.Policy != nil {
			t.Policy = policy.MustNew(*k.Policy)
		}
		scfg.Tenants = append(scfg.Tenants, t)
	}
	scfg.NoAuth = cfg.InsecureNoAuth
	if !scfg.NoAuth && len(scfg.Tenants) == 0 {
		return errors.New("no API keys are configured: make one with `pybox key new --tenant NAME` and put its sha256 in the config's api-keys (or --api-keys-file), or pass --insecure-no-auth on a trusted host")
	}
	maxCode, _ := config.ParseSize(cfg.MaxCodeSize)
	scfg.MaxCodeBytes, scfg.MaxCodeLines = maxCode, cfg.MaxCodeLines
	scfg.MaxBodyBytes = max(scfg.MaxBodyBytes, maxCode+64<<10)
	scfg.Rate, scfg.Burst = cfg.Rate, cfg.Burst
	scfg.SessionRate, scfg.SessionBurst = cfg.SessionRate, cfg.SessionBurst
	scfg.MaxSessionsPerKey = cfg.MaxSessionsPerKey
	return nil
}

// stack is the server with everything it runs on.
type stack struct {
	settings config.Server
	limits   sandbox.Limits
	backend  *native.Backend
	forker   *native.Forker
	launcher *session.Launcher
	sessions *session.Manager
	server   *server.Server
	audit    *audit.Log
}

func newStack(cfg *config.Config, log *slog.Logger) (*stack, error) {
	limits, err := cfg.Limits()
	if err != nil {
		return nil, err
	}
	settings, err := cfg.ServerSettings()
	if err != nil {
		return nil, err
	}
	b, err := newBackend(cfg, log)
	if err != nil {
		return nil, err
	}
	if b.fallback != nil {
		// With a fallback configured, find out now whether the kernel
		// takes native sandboxes, rather than on the first request.
		probe := &sandbox.Spec{Code: []byte("pass"), Python: cfg.Python, Limits: limits}
		if _, err := b.Run(context.Background(), probe); err != nil {
			return nil, fmt.Errorf("probing the backend: %w", err)
		}
	}
	st := &stack{settings: settings, limits: limits, backend: b.native}
	start := b.start()
	if b.native != nil {
		// Resolve the interpreter once, so that a bad --python fails now.
		if _, err := b.native.Interpreter(context.Background(), cfg.Python); err != nil {
			return nil, fmt.Errorf("--python: %w", err)
		}
		if cfg.WarmMode == "fork" {
			st.forker = b.native.NewForker(limits, cfg.Python)
			start = session.Adapt(st.forker.Start)
		}
	}
	st.launcher = session.NewLauncher(start, cfg.Python, limits, pool.Config{
		Size: settings.WarmPool, MaxAge: settings.WarmMaxAge, IdleAfter: settings.WarmIdle, MinIdle: min(1, settings.WarmPool),
		Parallel: parallel(cfg.WarmMode, b.docker != nil), RefillDelay: 10 * time.Millisecond,
	})
	st.sessions = session.NewManager(session.ManagerConfig{
		MaxSessions: settings.MaxSessions, TTL: settings.SessionTTL,
		Options: session.Options{Grace: settings.Grace},
	}, st.launcher)
	scfg := server.DefaultConfig(limits)
	scfg.Max.MemoryBytes = max(limits.MemoryBytes, settings.MaxMemoryBytes)
	scfg.Max.Timeout = max(limits.Timeout, settings.MaxTimeout)
	scfg.Max.CPU = max(limits.CPU, settings.MaxCPU)
	scfg.MaxConcurrent, scfg.QueueWait = settings.MaxConcurrent, settings.QueueWait
	scfg.MaxFileBytes, scfg.MaxFiles = settings.MaxFileBytes, settings.MaxFiles
	scfg.Version, scfg.Logger = Version, log
	if err := serverAuth(cfg, &scfg, log); err != nil {
		st.close()
		return nil, err
	}
	if b.restricted != nil {
		// No kernel isolation: every tenant gets strict, whatever its own.
		scfg.ForcePolicy = policy.MustNew(policy.Rules{Profile: policy.Strict})
	}
	dir := cfg.AuditDir
	if dir == "" {
		dir = auditDirDefault()
	}
	if dir == "none" {
		log.Warn("no audit log (--audit-dir none): executions are not recorded")
	} else {
		maxFile, _ := config.ParseSize(cfg.AuditMaxFileSize)
		st.audit, err = audit.Open(audit.Options{Dir: dir, KeepCode: cfg.AuditKeepCode, MaxFileBytes: maxFile, Logger: log})
		if err != nil {
			st.close()
			return nil, fmt.Errorf("opening the audit log (--audit-dir): %w", err)
		}
		scfg.Audit = st.audit
		log.Info("audit log", "dir", dir, "keep_code", cfg.AuditKeepCode)
	}
	st.server, err = server.New(scfg, b.Name(), st.launcher, st.sessions)
	if err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// parallel is how many warm sandboxes are made at once. A forked one
// takes ~10 ms of wall time but ~2.5 ms of CPU (it mostly waits on the
// kernel), so several in flight keep up with a burst. A container takes
// ~150 ms, mostly the daemon's and runc's work: two at a time.
func parallel(mode string, docker bool) int {
	if docker {
		return 2
	}
	if mode == "fork" {
		return 6
	}
	return 1
}

func (st *stack) close() {
	if st.sessions != nil {
		st.sessions.Close()
	}
	if st.launcher != nil {
		st.launcher.Close()
	}
	if st.forker != nil {
		st.forker.Close()
	}
	if st.audit != nil {
		st.audit.Close() //nolint:errcheck // every record was fsynced when it was appended
	}
}
