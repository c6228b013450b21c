package session

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// ErrNotFound: no session has that id (never had, or it expired and was
// removed).
var ErrNotFound = errors.New("no such session")

// ErrCapacity: the server holds its maximum number of sessions.
var ErrCapacity = errors.New("session capacity reached")

// ErrQuota: the owner holds its maximum number of sessions.
var ErrQuota = errors.New("session quota reached")

// Request describes a session to create.
type Request struct {
	Limits sandbox.Limits
	// TTL is the idle time after which the session expires (0: the
	// default).
	TTL time.Duration
	// Owner is the tenant the session belongs to; Quota, when positive,
	// is how many live sessions one owner may hold.
	Owner string
	Quota int
}

// ManagerConfig bounds a server's sessions.
type ManagerConfig struct {
	MaxSessions int
	// TTL: an idle session expires after this long (default 10 min);
	// MaxTTL caps what a client may ask for.
	TTL, MaxTTL time.Duration
	// Keep is how long an ended session is still found, so that its next
	// use says why it ended instead of "not found" (default 10 min).
	Keep    time.Duration
	Options Options
}

// Manager keeps the sessions of one pybox process. It is node-local
// state; behind its small interface it could move to a shared store.
type Manager struct {
	cfg      ManagerConfig
	launcher *Launcher

	mu       sync.Mutex
	sessions map[string]*entry
	closed   bool
	stop     chan struct{}
	wg       sync.WaitGroup
}

type entry struct {
	s       *Session
	owner   string
	ttl     time.Duration
	endedAt time.Time
}

// NewManager starts a manager whose expiry loop runs until Close.
func NewManager(cfg ManagerConfig, l *Launcher) *Manager {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Minute
	}
	if cfg.MaxTTL < cfg.TTL {
		cfg.MaxTTL = max(cfg.TTL, 24*time.Hour)
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 10 * time.Minute
	}
	m := &Manager{cfg: cfg, launcher: l, sessions: map[string]*entry{}, stop: make(chan struct{})}
	m.wg.Add(1)
	go m.expireLoop()
	return m
}

// Create starts a session.
func (m *Manager) Create(ctx context.Context, req Request) (*Session, error) {
	ttl := req.TTL
	if ttl <= 0 {
		ttl = m.cfg.TTL
	}
	if ttl > m.cfg.MaxTTL {
		return nil, fmt.Errorf("%w: ttl %s is above the server's maximum of %s", sandbox.ErrInvalidSpec, ttl, m.cfg.MaxTTL)
	}
	// Reserve the place first so that concurrent creates cannot overshoot.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrCapacity
	}
	if m.live() >= m.cfg.MaxSessions {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d sessions are open; delete one or retry later", ErrCapacity, m.cfg.MaxSessions)
	}
	if req.Quota > 0 && m.liveOf(req.Owner) >= req.Quota {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d sessions are open for this key, its maximum; delete one or let one expire", ErrQuota, req.Quota)
	}
	placeholder := newID()
	m.sessions[placeholder] = &entry{owner: req.Owner}
	m.mu.Unlock()

	c, warm, setup, err := m.launcher.Get(ctx, req.Limits)
	m.mu.Lock()
	delete(m.sessions, placeholder)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	s := New(c, m.cfg.Options)
	s.Warm, s.SetupMS, s.Owner = warm, sandbox.Millis(setup), req.Owner
	if m.closed {
		m.mu.Unlock()
		s.Close("the server is shutting down")
		return nil, ErrCapacity
	}
	m.sessions[s.ID] = &entry{s: s, ttl: ttl, owner: req.Owner}
	m.mu.Unlock()
	return s, nil
}

// live counts sessions that hold a sandbox (or are being made).
func (m *Manager) live() int {
	n := 0
	for _, e := range m.sessions {
		if e.s == nil || e.s.Ended() == "" {
			n++
		}
	}
	return n
}

// liveOf counts the live sessions of one owner.
func (m *Manager) liveOf(owner string) int {
	n := 0
	for _, e := range m.sessions {
		if e.owner == owner && (e.s == nil || e.s.Ended() == "") {
			n++
		}
	}
	return n
}

// CountOf returns how many sessions of owner hold a sandbox.
func (m *Manager) CountOf(owner string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.liveOf(owner)
}

// Get finds a session, live or recently ended.
func (m *Manager) Get(id string) (*Session, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.sessions[id]
	if !ok || e.s == nil {
		return nil, 0, ErrNotFound
	}
	return e.s, e.ttl, nil
}

// Delete ends a session and forgets it.
func (m *Manager) Delete(id string) error {
	m.mu.Lock()
	e, ok := m.sessions[id]
	if ok && e.s != nil {
		delete(m.sessions, id)
	}
	m.mu.Unlock()
	if !ok || e.s == nil {
		return ErrNotFound
	}
	e.s.Close("deleted by the client")
	return nil
}

// Max is the most sessions the manager holds at once.
func (m *Manager) Max() int { return m.cfg.MaxSessions }

// Count returns how many sessions hold a sandbox.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live()
}

// List returns the sessions, oldest first.
func (m *Manager) List() []*Session {
	m.mu.Lock()
	var out []*Session
	for _, e := range m.sessions {
		if e.s != nil {
			out = append(out, e.s)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

func (m *Manager) expireLoop() {
	defer m.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.expire(now)
		}
	}
}

// expire ends idle sessions past their TTL and forgets ended ones after
// Keep.
func (m *Manager) expire(now time.Time) {
	var idle []*Session
	m.mu.Lock()
	for id, e := range m.sessions {
		if e.s == nil {
			continue
		}
		if e.s.Ended() != "" {
			if e.endedAt.IsZero() {
				e.endedAt = now
			} else if now.Sub(e.endedAt) > m.cfg.Keep {
				delete(m.sessions, id)
			}
			continue
		}
		if !e.s.Busy() && now.Sub(e.s.LastUsed()) > e.ttl {
			idle = append(idle, e.s)
		}
	}
	m.mu.Unlock()
	for _, s := range idle {
		s.Close("expired after being idle for longer than its TTL")
	}
}

// Close ends every session (running cells are killed) and stops the
// expiry loop.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	var all []*Session
	for _, e := range m.sessions {
		if e.s != nil {
			all = append(all, e.s)
		}
	}
	m.mu.Unlock()
	close(m.stop)
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close("the server shut down") }()
	}
	wg.Wait()
	m.wg.Wait()
}
