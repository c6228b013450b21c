package server

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/api"
)

// Four sessions misbehave at once (fork bomb, memory bomb, CPU spin, disk
// fill) while a fifth keeps answering cells. Each attack's own result is
// the positive control: it really hit its limit.
func TestNoisyNeighbours(t *testing.T) {
	st := newStack(t, options{warm: 0})
	attacks := []struct {
		name, code string
		check      func(*api.CellResult) bool
	}{
		{"fork bomb", `import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(8)
            os._exit(0)
        n += 1
except OSError as e:
    print("stopped after", n, "forks:", e.strerror)
time.sleep(6)`, func(r *api.CellResult) bool { return strings.Contains(r.Stdout, "stopped after") }},
		{"memory bomb", `chunks = []
while True:
    chunks.append(bytearray(16 << 20))
    chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])`, func(r *api.CellResult) bool { return r.Status == api.StatusMemoryLimit }},
		{"cpu spin", `import threading, time
def spin():
    end = time.time() + 6
    while time.time() < end:
        pass
ts = [threading.Thread(target=spin) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]`, func(r *api.CellResult) bool { return r.Status == api.StatusOK && r.CPUMS > 1000 }},
		{"disk fill", `import time
try:
    with open("fill", "wb") as f:
        while True:
            f.write(b"x" * (1 << 20))
except OSError as e:
    print("disk full:", e.strerror)
time.sleep(6)`, func(r *api.CellResult) bool { return strings.Contains(r.Stdout, "disk full") }},
	}
	quiet := newSession(t, st, api.CreateSessionRequest{})
	cell(t, st, quiet.ID, "x = 0")

	var wg sync.WaitGroup
	results := make([]*api.CellResult, len(attacks))
	for i, a := range attacks {
		s := newSession(t, st, api.CreateSessionRequest{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := st.c.Run(ctx(t), s.ID, api.CellRequest{Code: a.code, Timeout: "15s"})
			if err != nil {
				t.Errorf("%s: %v", a.name, err)
				return
			}
			results[i] = r
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	time.Sleep(500 * time.Millisecond) // let the attacks get going
	var worst time.Duration
	n := 0
loop:
	for {
		select {
		case <-done:
			break loop
		default:
		}
		t0 := time.Now()
		r := cell(t, st, quiet.ID, "x += 1\nx")
		if r.Status != api.StatusOK {
			t.Fatalf("the quiet session failed while its neighbours misbehaved: %+v", r)
		}
		worst = max(worst, time.Since(t0))
		n++
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("quiet session: %d cells during the attacks, slowest %s", n, worst)
	if n < 5 {
		t.Errorf("only %d cells ran during the attacks", n)
	}
	for i, a := range attacks {
		if r := results[i]; r != nil && !a.check(r) {
			t.Errorf("positive control: %s did not hit its limit: status %s stdout %q message %q cpu %.0fms", a.name, r.Status, r.Stdout, r.Message, r.CPUMS)
		}
	}
}
