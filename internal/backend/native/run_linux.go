package native

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Run implements sandbox.Backend: a cold sandbox, started, waited for and
// torn down.
func (b *Backend) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	stdout := sandbox.NewCapture(spec.Limits.MaxOutputBytes, spec.Stdout)
	stderr := sandbox.NewCapture(spec.Limits.MaxOutputBytes, spec.Stderr)
	sb, err := b.Start(ctx, spec, stdout, stderr)
	if err != nil {
		return nil, err
	}
	res, err := sb.Wait()
	// A one-shot caller (pybox run, doctor) may exit right after: release
	// the cgroup and uid slot first. Servers use Start and Wait, which
	// leave the teardown off the response path.
	<-sb.Done()
	return res, err
}

// Sandbox is one started sandbox: its init, pid 1 and program, its cgroup,
// uid slot and pipes. It ends when its program ends, when it is killed, or
// when the context given to Start is done; Wait then returns its Result and
// everything it held is released.
type Sandbox struct {
	b       *Backend
	spec    *sandbox.Spec
	layers  sandbox.Layers
	log     *slog.Logger
	undo    []func()
	group   cgroup.Group
	cmd     *exec.Cmd // the init (a cold sandbox); nil for a forked one
	hostPID int       // pid 1 of the sandbox, as the host sees it

	// Driver sandboxes only: the control pipe pair (fds 3 and 4 of the
	// program).
	ctlW *os.File
	ctlR *os.File
	// Zygote sandboxes only: the host's end of the fork server's socket.
	zsock *os.File

	stdout, stderr sandbox.Sink

	mu       sync.Mutex
	kill     func()         // SIGKILL to pid 1; nil until it runs
	reason   sandbox.Status // why pybox killed the sandbox, if it did
	killedAt time.Time      // when pybox first killed the sandbox
	deadline sandbox.Deadline

	created time.Time
	started time.Time // the init was forked
	rep     report
	repDone chan struct{}
	running chan struct{} // closed when the program started or setup ended

	ended  chan struct{} // the Result is known
	done   chan struct{} // and everything is torn down
	result *sandbox.Result
	err    error
}

// Start builds a sandbox for spec and returns once its program runs (or
// setup failed, which is the error). stdout and stderr receive the
// program's output until SetOutput replaces them; nil discards. For a
// Driver spec the wall-clock deadline is not armed: the caller arms it per
// execution with SetDeadline.
func (b *Backend) Start(ctx context.Context, spec *sandbox.Spec, stdout, stderr io.Writer) (*Sandbox, error) {
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
	s := newSandbox(b, spec, b.Layers(), stdout, stderr)
	return s.launch(func() error { return s.start(ctx, in) })
}

func newSandbox(b *Backend, spec *sandbox.Spec, layers sandbox.Layers, stdout, stderr io.Writer) *Sandbox {
	s := &Sandbox{
		b: b, spec: spec, layers: layers, created: time.Now(),
		repDone: make(chan struct{}), running: make(chan struct{}), ended: make(chan struct{}), done: make(chan struct{}),
	}
	s.stdout.Set(stdout)
	s.stderr.Set(stderr)
	return s
}

// launch runs start, which sets the sandbox going, and waits until its
// program runs; if that never happens, the sandbox's end is the error.
func (s *Sandbox) launch(start func() error) (*Sandbox, error) {
	if err := start(); err != nil {
		s.cleanup()
		return nil, err
	}
	<-s.running
	if s.rep.started.IsZero() {
		// Setup failed or the sandbox was killed before the program ran.
		_, err := s.Wait()
		if err == nil {
			err = errors.New("sandbox ended before its program started")
		}
		return nil, err
	}
	return s, nil
}

// createGroup makes the sandbox's cgroup, removed by cleanup.
func (s *Sandbox) createGroup(id string) error {
	lim := s.spec.Limits
	g, err := s.b.cgroups.Create(id, cgroup.Resources{MemoryBytes: lim.MemoryBytes, CPU: lim.CPU, Pids: lim.Pids})
	if err != nil {
		return fmt.Errorf("creating cgroup: %w", err)
	}
	s.group = g
	log := s.log
	s.undo = append(s.undo, func() {
		if err := g.Destroy(); err != nil {
			log.Error("removing cgroup", "err", err)
		}
	})
	return nil
}

func (s *Sandbox) cleanup() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// Kill ends the whole sandbox: SIGKILL to its pid 1 makes the kernel kill
// every process in the pid namespace; the cgroup kill catches anything
// racing with it. The first reason given is the one reported.
func (s *Sandbox) Kill(reason sandbox.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" {
		s.reason, s.killedAt = reason, time.Now()
	}
	if s.kill != nil {
		s.kill()
	}
	// cgroup v2's cgroup.kill is atomic. v1 can only list pids and signal
	// them one by one, and a listed pid may be reused by then; there the
	// pid namespace, which dies with pid 1, is the whole answer.
	if s.group != nil && s.group.Dir() != "" {
		s.group.Kill() //nolint:errcheck
	}
}

// endNow kills pid 1, and with it the pid namespace, without recording a
// reason: the program has already ended.
func (s *Sandbox) endNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kill != nil {
		s.kill()
	}
}

// SetDeadline (re)arms the wall-clock deadline: d from now, the whole
// sandbox is killed with status timeout. d <= 0 disarms it.
func (s *Sandbox) SetDeadline(d time.Duration) {
	s.deadline.Set(d, func() { s.Kill(sandbox.StatusTimeout) })
}

// SetOutput replaces where the program's stdout and stderr go from now on.
func (s *Sandbox) SetOutput(stdout, stderr io.Writer) {
	s.stdout.Set(stdout)
	s.stderr.Set(stderr)
}

// Control returns the host's ends of a driver sandbox's control pipes:
// requests are written to w, replies read from r. Both are nil for a
// plain program.
func (s *Sandbox) Control() (w io.WriteCloser, r io.ReadCloser) {
	if s.ctlW == nil {
		return nil, nil
	}
	return s.ctlW, s.ctlR
}

// Usage reads the sandbox's cgroup counters so far (zero without
// cgroups).
func (s *Sandbox) Usage() (sandbox.Usage, error) {
	if s.group == nil {
		return sandbox.Usage{}, nil
	}
	st, err := s.group.Stats()
	return sandbox.Usage{CPU: st.CPUUsage, PeakMemoryBytes: st.PeakMemoryBytes, OOMKills: st.OOMKills}, err
}

// RootPath is where the host reaches the sandbox's root filesystem:
// /proc/PID/root of its pid 1. Resolve paths beneath it without following
// links (package workspace); valid until Wait returns.
func (s *Sandbox) RootPath() string { return fmt.Sprintf("/proc/%d/root", s.hostPID) }

// FileOwner is the host uid and gid that the sandboxed program runs as,
// for files the host places in its workspace.
func (s *Sandbox) FileOwner() (uid, gid int) {
	if s.b.rootless {
		return -1, -1 // files the caller creates are the program's already
	}
	return s.layers.HostUID, s.layers.HostUID
}

// Layers reports the isolation applied to this sandbox; HostUID is the
// host uid the program runs as.
func (s *Sandbox) Layers() sandbox.Layers { return s.layers }

// Done is closed once the sandbox has ended and been torn down.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// Wait blocks until the sandbox has ended and returns how it ended; its
// teardown (cgroup, uid slot) may still be under way, see Done. The
// Result's outputs are filled if the writers given to Start or SetOutput
// were Captures.
func (s *Sandbox) Wait() (*sandbox.Result, error) {
	<-s.ended
	return s.result, s.err
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	return hex.EncodeToString(b[:])
}

// start prepares everything and forks the init; on error the caller runs
// cleanup. Once the init runs, a goroutine owns the sandbox until done.
func (s *Sandbox) start(ctx context.Context, in *Interpreter) error {
	b, spec := s.b, s.spec
	id := randomID()
	s.log = b.log.With("sandbox_id", id)

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
		s.layers.HostUID = os.Getuid()
	} else {
		slot, release, err := b.slots.acquire()
		if err != nil {
			return err
		}
		s.undo = append(s.undo, release)
		base := b.cfg.UIDBase + slot*idsPerSlot
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: idsPerSlot}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: idsPerSlot}}
		attr.GidMappingsEnableSetgroups = true
		attr.Credential = &syscall.Credential{Uid: sandboxUID, Gid: sandboxUID}
		s.layers.HostUID = base + sandboxUID
	}

	if b.cgroups != nil {
		if err := s.createGroup(id); err != nil {
			return err
		}
		if dir := s.group.Dir(); dir != "" {
			// cgroup v2: the child is born inside its group, so not even
			// the init's first instruction runs unaccounted.
			fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("opening cgroup: %w", err)
			}
			s.undo = append(s.undo, func() { unix.Close(fd) })
			attr.UseCgroupFD = true
			attr.CgroupFD = fd
		}
	}

	cfg, err := b.plan(spec, in)
	if err != nil {
		return err
	}
	cfg.Trace = s.log.Enabled(ctx, slog.LevelDebug)

	var trees []*os.File
	if !b.rootless {
		if trees, err = openTrees(cfg); err != nil {
			return err
		}
		defer func() { closeAll(trees) }()
	}

	// config, report, stdout, stderr, stdin, and for a driver its two
	// control pipes.
	n := 5
	if spec.Driver {
		n = 7
	}
	pipes, err := newPipes(n)
	if err != nil {
		return err
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
	extra := append([]*os.File{cfgR, repW}, trees...)
	if spec.Driver {
		// Requests flow host → program, replies program → host; the
		// program gets them as fds 3 and 4.
		s.ctlW, s.ctlR = pipes[5][1], pipes[6][0]
		parentEnds = append(parentEnds, s.ctlW, s.ctlR)
		childEnds = append(childEnds, pipes[5][0], pipes[6][1])
		first := nsinit.FirstTreeFD + len(trees)
		cfg.ProgramFDs = []int{first, first + 1}
		extra = append(extra, pipes[5][0], pipes[6][1])
	}
	if spec.Zygote {
		host, child, err := seqpacketPair()
		if err != nil {
			closeAll(parentEnds)
			closeAll(childEnds)
			return err
		}
		s.zsock = host
		parentEnds = append(parentEnds, host)
		childEnds = append(childEnds, child)
		cfg.ProgramFDs = []int{nsinit.FirstTreeFD + len(trees)}
		extra = append(extra, child)
	}
	if !b.rootless {
		// Pipes belong to their creator (host root, unmapped inside), so
		// /dev/stdout and /proc/self/fd/1 could not be reopened by the
		// sandboxed program. Give its ends to its own uid.
		for _, f := range []*os.File{inR, outW, errW} {
			if err := f.Chown(s.layers.HostUID, s.layers.HostUID); err != nil {
				closeAll(parentEnds)
				closeAll(childEnds)
				return fmt.Errorf("handing stdio to the sandbox uid: %w", err)
			}
		}
	}
	s.undo = append(s.undo, func() { closeAll(parentEnds) })
	defer closeAll(childEnds)

	cmd := &exec.Cmd{
		Path:        b.cfg.InitPath,
		Args:        []string{nsinit.Name},
		Env:         []string{},
		Stdin:       inR,
		Stdout:      outW,
		Stderr:      errW,
		ExtraFiles:  extra,
		SysProcAttr: attr,
	}
	s.cmd = cmd
	s.started = time.Now()
	s.log.Debug("prepared", "us", s.started.Sub(s.created).Microseconds())
	attached, err := s.fork(cmd)
	if err != nil {
		return err
	}
	s.log.Debug("init started", "us", time.Since(s.started).Microseconds())
	s.mu.Lock()
	s.hostPID = cmd.Process.Pid
	s.kill = func() { cmd.Process.Signal(syscall.SIGKILL) } //nolint:errcheck // may have exited
	s.mu.Unlock()

	if s.group != nil && !attached {
		// Join before the init reads its config, i.e. before it does
		// anything on the user's behalf.
		if err := s.group.Attach(cmd.Process.Pid); err != nil {
			s.Kill(sandbox.StatusKilled)
			cmd.Wait() //nolint:errcheck
			return fmt.Errorf("joining cgroup: %w", err)
		}
	}
	go func() {
		json.NewEncoder(cfgW).Encode(cfg) //nolint:errcheck // a dead init is reported by Wait
		cfgW.Close()
	}()
	s.watch(ctx, outR, errR, repR, func() exitInfo {
		err := cmd.Wait()
		info := exitInfo{err: err}
		if cmd.ProcessState != nil {
			info.known = true
			info.ws = cmd.ProcessState.Sys().(syscall.WaitStatus)
			info.rusage, _ = cmd.ProcessState.SysUsage().(*syscall.Rusage)
			info.desc = cmd.ProcessState.String()
		}
		return info
	})
	return nil
}

// exitInfo is how pid 1 of a sandbox ended, as far as the host can tell
// (a forked sandbox's pid 1 is not the host's child: only that it ended).
type exitInfo struct {
	known  bool
	ws     syscall.WaitStatus
	rusage *syscall.Rusage
	desc   string
	err    error
}

// watch drains the sandbox's output and reports until pid 1 has ended (wait
// returns), then accounts for it and tears it down.
func (s *Sandbox) watch(ctx context.Context, outR, errR, repR *os.File, wait func() exitInfo) {
	lim := s.spec.Limits
	if !s.spec.Driver && !s.spec.Zygote {
		s.SetDeadline(lim.Timeout)
	}
	stopCtx := context.AfterFunc(ctx, func() { s.Kill(sandbox.StatusKilled) })

	var wg sync.WaitGroup
	drain := func(rd io.Reader, sink *sandbox.Sink) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := rd.Read(buf)
			if n > 0 && sink.Pass(buf[:n]) > outputKillFactor*lim.MaxOutputBytes {
				s.Kill(sandbox.StatusOutputLimit)
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go drain(outR, &s.stdout)
	go drain(errR, &s.stderr)
	exitSeen := make(chan struct{})
	go func() {
		defer close(s.repDone)
		// Once the reaper has reported the program's exit, nothing of
		// value is left: end the sandbox at once rather than wait for pid
		// 1 to exit by itself, and for the program's orphans.
		s.rep.read(repR, s.started, s.running, func() {
			s.endNow()
			close(exitSeen)
		})
	}()
	waited := make(chan exitInfo, 1)
	go func() { waited <- wait() }()
	drained := make(chan struct{})
	go func() {
		wg.Wait()
		close(drained)
	}()
	go func() {
		// The result is known as soon as the program's exit is reported
		// and its output has reached EOF (no process of the sandbox holds
		// the pipes any more): tearing the pid namespace down, which takes
		// a millisecond or more, need not delay it. Otherwise (killed,
		// tampered with, setup failed) it waits for pid 1.
		var info exitInfo
		early := false
		select {
		case info = <-waited:
		case <-exitSeen:
			if s.b.rootless {
				// The program shares the reaper's uid and could forge the
				// exit line: only the end of the report shows tampering.
				info = <-waited
				break
			}
			select {
			case <-drained:
				early = true
			case info = <-waited:
			}
		}
		end := time.Now()
		stopCtx()
		s.SetDeadline(0)
		<-drained
		if !early {
			<-s.repDone
		}
		// After an "X" line the report reader changes nothing but
		// tampered (atomic), so with early set its fields can be read
		// while it drains; as root nothing but the reaper holds the pipe.
		s.result, s.err = s.finish(end, info)
		close(s.ended)
		if early {
			<-waited
			<-s.repDone
		}
		s.cleanup()
		s.log.Debug("cleanup done", "us", time.Since(end).Microseconds(), "early_result", early)
		close(s.done)
	}()
}

// finish turns how the sandbox ended into a Result.
func (s *Sandbox) finish(end time.Time, info exitInfo) (*sandbox.Result, error) {
	rep, lim := &s.rep, s.spec.Limits
	s.log.Debug("sandbox exited", "us", end.Sub(s.started).Microseconds(), "program_started_us", rep.started.Sub(s.started).Microseconds())
	stdout, _ := s.stdout.Get().(*sandbox.Capture)
	stderr, _ := s.stderr.Get().(*sandbox.Capture)
	for _, c := range []*sandbox.Capture{stdout, stderr} {
		if c != nil {
			c.FlushLive()
		}
	}
	for _, t := range rep.trace {
		s.log.Debug("init step done", "step", t)
	}
	s.mu.Lock()
	reason, killedAt := s.reason, s.killedAt
	s.mu.Unlock()
	if rep.setupErr != "" {
		return nil, fmt.Errorf("sandbox setup failed: %s", rep.setupErr)
	}
	if rep.started.IsZero() && reason == "" && !rep.tampered.Load() {
		msg := ""
		if stderr != nil {
			msg = sandbox.FirstLine(stderr.Output().Text)
		}
		return nil, fmt.Errorf("sandbox setup failed: pid 1 exited (%s) before starting the program: %s", info.desc, msg)
	}
	if !info.known && !rep.haveExit && reason == "" {
		return nil, fmt.Errorf("waiting for sandbox: %v", info.err)
	}
	res := &sandbox.Result{
		WallMS: sandbox.Millis(end.Sub(s.started)),
		Layers: s.layers,
	}
	if !rep.started.IsZero() {
		res.SetupMS = sandbox.Millis(rep.started.Sub(s.started))
	}
	res.SetOutput(stdout, stderr)

	var oomKills int64
	if s.group != nil {
		st, err := s.group.Stats()
		if err != nil {
			s.log.Warn("reading cgroup stats", "err", err)
		}
		res.PeakMemoryBytes, res.CPUMS, oomKills = st.PeakMemoryBytes, sandbox.Millis(st.CPUUsage), st.OOMKills
	}
	if ru := info.rusage; ru != nil && res.CPUMS == 0 {
		res.CPUMS = sandbox.Millis(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
		if res.PeakMemoryBytes == 0 {
			res.PeakMemoryBytes = ru.Maxrss * 1024
		}
	}

	// The user's process status as the reaper saw it; if the reaper did
	// not get to report (the sandbox was killed), pid 1's own.
	ws := info.ws
	if !info.known {
		ws = syscall.WaitStatus(syscall.SIGKILL) // pybox killed it
	}
	if rep.haveExit && !rep.tampered.Load() {
		ws = rep.exit
		if reason != "" && rep.exitAt.Before(killedAt) {
			reason = "" // the program had ended before pybox killed the rest
		}
	}
	classify(res, ws, reason, oomKills, lim)
	if rep.tampered.Load() {
		res.Status = sandbox.StatusError
		res.Message = "the program wrote to pybox's report channel, so its exit status cannot be trusted"
	}
	s.log.Debug("sandbox finished", "status", res.Status, "wall_ms", res.WallMS)
	return res, nil
}

// fork starts the init, born inside its cgroup when the hierarchy allows
// it (v2: CLONE_INTO_CGROUP; v1: the forking thread enters the group
// first). It reports whether the child is already in its group.
func (s *Sandbox) fork(cmd *exec.Cmd) (attached bool, err error) {
	te, ok := s.group.(cgroup.ThreadEnterer)
	if s.group == nil || s.group.Dir() != "" || !ok {
		if err := cmd.Start(); err != nil {
			return false, startError(err)
		}
		return s.group != nil && s.group.Dir() != "", nil
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
			s.b.log.Error("leaving sandbox cgroup", "err", err)
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
		return false, startError(o.err)
	}
	return o.attached, nil
}

// startError explains a failure to clone the sandbox init. The errnos the
// kernel gives for a refused user namespace (limit reached, disabled, too
// deep) mean this host cannot run native sandboxes at all right now:
// ErrUnavailable, which a configured fallback acts on.
func startError(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EUSERS) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: starting sandbox init: the kernel refused new namespaces (user namespaces disabled or at their limit?): %v", sandbox.ErrUnavailable, err)
	}
	return fmt.Errorf("starting sandbox init: %w", err)
}

// seqpacketPair returns a connected pair of SOCK_SEQPACKET sockets: message
// boundaries, and descriptors and credentials travel with messages.
func seqpacketPair() (host, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "zygote-host"), os.NewFile(uintptr(fds[1]), "zygote"), nil
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

// classify fills status, exit code, signal and message from pid 1's
// report of the program's wait status.
func classify(res *sandbox.Result, ws syscall.WaitStatus, reason sandbox.Status, oomKills int64, lim sandbox.Limits) {
	if ws.Signaled() {
		res.Ended(128+int(ws.Signal()), unix.SignalName(ws.Signal()), reason, oomKills, outputKillFactor, lim)
		return
	}
	res.Ended(ws.ExitStatus(), "", reason, oomKills, outputKillFactor, lim)
}

// report is what the init and the reaper said on the report pipe.
type report struct {
	setupErr string
	started  time.Time
	haveExit bool
	exit     syscall.WaitStatus
	exitAt   time.Time
	// tampered: a line out of protocol, so the program wrote to the pipe.
	// Atomic: after "X" only this may still change, while the result is
	// being made (see watch).
	tampered atomic.Bool
	trace    []string
}

// running is closed once the program has started, setup has failed, or the
// pipe has closed, whichever comes first.
//
// exited is called when the program's exit is reported.
func (rep *report) read(r io.Reader, t0 time.Time, running chan<- struct{}, exited func()) {
	signalled := false
	ready := func() {
		if !signalled {
			signalled = true
			close(running)
		}
	}
	defer ready()
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
			ready()
			continue
		case kind == "F" && rep.started.IsZero():
			rep.started = time.Now()
			rep.trace = append(rep.trace, fmt.Sprintf("program started at %dµs", time.Since(t0).Microseconds()))
			ready()
			continue
		case kind == "X" && !rep.started.IsZero() && !rep.haveExit:
			if n, err := strconv.Atoi(arg); err == nil && n >= 0 && n <= 0xffff {
				rep.haveExit, rep.exit, rep.exitAt = true, syscall.WaitStatus(n), time.Now()
				rep.trace = append(rep.trace, fmt.Sprintf("exit reported at %dµs", time.Since(t0).Microseconds()))
				exited()
				continue
			}
		}
		rep.tampered.Store(true)
		ready()
		break
	}
	// Drain whatever else arrives so a writer never blocks.
	io.Copy(io.Discard, r) //nolint:errcheck
}
