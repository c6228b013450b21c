package pool

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// callerKey marks the context of a Get, so that the fake can tell the
// pool's background makes from a caller's.
type callerKey struct{}

func caller() context.Context { return context.WithValue(context.Background(), callerKey{}, true) }

// fake makes numbered items and records what became of each.
type fake struct {
	// gate, if set, holds each background make until a token arrives
	// (or the pool's context ends, unless ignoreCancel).
	gate         chan struct{}
	ignoreCancel bool

	mu        sync.Mutex
	next      int
	failFirst int // this many makes fail
	made      map[int]bool
	handed    map[int]int
	discarded map[int]int
	attempts  []time.Time // background makes, failed or not
	failedAt  []time.Time
	active    int // background makes in progress
	maxActive int
	sawCancel int // background makes that saw the pool's context end
}

var errFake = errors.New("fake make failed")

func newFake() *fake {
	return &fake{made: map[int]bool{}, handed: map[int]int{}, discarded: map[int]int{}}
}

func (f *fake) make(ctx context.Context) (int, error) {
	bg := ctx.Value(callerKey{}) == nil
	f.mu.Lock()
	if bg {
		f.active++
		f.maxActive = max(f.maxActive, f.active)
		f.attempts = append(f.attempts, time.Now())
	}
	f.mu.Unlock()
	defer func() {
		if bg {
			f.mu.Lock()
			f.active--
			f.mu.Unlock()
		}
	}()

	if bg && f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.mu.Lock()
			f.sawCancel++
			f.mu.Unlock()
			if !f.ignoreCancel {
				return 0, ctx.Err()
			}
			<-f.gate // an item that completes after Close
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFirst > 0 {
		f.failFirst--
		f.failedAt = append(f.failedAt, time.Now())
		return 0, errFake
	}
	f.next++
	f.made[f.next] = true
	return f.next, nil
}

func (f *fake) discard(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discarded[id]++
}

// get takes an item from p and records it as handed out.
func (f *fake) get(t *testing.T, p *Pool[int]) (int, bool) {
	t.Helper()
	id, hit, err := p.Get(caller())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	f.mu.Lock()
	f.handed[id]++
	f.mu.Unlock()
	return id, hit
}

func (f *fake) count(what func(*fake) int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return what(f)
}

// checkAccounts fails unless every item made was either handed out or
// discarded, exactly once. Call it after Close.
func (f *fake) checkAccounts(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.made {
		h, d := f.handed[id], f.discarded[id]
		if h+d != 1 {
			t.Errorf("item %d: handed out %d times, discarded %d times", id, h, d)
		}
	}
	for id := range f.discarded {
		if !f.made[id] {
			t.Errorf("item %d discarded but never made", id)
		}
	}
}

// waitFor polls cond until it holds or a generous deadline passes: the
// tests assert what happens, never how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitStats(t *testing.T, p *Pool[int], what string, cond func(Stats) bool) Stats {
	t.Helper()
	var s Stats
	waitFor(t, what, func() bool { s = p.Stats(); return cond(s) })
	return s
}

// checkGoroutines fails the test if goroutines started during it outlive
// it. Register it before anything that starts goroutines.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// newPool starts a pool over f that is closed, and its accounts checked,
// when the test ends.
func newPool(t *testing.T, cfg Config, f *fake) *Pool[int] {
	t.Helper()
	checkGoroutines(t)
	p := New(cfg, f.make, f.discard)
	t.Cleanup(func() {
		if f.gate != nil {
			close(f.gate) // release makes that ignore cancellation
		}
		p.Close()
		f.checkAccounts(t)
	})
	return p
}

func TestFillsInBackground(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	p := newPool(t, Config{Size: 3, Parallel: 2}, f)
	// New returned while makes are held: filling is in the background.
	waitStats(t, p, "two makes in progress", func(s Stats) bool { return s.Making == 2 })
	for range 3 {
		f.gate <- struct{}{}
	}
	s := waitStats(t, p, "a full pool", func(s Stats) bool { return s.Ready == 3 })
	if s.Making != 0 {
		t.Errorf("a full pool is making %d more", s.Making)
	}
	if n := f.count(func(f *fake) int { return len(f.made) }); n != 3 {
		t.Errorf("made %d items for a pool of 3", n)
	}
}

func TestHitsMissesRefill(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	p := newPool(t, Config{Size: 2}, f)
	f.gate <- struct{}{}
	f.gate <- struct{}{}
	waitStats(t, p, "a full pool", func(s Stats) bool { return s.Ready == 2 })

	// The gate is shut: refills wait, so the pool runs dry.
	if _, hit := f.get(t, p); !hit {
		t.Error("first Get missed")
	}
	if _, hit := f.get(t, p); !hit {
		t.Error("second Get missed")
	}
	if _, hit := f.get(t, p); hit {
		t.Error("Get from an empty pool hit")
	}
	s := p.Stats()
	if s.Hits != 2 || s.Misses != 1 || s.Ready != 0 {
		t.Errorf("stats %+v, want 2 hits, 1 miss, none ready", s)
	}

	f.gate <- struct{}{}
	f.gate <- struct{}{}
	waitStats(t, p, "a refilled pool", func(s Stats) bool { return s.Ready == 2 })
	if _, hit := f.get(t, p); !hit {
		t.Error("Get after the refill missed")
	}
}

func TestMaxAge(t *testing.T) {
	f := newFake()
	p := newPool(t, Config{Size: 2, MaxAge: 10 * time.Millisecond}, f)
	waitStats(t, p, "items to expire", func(s Stats) bool { return s.Expired >= 6 })
	// Expired items are replaced.
	waitStats(t, p, "a full pool", func(s Stats) bool { return s.Ready == 2 })
	// Gets race the janitor for the same items.
	for range 50 {
		f.get(t, p)
		time.Sleep(time.Millisecond)
	}
	s := p.Stats()
	discarded := f.count(func(f *fake) int { return len(f.discarded) })
	if int64(discarded) != s.Expired {
		t.Errorf("%d items discarded, %d counted expired", discarded, s.Expired)
	}
	// newPool's cleanup checks that no item was both handed out and
	// discarded, nor discarded twice.
}

func TestIdleShrinkAndGrow(t *testing.T) {
	f := newFake()
	p := newPool(t, Config{Size: 4, MinIdle: 1, IdleAfter: 20 * time.Millisecond}, f)
	s := waitStats(t, p, "an idle pool to shrink", func(s Stats) bool { return s.Ready == 1 && s.Making == 0 })
	made := f.count(func(f *fake) int { return len(f.made) })
	if got := s.Expired + 1; got != int64(made) {
		t.Errorf("made %d, expired %d, one ready: the counts disagree", made, s.Expired)
	}

	if _, hit := f.get(t, p); !hit {
		t.Error("Get from an idle pool missed its MinIdle item")
	}
	// The pool grows back to Size: four more items are made.
	waitFor(t, "the pool to grow back", func() bool {
		return f.count(func(f *fake) int { return len(f.made) }) >= made+4
	})
	// And shrinks again when left alone.
	waitStats(t, p, "the pool to shrink again", func(s Stats) bool { return s.Ready == 1 && s.Making == 0 })
}

func TestRetryAfterFailure(t *testing.T) {
	const retry = 30 * time.Millisecond
	f := newFake()
	f.failFirst = 2
	p := newPool(t, Config{Size: 1, RetryAfter: retry}, f)
	s := waitStats(t, p, "an item after two failures", func(s Stats) bool { return s.Ready == 1 })
	if s.Failed != 2 {
		t.Errorf("Failed = %d, want 2", s.Failed)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// One filler: attempts 1 and 2 failed, each followed by a pause.
	if len(f.attempts) != 3 {
		t.Fatalf("%d attempts, want 3", len(f.attempts))
	}
	for i := range 2 {
		if gap := f.attempts[i+1].Sub(f.failedAt[i]); gap < retry {
			t.Errorf("attempt %d came %v after failure %d, before RetryAfter (%v)", i+2, gap, i+1, retry)
		}
	}
}

func TestParallel(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	p := newPool(t, Config{Size: 10, Parallel: 3}, f)
	waitStats(t, p, "three makes at once", func(s Stats) bool { return s.Making == 3 })
	for range 10 {
		f.gate <- struct{}{}
	}
	waitStats(t, p, "a full pool", func(s Stats) bool { return s.Ready == 10 })
	if m := f.count(func(f *fake) int { return f.maxActive }); m != 3 {
		t.Errorf("at most %d makes at once, want 3", m)
	}
}

// TestParallelRefill checks that a pool emptied at once (here by age) is
// refilled by all its fillers, not one.
func TestParallelRefill(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	p := newPool(t, Config{Size: 3, Parallel: 3, MaxAge: 20 * time.Millisecond}, f)
	for range 3 {
		f.gate <- struct{}{}
	}
	waitStats(t, p, "the items to expire", func(s Stats) bool { return s.Expired == 3 })
	waitStats(t, p, "three makes at once", func(s Stats) bool { return s.Making == 3 })
}

func TestClose(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	f.ignoreCancel = true
	checkGoroutines(t)
	p := New(Config{Size: 3, Parallel: 2}, f.make, f.discard)
	for range 3 {
		f.gate <- struct{}{}
	}
	waitStats(t, p, "a full pool", func(s Stats) bool { return s.Ready == 3 })
	f.get(t, p)
	f.get(t, p)
	waitStats(t, p, "two refills held", func(s Stats) bool { return s.Making == 2 && s.Ready == 1 })

	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	// Close has cancelled the makes; they complete anyway.
	waitFor(t, "the makes to see Close", func() bool { return f.count(func(f *fake) int { return f.sawCancel }) == 2 })
	f.gate <- struct{}{}
	f.gate <- struct{}{}
	<-closed

	f.mu.Lock()
	made, discarded := len(f.made), len(f.discarded)
	f.mu.Unlock()
	if made != 5 || discarded != 3 {
		t.Errorf("made %d, discarded %d; want 5 made, 3 discarded (1 ready, 2 completing after Close)", made, discarded)
	}
	f.checkAccounts(t)
	if s := p.Stats(); s.Ready != 0 || s.Making != 0 {
		t.Errorf("after Close: %+v", s)
	}
	p.Close() // a second Close is harmless
}

func TestConcurrentGets(t *testing.T) {
	f := newFake()
	p := newPool(t, Config{Size: 4, Parallel: 2, MaxAge: 5 * time.Millisecond}, f)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 50 {
				f.get(t, p)
			}
		})
	}
	wg.Wait()
	s := p.Stats()
	if s.Hits+s.Misses != 32*50 {
		t.Errorf("%d hits + %d misses, want %d Gets", s.Hits, s.Misses, 32*50)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.handed {
		if n != 1 {
			t.Errorf("item %d handed out %d times", id, n)
		}
	}
}

// A Get that leaves items ready starts no make before RefillDelay; one
// that empties the pool starts it at once.
func TestRefillDelay(t *testing.T) {
	f := newFake()
	p := newPool(t, Config{Size: 2, RefillDelay: time.Hour}, f)
	waitStats(t, p, "a full pool", func(s Stats) bool { return s.Ready == 2 })
	f.get(t, p)
	// Nothing may start within the delay; give a wrong refill every chance
	// to show up before looking.
	for range 20 {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if s := p.Stats(); s.Making != 0 || s.Ready != 1 {
		t.Fatalf("stats %+v right after a Get that left one ready: the refill did not wait", s)
	}
	// Positive control: emptying the pool refills it at once.
	f.get(t, p)
	waitStats(t, p, "the emptied pool refilled", func(s Stats) bool { return s.Ready == 2 })
}
