package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/config"
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
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
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
	hs := &http.Server{Handler: st.server.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		for {
			time.Sleep(10 * time.Second)
			st.backend.SweepLeftovers(10 * time.Second)
		}
	}()
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

// stack is the server with everything it runs on.
type stack struct {
	settings config.Server
	limits   sandbox.Limits
	backend  *native.Backend
	forker   *native.Forker
	launcher *session.Launcher
	sessions *session.Manager
	server   *server.Server
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
	// Resolve the interpreter once, so that a bad --python fails now.
	if _, err := b.Interpreter(context.Background(), cfg.Python); err != nil {
		return nil, fmt.Errorf("--python: %w", err)
	}
	st := &stack{settings: settings, limits: limits, backend: b}
	start := session.Adapt(b.Start)
	if cfg.WarmMode == "fork" {
		st.forker = b.NewForker(limits, cfg.Python)
		start = session.Adapt(st.forker.Start)
	}
	st.launcher = session.NewLauncher(start, cfg.Python, limits, pool.Config{
		Size: settings.WarmPool, MaxAge: settings.WarmMaxAge, IdleAfter: settings.WarmIdle, MinIdle: min(1, settings.WarmPool),
		Parallel: parallel(cfg.WarmMode),
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
	st.server, err = server.New(scfg, b.Name(), st.launcher, st.sessions)
	if err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// parallel is how many warm sandboxes are made at once. A forked one
// takes ~10 ms of wall time but ~2.5 ms of CPU (it mostly waits on the
// kernel), so several in flight keep up with a burst.
func parallel(mode string) int {
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
}
