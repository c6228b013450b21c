// Command serve measures `pybox serve` over loopback HTTP side by side with
// its peers, in one run: warm one-shots (POST /v1/execute), session cells,
// session creation, throughput of one-shots under concurrent clients, and
// the memory an idle warm sandbox holds; against bare python3 started per
// request and, when a Docker daemon and image are present, `docker run`
// and `docker exec`. It starts the server itself (on a free loopback
// port), stops it with SIGTERM at the end and checks that it exits 0.
//
// The sequential latencies are measured in rounds (each candidate runs a
// block of its requests per round) so that this VM's drift hits the
// candidates alike, while each block stays back to back, as a busy client
// would be; every pybox block starts with a full warm pool.
//
//	go run ./bench/serve -n 200 -d 10s
//	go run ./bench/serve -json > serve.json
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/pybox-dev/pybox/bench/internal/benchutil"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/client"
)

// The program every one-shot candidate runs, and what it must print.
const (
	code = "print(1+1)"
	want = "2\n"
)

type options struct {
	n, dockerN, rounds int
	dur                time.Duration
	workers            int
	pool, maxConc      int
	pybox, python      string
	image              string
	jsonOut            bool
	extra              string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 200, "sequential requests per pybox candidate, bare python3 and docker exec")
	flag.IntVar(&o.dockerN, "docker-n", 20, "sequential `docker run` containers")
	flag.IntVar(&o.rounds, "rounds", 4, "rounds the sequential requests are split into, candidates taking turns")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "duration of each throughput run")
	flag.IntVar(&o.workers, "c", 8, "concurrent clients (workers) in the throughput runs")
	flag.IntVar(&o.pool, "pool", 4, "warm pool size (--warm-pool)")
	flag.IntVar(&o.maxConc, "max-concurrent", 8, "server's --max-concurrent")
	flag.StringVar(&o.pybox, "pybox", "bin/pybox", "pybox binary")
	flag.StringVar(&o.python, "python", "python3", "interpreter for pybox and bare python3: a path or a name on PATH")
	flag.StringVar(&o.image, "docker-image", "pybox-bench-python:latest", "image for the docker candidates (bench/docker-image.sh builds it)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	flag.StringVar(&o.extra, "server-flags", "", "more flags for `pybox serve`, space-separated")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/serve:", err)
		os.Exit(1)
	}
}

// Report is everything one run measured; -json prints it as is.
type Report struct {
	Date        string    `json:"date"`
	Machine     Machine   `json:"machine"`
	Python      Python    `json:"python"`
	ServerArgs  []string  `json:"server_args"`
	ServerExit  int       `json:"server_exit"`
	ServerLog   LogStats  `json:"server_log"`
	Docker      string    `json:"docker"` // "" when used, else why skipped
	DockerInfo  string    `json:"docker_info,omitempty"`
	Latency     []*Series `json:"latency"`
	Throughput  []*Load   `json:"throughput"`
	Memory      *Memory   `json:"memory"`
	WarmHitsSes Frac      `json:"warm_hits_session"`
	// One-shots served from the pool (server-side setup_ms under 2 ms)
	// in the back-to-back series, and setup_ms of the others.
	OneShotHits    Frac      `json:"oneshot_pool_hits"`
	MissSetupMSP50 float64   `json:"oneshot_miss_setup_ms_p50"`
	LoadAvg        [2]string `json:"loadavg_start_end"`
	// OneShotWallMSP50 is the server's wall_ms of back-to-back one-shots:
	// from getting a sandbox until it is gone.
	OneShotWallMSP50 float64 `json:"oneshot_wall_ms_p50"`
}

type Machine struct {
	NProc  int    `json:"nproc"`
	Kernel string `json:"kernel"`
	Arch   string `json:"arch"`
	Host   string `json:"host"`
}

type Python struct {
	Flag       string `json:"flag"`
	Executable string `json:"executable"`
	Version    string `json:"version"`
	Docker     string `json:"docker_version,omitempty"`
}

type LogStats struct {
	Warnings int      `json:"warnings"`
	Errors   int      `json:"errors"`
	Samples  []string `json:"samples,omitempty"`
}

type Frac struct{ Hit, Of int }

func (f Frac) String() string { return fmt.Sprintf("%d/%d", f.Hit, f.Of) }

// Series is one sequential latency candidate.
type Series struct {
	Name   string          `json:"name"`
	Peer   bool            `json:"peer"` // a comparison, not pybox
	Took   []time.Duration `json:"-"`
	N      int             `json:"n"`
	P50MS  float64         `json:"p50_ms"`
	P99MS  float64         `json:"p99_ms"`
	MeanMS float64         `json:"mean_ms"`
}

// Load is one throughput run.
type Load struct {
	Name     string          `json:"name"`
	Peer     bool            `json:"peer"`
	Workers  int             `json:"workers"`
	Seconds  float64         `json:"seconds"`
	OK       int             `json:"ok"`
	Failed   map[string]int  `json:"failed"` // by kind: "http 503", "status timeout", "error: ..."
	Took     []time.Duration `json:"-"`
	PerSec   float64         `json:"per_second"`
	P50MS    float64         `json:"p50_ms"`
	P99MS    float64         `json:"p99_ms"`
	Failures int             `json:"failures"`
}

// Memory is what idle warm sandboxes hold.
type Memory struct {
	Sandboxes     int      `json:"sandboxes"`
	ProcsPer      float64  `json:"processes_per_sandbox"`
	PSSMeanMiB    float64  `json:"pss_mean_mib"`
	PSSMaxMiB     float64  `json:"pss_max_mib"`
	RSSMeanMiB    float64  `json:"rss_mean_mib"`
	RSSMaxMiB     float64  `json:"rss_max_mib"`
	CgroupMeanMiB float64  `json:"cgroup_usage_mean_mib"`
	CgroupMaxMiB  float64  `json:"cgroup_usage_max_mib"`
	Roles         []Role   `json:"roles"`
	Groups        []string `json:"cgroups"`
	BarePSSMiB    float64  `json:"bare_idle_pss_mib"`
	BareRSSMiB    float64  `json:"bare_idle_rss_mib"`
	ServerRSSMiB  float64  `json:"server_rss_mib"`
	ServerPSSMiB  float64  `json:"server_pss_mib"`
	// Templates are sandboxes whose processes fork the warm ones (a fork
	// server's zygote); none without one.
	Templates  []Template `json:"templates,omitempty"`
	perSandbox []sandMem  `json:"-"`
}

// Template is a sandbox that the warm sandboxes are forked from.
type Template struct {
	Group     string  `json:"cgroup"`
	Processes int     `json:"processes"`
	PSSMiB    float64 `json:"pss_mib"`
	RSSMiB    float64 `json:"rss_mib"`
	CgroupMiB float64 `json:"cgroup_usage_mib"`
}

// Role is one kind of process in a sandbox (pid 1's reaper, the driver).
type Role struct {
	Name       string  `json:"name"`
	PSSMeanMiB float64 `json:"pss_mean_mib"`
	RSSMeanMiB float64 `json:"rss_mean_mib"`
}

type sandMem struct {
	group    string
	pss, rss int64 // bytes
	cg       int64
	procs    []procMem
}

type procMem struct {
	role     string
	pss, rss int64
}

func run(o options) error {
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	rep.LoadAvg[0] = loadavg()
	rep.Machine = machine()

	py, err := resolvePython(o.python)
	if err != nil {
		return err
	}
	rep.Python = py

	dk := newDocker(o.image)
	rep.Docker = dk.skip
	if dk.skip == "" {
		rep.DockerInfo = dk.info
		if v, err := dk.output("run", "--rm", "--network", "none", o.image, "python3", "-c", "import platform; print(platform.python_version())"); err == nil {
			rep.Python.Docker = strings.TrimSpace(v)
		}
		if err := dk.startContainer(); err != nil {
			rep.Docker = "exec container did not start: " + err.Error()
			dk.skip = rep.Docker
		}
		defer dk.stopContainer()
	}

	// The server, on a free loopback port.
	port, err := benchutil.FreePort()
	if err != nil {
		return err
	}
	args := []string{"serve", "--listen", "127.0.0.1:" + port, "--python", py.Executable,
		"--warm-pool", strconv.Itoa(o.pool), "--max-concurrent", strconv.Itoa(o.maxConc)}
	authDir, err := os.MkdirTemp("", "pybox-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(authDir)
	auth, key, err := benchutil.ServerAuth(authDir)
	if err != nil {
		return err
	}
	args = append(args, auth...)
	args = append(args, strings.Fields(o.extra)...)
	rep.ServerArgs = append([]string{o.pybox}, args...)
	srv, err := startServer(o.pybox, args)
	if err != nil {
		return err
	}
	defer srv.kill()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}
	cl := client.New(srv.base, hc).WithKey(key)
	if err := srv.waitReady(cl, o.pool, 60*time.Second); err != nil {
		return err
	}

	// The candidates of the sequential table.
	one := &Series{Name: "pybox one-shot, POST /v1/execute, back to back"}
	onePaced := &Series{Name: "pybox one-shot, pool refilled before each request"}
	cell := &Series{Name: "pybox session cell `x += 1`"}
	create := &Series{Name: "pybox session create, POST /v1/sessions, back to back"}
	createPaced := &Series{Name: "pybox session create, pool refilled before each"}
	del := &Series{Name: "pybox session delete, DELETE /v1/sessions/{id}"}
	bare := &Series{Name: "bare `python3 -I -c` per request", Peer: true}
	drun := &Series{Name: "docker run --rm --network none", Peer: true}
	dexec := &Series{Name: "docker exec (running container)", Peer: true}

	ctx := context.Background()
	var setups *[]float64
	var walls []float64
	oneShot := func() (time.Duration, error) {
		t := time.Now()
		res, err := cl.Execute(ctx, api.ExecuteRequest{Code: code})
		d := time.Since(t)
		if err != nil {
			return d, err
		}
		if res.Status != api.StatusOK || res.Stdout != want {
			return d, fmt.Errorf("one-shot: status %s, stdout %q, message %q", res.Status, res.Stdout, res.Message)
		}
		if setups != nil {
			*setups = append(*setups, res.SetupMS)
			walls = append(walls, res.WallMS)
		}
		return d, nil
	}
	bareOnce := func() (time.Duration, error) {
		return runCmd(py.Executable, "-I", "-c", code)
	}

	// The session whose cells are timed, made once the idle pool has been
	// measured.
	var sess *api.Session
	var createSession func(track bool) (time.Duration, error)
	cells := 0
	cellOnce := func() (time.Duration, error) {
		t := time.Now()
		res, err := cl.Run(ctx, sess.ID, api.CellRequest{Code: "x += 1"})
		d := time.Since(t)
		if err != nil {
			return d, err
		}
		if res.Status != api.StatusOK {
			return d, fmt.Errorf("cell: status %s: %s", res.Status, res.Message)
		}
		cells++
		return d, nil
	}
	createOnce := func() (time.Duration, error) {
		return createSession(false)
	}
	// createSession creates a session and deletes it; track records
	// whether it came warm and how long the delete took.
	createSession = func(track bool) (time.Duration, error) {
		t := time.Now()
		s, err := cl.CreateSession(ctx, api.CreateSessionRequest{})
		d := time.Since(t)
		if err != nil {
			return d, err
		}
		t = time.Now()
		err = cl.DeleteSession(ctx, s.ID)
		if track {
			del.Took = append(del.Took, time.Since(t))
			rep.WarmHitsSes.Of++
			if s.Warm {
				rep.WarmHitsSes.Hit++
			}
		}
		return d, err
	}
	// paced runs op once the pool is full again, so that it measures the
	// warm path alone.
	paced := func(op func() (time.Duration, error)) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			if err := srv.waitReady(cl, o.pool, 30*time.Second); err != nil {
				return 0, err
			}
			return op()
		}
	}

	// Warm-up: page caches, connections, the docker container.
	for i := 0; i < 10; i++ {
		if _, err := oneShot(); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if _, err := bareOnce(); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	// Idle warm sandboxes, with the pool full, nothing running and no
	// session open.
	if err := srv.waitReady(cl, o.pool, 30*time.Second); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rep.Memory, err = measureMemory(srv.cmd.Process.Pid, py.Executable)
	if err != nil {
		return fmt.Errorf("measuring warm sandboxes: %w", err)
	}

	sess, err = cl.CreateSession(ctx, api.CreateSessionRequest{})
	if err != nil {
		return fmt.Errorf("creating the cell session: %w", err)
	}
	if _, err := cl.Run(ctx, sess.ID, api.CellRequest{Code: "x = 0"}); err != nil {
		return err
	}
	for i := 0; i < 5; i++ {
		if _, err := cellOnce(); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := createOnce(); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	if dk.skip == "" {
		for i := 0; i < 3; i++ {
			if _, err := dk.execOnce(); err != nil {
				return fmt.Errorf("warm-up: docker exec: %w", err)
			}
		}
		if _, err := dk.runOnce(); err != nil {
			return fmt.Errorf("warm-up: docker run: %w", err)
		}
	}
	cells, rep.WarmHitsSes = 0, Frac{}

	// Sequential latencies, in rounds.
	var oneSetups []float64
	type block struct {
		s     *Series
		n     int
		op    func() (time.Duration, error)
		pybox bool
	}
	blocks := []block{
		{one, o.n, oneShot, true},
		{onePaced, o.n, paced(oneShot), true},
		{cell, o.n, cellOnce, true},
		{create, o.n, func() (time.Duration, error) { return createSession(true) }, true},
		{createPaced, o.n, paced(createOnce), true},
		{bare, o.n, bareOnce, false},
	}
	if dk.skip == "" {
		blocks = append(blocks, block{dexec, o.n, dk.execOnce, false}, block{drun, o.dockerN, dk.runOnce, false})
	}
	for r := 0; r < o.rounds; r++ {
		for _, b := range blocks {
			k := b.n/o.rounds + boolInt(r < b.n%o.rounds)
			if b.pybox {
				if err := srv.waitReady(cl, o.pool, 30*time.Second); err != nil {
					return err
				}
			}
			var got []float64
			if b.s == one {
				setups = &got
			}
			for i := 0; i < k; i++ {
				d, err := b.op()
				if err != nil {
					return fmt.Errorf("%s: %w", b.s.Name, err)
				}
				b.s.Took = append(b.s.Took, d)
			}
			setups = nil
			oneSetups = append(oneSetups, got...)
		}
	}
	// The session saw every cell.
	if res, err := cl.Run(ctx, sess.ID, api.CellRequest{Code: "x"}); err != nil || res.Value["text/plain"] != strconv.Itoa(cells+5) {
		return fmt.Errorf("cell session: x is %v (err %v), want %d", res.Value, err, cells+5)
	}
	if err := cl.DeleteSession(ctx, sess.ID); err != nil {
		return err
	}
	var miss []float64
	for _, v := range oneSetups {
		rep.OneShotHits.Of++
		if v < 2 {
			rep.OneShotHits.Hit++
		} else {
			miss = append(miss, v)
		}
	}
	if len(miss) > 0 {
		sort.Float64s(miss)
		rep.MissSetupMSP50 = miss[len(miss)/2]
	}
	sort.Float64s(walls)
	rep.OneShotWallMSP50 = walls[len(walls)/2]
	for _, s := range []*Series{one, onePaced, cell, create, createPaced, del, bare, dexec, drun} {
		if len(s.Took) > 0 {
			s.finish()
			rep.Latency = append(rep.Latency, s)
		}
	}

	// Throughput with concurrent clients.
	if err := srv.waitReady(cl, o.pool, 30*time.Second); err != nil {
		return err
	}
	pl := load("pybox one-shot, POST /v1/execute", o.workers, o.dur, func() (time.Duration, string) {
		t := time.Now()
		res, err := cl.Execute(ctx, api.ExecuteRequest{Code: code})
		d := time.Since(t)
		var ce *client.Error
		switch {
		case errors.As(err, &ce):
			return d, fmt.Sprintf("http %d %s", ce.Status, ce.Title)
		case err != nil:
			return d, "error: " + err.Error()
		case res.Status != api.StatusOK:
			return d, "status " + string(res.Status) + ": " + res.Message
		case res.Stdout != want:
			return d, fmt.Sprintf("stdout %q", res.Stdout)
		}
		return d, ""
	})
	bl := load("bare `python3 -I -c` per request", o.workers, o.dur, func() (time.Duration, string) {
		d, err := bareOnce()
		if err != nil {
			return d, "error: " + err.Error()
		}
		return d, ""
	})
	bl.Peer = true
	rep.Throughput = []*Load{pl, bl}

	// Stop the server: SIGTERM, and it must exit 0.
	rep.ServerExit, err = srv.stop(30 * time.Second)
	if err != nil {
		return err
	}
	rep.ServerLog = srv.logStats()
	rep.LoadAvg[1] = loadavg()

	if o.jsonOut {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(rep)
	}
	printReport(os.Stdout, rep, o)
	if rep.ServerExit != 0 {
		return fmt.Errorf("the server exited %d after SIGTERM", rep.ServerExit)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Series) finish() {
	s.N = len(s.Took)
	s.P50MS, s.P99MS, s.MeanMS = benchutil.MS(benchutil.Pct(s.Took, 50)), benchutil.MS(benchutil.Pct(s.Took, 99)), benchutil.MS(benchutil.Mean(s.Took))
}

// load runs op from workers goroutines for d and classifies the outcomes:
// op returns "" for a success, else the kind of failure. Requests started
// before the deadline are waited for; the rate is over the whole time.
func load(name string, workers int, d time.Duration, op func() (time.Duration, string)) *Load {
	l := &Load{Name: name, Workers: workers, Failed: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				took, fail := op()
				mu.Lock()
				if fail == "" {
					l.OK++
					l.Took = append(l.Took, took)
				} else {
					l.Failed[benchutil.Trim(fail, 120)]++
					l.Failures++
				}
				mu.Unlock()
				if fail != "" && strings.HasPrefix(fail, "http 503") {
					// The server asked us to back off; a real client
					// would, and a tight retry loop measures nothing.
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	l.Seconds = time.Since(start).Seconds()
	l.PerSec = float64(l.OK) / l.Seconds
	if len(l.Took) > 0 {
		l.P50MS, l.P99MS = benchutil.MS(benchutil.Pct(l.Took, 50)), benchutil.MS(benchutil.Pct(l.Took, 99))
	}
	return l
}

// runCmd runs argv and checks that it printed want.
func runCmd(argv ...string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t := time.Now()
	err := cmd.Run()
	d := time.Since(t)
	if err != nil {
		return d, fmt.Errorf("%s: %v: %s", argv[0], err, benchutil.Trim(errb.String(), 300))
	}
	if out.String() != want {
		return d, fmt.Errorf("%s printed %q, want %q", argv[0], out.String(), want)
	}
	return d, nil
}

func resolvePython(name string) (Python, error) {
	out, err := exec.Command(name, "-I", "-c", "import sys, platform; print(sys.executable); print(platform.python_version())").Output()
	if err != nil {
		return Python{}, fmt.Errorf("-python %s: %w", name, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return Python{}, fmt.Errorf("-python %s: unexpected output %q", name, out)
	}
	// The real executable, not a launcher such as pyenv's shim, so that
	// bare python3 pays no wrapper that pybox does not.
	return Python{Flag: name, Executable: f[0], Version: f[1]}, nil
}

func machine() Machine {
	host, _ := os.Hostname()
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	n := runtime.NumCPU()
	if out, err := exec.Command("nproc").Output(); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	return Machine{NProc: n, Kernel: "Linux " + strings.TrimSpace(string(b)), Arch: runtime.GOARCH, Host: host}
}

// server is a `pybox serve` process this harness started.
type server struct {
	cmd  *exec.Cmd
	base string
	log  *os.File
	done chan struct{}
	err  error
}

func startServer(bin string, args []string) (*server, error) {
	logf, err := os.CreateTemp("", "pybox-bench-serve-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{cmd: cmd, log: logf, done: make(chan struct{})}
	for i, a := range args {
		if a == "--listen" {
			s.base = "http://" + args[i+1]
		}
	}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	return s, nil
}

// waitReady waits until the server answers and its pool is full.
func (s *server) waitReady(cl *client.Client, pool int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("the server exited (%v):\n%s", s.err, s.tail(20))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := cl.Health(ctx)
		cancel()
		if err == nil && h.Status == "ok" && h.WarmReady >= pool && h.Executions == 0 {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("warm_ready %d of %d, executions %d", h.WarmReady, pool, h.Executions)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the server was not ready in %s (%s):\n%s", timeout, last, s.tail(20))
}

func (s *server) tail(n int) string {
	data, _ := os.ReadFile(s.log.Name())
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(timeout time.Duration) (int, error) {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, err
	}
	select {
	case <-s.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("the server did not exit %s after SIGTERM:\n%s", timeout, s.tail(20))
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
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill() //nolint:errcheck
		<-s.done
	}
	s.log.Close()
	os.Remove(s.log.Name())
}

// logStats counts the server's warnings and errors (JSON lines).
func (s *server) logStats() LogStats {
	var st LogStats
	f, err := os.Open(s.log.Name())
	if err != nil {
		return st
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Level {
		case "WARN":
			st.Warnings++
		case "ERROR":
			st.Errors++
		default:
			continue
		}
		if len(st.Samples) < 5 {
			st.Samples = append(st.Samples, benchutil.Trim(sc.Text(), 300))
		}
	}
	return st
}

// measureMemory finds the server's warm sandboxes through their cgroups
// (each sandbox has its own) and sums the PSS and RSS of every process in
// each. The processes are those below the server; a sandbox whose
// processes are the parents of other sandboxes' (a fork server's
// template, whose zygote forks each warm sandbox) is reported apart: its
// cost is shared by all, and the forked sandboxes' PSS already counts
// their share of the pages they have from it.
func measureMemory(serverPID int, python string) (*Memory, error) {
	parent := processTree()
	groupOf := map[int]string{}
	members := map[string][]int{}
	for pid := range parent {
		if !below(parent, pid, serverPID) {
			continue
		}
		g, err := memoryCgroup(pid)
		if err != nil || !strings.HasPrefix(filepath.Base(g), "pybox-") {
			continue
		}
		groupOf[pid] = g
		members[g] = append(members[g], pid)
	}
	// A template is a group holding an ancestor of another group's
	// process.
	template := map[string]bool{}
	for pid, g := range groupOf {
		for q := parent[pid]; q > 1 && q != serverPID; q = parent[q] {
			if h, ok := groupOf[q]; ok && h != g {
				template[h] = true
			}
		}
	}
	m := &Memory{}
	var groups []string
	for g := range members {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		sm := sandMem{group: g}
		pids := members[g]
		sort.Ints(pids)
		for _, pid := range pids {
			pss, rss, err := smapsRollup(pid)
			if err != nil {
				continue
			}
			sm.pss += pss
			sm.rss += rss
			sm.procs = append(sm.procs, procMem{role: role(pid), pss: pss, rss: rss})
		}
		sm.cg = cgroupUsage(g)
		if template[g] {
			m.Templates = append(m.Templates, Template{Group: g, Processes: len(sm.procs),
				PSSMiB: mib(sm.pss), RSSMiB: mib(sm.rss), CgroupMiB: mib(sm.cg)})
			continue
		}
		m.perSandbox = append(m.perSandbox, sm)
		m.Groups = append(m.Groups, g)
	}
	if len(m.perSandbox) == 0 {
		return nil, errors.New("no warm sandbox found below the server")
	}
	sort.Strings(m.Groups)
	var procs int
	roles := map[string][]procMem{}
	var roleOrder []string
	for _, s := range m.perSandbox {
		m.PSSMeanMiB += mib(s.pss) / float64(len(m.perSandbox))
		m.RSSMeanMiB += mib(s.rss) / float64(len(m.perSandbox))
		m.CgroupMeanMiB += mib(s.cg) / float64(len(m.perSandbox))
		m.PSSMaxMiB = max(m.PSSMaxMiB, mib(s.pss))
		m.RSSMaxMiB = max(m.RSSMaxMiB, mib(s.rss))
		m.CgroupMaxMiB = max(m.CgroupMaxMiB, mib(s.cg))
		procs += len(s.procs)
		for _, p := range s.procs {
			if _, ok := roles[p.role]; !ok {
				roleOrder = append(roleOrder, p.role)
			}
			roles[p.role] = append(roles[p.role], p)
		}
	}
	m.Sandboxes = len(m.perSandbox)
	m.ProcsPer = float64(procs) / float64(m.Sandboxes)
	for _, r := range roleOrder {
		var pss, rss float64
		for _, p := range roles[r] {
			pss += mib(p.pss)
			rss += mib(p.rss)
		}
		m.Roles = append(m.Roles, Role{Name: r, PSSMeanMiB: pss / float64(len(roles[r])), RSSMeanMiB: rss / float64(len(roles[r]))})
	}
	if pss, rss, err := smapsRollup(serverPID); err == nil {
		m.ServerPSSMiB, m.ServerRSSMiB = mib(pss), mib(rss)
	}
	// For comparison: a bare interpreter waiting on stdin, as the driver
	// waits for code.
	cmd := exec.Command(python, "-I", "-c", "import sys; sys.stdin.read()")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond)
	pss, rss, err := smapsRollup(cmd.Process.Pid)
	in.Close()
	cmd.Wait() //nolint:errcheck
	if err != nil {
		return nil, err
	}
	m.BarePSSMiB, m.BareRSSMiB = mib(pss), mib(rss)
	return m, nil
}

// processTree maps every process to its parent.
func processTree() map[int]int {
	ents, _ := os.ReadDir("/proc")
	out := map[int]int{}
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			if pp := ppid(p); pp >= 0 {
				out[p] = pp
			}
		}
	}
	return out
}

// below reports whether pid descends from ancestor.
func below(parent map[int]int, pid, ancestor int) bool {
	for q, hops := parent[pid], 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
		if q == ancestor {
			return true
		}
	}
	return false
}

func ppid(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// memoryCgroup returns the directory of pid's memory cgroup (v1) or its
// unified group (v2).
func memoryCgroup(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	var v2 string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2]), nil
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = filepath.Join("/sys/fs/cgroup", parts[2])
		}
	}
	if v2 != "" {
		return v2, nil
	}
	return "", fmt.Errorf("pid %d: no memory cgroup", pid)
}

func cgroupUsage(dir string) int64 {
	for _, f := range []string{"memory.usage_in_bytes", "memory.current"} {
		if data, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			return n
		}
	}
	return 0
}

// smapsRollup returns pid's PSS and RSS in bytes.
func smapsRollup(pid int) (pss, rss int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss:":
			pss = kb << 10
		case "Rss:":
			rss = kb << 10
		}
	}
	return pss, rss, nil
}

// role names a sandbox process: pid 1 of its namespace or not, and the
// script it runs.
func role(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	script := "?"
	for _, a := range strings.Split(strings.TrimRight(string(data), "\x00"), "\x00") {
		if strings.HasSuffix(a, ".py") {
			script = filepath.Base(a)
		}
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
			return "pid 1 of the sandbox (" + script + ")"
		}
	}
	return "program (" + script + ")"
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// docker drives the docker candidates, when a daemon and the image exist.
type docker struct {
	bin, image, skip, info string
	container              string
}

func newDocker(image string) *docker {
	d := &docker{image: image}
	bin, err := exec.LookPath("docker")
	if err != nil {
		d.skip = "no docker CLI on PATH"
		return d
	}
	d.bin = bin
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "info", "--format", "{{.ServerVersion}} {{.Driver}} {{.CgroupVersion}}").CombinedOutput()
	if err != nil {
		d.skip = "`docker info` failed: " + benchutil.Trim(string(out), 200)
		return d
	}
	d.info = strings.TrimSpace(string(out))
	if out, err := exec.Command(bin, "image", "inspect", image).CombinedOutput(); err != nil {
		d.skip = fmt.Sprintf("image %s not present (run bench/docker-image.sh): %s", image, benchutil.Trim(string(out), 200))
	}
	return d
}

func (d *docker) output(args ...string) (string, error) {
	out, err := exec.Command(d.bin, args...).Output()
	return string(out), err
}

func (d *docker) startContainer() error {
	d.container = fmt.Sprintf("pybox-bench-serve-%d", os.Getpid())
	out, err := exec.Command(d.bin, "run", "-d", "--rm", "--network", "none", "--name", d.container, d.image, "sleep", "infinity").CombinedOutput()
	if err != nil {
		d.container = ""
		return fmt.Errorf("%v: %s", err, benchutil.Trim(string(out), 200))
	}
	return nil
}

func (d *docker) stopContainer() {
	if d.container != "" {
		exec.Command(d.bin, "rm", "-f", d.container).Run() //nolint:errcheck
	}
}

func (d *docker) runOnce() (time.Duration, error) {
	return runCmd(d.bin, "run", "--rm", "--network", "none", d.image, "python3", "-I", "-c", code)
}

func (d *docker) execOnce() (time.Duration, error) {
	return runCmd(d.bin, "exec", d.container, "python3", "-I", "-c", code)
}

func printReport(w io.Writer, r *Report, o options) {
	fmt.Fprintf(w, "pybox serve benchmark, %s; %s, nproc %d, %s, host %s\n\n", r.Date, r.Machine.Arch, r.Machine.NProc, r.Machine.Kernel, r.Machine.Host)
	fmt.Fprintf(w, "- interpreter (pybox and bare): -python %s → %s (Python %s)\n", r.Python.Flag, r.Python.Executable, r.Python.Version)
	fmt.Fprintf(w, "- server: %s\n", strings.Join(r.ServerArgs, " "))
	if r.Docker == "" {
		fmt.Fprintf(w, "- docker: daemon %s, image %s (Debian's Python %s: not the same interpreter)\n", r.DockerInfo, o.image, r.Python.Docker)
	} else {
		fmt.Fprintf(w, "- docker: skipped (%s)\n", r.Docker)
	}
	fmt.Fprintf(w, "- load average (1, 5, 15 min) at start: %s; at end: %s\n", r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(w, "- program: `%s`; sequential requests in %d rounds, candidates taking turns, each pybox block starting with a full pool\n\n", code, o.rounds)

	var peers []*Series
	for _, s := range r.Latency {
		if s.Peer {
			peers = append(peers, s)
		}
	}
	fmt.Fprintln(w, "Sequential latency (client-side, over loopback HTTP for pybox):")
	fmt.Fprintln(w)
	hdr := "| candidate | n | p50 ms | p99 ms | mean ms |"
	sep := "|---|---:|---:|---:|---:|"
	for _, p := range peers {
		hdr += " p50 / " + short(p.Name) + " | p99 / " + short(p.Name) + " |"
		sep += "---:|---:|"
	}
	fmt.Fprintln(w, hdr)
	fmt.Fprintln(w, sep)
	for _, s := range r.Latency {
		line := fmt.Sprintf("| %s | %d | %.2f | %.2f | %.2f |", s.Name, s.N, s.P50MS, s.P99MS, s.MeanMS)
		for _, p := range peers {
			line += fmt.Sprintf(" %s | %s |", ratio(s.P50MS, p.P50MS), ratio(s.P99MS, p.P99MS))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nBack to back, the pool served %s one-shots (setup_ms < 2 ms; the others started a sandbox on the request path, setup_ms p50 %.1f) and %s session creates (`warm`). "+
		"Server-side wall_ms of a back-to-back one-shot (sandbox taken until it is gone), p50: %.1f.\n\n",
		r.OneShotHits, r.MissSetupMSP50, r.WarmHitsSes, r.OneShotWallMSP50)

	fmt.Fprintf(w, "Throughput, %d concurrent clients for %s each:\n\n", o.workers, o.dur)
	fmt.Fprintln(w, "| candidate | ok | exec/s | p50 ms | p99 ms | failures | vs bare exec/s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	var bareRate float64
	for _, l := range r.Throughput {
		if l.Peer {
			bareRate = l.PerSec
		}
	}
	for _, l := range r.Throughput {
		fmt.Fprintf(w, "| %s | %d | %.1f | %.2f | %.2f | %d | %s |\n", l.Name, l.OK, l.PerSec, l.P50MS, l.P99MS, l.Failures, ratio(l.PerSec, bareRate))
	}
	for _, l := range r.Throughput {
		if len(l.Failed) > 0 {
			fmt.Fprintf(w, "\nFailures of %s:\n", l.Name)
			var kinds []string
			for k := range l.Failed {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			for _, k := range kinds {
				fmt.Fprintf(w, "- %d × %s\n", l.Failed[k], k)
			}
		}
	}

	m := r.Memory
	fmt.Fprintf(w, "\nIdle warm sandbox memory (%d sandboxes of the full pool, idle; all processes of each sandbox's cgroup, %.1f per sandbox):\n\n", m.Sandboxes, m.ProcsPer)
	fmt.Fprintln(w, "| per sandbox | mean MiB | max MiB |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| PSS (smaps_rollup, summed) | %.1f | %.1f |\n", m.PSSMeanMiB, m.PSSMaxMiB)
	fmt.Fprintf(w, "| RSS (summed; counts shared pages once per process) | %.1f | %.1f |\n", m.RSSMeanMiB, m.RSSMaxMiB)
	fmt.Fprintf(w, "| cgroup memory usage (charged pages, incl. tmpfs and kernel) | %.1f | %.1f |\n", m.CgroupMeanMiB, m.CgroupMaxMiB)
	for _, ro := range m.Roles {
		fmt.Fprintf(w, "| - %s: PSS / RSS | %.1f | %.1f (RSS) |\n", ro.Name, ro.PSSMeanMiB, ro.RSSMeanMiB)
	}
	for _, t := range m.Templates {
		fmt.Fprintf(w, "| template sandbox the warm ones are forked from (shared, %d processes): PSS / RSS | %.1f | %.1f (RSS) |\n", t.Processes, t.PSSMiB, t.RSSMiB)
	}
	fmt.Fprintf(w, "| bare python3 -I idle on stdin: PSS / RSS | %.1f | %.1f (RSS) |\n", m.BarePSSMiB, m.BareRSSMiB)
	fmt.Fprintf(w, "| pybox serve process itself: PSS / RSS | %.1f | %.1f (RSS) |\n", m.ServerPSSMiB, m.ServerRSSMiB)
	fmt.Fprintf(w, "\nServer: exit code %d after SIGTERM; log: %d warnings, %d errors.\n", r.ServerExit, r.ServerLog.Warnings, r.ServerLog.Errors)
	for _, s := range r.ServerLog.Samples {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

// ratio prints a/b with two decimals, or three significant digits when
// it is small (a cell against docker run).
func ratio(a, b float64) string {
	r := a / b
	if r < 0.1 {
		return fmt.Sprintf("%.3gx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

// short names a peer in a column header.
func short(name string) string {
	switch {
	case strings.HasPrefix(name, "bare"):
		return "bare"
	case strings.HasPrefix(name, "docker run"):
		return "docker run"
	case strings.HasPrefix(name, "docker exec"):
		return "docker exec"
	}
	return name
}
