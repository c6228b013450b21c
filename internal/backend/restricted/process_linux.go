package restricted

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pybox-dev/pybox/internal/backend/restricted/rlimitexec"
	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// Layout of an execution's directory, which is also RootPath: the server's
// workspace code finds the workspace at RootPath()+"/tmp", as in a native
// sandbox, and the driver its code directory at $PYBOX_ROOT/pybox.
const (
	workDir = "tmp"   // cwd, HOME, TMPDIR and the workspace; the program's
	codeDir = "pybox" // the script, or the driver; pybox's, read-only
)

// Process is one started program: its process group, pipes and directory.
// It ends when the program (the group's leader) ends, when it is killed,
// or when the context given to Start is done; the rest of its process group
// is then killed, Wait returns the Result, and the directory is removed
// (then Done is closed). All methods are safe for concurrent use.
type Process struct {
	b      *Backend
	spec   *sandbox.Spec
	layers sandbox.Layers
	log    *slog.Logger
	dir    string
	cmd    *exec.Cmd
	pid    int // also the process group's id

	// Driver programs only: the host's ends of the control pipes.
	ctlW *os.File
	ctlR *os.File

	stdout, stderr sandbox.Sink

	mu       sync.Mutex
	reason   sandbox.Status // why pybox killed it, if it did
	deadline sandbox.Deadline
	reaped   bool // the leader is being or has been reaped: pid and pgid may be reused
	final    sandbox.Usage
	started  time.Time // the helper was forked
	execd    time.Time // the interpreter was exec'd
	strayOut bool      // a pipe stayed open after the group was killed

	ended chan struct{} // the Result is known
	done  chan struct{} // and the directory is gone
	res   *sandbox.Result
	err   error
}

// Start starts the program for spec and returns once the interpreter has
// been exec'd (or not, which is the error). stdout and stderr receive its
// output until SetOutput replaces them; nil discards. For a Driver spec the
// wall-clock deadline is not armed: the caller arms it per execution with
// SetDeadline.
func (b *Backend) Start(ctx context.Context, spec *sandbox.Spec, stdout, stderr io.Writer) (*Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(spec.Files) > 0:
		return nil, fmt.Errorf("%w: input files (--file) are %v: it has no file system of its own to place them in", sandbox.ErrInvalidSpec, errUnsupportedSpec)
	case spec.Zygote:
		return nil, fmt.Errorf("%w: the fork server is %v", sandbox.ErrInvalidSpec, errUnsupportedSpec)
	}
	python, err := b.interpreter(ctx, spec.Python)
	if err != nil {
		return nil, err
	}
	p := &Process{
		b: b, spec: spec, layers: b.Layers(),
		ended: make(chan struct{}), done: make(chan struct{}),
	}
	p.stdout.Set(stdout)
	p.stderr.Set(stderr)
	if err := p.start(ctx, python); err != nil {
		return nil, err
	}
	return p, nil
}

// makeDir creates the execution's private directory: <dir> (pybox's,
// 0711: the program may pass through, not list), <dir>/pybox (pybox's,
// 0755, the code read-only) and <dir>/tmp (the program's, 0700).
func (p *Process) makeDir(script string, code []byte) (err error) {
	b := p.b
	p.dir, err = os.MkdirTemp(b.cfg.Dir, "pybox-restricted-")
	if err != nil {
		return fmt.Errorf("creating the execution's directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(p.dir)
		}
	}()
	if err := os.Chmod(p.dir, 0o711); err != nil {
		return err
	}
	code0 := filepath.Join(p.dir, codeDir)
	work := filepath.Join(p.dir, workDir)
	if err := os.Mkdir(code0, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(work, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(code0, script), code, 0o444); err != nil {
		return err
	}
	if b.asRoot {
		if err := os.Chown(work, b.uid, b.gid); err != nil {
			return fmt.Errorf("handing the workspace to uid %d: %w", b.uid, err)
		}
	}
	if p.spec.Driver {
		// The one file the program may write in the code directory: where
		// the driver stores a one-shot's script, as a cold run has it.
		f := filepath.Join(code0, "main.py")
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			return err
		}
		if b.asRoot {
			if err := os.Chown(f, b.uid, b.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// env is the program's whole environment: nothing of pybox's own is
// passed except the OpenBLAS workarounds some CPUs need (as native does).
//
// BLAS and OpenMP thread pools are one thread: RLIMIT_DATA counts memory
// reserved, not touched, and OpenBLAS reserves a buffer of tens of MiB per
// thread. With two threads numpy reserves 288 MiB to invert a 300×300
// matrix (36 MiB resident) and, refused, OpenBLAS spins instead of
// failing; with one it reserves 150 MiB and fits the default 256 MiB.
// The program may raise them, with the memory that costs.
func (p *Process) env(python string) []string {
	work := filepath.Join(p.dir, workDir)
	path := "/usr/bin:/bin"
	if d := filepath.Dir(python); !strings.Contains(":"+path+":", ":"+d+":") {
		path = d + ":" + path // "python3" by name finds the same interpreter
	}
	e := []string{
		"PATH=" + path, "HOME=" + work, "TMPDIR=" + work, "LANG=C.UTF-8", "MPLBACKEND=Agg",
		"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1",
	}
	for _, k := range []string{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} {
		if v, ok := os.LookupEnv(k); ok {
			e = append(e, k+"="+v)
		}
	}
	if p.spec.Driver {
		e = append(e, "PYBOX_ROOT="+p.dir) // the driver drops it from os.environ
	}
	return e
}

// rlimits are the program's resource limits, applied by the helper before
// it execs the interpreter, inherited by everything the program starts.
//
// Memory is RLIMIT_DATA, not RLIMIT_AS: since Linux 4.7 DATA counts every
// private writable mapping (heap, anonymous mmap, thread stacks), which is
// what a program allocates; AS also counts address space that is only
// reserved (glibc reserves 64 MiB per malloc arena, OpenBLAS its buffers),
// so it would break numpy and threaded programs far below the limit. Both
// are per process: a program may fork to get more.
//
// RLIMIT_NPROC counts every process (thread) of the real uid, system-wide.
// Running as pybox's own uid it would count pybox's and the caller's other
// processes, and fail the program for theirs, so it is set only when the
// program runs as its own uid (pybox is root); there it is a brake on fork
// bombs shared by everything that runs as that uid, concurrent executions
// included, not a per-execution count.
func (p *Process) rlimits() []rlimitexec.Rlimit {
	l := p.spec.Limits
	rl := []rlimitexec.Rlimit{
		{Resource: unix.RLIMIT_CORE, Value: 0},
		{Resource: unix.RLIMIT_NOFILE, Value: nofile},
		{Resource: unix.RLIMIT_CPU, Value: uint64(max(l.Timeout, p.spec.Lifetime).Seconds()) + 2},
		{Resource: unix.RLIMIT_DATA, Value: uint64(l.MemoryBytes)},
		{Resource: unix.RLIMIT_FSIZE, Value: uint64(l.TmpfsBytes)},
		{Resource: unix.RLIMIT_MEMLOCK, Value: 64 << 10},
		{Resource: unix.RLIMIT_MSGQUEUE, Value: 0},
	}
	if p.b.asRoot {
		rl = append(rl, rlimitexec.Rlimit{Resource: unix.RLIMIT_NPROC, Value: uint64(l.Pids)})
	}
	return rl
}

// start makes the directory, forks the helper and waits until it has
// exec'd the interpreter. On error nothing is left behind.
func (p *Process) start(ctx context.Context, python string) (err error) {
	b, spec := p.b, p.spec
	filename, code, args := spec.Filename, spec.Code, spec.Args
	if filename == "" {
		filename = "main.py"
	}
	if spec.Driver {
		// The code arrives later, over the control pipe.
		filename, code, args = filepath.Base(driver.Path), []byte(driver.Driver), nil
	}
	if err := p.makeDir(filename, code); err != nil {
		return err
	}
	p.log = b.log.With("sandbox_id", filepath.Base(p.dir))
	var parentEnds, childEnds []*os.File
	defer func() {
		closeAll(childEnds)
		if err != nil {
			closeAll(parentEnds)
			os.RemoveAll(p.dir)
		}
	}()
	pipe := os.Pipe
	outR, outW, err := pipe()
	if err != nil {
		return err
	}
	parentEnds, childEnds = append(parentEnds, outR), append(childEnds, outW)
	errR, errW, err := pipe()
	if err != nil {
		return err
	}
	parentEnds, childEnds = append(parentEnds, errR), append(childEnds, errW)
	var extra []*os.File // fds 3, 4, ... of the helper
	if spec.Driver {
		// Requests flow host → program (its fd 3), replies program → host
		// (its fd 4), as driver.py expects.
		reqR, reqW, err := pipe()
		if err != nil {
			return err
		}
		parentEnds, childEnds = append(parentEnds, reqW), append(childEnds, reqR)
		repR, repW, err := pipe()
		if err != nil {
			return err
		}
		parentEnds, childEnds = append(parentEnds, repR), append(childEnds, repW)
		p.ctlW, p.ctlR = reqW, repR
		extra = append(extra, reqR, repW)
	}
	statusR, statusW, err := pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()
	childEnds = append(childEnds, statusW)
	statusFD := 3 + len(extra)
	extra = append(extra, statusW)

	attr := &syscall.SysProcAttr{
		// Its own session, hence its own process group (killed as one) and
		// no controlling terminal (no /dev/tty of pybox's to inject into).
		Setsid:    true,
		Pdeathsig: syscall.SIGKILL,
	}
	if b.asRoot {
		// Never root: the configured uid, with no supplementary groups.
		attr.Credential = &syscall.Credential{Uid: uint32(b.uid), Gid: uint32(b.gid), Groups: []uint32{}}
		// Pipes belong to their creator, so the program could not reopen
		// /dev/stdout or /proc/self/fd/1; give it its ends.
		for _, f := range []*os.File{outW, errW} {
			if err := f.Chown(b.uid, b.gid); err != nil {
				return fmt.Errorf("handing stdio to uid %d: %w", b.uid, err)
			}
		}
	}
	script := filepath.Join(p.dir, codeDir, filename)
	program := append([]string{python, "-I", "-B", "-u", script}, args...)
	p.cmd = &exec.Cmd{
		Path: b.cfg.InitPath,
		Args: rlimitexec.Args(statusFD, p.rlimits(), program),
		Env:  p.env(python),
		Dir:  filepath.Join(p.dir, workDir),
		// Stdin nil: /dev/null.
		Stdout:      outW,
		Stderr:      errW,
		ExtraFiles:  extra,
		SysProcAttr: attr,
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting the restricted helper %s: %w", b.cfg.InitPath, err)
	}
	p.pid = p.cmd.Process.Pid
	closeAll(childEnds)
	childEnds = nil
	// The status pipe is close-on-exec in the helper: end of file means
	// the interpreter runs; a message is why it does not.
	msg, _ := io.ReadAll(io.LimitReader(statusR, 4096))
	p.execd = time.Now()
	if len(msg) > 0 {
		syscall.Kill(-p.pid, syscall.SIGKILL) //nolint:errcheck
		p.cmd.Wait()                          //nolint:errcheck
		return fmt.Errorf("restricted backend: setting up the program: %s", msg)
	}
	p.watch(ctx, outR, errR)
	return nil
}

// watch drains the output and waits for the program; once it has ended,
// it kills the rest of its group, accounts for it and removes the
// directory.
func (p *Process) watch(ctx context.Context, outR, errR *os.File) {
	lim := p.spec.Limits
	if !p.spec.Driver {
		p.SetDeadline(lim.Timeout)
	}
	stopCtx := context.AfterFunc(ctx, func() { p.Kill(sandbox.StatusKilled) })
	var wg sync.WaitGroup
	drain := func(rd io.Reader, sink *sandbox.Sink) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := rd.Read(buf)
			if n > 0 && sink.Pass(buf[:n]) > outputKillFactor*lim.MaxOutputBytes {
				p.Kill(sandbox.StatusOutputLimit)
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go drain(outR, &p.stdout)
	go drain(errR, &p.stderr)
	go func() {
		// Learn that the leader exited without reaping it: until it is
		// reaped its pid, and so the group's id, cannot be reused, and
		// killing the group hits only what the program left behind.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		end := time.Now()
		p.mu.Lock()
		syscall.Kill(-p.pid, syscall.SIGKILL) //nolint:errcheck // the group may be gone
		p.reaped = true
		p.mu.Unlock()
		stopCtx()
		p.SetDeadline(0)
		werr := p.cmd.Wait()
		var ws syscall.WaitStatus
		var ru *syscall.Rusage
		if st := p.cmd.ProcessState; st != nil {
			ws = st.Sys().(syscall.WaitStatus)
			ru, _ = st.SysUsage().(*syscall.Rusage)
		}
		p.mu.Lock()
		if ru != nil {
			p.final = sandbox.Usage{CPU: cpuTime(ru), PeakMemoryBytes: ru.Maxrss * 1024}
		}
		p.mu.Unlock()
		// Every process of the group is dead now, and with them the
		// write ends of the pipes, unless one left the group (setsid)
		// with a copy: do not wait for it for ever.
		drained := make(chan struct{})
		go func() { wg.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
			p.mu.Lock()
			p.strayOut = true
			p.mu.Unlock()
			outR.Close()
			errR.Close()
			<-drained
		}
		outR.Close()
		errR.Close()
		if p.ctlW != nil {
			p.ctlW.Close()
			p.ctlR.Close()
		}
		if p.cmd.ProcessState == nil {
			p.res, p.err = nil, fmt.Errorf("waiting for the program: %v", werr)
		} else {
			p.res, p.err = p.finish(end, ws), nil
		}
		close(p.ended)
		if err := removeDir(p.dir); err != nil {
			p.log.Error("removing the execution's directory", "dir", p.dir, "err", err)
		}
		close(p.done)
	}()
}

// removeDir removes the execution's directory. Go's RemoveAll works below
// an open descriptor and never follows a link the program planted. A
// process that escaped the group kill may still be writing: retry a little.
func removeDir(dir string) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// finish turns how the program ended into a Result.
func (p *Process) finish(end time.Time, ws syscall.WaitStatus) *sandbox.Result {
	lim := p.spec.Limits
	stdout, _ := p.stdout.Get().(*sandbox.Capture)
	stderr, _ := p.stderr.Get().(*sandbox.Capture)
	for _, c := range []*sandbox.Capture{stdout, stderr} {
		if c != nil {
			c.FlushLive()
		}
	}
	p.mu.Lock()
	reason, usage, stray := p.reason, p.final, p.strayOut
	p.mu.Unlock()
	res := &sandbox.Result{
		WallMS:          sandbox.Millis(end.Sub(p.started)),
		SetupMS:         sandbox.Millis(p.execd.Sub(p.started)),
		CPUMS:           sandbox.Millis(usage.CPU),
		PeakMemoryBytes: usage.PeakMemoryBytes,
		Layers:          p.layers,
	}
	if stray {
		res.Layers.Warnings = append(append([]string(nil), res.Layers.Warnings...),
			"a process of the program left its process group with a copy of its output and was still running when the execution ended: "+
				"the restricted backend cannot find or kill it")
	}
	res.SetOutput(stdout, stderr)
	classify(res, ws, reason, lim)
	p.log.Debug("restricted program finished", "status", res.Status, "wall_ms", res.WallMS)
	return res
}

// classify fills status, exit code, signal and message.
func classify(res *sandbox.Result, ws syscall.WaitStatus, reason sandbox.Status, lim sandbox.Limits) {
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
		res.Message = fmt.Sprintf("timed out after %s; the program's process group was killed", lim.Timeout)
	case reason == sandbox.StatusOutputLimit:
		res.Status = sandbox.StatusOutputLimit
		res.Message = fmt.Sprintf("output flood: more than %d× the %s output cap; the program was killed and the middle of the output cut", outputKillFactor, sandbox.HumanBytes(lim.MaxOutputBytes))
	case res.StdoutTruncated || res.StderrTruncated:
		res.Status, res.Message = sandbox.StatusOutputLimit, sandbox.TruncatedMessage(lim)
	case reason != "":
		res.Status = sandbox.StatusKilled
		res.Message = "the execution was cancelled and the program killed"
	case ws.Signaled():
		res.Status = sandbox.StatusKilled
		res.Message = "the program was killed by " + res.Signal
		switch ws.Signal() {
		case syscall.SIGXFSZ:
			res.Message += fmt.Sprintf(" (a file reached the %s file size limit)", sandbox.HumanBytes(lim.TmpfsBytes))
		case syscall.SIGXCPU:
			res.Message += " (CPU time limit)"
		case syscall.SIGSEGV, syscall.SIGABRT, syscall.SIGBUS:
			res.Message += fmt.Sprintf(" (native code may have failed to allocate under the %s per-process memory limit)", sandbox.HumanBytes(lim.MemoryBytes))
		}
	case res.ExitCode == 0:
		res.Status = sandbox.StatusOK
	case memoryError(res.Stderr):
		res.Status = sandbox.StatusMemoryLimit
		res.Message = fmt.Sprintf("the program ended with a MemoryError: the memory limit is %s per process (RLIMIT_DATA; the restricted backend has no cgroup)", sandbox.HumanBytes(lim.MemoryBytes))
	default:
		res.Status = sandbox.StatusError
		res.Message = fmt.Sprintf("the program exited with status %d", res.ExitCode)
	}
}

// memoryError reports whether stderr ends with the last line of a
// traceback of an uncaught MemoryError (or a subclass such as numpy's
// _ArrayMemoryError): what an allocation refused by RLIMIT_DATA raises.
// A program can print such a line itself; it only mislabels its own run.
func memoryError(stderr string) bool {
	s := strings.TrimRight(stderr, "\n")
	last := s[strings.LastIndexByte(s, '\n')+1:]
	name, _, _ := strings.Cut(last, ":")
	name = name[strings.LastIndexByte(name, '.')+1:]
	return strings.HasSuffix(name, "MemoryError") && !strings.ContainsAny(name, " \t")
}

// Kill ends the program: SIGKILL to its whole process group. The first
// reason given is the one reported.
func (p *Process) Kill(reason sandbox.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reason == "" {
		p.reason = reason
	}
	if !p.reaped {
		syscall.Kill(-p.pid, syscall.SIGKILL) //nolint:errcheck // may be gone
	}
}

// SetDeadline (re)arms the wall-clock deadline: d from now, the process
// group is killed with status timeout. d <= 0 disarms it.
func (p *Process) SetDeadline(d time.Duration) {
	p.deadline.Set(d, func() { p.Kill(sandbox.StatusTimeout) })
}

// SetOutput replaces where the program's stdout and stderr go from now on.
func (p *Process) SetOutput(stdout, stderr io.Writer) {
	p.stdout.Set(stdout)
	p.stderr.Set(stderr)
}

// Control returns the host's ends of a driver program's control pipes:
// requests are written to w, replies read from r. Both are nil for a plain
// program.
func (p *Process) Control() (w io.WriteCloser, r io.ReadCloser) {
	if p.ctlW == nil {
		return nil, nil
	}
	return p.ctlW, p.ctlR
}

// Usage is the CPU time of the program and of the children it has waited
// for, and its peak resident memory, so far; final once it has ended.
func (p *Process) Usage() (sandbox.Usage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return p.final, nil
	}
	// The pid is still ours: it is reaped only after p.reaped is set.
	return procUsage(p.pid)
}

// procUsage reads a live (or zombie) process's counters from /proc.
func procUsage(pid int) (sandbox.Usage, error) {
	var u sandbox.Usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name, which may hold spaces and parens.
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 15 {
		return u, errors.New("short /proc/PID/stat")
	}
	var ticks int64
	for _, s := range f[11:15] { // utime stime cutime cstime
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	u.CPU = time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				u.PeakMemoryBytes = kb * 1024
			}
		}
	}
	return u, nil
}

// Layers reports the (absence of) isolation; HostUID is the uid the
// program runs as.
func (p *Process) Layers() sandbox.Layers { return p.layers }

// RootPath is the execution's directory: the workspace is its "tmp", the
// code its "pybox". Valid until Wait returns.
func (p *Process) RootPath() string { return p.dir }

// FileOwner is the uid and gid the program runs as, for files the host
// places in its workspace; -1 when it runs as pybox's own uid.
func (p *Process) FileOwner() (uid, gid int) {
	if !p.b.asRoot {
		return -1, -1
	}
	return p.b.uid, p.b.gid
}

// Done is closed once the program has ended and its directory is removed.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until the program has ended and returns how it ended; the
// directory's removal may still be under way, see Done. The Result's
// outputs are filled if the writers given to Start or SetOutput were
// Captures.
func (p *Process) Wait() (*sandbox.Result, error) {
	<-p.ended
	return p.res, p.err
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
