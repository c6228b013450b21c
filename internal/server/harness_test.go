package server

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/client"
	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/pool"
	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

// The test binary doubles as the sandbox init, as the pybox binary does.
func TestMain(m *testing.M) {
	reexec.Register(nsinit.Name, nsinit.Main)
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// stack is a real server on loopback, with real sandboxes.
type stack struct {
	srv      *Server
	http     *httptest.Server
	c        *client.Client
	launcher *session.Launcher
	sessions *session.Manager
}

// options tweak a test stack.
type options struct {
	warm        int
	python      string
	exec        bool // warm sandboxes start their own interpreter instead of being forked
	maxSessions int
	concurrent  int
	queueWait   time.Duration
	ttl         time.Duration
	grace       time.Duration
	limits      func(*sandbox.Limits)
	config      func(*Config)
}

func newStack(t *testing.T, o options) *stack {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the server tests run sandboxes as root (CI runs them as root)")
	}
	b, err := native.New(native.Config{CacheDir: filepath.Join(os.TempDir(), "pybox-test-cache")})
	if err != nil {
		t.Fatalf("native.New: %v", err)
	}
	limits := sandbox.DefaultLimits()
	limits.Timeout = 20 * time.Second
	if o.limits != nil {
		o.limits(&limits)
	}
	if o.maxSessions == 0 {
		o.maxSessions = 8
	}
	if o.concurrent == 0 {
		o.concurrent = 8
	}
	if o.python == "" {
		o.python = "python3"
	}
	start := session.Adapt(b.Start)
	var forker *native.Forker
	if !o.exec {
		forker = b.NewForker(limits, o.python)
		start = session.Adapt(forker.Start)
	}
	l := session.NewLauncher(start, o.python, limits, pool.Config{Size: o.warm, Parallel: 2})
	m := session.NewManager(session.ManagerConfig{MaxSessions: o.maxSessions, TTL: o.ttl, Options: session.Options{Grace: o.grace}}, l)
	cfg := DefaultConfig(limits)
	cfg.MaxConcurrent = o.concurrent
	if o.queueWait != 0 {
		cfg.QueueWait = o.queueWait
	}
	if o.config != nil {
		o.config(&cfg)
	}
	srv, err := New(cfg, b.Name(), l, m)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	st := &stack{srv: srv, http: hs, c: client.New(hs.URL, hs.Client()), launcher: l, sessions: m}
	t.Cleanup(func() {
		hs.Close()
		m.Close()
		l.Close()
		if forker != nil {
			forker.Close()
		}
	})
	if o.warm > 0 {
		waitFor(t, 30*time.Second, "warm pool filled", func() bool { return l.Stats().Ready >= o.warm })
	}
	return st
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// inBothModes runs test with warm sandboxes forked by the fork server and
// with sandboxes that start their own interpreter.
func inBothModes(t *testing.T, test func(t *testing.T, exec bool)) {
	for _, mode := range []struct {
		name string
		exec bool
	}{{"forked", false}, {"exec", true}} {
		t.Run(mode.name, func(t *testing.T) { test(t, mode.exec) })
	}
}
