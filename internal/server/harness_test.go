package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/client"
	"github.com/pybox-dev/pybox/internal/audit"
	"github.com/pybox-dev/pybox/internal/backend/native"
	_ "github.com/pybox-dev/pybox/internal/nsinit" // the sandbox init starts from its initialisation
	"github.com/pybox-dev/pybox/internal/policy"
	"github.com/pybox-dev/pybox/internal/pool"
	"github.com/pybox-dev/pybox/internal/reexec"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"github.com/pybox-dev/pybox/internal/session"
)

// The test binary doubles as the sandbox init, as the pybox binary does.
func TestMain(m *testing.M) {
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
	key      string       // the tenant t1's API key
	hc       *http.Client // sends t1's key unless a request has its own
	auditDir string
	cfg      Config
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
	// Every stack serves one tenant with a key, the policy off (the
	// suites run code that strict would refuse), no rate limits, and a
	// real audit log that must verify when the test ends.
	key, sum := NewKey()
	cfg.Tenants = []Tenant{{Name: "t1", KeySHA256: sum}}
	cfg.Policy = policy.MustNew(policy.Rules{Profile: policy.Off})
	cfg.Rate, cfg.SessionRate = 0, 0
	auditDir := t.TempDir()
	alog, err := audit.Open(audit.Options{Dir: auditDir})
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	cfg.Audit = alog
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
	st := &stack{srv: srv, http: hs, c: client.New(hs.URL, hs.Client()).WithKey(key), key: key,
		hc:       &http.Client{Transport: keyTransport{hs.Client().Transport, key}},
		launcher: l, sessions: m, auditDir: auditDir, cfg: cfg}
	t.Cleanup(func() {
		hs.Close()
		m.Close()
		l.Close()
		if forker != nil {
			forker.Close()
		}
		if err := alog.Close(); err != nil {
			t.Errorf("closing the audit log: %v", err)
		}
		if rep, err := audit.Verify(auditDir); err != nil || !rep.OK() || len(rep.Warnings) > 0 {
			t.Errorf("audit log does not verify after the test: %v %+v", err, rep)
		}
	})
	if o.warm > 0 {
		waitFor(t, 30*time.Second, "warm pool filled", func() bool { return l.Stats().Ready >= o.warm })
	}
	return st
}

// keyTransport adds an API key to requests that carry none.
type keyTransport struct {
	base http.RoundTripper
	key  string
}

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" && r.Header.Get("X-API-Key") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+k.key)
	}
	return k.base.RoundTrip(r)
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
