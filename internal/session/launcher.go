package session

import (
	"context"
	"time"

	"github.com/pybox-dev/pybox/internal/pool"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Launcher hands out ready Conns: from the warm pool when the limits asked
// for are the pool's, otherwise started on demand (a cold start).
type Launcher struct {
	start  StartFunc
	python string
	warm   sandbox.Limits
	pool   *pool.Pool[*Conn]
}

// NewLauncher keeps cfg.Size sandboxes with the limits warm ready.
func NewLauncher(start StartFunc, python string, warm sandbox.Limits, cfg pool.Config) *Launcher {
	l := &Launcher{start: start, python: python, warm: warm}
	l.pool = pool.New(cfg, func(ctx context.Context) (*Conn, error) {
		return Dial(ctx, start, warm, python)
	}, (*Conn).Close)
	return l
}

// Get returns a ready Conn with the given limits; warm says whether it
// came from the pool, and setup is how long the caller waited for it.
func (l *Launcher) Get(ctx context.Context, limits sandbox.Limits) (c *Conn, warm bool, setup time.Duration, err error) {
	t0 := time.Now()
	if limits == l.warm {
		c, warm, err = l.pool.Get(ctx)
	} else {
		c, err = Dial(ctx, l.start, limits, l.python)
	}
	return c, warm, time.Since(t0), err
}

// Stats reports the warm pool.
func (l *Launcher) Stats() pool.Stats { return l.pool.Stats() }

// Close destroys the warm sandboxes and stops refilling.
func (l *Launcher) Close() { l.pool.Close() }
