package mcp

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

// names maps the session names a model chooses ("main") to pybox
// sessions, per scope (the caller's credentials and MCP session). The
// server still checks every use against the caller's tenant: a name can
// only ever lead to a session of the key that made it.
type names struct {
	mu sync.Mutex
	m  map[string]*named // scope + "\x00" + name
}

// named is one name's session. use is held for the whole of a tool call
// on the session, so that calls on one session queue instead of meeting
// "session busy" (an agent may emit several tool calls at once, and the
// SDK runs them concurrently); mu guards the fields, and is held while
// the session is made or replaced, so that racing first uses make one.
type named struct {
	use        sync.Mutex
	mu         sync.Mutex
	id         string // "" until made, and after it ended
	a          API    // the caller that made it, to end it with its MCP session
	mcpSession string // fixed when the entry is made (the scope includes it)
}

// Compiled on first use, not at every pybox process start.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`) })

func checkName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("session name %q is not valid: use 1 to 64 letters, digits, '.', '_' or '-', e.g. main", name)
	}
	return nil
}

func (n *names) entry(scope, mcpSession, name string) *named {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := scope + "\x00" + name
	e := n.m[k]
	if e == nil {
		e = &named{mcpSession: mcpSession}
		n.m[k] = e
	}
	return e
}

// lock takes the name's session for one tool call; the caller unlocks
// e.use when the call is over.
func (n *names) lock(scope, mcpSession, name string) *named {
	e := n.entry(scope, mcpSession, name)
	e.use.Lock()
	return e
}

// resolve returns the id of the named session, making it if it has none
// (or, with fresh, ending the one it has and making another).
func (e *named) resolve(ctx context.Context, a API, fresh bool) (id string, created bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id != "" && !fresh {
		return e.id, false, nil
	}
	if e.id != "" {
		if err := a.DeleteSession(ctx, e.id); err != nil && !client.IsProblem(err, api.ProblemNotFound) {
			return "", false, err
		}
		e.id = ""
	}
	s, err := a.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		return "", false, err
	}
	e.id, e.a = s.ID, a
	return s.ID, true, nil
}

// forget drops the name's session if it is still id.
func (e *named) forget(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.id == id {
		e.id = ""
	}
}

// endMCPSession ends the pybox sessions made in an MCP session that is
// over, and forgets their names.
func (n *names) endMCPSession(mcpSession string) {
	n.mu.Lock()
	var ended []*named
	for k, e := range n.m {
		if e.mcpSession == mcpSession {
			ended = append(ended, e)
			delete(n.m, k)
		}
	}
	n.mu.Unlock()
	for _, e := range ended {
		e.mu.Lock()
		if e.id != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			e.a.DeleteSession(ctx, e.id) //nolint:errcheck // it may have expired already; the TTL ends it otherwise
			cancel()
			e.id = ""
		}
		e.mu.Unlock()
	}
}
