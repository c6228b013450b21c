// Package pool keeps items that are expensive to make ready before they are
// asked for: pybox's warm sandboxes. An item is handed out once and never
// returned; the pool makes a new one in its place. It knows nothing of
// sandboxes, so that its policy (size, refill, age, idle shrink) is tested
// with plain values.
package pool

import (
	"context"
	"sync"
	"time"
)

// Config sizes a pool. The zero value is a pool that keeps nothing ready.
type Config struct {
	// Size is how many ready items the pool keeps while it is in use.
	Size int
	// MaxAge discards an item that waited this long, so that what is handed
	// out never runs on stale state (a changed interpreter, an old config).
	// Zero: no limit.
	MaxAge time.Duration
	// IdleAfter shrinks the pool to MinIdle ready items when nothing was
	// taken for this long; the next Get grows it back. Zero: never.
	IdleAfter time.Duration
	MinIdle   int
	// Parallel is how many items are made at once (default 1): making one
	// costs a CPU for tens of milliseconds, and refills must not starve the
	// work they are for.
	Parallel int
	// RetryAfter is the pause after a failed make (default 1 s).
	RetryAfter time.Duration
	// RefillDelay postpones the refill after a Get that left other items
	// ready, so that making the next item (a CPU for milliseconds) does
	// not compete with the work the taken one is about to do. An empty
	// pool is refilled at once. Zero: no delay.
	RefillDelay time.Duration
}

// Stats is a snapshot for metrics and tests.
type Stats struct {
	Ready   int   // items waiting
	Making  int   // items being made
	Hits    int64 // Gets served from the pool
	Misses  int64 // Gets that had to make their own
	Expired int64 // items discarded for age or idleness
	Failed  int64 // makes that failed
}

// Pool hands out items made by make. Its methods are safe for concurrent
// use.
type Pool[T any] struct {
	cfg     Config
	make    func(context.Context) (T, error)
	discard func(T)

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	ready    []entry[T]
	making   int
	lastTake time.Time
	stats    Stats
	closed   bool
}

type entry[T any] struct {
	item T
	made time.Time
}

// New starts a pool that fills itself in the background. make must honour
// its context; discard releases an item that will not be handed out.
func New[T any](cfg Config, make func(context.Context) (T, error), discard func(T)) *Pool[T] {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool[T]{cfg: cfg, make: make, discard: discard, ctx: ctx, cancel: cancel,
		wake: make1(), lastTake: time.Now()}
	for i := 0; i < cfg.Parallel; i++ {
		p.wg.Add(1)
		go p.filler()
	}
	p.wg.Add(1)
	go p.janitor()
	return p
}

func make1() chan struct{} { return make(chan struct{}, 1) }

func (p *Pool[T]) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Get returns a ready item, or makes one now if none is ready. hit says
// whether it came from the pool.
func (p *Pool[T]) Get(ctx context.Context) (item T, hit bool, err error) {
	p.mu.Lock()
	p.lastTake = time.Now()
	for len(p.ready) > 0 {
		e := p.ready[0]
		p.ready = p.ready[1:]
		if p.tooOld(e, time.Now()) {
			p.stats.Expired++
			p.mu.Unlock()
			p.discard(e.item)
			p.mu.Lock()
			continue
		}
		p.stats.Hits++
		left := len(p.ready)
		p.mu.Unlock()
		if left > 0 && p.cfg.RefillDelay > 0 {
			time.AfterFunc(p.cfg.RefillDelay, p.poke)
		} else {
			p.poke()
		}
		return e.item, true, nil
	}
	p.stats.Misses++
	p.mu.Unlock()
	p.poke()
	item, err = p.make(ctx)
	return item, false, err
}

func (p *Pool[T]) tooOld(e entry[T], now time.Time) bool {
	return p.cfg.MaxAge > 0 && now.Sub(e.made) > p.cfg.MaxAge
}

// target is how many items should be ready or in the making now.
func (p *Pool[T]) target(now time.Time) int {
	if p.cfg.IdleAfter > 0 && now.Sub(p.lastTake) > p.cfg.IdleAfter {
		return min(p.cfg.MinIdle, p.cfg.Size)
	}
	return p.cfg.Size
}

// filler makes items while the pool is below its target.
func (p *Pool[T]) filler() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		need := !p.closed && len(p.ready)+p.making < p.target(time.Now())
		if need {
			p.making++
		}
		p.mu.Unlock()
		if !need {
			select {
			case <-p.ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		item, err := p.make(p.ctx)
		p.mu.Lock()
		p.making--
		if err != nil {
			p.stats.Failed++
			p.mu.Unlock()
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(p.cfg.RetryAfter):
			}
			continue
		}
		if p.closed {
			p.mu.Unlock()
			p.discard(item)
			return
		}
		p.ready = append(p.ready, entry[T]{item, time.Now()})
		p.mu.Unlock()
	}
}

// janitor discards items past their age and shrinks an idle pool.
func (p *Pool[T]) janitor() {
	defer p.wg.Done()
	period := time.Second
	if p.cfg.MaxAge > 0 {
		period = min(period, p.cfg.MaxAge/4)
	}
	if p.cfg.IdleAfter > 0 {
		period = min(period, p.cfg.IdleAfter/4)
	}
	t := time.NewTicker(max(period, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		p.mu.Lock()
		var drop []T
		kept := p.ready[:0]
		for _, e := range p.ready {
			if p.tooOld(e, now) {
				drop = append(drop, e.item)
				continue
			}
			kept = append(kept, e)
		}
		p.ready = kept
		for excess := len(p.ready) - p.target(now); excess > 0; excess-- {
			// Drop the oldest: they are the closest to their age limit.
			drop = append(drop, p.ready[0].item)
			p.ready = p.ready[1:]
		}
		p.stats.Expired += int64(len(drop))
		p.mu.Unlock()
		for _, it := range drop {
			p.discard(it)
		}
		p.poke() // expired items are replaced
	}
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool[T]) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Ready, s.Making = len(p.ready), p.making
	return s
}

// Close stops refilling, discards every ready item and waits for the
// fillers; items being made are discarded when they are done.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	p.cancel()
	for _, e := range ready {
		p.discard(e.item)
	}
	p.wg.Wait()
}
