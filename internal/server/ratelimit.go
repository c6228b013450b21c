package server

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pybox-dev/pybox/api"
)

// take spends one token of l now, or says how long until one is there.
// A refused request spends nothing.
func take(l *rate.Limiter) (wait time.Duration, ok bool) {
	res := l.Reserve()
	if !res.OK() {
		return time.Second, false
	}
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, false
	}
	return 0, true
}

func rateLimited(wait time.Duration, what string) *problem {
	p := newProblem(http.StatusTooManyRequests, api.ProblemRateLimited, "Rate limited",
		fmt.Sprintf("%s; retry in %s (see Retry-After and GET /v1/limits)", what, wait.Round(time.Millisecond)))
	p.retryAfter = max(wait, time.Second)
	return p
}

// sessionRates holds a token bucket per session, for its cells. It is
// node-local, like the sessions themselves.
type sessionRates struct {
	rate  float64
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// limiter returns the bucket of session id (nil when cells are not rate
// limited).
func (r *sessionRates) limiter(id string) *rate.Limiter {
	if r.rate <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.m[id]
	if !ok {
		l = rate.NewLimiter(rate.Limit(r.rate), r.burst)
		r.m[id] = l
	}
	return l
}

// forget drops the bucket of a session that is gone.
func (r *sessionRates) forget(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// prune drops the buckets of sessions for which alive is false.
func (r *sessionRates) prune(alive func(id string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.m {
		if !alive(id) {
			delete(r.m, id)
		}
	}
}
