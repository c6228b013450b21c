package native

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/linux/cgroup"
	"github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// outputKillFactor: a stream that passes this many times the output cap is
// a flood; the sandbox is killed rather than drained for the rest of its
// timeout.
const outputKillFactor = 8

// Run implements sandbox.Backend.
func (b *Backend) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	for _, f := range spec.Files {
		st, err := os.Stat(f.HostPath)
		if err != nil {
			return nil, fmt.Errorf("%w: --file %s: %v", sandbox.ErrInvalidSpec, f.HostPath, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: --file %s: not a regular file", sandbox.ErrInvalidSpec, f.HostPath)
		}
		if !b.rootless && st.Mode().Perm()&0o004 == 0 {
			return nil, fmt.Errorf("%w: --file %s has mode %v: the sandbox runs as an unprivileged user and could not read it; make it readable by others (chmod o+r) or pass a copy",
				sandbox.ErrInvalidSpec, f.HostPath, st.Mode().Perm())
		}
	}
	in, err := b.interps.resolve(ctx, spec.Python)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", sandbox.ErrInvalidSpec, err)
	}
	r := &run{b: b, spec: spec, layers: b.Layers(), created: time.Now()}
	t0 := time.Now()
	defer func() {
		t1 := time.Now()
		r.cleanup()
		b.log.Debug("cleanup done", "us", time.Since(t1).Microseconds(), "run_total_us", time.Since(t0).Microseconds())
	}()
	return r.execute(ctx, in)
}

// run is the state of one execution; cleanup undoes it in reverse order.
type run struct {
	b        *Backend
	spec     *sandbox.Spec
	layers   sandbox.Layers
	undo     []func()
	group    cgroup.Group
	mu       sync.Mutex
	proc     *os.Process
	reason   sandbox.Status // why pybox killed the sandbox, if it did
	started  time.Time
	created  time.Time
	killedAt time.Time // when pybox first killed the sandbox
}

func (r *run) cleanup() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// kill ends the whole sandbox: SIGKILL to its pid 1 makes the kernel kill
// every process in the pid namespace; the cgroup kill catches anything
// racing with it.
func (r *run) kill(reason sandbox.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reason == "" {
		r.reason, r.killedAt = reason, time.Now()
	}
	if r.proc != nil {
		r.proc.Signal(syscall.SIGKILL) //nolint:errcheck // may have exited
	}
	// cgroup v2's cgroup.kill is atomic. v1 can only list pids and signal
	// them one by one, and a listed pid may be reused by then; there the
	// pid namespace, which dies with pid 1, is the whole answer.
	if r.group != nil && r.group.Dir() != "" {
		r.group.Kill() //nolint:errcheck
	}
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	return hex.EncodeToString(b[:])
}

func (r *run) execute(ctx context.Context, in *Interpreter) (*sandbox.Result, error) {
	b, spec, lim := r.b, r.spec, r.spec.Limits
	id := randomID()
	log := b.log.With("sandbox_id", id)

	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		Setsid:    true,
		Pdeathsig: syscall.SIGKILL,
		// The init needs these capabilities in its own user namespace to
		// build the root and to give pid 1 its own uid; it drops them, and
		// all others, before exec.
		AmbientCaps: []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP, unix.CAP_SETUID, unix.CAP_SETGID},
	}
	if b.rootless {
		// Only the caller's own ids can be mapped without privilege.
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: sandboxUID, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: sandboxUID, HostID: os.Getgid(), Size: 1}}
		r.layers.HostUID = os.Getuid()
	} else {
		slot, release, err := b.slots.acquire()
		if err != nil {
			return nil, err
		}
		r.undo = append(r.undo, release)
		base := b.cfg.UIDBase + slot*idsPerSlot
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: idsPerSlot}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: idsPerSlot}}
		attr.GidMappingsEnableSetgroups = true
		attr.Credential = &syscall.Credential{Uid: sandboxUID, Gid: sandboxUID}
		r.layers.HostUID = base + sandboxUID
	}

	if b.cgroups != nil {
		g, err := b.cgroups.Create(id, cgroup.Resources{MemoryBytes: lim.MemoryBytes, CPU: lim.CPU, Pids: lim.Pids})
		if err != nil {
			return nil, fmt.Errorf("creating cgroup: %w", err)
		}
		r.group = g
		r.undo = append(r.undo, func() {
			if err := g.Destroy(); err != nil {
				log.Error("removing cgroup", "err", err)
			}
		})
		if dir := g.Dir(); dir != "" {
			// cgroup v2: the child is born inside its group, so not even
			// the init's first instruction runs unaccounted.
			fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("opening cgroup: %w", err)
			}
			r.undo = append(r.undo, func() { unix.Close(fd) })
			attr.UseCgroupFD = true
			attr.CgroupFD = fd
		}
	}

	cfg, err := b.plan(spec, in)
	if err != nil {
		return nil, err
	}
	cfg.Trace = log.Enabled(ctx, slog.LevelDebug)

	var trees []*os.File
	if !b.rootless {
		if trees, err = openTrees(cfg); err != nil {
			return nil, err
		}
		r.undo = append(r.undo, func() { closeAll(trees) })
	}

	// config, report, stdout, stderr and stdin pipes.
	pipes, err := newPipes(5)
	if err != nil {
		return nil, err
	}
	cfgR, cfgW := pipes[0][0], pipes[0][1]
	repR, repW := pipes[1][0], pipes[1][1]
	outR, outW := pipes[2][0], pipes[2][1]
	errR, errW := pipes[3][0], pipes[3][1]
	// Standard input is an empty pipe: reads see end of file at once.
	inR := pipes[4][0]
	pipes[4][1].Close()
	parentEnds := []*os.File{cfgW, repR, outR, errR}
	childEnds := []*os.File{cfgR, repW, outW, errW, inR}
	if !b.rootless {
		// Pipes belong to their creator (host root, unmapped inside), so
		// /dev/stdout and /proc/self/fd/1 could not be reopened by the
		// sandboxed program. Give its ends to its own uid.
		for _, f := range []*os.File{inR, outW, errW} {
			if err := f.Chown(r.layers.HostUID, r.layers.HostUID); err != nil {
				closeAll(parentEnds)
				closeAll(childEnds)
				return nil, fmt.Errorf("handing stdio to the sandbox uid: %w", err)
			}
		}
	}
	r.undo = append(r.undo, func() { closeAll(parentEnds) })
	defer closeAll(childEnds)

	stdout := sandbox.NewCapture(lim.MaxOutputBytes, spec.Stdout)
	stderr := sandbox.NewCapture(lim.MaxOutputBytes, spec.Stderr)

	cmd := &exec.Cmd{
		Path:        b.cfg.InitPath,
		Args:        []string{nsinit.Name},
		Env:         []string{},
		Stdin:       inR,
		Stdout:      outW,
		Stderr:      errW,
		ExtraFiles:  append([]*os.File{cfgR, repW}, trees...),
		SysProcAttr: attr,
	}
	r.started = time.Now()
	log.Debug("prepared", "us", r.started.Sub(r.created).Microseconds())
	attached, err := r.start(cmd)
	if err != nil {
		return nil, err
	}
	log.Debug("init started", "us", time.Since(r.started).Microseconds())
	r.mu.Lock()
	r.proc = cmd.Process
	r.mu.Unlock()
	closeAll(childEnds)
	closeAll(trees)
	trees = nil

	if r.group != nil && !attached {
		// Join before the init reads its config, i.e. before it does
		// anything on the user's behalf.
		if err := r.group.Attach(cmd.Process.Pid); err != nil {
			r.kill(sandbox.StatusKilled)
			cmd.Wait()
			return nil, fmt.Errorf("joining cgroup: %w", err)
		}
	}
	go func() {
		json.NewEncoder(cfgW).Encode(cfg) //nolint:errcheck // a dead init is reported by Wait
		cfgW.Close()
	}()

	timer := time.AfterFunc(lim.Timeout, func() { r.kill(sandbox.StatusTimeout) })
	defer timer.Stop()
	stopCtx := context.AfterFunc(ctx, func() { r.kill(sandbox.StatusKilled) })
	defer stopCtx()

	var wg sync.WaitGroup
	drain := func(rd io.Reader, c *sandbox.Capture) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := rd.Read(buf)
			if n > 0 {
				c.Write(buf[:n])
				if c.Total() > outputKillFactor*lim.MaxOutputBytes {
					r.kill(sandbox.StatusOutputLimit)
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go drain(outR, stdout)
	go drain(errR, stderr)

	var rep report
	repDone := make(chan struct{})
	go func() {
		defer close(repDone)
		rep.read(repR, r.started)
	}()

	waitErr := cmd.Wait()
	end := time.Now()
	log.Debug("sandbox exited", "us", end.Sub(r.started).Microseconds(), "program_started_us", rep.started.Sub(r.started).Microseconds())
	wg.Wait()
	<-repDone
	stdout.FlushLive()
	stderr.FlushLive()

	for _, t := range rep.trace {
		log.Debug("init step done", "step", t)
	}
	r.mu.Lock()
	reason, killedAt := r.reason, r.killedAt
	r.mu.Unlock()
	if rep.setupErr != "" {
		return nil, fmt.Errorf("sandbox setup failed: %s", rep.setupErr)
	}
	if rep.started.IsZero() && reason == "" && !rep.tampered {
		return nil, fmt.Errorf("sandbox setup failed: the init exited (%v) before starting the program: %s",
			cmd.ProcessState, firstLine(stderr.Output().Text))
	}
	if cmd.ProcessState == nil {
		return nil, fmt.Errorf("waiting for sandbox: %w", waitErr)
	}
	res := &sandbox.Result{
		WallMS: ms(end.Sub(r.started)),
		Layers: r.layers,
	}
	if !rep.started.IsZero() {
		res.SetupMS = ms(rep.started.Sub(r.started))
	}
	so, se := stdout.Output(), stderr.Output()
	res.Stdout, res.StdoutTruncated, res.StdoutBytes = so.Text, so.Truncated, so.TotalBytes
	res.Stderr, res.StderrTruncated, res.StderrBytes = se.Text, se.Truncated, se.TotalBytes

	var oomKills int64
	if r.group != nil {
		st, err := r.group.Stats()
		if err != nil {
			log.Warn("reading cgroup stats", "err", err)
		}
		res.PeakMemoryBytes, res.CPUMS, oomKills = st.PeakMemoryBytes, ms(st.CPUUsage), st.OOMKills
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && res.CPUMS == 0 {
		res.CPUMS = ms(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
		if res.PeakMemoryBytes == 0 {
			res.PeakMemoryBytes = ru.Maxrss * 1024
		}
	}

	// The user's process status as the reaper saw it; if the reaper did
	// not get to report (the sandbox was killed), pid 1's own.
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if rep.haveExit && !rep.tampered {
		ws = rep.exit
		if reason != "" && rep.exitAt.Before(killedAt) {
			reason = "" // the program had ended before pybox killed the rest
		}
	}
	classify(res, ws, reason, oomKills, lim)
	if rep.tampered {
		res.Status = sandbox.StatusError
		res.Message = "the program wrote to pybox's report channel, so its exit status cannot be trusted"
	}
	log.Debug("sandbox finished", "status", res.Status, "wall_ms", res.WallMS)
	return res, nil
}

// start starts the init, born inside its cgroup when the hierarchy allows
// it (v2: CLONE_INTO_CGROUP; v1: the forking thread enters the group
// first). It reports whether the child is already in its group.
func (r *run) start(cmd *exec.Cmd) (attached bool, err error) {
	te, ok := r.group.(cgroup.ThreadEnterer)
	if r.group == nil || r.group.Dir() != "" || !ok {
		if err := cmd.Start(); err != nil {
			return false, fmt.Errorf("starting sandbox init: %w", err)
		}
		return r.group != nil && r.group.Dir() != "", nil
	}
	type outcome struct {
		attached bool
		err      error
	}
	done := make(chan outcome)
	// A dedicated goroutine, because its thread must stay locked while it
	// sits in the sandbox's group, and must not exit afterwards: the
	// init's parent-death signal is tied to the thread that forked it.
	go func() {
		runtime.LockOSThread()
		leave, err := te.EnterThread()
		if err != nil {
			runtime.UnlockOSThread()
			done <- outcome{false, cmd.Start()}
			return
		}
		startErr := cmd.Start()
		if err := leave(); err != nil {
			// The thread is stuck in the sandbox's group; keep it locked
			// so that it ends with this goroutine instead of running
			// other work there, and reap the init it started.
			r.b.log.Error("leaving sandbox cgroup", "err", err)
			if startErr == nil {
				cmd.Process.Kill() //nolint:errcheck
				cmd.Wait()         //nolint:errcheck
			}
			done <- outcome{false, fmt.Errorf("starting sandbox: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- outcome{true, startErr}
	}()
	o := <-done
	if o.err != nil {
		return false, fmt.Errorf("starting sandbox init: %w", o.err)
	}
	return o.attached, nil
}

// newPipes returns n pipes as (read, write) pairs, or none.
func newPipes(n int) ([][2]*os.File, error) {
	var pipes [][2]*os.File
	for i := 0; i < n; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			for _, p := range pipes {
				p[0].Close()
				p[1].Close()
			}
			return nil, err
		}
		pipes = append(pipes, [2]*os.File{r, w})
	}
	return pipes, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// classify fills status, exit code, signal and message.
func classify(res *sandbox.Result, ws syscall.WaitStatus, reason sandbox.Status, oomKills int64, lim sandbox.Limits) {
	switch {
	case ws.Exited():
		res.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		res.ExitCode = 128 + int(ws.Signal())
		res.Signal = unix.SignalName(ws.Signal())
	}
	switch {
	case reason == sandbox.StatusTimeout:
		res.Status = sandbox.StatusTimeout
		res.Message = fmt.Sprintf("timed out after %s; every process of the sandbox was killed", lim.Timeout)
	case oomKills > 0 && (ws.Signaled() || ws.ExitStatus() != 0):
		res.Status = sandbox.StatusMemoryLimit
		res.Message = fmt.Sprintf("memory limit of %s reached; the kernel's OOM killer ended the program", humanBytes(lim.MemoryBytes))
	case reason == sandbox.StatusOutputLimit:
		res.Status = sandbox.StatusOutputLimit
		res.Message = fmt.Sprintf("output flood: more than %d× the %s output cap; the sandbox was killed and the middle of the output cut", outputKillFactor, humanBytes(lim.MaxOutputBytes))
	case res.StdoutTruncated || res.StderrTruncated:
		res.Status = sandbox.StatusOutputLimit
		res.Message = fmt.Sprintf("output exceeded the %s cap per stream; the middle was cut", humanBytes(lim.MaxOutputBytes))
	case reason != "":
		res.Status = sandbox.StatusKilled
		res.Message = "the execution was cancelled and the sandbox killed"
	case ws.Signaled():
		res.Status = sandbox.StatusKilled
		res.Message = "the program was killed by " + res.Signal
		if ws.Signal() == syscall.SIGXFSZ {
			res.Message += fmt.Sprintf(" (a file reached the %s scratch limit)", humanBytes(lim.TmpfsBytes))
		}
		if ws.Signal() == syscall.SIGXCPU {
			res.Message += " (CPU time limit)"
		}
	case res.ExitCode == 0:
		res.Status = sandbox.StatusOK
	default:
		res.Status = sandbox.StatusError
		res.Message = fmt.Sprintf("the program exited with status %d", res.ExitCode)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// report is what the init and the reaper said on the report pipe.
type report struct {
	setupErr string
	started  time.Time
	haveExit bool
	exit     syscall.WaitStatus
	exitAt   time.Time
	tampered bool // a line out of protocol: the program wrote to the pipe
	trace    []string
}

func (rep *report) read(r io.Reader, t0 time.Time) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for sc.Scan() {
		kind, arg, _ := strings.Cut(sc.Text(), " ")
		// Before "F" only the init writes here (T, E, F); then the init
		// may still trace its last step (T) and the reaper reports once
		// (X). Anything else means the program got hold of the pipe.
		switch {
		case kind == "T" && !rep.haveExit:
			rep.trace = append(rep.trace, arg+fmt.Sprintf(" (report at %dµs)", time.Since(t0).Microseconds()))
			continue
		case kind == "E" && rep.started.IsZero() && rep.setupErr == "":
			rep.setupErr = arg
			continue
		case kind == "F" && rep.started.IsZero():
			rep.started = time.Now()
			rep.trace = append(rep.trace, fmt.Sprintf("program started at %dµs", time.Since(t0).Microseconds()))
			continue
		case kind == "X" && !rep.started.IsZero() && !rep.haveExit:
			if n, err := strconv.Atoi(arg); err == nil && n >= 0 && n <= 0xffff {
				rep.haveExit, rep.exit, rep.exitAt = true, syscall.WaitStatus(n), time.Now()
				rep.trace = append(rep.trace, fmt.Sprintf("exit reported at %dµs", time.Since(t0).Microseconds()))
				continue
			}
		}
		rep.tampered = true
		break
	}
	// Drain whatever else arrives so a writer never blocks.
	io.Copy(io.Discard, r) //nolint:errcheck
}
