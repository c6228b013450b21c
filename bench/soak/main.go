//go:build linux

// Command soak runs `pybox serve` under a mixed load for a while and checks
// that it leaks nothing: it starts the server (its own loopback port, a
// warm pool, --debug so that every sandbox's cleanup is logged),
// warms up, lets it settle and takes a baseline, then for the duration
// runs concurrent one-shots (ok, errors, timeouts, output floods, memory
// kills, orphaned children, streams) and sessions (created, used with
// cells that fail, time out or flood, deleted; some left to expire with a
// short TTL, some killed by a cell that ignores KeyboardInterrupt). Every
// interval it samples the server: open fds, goroutines (/healthz), threads,
// RSS, live sandboxes (their cgroups and the processes below the server),
// uid-slot locks held and sessions. At the end it stops the load, waits
// for quiescence, samples again, sends SIGTERM and checks that no sandbox
// process, cgroup or slot lock of the server remains.
//
// The verdict compares the settled state after the load with the settled
// baseline after warm-up (fds ±5, goroutines ±20, RSS at most +20 MiB by
// default) and fails on any leftover, any unexpected outcome (a 500, a
// transport error, a status the code cannot produce) and any server error
// log; it exits 1 when a check fails.
//
//	go run ./bench/soak -d 10m
//	go run ./bench/soak -d 30s            # a short run, to develop it
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/pybox-dev/pybox/bench/internal/benchutil"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

type options struct {
	dur, warmup, interval, settle time.Duration
	oneWorkers, sessWorkers       int
	pool, maxConc, maxSessions    int
	pybox, python, stateDir       string
	extra                         string
	fdBound, grBound              int
	rssBoundMiB                   float64
	closeStdout                   bool
}

func main() {
	var o options
	flag.DurationVar(&o.dur, "d", 10*time.Minute, "duration of the load")
	flag.DurationVar(&o.warmup, "warmup", 0, "load before the baseline (default d/10, between 10s and 60s)")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "sampling interval")
	flag.DurationVar(&o.settle, "settle", 90*time.Second, "longest wait for quiescence after the load")
	flag.IntVar(&o.oneWorkers, "oneshot-workers", 4, "concurrent one-shot clients")
	flag.IntVar(&o.sessWorkers, "session-workers", 3, "concurrent session clients")
	flag.IntVar(&o.pool, "pool", 4, "warm pool size (--warm-pool)")
	flag.IntVar(&o.maxConc, "max-concurrent", 8, "server's --max-concurrent")
	flag.IntVar(&o.maxSessions, "max-sessions", 16, "server's --max-sessions")
	flag.StringVar(&o.pybox, "pybox", "bin/pybox", "pybox binary")
	flag.StringVar(&o.python, "python", "python3", "interpreter (--python)")
	flag.StringVar(&o.stateDir, "state-dir", "/run/pybox", "the server's state directory, whose slots/ holds the uid-slot locks")
	flag.StringVar(&o.extra, "server-flags", "", "more flags for `pybox serve`, space-separated")
	flag.IntVar(&o.fdBound, "fd-bound", 5, "allowed change of open fds, baseline to final")
	flag.IntVar(&o.grBound, "goroutine-bound", 20, "allowed change of goroutines, baseline to final")
	flag.Float64Var(&o.rssBoundMiB, "rss-bound", 20, "allowed growth of RSS in MiB, baseline to final")
	flag.BoolVar(&o.closeStdout, "close-stdout", true, "include session cells that close their stdout (each such cell, and each later cell of its session, leaks a goroutine in pybox today)")
	flag.Parse()
	if o.warmup == 0 {
		o.warmup = min(max(o.dur/10, 10*time.Second), time.Minute)
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/soak:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// Sample is the server's state at one moment.
type Sample struct {
	Phase      string
	At         time.Duration // since the server started
	FDs        int
	Goroutines int
	Threads    int
	RSSMiB     float64
	Cgroups    int // sandboxes of this server with a cgroup directory
	Procs      int // processes below the server
	SlotLocks  int // uid-slot flocks held by the server
	Sessions   int
	WarmReady  int
	Running    int
	Mounts     int   // host mount table (the server's mount namespace)
	OK, Failed int64 // requests finished since the previous sample
}

func run(o options) (bool, error) {
	py, err := exec.Command(o.python, "-I", "-c", "import sys, platform; print(sys.executable, platform.python_version())").Output()
	if err != nil {
		return false, fmt.Errorf("-python %s: %w", o.python, err)
	}
	pyf := strings.Fields(string(py))
	port, err := benchutil.FreePort()
	if err != nil {
		return false, err
	}
	args := []string{"serve", "--debug", "--listen", "127.0.0.1:" + port, "--python", pyf[0],
		"--warm-pool", strconv.Itoa(o.pool), "--max-concurrent", strconv.Itoa(o.maxConc),
		"--max-sessions", strconv.Itoa(o.maxSessions), "--state-dir", o.stateDir,
		"--policy", "off"} // the workload uses subprocess and sys on purpose
	auth, key, err := benchutil.ServerAuth(o.stateDir)
	if err != nil {
		return false, err
	}
	args = append(args, auth...)
	args = append(args, strings.Fields(o.extra)...)
	started := time.Now()
	srv, err := startServer(o.pybox, args)
	if err != nil {
		return false, err
	}
	defer srv.kill()
	fmt.Printf("soak: %s %s (Python %s); load %s after %s of warm-up; %d one-shot and %d session clients; sampling every %s\n",
		o.pybox, strings.Join(args, " "), pyf[1], o.dur, o.warmup, o.oneWorkers, o.sessWorkers, o.interval)
	fmt.Printf("soak: %s, nproc %d, %s, started %s\n\n", runtime.GOARCH, runtime.NumCPU(), benchutil.Kernel(), started.UTC().Format("2006-01-02 15:04:05 MST"))

	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	cl := client.New(srv.base, &http.Client{Transport: tr}).WithKey(key)
	// Samples use a connection of their own that does not stay open, so
	// that the server's fds and goroutines do not count the load's idle
	// keep-alive connections when it settles.
	probe := client.New(srv.base, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).WithKey(key)
	if err := srv.waitHealthy(probe, o.pool, 60*time.Second); err != nil {
		return false, err
	}
	mon := &monitor{o: o, srv: srv, probe: probe, started: started, slotDir: filepath.Join(o.stateDir, "slots")}
	if err := mon.findParents(); err != nil {
		return false, err
	}

	st := &stats{closeStdout: o.closeStdout}
	// Warm-up, then the baseline once the server has settled.
	if err := mon.loadPhase("warm-up", o.warmup, cl, st); err != nil {
		return false, err
	}
	tr.CloseIdleConnections()
	base, err := mon.settle("baseline", o.settle, st, nil)
	if err != nil {
		return false, err
	}
	st.reset()
	if err := mon.loadPhase("load", o.dur, cl, st); err != nil {
		return false, err
	}
	tr.CloseIdleConnections()
	final, settleErr := mon.settle("final", o.settle, st, base)

	// Stop the server: SIGTERM; it must exit 0 and leave nothing behind.
	procs := descendants(srv.pid())
	mon.sample("stop", st) //nolint:errcheck // records the groups of the last live sandboxes
	ids := mon.ids()
	exitCode, stopErr := srv.stop(60 * time.Second)
	srv.waitLog()
	left := mon.leftovers(procs, ids)
	if len(left) > 0 {
		time.Sleep(5 * time.Second)
		if again := mon.leftovers(procs, ids); len(again) < len(left) {
			left = append(again, fmt.Sprintf("(%d more were gone 5 s later)", len(left)-len(again)))
		}
	}

	mon.printSamples()
	fmt.Println()
	st.print()
	fmt.Println()

	v := &verdict{}
	v.check(settleErr == nil, "quiescence after the load", errString(settleErr, "pool refilled, no session, no execution, sandboxes as at the baseline"))
	if final != nil {
		dfd, dgr, drss := final.FDs-base.FDs, final.Goroutines-base.Goroutines, final.RSSMiB-base.RSSMiB
		v.check(abs(dfd) <= o.fdBound, "open fds flat", fmt.Sprintf("%d → %d (%+d; bound ±%d)", base.FDs, final.FDs, dfd, o.fdBound))
		v.check(abs(dgr) <= o.grBound, "goroutines flat", fmt.Sprintf("%d → %d (%+d; bound ±%d); %d cells ran after their program closed its stdout",
			base.Goroutines, final.Goroutines, dgr, o.grBound, st.closedCells.Load()))
		v.check(drss <= o.rssBoundMiB, "RSS flat", fmt.Sprintf("%.1f → %.1f MiB (%+.1f; bound +%.0f)", base.RSSMiB, final.RSSMiB, drss, o.rssBoundMiB))
		// The Go runtime keeps the threads it made at peak blocking
		// concurrency: growth is not a leak unless it goes on.
		v.info("OS threads", fmt.Sprintf("%d → %d", base.Threads, final.Threads))
		v.check(final.Cgroups == base.Cgroups && final.Procs == base.Procs && final.SlotLocks == base.SlotLocks,
			"sandboxes back to the warm pool", fmt.Sprintf("cgroups %d → %d, processes %d → %d, slot locks %d → %d",
				base.Cgroups, final.Cgroups, base.Procs, final.Procs, base.SlotLocks, final.SlotLocks))
		v.info("host mounts", fmt.Sprintf("%d → %d", base.Mounts, final.Mounts))
	}
	v.check(stopErr == nil && exitCode == 0, "exit 0 after SIGTERM", fmt.Sprintf("exit %d %s", exitCode, errString(stopErr, "")))
	v.check(len(left) == 0, "nothing left after exit", orNone(left, "no sandbox process, cgroup directory or uid-slot lock of the server"))
	prepared, unclean := srv.cleanups()
	v.check(len(unclean) == 0, "every sandbox cleaned up (debug log)", fmt.Sprintf("%d sandboxes in the log, %d without \"cleanup done\"%s", prepared, len(unclean), list(unclean, 5)))
	total := st.total()
	v.check(st.unexpected.Load() == 0, "no unexpected outcome", fmt.Sprintf("%d of %d requests (500s, transport errors, wrong statuses)", st.unexpected.Load(), total))
	warn, errs, samples := srv.logCounts()
	v.check(errs == 0, "no server error logged", fmt.Sprintf("%d errors, %d warnings%s", errs, warn, list(samples, 5)))
	v.print()
	return v.ok, nil
}

func errString(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func orNone(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, "; ")
}

func list(l []string, n int) string {
	if len(l) == 0 {
		return ""
	}
	if len(l) > n {
		return ":\n      " + strings.Join(l[:n], "\n      ") + fmt.Sprintf("\n      (%d more)", len(l)-n)
	}
	return ":\n      " + strings.Join(l, "\n      ")
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// verdict collects the checks.
type verdict struct {
	ok    bool
	lines []string
	n     int
	fails int
}

func (v *verdict) check(pass bool, what, detail string) {
	mark := "PASS"
	if !pass {
		mark = "FAIL"
		v.fails++
	}
	v.n++
	v.lines = append(v.lines, fmt.Sprintf("%s  %s: %s", mark, what, detail))
}

func (v *verdict) info(what, detail string) {
	v.lines = append(v.lines, fmt.Sprintf("info  %s: %s", what, detail))
}

func (v *verdict) print() {
	v.ok = v.fails == 0
	fmt.Println("Verdict:")
	for _, l := range v.lines {
		fmt.Println("  " + l)
	}
	if v.ok {
		fmt.Printf("\nsoak: PASS (%d checks): no leak\n", v.n)
	} else {
		fmt.Printf("\nsoak: FAIL (%d of %d checks failed)\n", v.fails, v.n)
	}
}

// ---- load ----

// stats counts outcomes by action.
type stats struct {
	mu         sync.Mutex
	byAction   map[string]map[string]int
	unexpected atomic.Int64
	examples   []string
	ok, failed atomic.Int64 // since the last sample
	// closedCells counts cells run in a session whose stdout the program
	// had closed, the cells that leave a goroutine behind.
	closedCells atomic.Int64
	closeStdout bool
}

func (s *stats) reset() {
	s.mu.Lock()
	s.byAction, s.examples = nil, nil
	s.mu.Unlock()
	s.unexpected.Store(0)
	s.closedCells.Store(0)
}

// rec records what an action came to; expected says whether the code
// could have produced it (a 503 at capacity is expected, a 500 is not).
func (s *stats) rec(action, outcome string, expected bool, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byAction == nil {
		s.byAction = map[string]map[string]int{}
	}
	if s.byAction[action] == nil {
		s.byAction[action] = map[string]int{}
	}
	if !expected {
		outcome = "UNEXPECTED " + outcome
		s.unexpected.Add(1)
		if len(s.examples) < 20 {
			s.examples = append(s.examples, fmt.Sprintf("%s: %s: %s", action, outcome, benchutil.Trim(detail, 300)))
		}
	}
	s.byAction[action][outcome]++
	if expected && !strings.HasPrefix(outcome, "http") {
		s.ok.Add(1)
	} else {
		s.failed.Add(1)
	}
}

func (s *stats) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.byAction {
		for _, c := range m {
			n += c
		}
	}
	return n
}

func (s *stats) print() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Println("Outcomes during the load (after the baseline):")
	fmt.Println()
	fmt.Println("| action | outcomes |")
	fmt.Println("|---|---|")
	var actions []string
	for a := range s.byAction {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for _, a := range actions {
		var parts []string
		for o, n := range s.byAction[a] {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
		sort.Strings(parts)
		fmt.Printf("| %s | %s |\n", a, strings.Join(parts, ", "))
	}
	if len(s.examples) > 0 {
		fmt.Println("\nUnexpected outcomes (first 20):")
		for _, e := range s.examples {
			fmt.Println("- " + e)
		}
	}
}

// oneShot is a kind of one-shot request and the statuses it may end with.
type oneShot struct {
	name   string
	weight int
	req    api.ExecuteRequest
	expect []api.Status
	stdout string // if set, an ok result must print exactly this
	stream bool
}

var oneShots = []oneShot{
	{name: "one-shot ok", weight: 40, req: api.ExecuteRequest{Code: "print(1+1)"}, expect: []api.Status{api.StatusOK}, stdout: "2\n"},
	{name: "one-shot error", weight: 12, req: api.ExecuteRequest{Code: "raise ValueError('soak')"}, expect: []api.Status{api.StatusError}},
	{name: "one-shot exit 3", weight: 5, req: api.ExecuteRequest{Code: "import sys; sys.exit(3)"}, expect: []api.Status{api.StatusError}},
	{name: "one-shot timeout 300ms", weight: 10, req: api.ExecuteRequest{Code: "while True: pass", Limits: &api.Limits{Timeout: "300ms"}}, expect: []api.Status{api.StatusTimeout}},
	{name: "one-shot output flood", weight: 10, req: api.ExecuteRequest{Code: "print('x'*10**7)"}, expect: []api.Status{api.StatusOutputLimit}},
	{name: "one-shot memory kill", weight: 5, req: api.ExecuteRequest{Code: "b = b'x' * (400 << 20)"}, expect: []api.Status{api.StatusMemoryLimit}},
	{name: "one-shot orphan child", weight: 8, req: api.ExecuteRequest{Code: "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\nprint('ok')"}, expect: []api.Status{api.StatusOK}, stdout: "ok\n"},
	{name: "one-shot streamed", weight: 10, req: api.ExecuteRequest{Code: "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.01)"}, expect: []api.Status{api.StatusOK}, stdout: "0\n1\n2\n", stream: true},
}

func pick[T any](items []T, weight func(T) int) T {
	total := 0
	for _, it := range items {
		total += weight(it)
	}
	n := rand.IntN(total)
	for _, it := range items {
		if n -= weight(it); n < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// httpOutcome classifies a request error: 503 (at capacity, draining) and
// 429 (too many sessions) are the server protecting itself.
func httpOutcome(err error) (string, bool) {
	var ce *client.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("http %d", ce.Status), ce.Status == http.StatusServiceUnavailable || ce.Status == http.StatusTooManyRequests
	}
	return "transport error", false
}

func oneShotWorker(ctx context.Context, cl *client.Client, st *stats) {
	for ctx.Err() == nil {
		a := pick(oneShots, func(a oneShot) int { return a.weight })
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var res *api.Result
		var err error
		if a.stream {
			var streamed strings.Builder
			res, err = cl.ExecuteStream(rctx, a.req, func(stream, text string) {
				if stream == api.EventStdout {
					streamed.WriteString(text)
				}
			})
			if err == nil && streamed.String() != a.stdout {
				err = fmt.Errorf("streamed stdout %q, want %q", streamed.String(), a.stdout)
				st.rec(a.name, "bad stream", false, err.Error())
				cancel()
				continue
			}
		} else {
			res, err = cl.Execute(rctx, a.req)
		}
		cancel()
		if err != nil {
			o, ok := httpOutcome(err)
			st.rec(a.name, o, ok, err.Error())
			if ok {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		ok := false
		for _, s := range a.expect {
			ok = ok || res.Status == s
		}
		if ok && res.Status == api.StatusOK && a.stdout != "" && res.Stdout != a.stdout {
			st.rec(a.name, "ok, wrong stdout", false, fmt.Sprintf("stdout %q", res.Stdout))
			continue
		}
		st.rec(a.name, string(res.Status), ok, res.Message+" stderr: "+res.Stderr)
	}
}

// sessionWorker creates sessions and runs cells in them until ctx ends.
func sessionWorker(ctx context.Context, cl *client.Client, st *stats) {
	for ctx.Err() == nil {
		sessionOnce(cl, st)
	}
}

func sessionOnce(cl *client.Client, st *stats) {
	bg := context.Background()
	abandon := rand.IntN(4) == 0 // left to expire
	req := api.CreateSessionRequest{}
	action := "session create"
	if abandon {
		req.TTL = "2s"
		action = "session create ttl 2s"
	}
	s, err := cl.CreateSession(bg, req)
	if err != nil {
		o, ok := httpOutcome(err)
		st.rec(action, o, ok, err.Error())
		time.Sleep(200 * time.Millisecond)
		return
	}
	st.rec(action, "created", true, "")
	deleted := false
	if !abandon {
		defer func() {
			if deleted {
				return
			}
			err := cl.DeleteSession(bg, s.ID)
			if err != nil {
				st.rec("session delete", "failed", false, err.Error())
			} else {
				st.rec("session delete", "deleted", true, "")
			}
		}()
	}
	// cell runs one cell and says whether the session lives on.
	cell := func(name, code, timeout string, expect ...api.Status) (*api.CellResult, bool) {
		var res *api.CellResult
		var err error
		r := api.CellRequest{Code: code, Timeout: timeout}
		if rand.IntN(5) == 0 {
			res, err = cl.RunStream(bg, s.ID, r, nil)
		} else {
			res, err = cl.Run(bg, s.ID, r)
		}
		if err != nil {
			o, ok := httpOutcome(err)
			st.rec(name, o, ok, err.Error())
			return nil, false
		}
		ok := false
		for _, e := range expect {
			ok = ok || res.Status == e
		}
		st.rec(name, string(res.Status), ok, res.Message)
		return res, !res.SessionEnded
	}
	if _, alive := cell("cell x = 0", "x = 0", "", api.StatusOK); !alive {
		return
	}
	want := 0
	for i, k := 0, 2+rand.IntN(6); i < k; i++ {
		if _, alive := cell("cell x += 1", "x += 1", "", api.StatusOK); !alive {
			return
		}
		want++
		var alive bool
		switch rand.IntN(12) {
		case 0:
			_, alive = cell("cell error", "1/0", "", api.StatusError)
		case 1:
			_, alive = cell("cell timeout 300ms", "while True: pass", "300ms", api.StatusTimeout)
		case 2:
			_, alive = cell("cell output flood", "print('x'*10**7)", "", api.StatusOutputLimit)
		case 3:
			_, alive = cell("cell print", "for i in range(100): print(i)", "", api.StatusOK)
		default:
			alive = true
		}
		if !alive {
			return
		}
	}
	if res, alive := cell("cell read x", "x", "", api.StatusOK); alive && res.Value["text/plain"] != strconv.Itoa(want) {
		st.rec("cell read x", "wrong value", false, fmt.Sprintf("x is %v, want %d", res.Value, want))
	}
	switch rand.IntN(10) {
	case 0:
		// A cell that ignores KeyboardInterrupt: the session is killed.
		res, _ := cell("cell stubborn timeout", "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n        pass",
			"300ms", api.StatusTimeout)
		if res != nil && !res.SessionEnded {
			st.rec("cell stubborn timeout", "session survived", false, "")
		}
		if _, err := cl.Run(bg, s.ID, api.CellRequest{Code: "x"}); !client.IsProblem(err, api.ProblemSessionEnded) {
			st.rec("cell after kill", fmt.Sprint(err), false, "want 410 session-ended")
		} else {
			st.rec("cell after kill", "410 session ended", true, "")
		}
	case 1:
		// A cell that closes its stdout; later cells still work.
		if !st.closeStdout {
			break
		}
		if _, alive := cell("cell closes stdout", "import os, sys\nsys.stdout.flush()\nos.close(1)", "", api.StatusOK); !alive {
			break
		}
		st.closedCells.Add(1)
		if _, alive := cell("cell after close", "x", "", api.StatusOK); alive {
			st.closedCells.Add(1)
		}
	}
}

// ---- monitor ----

type monitor struct {
	o       options
	srv     *server
	probe   *client.Client
	started time.Time
	slotDir string
	parents []string // cgroup directories holding the sandboxes' groups

	mu   sync.Mutex
	mine map[string]bool // sandbox ids seen holding the server's processes

	samples []Sample
}

// findParents finds where the server's sandboxes have their cgroups: the
// directories, one per controller, that hold the "pybox-<id>" group of a
// process below the server (the pool is full, so there are some).
func (m *monitor) findParents() error {
	seen := map[string]bool{}
	for _, pid := range descendants(m.srv.pid()) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid.pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || !strings.HasPrefix(filepath.Base(parts[2]), "pybox-") {
				continue
			}
			var dirs []string
			if parts[1] == "" {
				dirs = []string{filepath.Join("/sys/fs/cgroup", parts[2])}
			} else {
				for _, c := range strings.Split(parts[1], ",") {
					dirs = append(dirs, filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(c, "name="), parts[2]))
				}
			}
			for _, d := range dirs {
				if _, err := os.Stat(d); err == nil {
					seen[filepath.Dir(d)] = true
				}
			}
		}
	}
	for p := range seen {
		m.parents = append(m.parents, p)
	}
	sort.Strings(m.parents)
	if len(m.parents) == 0 {
		return errors.New("found no cgroup of the server's sandboxes")
	}
	fmt.Printf("sandbox cgroups under: %s\n\n", strings.Join(m.parents, ", "))
	return nil
}

// loadPhase runs the workers for d, sampling every interval.
func (m *monitor) loadPhase(phase string, d time.Duration, cl *client.Client, st *stats) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < m.o.oneWorkers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); oneShotWorker(ctx, cl, st) }()
	}
	for i := 0; i < m.o.sessWorkers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); sessionWorker(ctx, cl, st) }()
	}
	t := time.NewTicker(m.o.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			s, err := m.sample(phase, st)
			if err != nil {
				return err
			}
			m.samples = append(m.samples, s)
			if m.srv.exited() {
				return errors.New("the server exited during the load:\n" + m.srv.tail(20))
			}
		}
	}
}

// settle waits until the server is quiescent (no session, no execution,
// the pool full, the same sandboxes, processes, locks, fds and goroutines
// for two samples a second apart, and, after the load, as many sandboxes,
// processes and locks as at the baseline), then samples it.
func (m *monitor) settle(phase string, timeout time.Duration, st *stats, want *Sample) (*Sample, error) {
	deadline := time.Now().Add(timeout)
	var prev *Sample
	for {
		s, err := m.sample(phase, st)
		if err != nil {
			return nil, err
		}
		quiet := s.Sessions == 0 && s.Running == 0 && s.WarmReady == m.o.pool && s.Cgroups >= m.o.pool
		if want != nil {
			quiet = quiet && s.Cgroups == want.Cgroups && s.SlotLocks == want.SlotLocks && s.Procs == want.Procs
		}
		if quiet && prev != nil && prev.Procs == s.Procs && prev.FDs == s.FDs && prev.Goroutines == s.Goroutines &&
			prev.Cgroups == s.Cgroups && prev.SlotLocks == s.SlotLocks {
			m.samples = append(m.samples, s)
			return &s, nil
		}
		if quiet {
			prev = &s
		} else {
			prev = nil
		}
		if time.Now().After(deadline) {
			m.samples = append(m.samples, s)
			return &s, fmt.Errorf("not quiescent %s after the load: sessions %d, running %d, warm %d of %d, sandbox cgroups %d, slot locks %d, processes %d",
				timeout, s.Sessions, s.Running, s.WarmReady, m.o.pool, s.Cgroups, s.SlotLocks, s.Procs)
		}
		time.Sleep(time.Second)
	}
}

func (m *monitor) sample(phase string, st *stats) (Sample, error) {
	pid := m.srv.pid()
	s := Sample{Phase: phase, At: time.Since(m.started)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	h, err := m.probe.Health(ctx)
	cancel()
	if err != nil {
		return s, fmt.Errorf("healthz: %w", err)
	}
	s.Goroutines, s.Sessions, s.WarmReady, s.Running = h.Goroutines, h.Sessions, h.WarmReady, h.Executions
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.FDs = len(fds)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			s.RSSMiB = kb / 1024
		}
		if len(f) >= 2 && f[0] == "Threads:" {
			s.Threads, _ = strconv.Atoi(f[1])
		}
	}
	procs := descendants(pid)
	s.Procs = len(procs)
	m.note(procs)
	s.Cgroups = len(m.groups(m.ids()))
	s.SlotLocks = len(slotLocks(m.slotDir, pid))
	if mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid)); err == nil {
		s.Mounts = strings.Count(string(mi), "\n")
	}
	s.OK, s.Failed = st.ok.Swap(0), st.failed.Swap(0)
	return s, nil
}

// note records the sandboxes whose groups hold any of procs. Forked
// sandboxes log nothing under --debug until they end, so the log alone
// does not name the live ones.
func (m *monitor) note(procs []proc) {
	below := map[int]bool{}
	for _, p := range procs {
		below[p.pid] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mine == nil {
		m.mine = map[string]bool{}
	}
	for _, p := range m.parents[:1] {
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			id, ok := strings.CutPrefix(e.Name(), "pybox-")
			if !ok || !e.IsDir() || m.mine[id] {
				continue
			}
			data, _ := os.ReadFile(filepath.Join(p, e.Name(), "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, _ := strconv.Atoi(f); below[pid] {
					m.mine[id] = true
					break
				}
			}
		}
	}
}

// ids returns the server's sandboxes: named in its log or seen holding
// its processes.
func (m *monitor) ids() map[string]bool {
	ids := m.srv.ids()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.mine {
		ids[id] = true
	}
	return ids
}

// groups lists the sandboxes of ids that have a cgroup directory in any
// controller.
func (m *monitor) groups(ids map[string]bool) []string {
	found := map[string]bool{}
	for _, p := range m.parents {
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), "pybox-"); ok && e.IsDir() && ids[id] {
				found[id] = true
			}
		}
	}
	var out []string
	for id := range found {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// leftovers lists what remains of the server once it has exited: its
// processes (as they were just before SIGTERM), cgroup directories of its
// sandboxes, and uid-slot locks it held.
func (m *monitor) leftovers(procs []proc, ids map[string]bool) []string {
	var out []string
	for _, p := range procs {
		if st, err := starttime(p.pid); err == nil && st == p.start {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
			out = append(out, fmt.Sprintf("process %d still runs (%s)", p.pid, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")))
		}
	}
	for _, p := range m.parents {
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), "pybox-"); ok && ids[id] {
				out = append(out, "cgroup "+filepath.Join(p, e.Name()))
			}
		}
	}
	for _, l := range slotLocks(m.slotDir, m.srv.pid()) {
		out = append(out, "uid-slot lock "+l)
	}
	return out
}

func (m *monitor) printSamples() {
	fmt.Println("| phase | t | fds | goroutines | threads | RSS MiB | sandboxes (cgroups) | processes | slot locks | sessions | warm | running | mounts | ok / failed since last |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range m.samples {
		fmt.Printf("| %s | %s | %d | %d | %d | %.1f | %d | %d | %d | %d | %d | %d | %d | %d / %d |\n",
			s.Phase, s.At.Round(time.Second), s.FDs, s.Goroutines, s.Threads, s.RSSMiB, s.Cgroups, s.Procs, s.SlotLocks,
			s.Sessions, s.WarmReady, s.Running, s.Mounts, s.OK, s.Failed)
	}
}

// ---- /proc ----

type proc struct {
	pid   int
	start uint64 // start time in clock ticks, against pid reuse
}

// descendants lists the processes below pid.
func descendants(pid int) []proc {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	start := map[int]uint64{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pp, st, err := stat(p)
		if err != nil {
			continue
		}
		parent[p], start[p] = pp, st
	}
	var out []proc
	for p := range parent {
		for q, hops := parent[p], 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
			if q == pid {
				out = append(out, proc{p, start[p]})
				break
			}
		}
	}
	return out
}

// stat returns pid's parent and start time.
func stat(pid int) (int, uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("bad stat")
	}
	// After the command: state, ppid, ... starttime is field 22 overall,
	// the 20th after the command.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, errors.New("short stat")
	}
	pp, _ := strconv.Atoi(f[1])
	st, _ := strconv.ParseUint(f[19], 10, 64)
	return pp, st, nil
}

func starttime(pid int) (uint64, error) {
	_, st, err := stat(pid)
	return st, err
}

// slotLocks lists the uid-slot lock files on which pid holds a flock
// (/proc/locks names the process that took the lock).
func slotLocks(dir string, pid int) []string {
	inodes := map[uint64]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error { //nolint:errcheck
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				inodes[st.Ino] = path
			}
		}
		return nil
	})
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		// "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		if p, _ := strconv.Atoi(f[4]); p != pid {
			continue
		}
		dev := strings.Split(f[5], ":")
		ino, _ := strconv.ParseUint(dev[len(dev)-1], 10, 64)
		if path, ok := inodes[ino]; ok {
			out = append(out, path)
		}
	}
	return out
}

// ---- the server ----

// server is the `pybox serve` under test. Its --debug log is read as it
// is written: every sandbox's "prepared" and "cleanup done" lines, and
// every warning and error.
type server struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
	err  error
	logd chan struct{}

	mu       sync.Mutex
	prepared map[string]bool // sandbox ids the log names
	cleaned  map[string]bool
	warn     int
	errs     int
	samples  []string
	lines    []string // the last lines, for failures
}

func startServer(bin string, args []string) (*server, error) {
	cmd := exec.Command(bin, args...)
	r, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{cmd: cmd, done: make(chan struct{}), logd: make(chan struct{}),
		prepared: map[string]bool{}, cleaned: map[string]bool{}}
	for i, a := range args {
		if a == "--listen" {
			s.base = "http://" + args[i+1]
		}
	}
	go s.readLog(r)
	go func() {
		<-s.logd // Wait closes the pipe: read it to the end first
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *server) readLog(r io.Reader) {
	defer close(s.logd)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			ID    string `json:"sandbox_id"`
		}
		err := json.Unmarshal([]byte(line), &l)
		s.mu.Lock()
		s.lines = append(s.lines, line)
		if len(s.lines) > 50 {
			s.lines = s.lines[len(s.lines)-50:]
		}
		switch {
		case err != nil:
		case l.Msg == "cleanup done" && l.ID != "":
			s.prepared[l.ID] = true
			s.cleaned[l.ID] = true
		case l.ID != "" && l.Level == "DEBUG":
			s.prepared[l.ID] = true
		case l.Level == "WARN" || l.Level == "ERROR":
			if l.Level == "WARN" {
				s.warn++
			} else {
				s.errs++
			}
			if len(s.samples) < 20 {
				s.samples = append(s.samples, benchutil.Trim(line, 400))
			}
		}
		s.mu.Unlock()
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// ids returns the sandboxes the server has started.
func (s *server) ids() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.prepared))
	for id := range s.prepared {
		out[id] = true
	}
	return out
}

// cleanups returns how many sandboxes were prepared and which were never
// cleaned up.
func (s *server) cleanups() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var unclean []string
	for id := range s.prepared {
		if !s.cleaned[id] {
			unclean = append(unclean, id)
		}
	}
	sort.Strings(unclean)
	return len(s.prepared), unclean
}

func (s *server) logCounts() (warn, errs int, samples []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.warn, s.errs, append([]string(nil), s.samples...)
}

func (s *server) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *server) waitLog() { <-s.logd }

func (s *server) waitHealthy(cl *client.Client, pool int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s.exited() {
			return fmt.Errorf("the server exited (%v):\n%s", s.err, s.tail(20))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := cl.Health(ctx)
		cancel()
		if err == nil && h.WarmReady >= pool {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the server's pool was not full %s after start:\n%s", timeout, s.tail(20))
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(timeout time.Duration) (int, error) {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, err
	}
	select {
	case <-s.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("no exit %s after SIGTERM", timeout)
	}
	var ee *exec.ExitError
	switch {
	case s.err == nil:
		return 0, nil
	case errors.As(s.err, &ee):
		return ee.ExitCode(), nil
	}
	return -1, s.err
}

func (s *server) kill() {
	if !s.exited() {
		s.cmd.Process.Kill() //nolint:errcheck
		<-s.done
	}
}
