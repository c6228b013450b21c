package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pybox-dev/pybox/internal/linux/landlock"
	"github.com/pybox-dev/pybox/internal/nsinit"
	"github.com/pybox-dev/pybox/internal/sandbox"
	"golang.org/x/sys/unix"
)

// A Zygote is the fork server of the warm path: a template sandbox whose
// program (internal/driver/zygote.py) has the driver loaded and forks a new
// sandbox on each Spawn, in a few milliseconds of CPU instead of the tens
// that a new interpreter costs.
//
// Every sandbox it forks gets its own mount, pid, net, ipc, uts and cgroup
// namespaces, its own cgroup (its pid 1 moves itself there, through files
// the host opened, before anything else), its own /tmp, /dev/shm and
// /proc, and confines itself
// (capabilities, no_new_privs, Landlock, seccomp) before its driver reads
// any code. They share the template's read-only root. As root, each gets
// host uids of its own from the template's block (forkedIDs), its program
// in a user namespace of its own where it is uid 1000 as in a cold
// sandbox; rootless, only the caller's uid exists, and they share it.
type Zygote struct {
	b      *Backend
	sb     *Sandbox
	limits sandbox.Limits
	name   string // the interpreter as asked for
	python string // its resolved path
	sock   int    // the host's end of the fork server's socket
	mu     sync.Mutex
	ids    *forkedIDs // nil when rootless
}

// forkedIDs hands out pairs of ids of the template's block, one pair per
// live forked sandbox: its pid 1's uid and its program's.
type forkedIDs struct {
	mu   sync.Mutex
	free []int // pair numbers
}

// forkedIDBase is the first id of the template's block given to forked
// sandboxes: below it are the template's own (0, the reaper's 999, the
// program's 1000).
const forkedIDBase = 2000

func newForkedIDs() *forkedIDs {
	n := (idsPerSlot - forkedIDBase) / 2
	f := &forkedIDs{free: make([]int, n)}
	for i := range f.free {
		f.free[i] = n - 1 - i // the lowest first
	}
	return f
}

// get returns the reaper's and the program's uid (in the template's user
// namespace) and the function that frees them.
func (f *forkedIDs) get() (reaper, program int, release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.free) == 0 {
		return 0, 0, nil, fmt.Errorf("all %d uid pairs for forked sandboxes are in use", (idsPerSlot-forkedIDBase)/2)
	}
	k := f.free[len(f.free)-1]
	f.free = f.free[:len(f.free)-1]
	var once sync.Once
	release = func() {
		once.Do(func() {
			f.mu.Lock()
			f.free = append(f.free, k)
			f.mu.Unlock()
		})
	}
	return forkedIDBase + 2*k, forkedIDBase + 2*k + 1, release, nil
}

// zygoteConfig is what the fork server needs to build and confine each
// sandbox; zygote.py reads it.
type zygoteConfig struct {
	TmpfsBytes int64               `json:"tmpfs_bytes"`
	Masked     []string            `json:"masked"`
	Readonly   []string            `json:"readonly"`
	Landlock   *zygoteLandlock     `json:"landlock"`
	Seccomp    []nsinit.SockFilter `json:"seccomp"`
	UID        int                 `json:"uid"`
	ReaperUID  int                 `json:"reaper_uid"`
	Cwd        string              `json:"cwd"`
}

type zygoteLandlock struct {
	FS       uint64                `json:"fs"`
	Net      uint64                `json:"net"`
	Scoped   uint64                `json:"scoped"`
	FileMask uint64                `json:"file_mask"`
	Rules    []nsinit.LandlockRule `json:"rules"`
}

// ErrNoZygote: this host cannot run the fork server (it needs cgroups, to
// give every forked sandbox its own).
var ErrNoZygote = errors.New("the fork server needs cgroups")

// StartZygote starts a fork server whose sandboxes get the given limits.
func (b *Backend) StartZygote(ctx context.Context, limits sandbox.Limits, python string) (*Zygote, error) {
	if b.cgroups == nil {
		return nil, ErrNoZygote
	}
	spec := &sandbox.Spec{Zygote: true, Limits: limits, Python: python, Lifetime: 24 * time.Hour}
	in, err := b.interps.resolve(ctx, python)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", sandbox.ErrInvalidSpec, err)
	}
	plan, err := b.plan(spec, in)
	if err != nil {
		return nil, err
	}
	logw := &logWriter{log: b.log, what: "fork server"}
	sb, err := b.Start(ctx, spec, logw, logw)
	if err != nil {
		return nil, err
	}
	z := &Zygote{b: b, sb: sb, limits: limits, name: python, python: in.Executable, sock: int(sb.zsock.Fd())}
	if !b.rootless {
		z.ids = newForkedIDs()
	}
	zc := zygoteConfig{
		TmpfsBytes: limits.TmpfsBytes, Masked: plan.MaskedPaths, Readonly: plan.ReadonlyPaths,
		Seccomp: plan.Seccomp, UID: sandboxUID, ReaperUID: plan.ReaperUID, Cwd: plan.Cwd,
	}
	if b.landlockABI > 0 {
		fs, net, scoped := landlock.Ruleset(b.landlockABI)
		zc.Landlock = &zygoteLandlock{FS: fs, Net: net, Scoped: scoped, FileMask: landlock.FileAccess, Rules: plan.Landlock}
	}
	data, err := json.Marshal(zc)
	if err != nil {
		z.Close()
		return nil, err
	}
	if _, err := unix.Write(z.sock, data); err != nil {
		z.Close()
		return nil, fmt.Errorf("configuring the fork server: %w", err)
	}
	reply, err := recvTimeout(z.sock, 30*time.Second, nil)
	if err != nil || string(reply) != `{"type":"ready"}` {
		z.Close()
		if res, werr := sb.Wait(); werr == nil && res != nil {
			return nil, fmt.Errorf("the fork server did not start (%s): %s", res.Status, logw.last())
		}
		return nil, fmt.Errorf("the fork server did not start: %v %s", err, logw.last())
	}
	return z, nil
}

// Limits are the limits of the sandboxes the zygote makes.
func (z *Zygote) Limits() sandbox.Limits { return z.limits }

// Layers are the fork server's own layers; HostUID is its program's.
func (z *Zygote) Layers() sandbox.Layers { return z.sb.layers }

// Done is closed once the fork server has ended.
func (z *Zygote) Done() <-chan struct{} { return z.sb.Done() }

// Close ends the fork server and, with it, every sandbox it made.
func (z *Zygote) Close() {
	z.sb.Kill(sandbox.StatusKilled)
	<-z.sb.Done()
}

// Spawn forks a new sandbox for spec, a Driver spec of the zygote's
// interpreter. Its memory, CPU, pids, timeout and output limits are its
// own (cgroup and host side); its scratch may be at most the zygote's (the
// file size rlimit is inherited). It returns once the sandbox's program
// runs; stdout and stderr are as for Start.
func (z *Zygote) Spawn(ctx context.Context, spec *sandbox.Spec, stdout, stderr io.Writer) (*Sandbox, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	python := z.python
	if spec.Python != z.name { // the usual case, the zygote's own, needs no lookup
		in, err := z.b.interps.resolve(ctx, spec.Python)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", sandbox.ErrInvalidSpec, err)
		}
		python = in.Executable
	}
	if !spec.Driver || len(spec.Files) > 0 || python != z.python || spec.Limits.TmpfsBytes > z.limits.TmpfsBytes {
		return nil, fmt.Errorf("%w: a fork server makes driver sandboxes of its own interpreter, without input files, with at most its scratch size", sandbox.ErrInvalidSpec)
	}
	s := newSandbox(z.b, spec, z.sb.layers, stdout, stderr)
	return s.launch(func() error { return s.spawn(ctx, z) })
}

func (s *Sandbox) spawn(ctx context.Context, z *Zygote) error {
	b, lim := s.b, s.spec.Limits
	id := randomID()
	s.log = b.log.With("sandbox_id", id, "forked", true)
	if err := s.createGroup(id); err != nil {
		return err
	}
	g := s.group
	// stdin, stdout, stderr, requests, replies, report.
	pipes, err := newPipes(6)
	if err != nil {
		return err
	}
	inR := pipes[0][0]
	pipes[0][1].Close()
	outR, outW := pipes[1][0], pipes[1][1]
	errR, errW := pipes[2][0], pipes[2][1]
	s.ctlW, s.ctlR = pipes[3][1], pipes[4][0]
	repR, repW := pipes[5][0], pipes[5][1]
	chanHost, chanChild, err := seqpacketPair()
	if err != nil {
		for _, p := range pipes[1:] {
			p[0].Close()
			p[1].Close()
		}
		inR.Close()
		return err
	}
	parentEnds := []*os.File{outR, errR, s.ctlW, s.ctlR, repR}
	childEnds := []*os.File{inR, outW, errW, pipes[3][0], pipes[4][1], repW, chanChild}
	s.undo = append(s.undo, func() { closeAll(parentEnds) })
	defer func() { closeAll(childEnds) }()
	defer chanHost.Close()
	// Pid 1 of the new sandbox moves itself into its cgroup through these,
	// before it does anything else.
	join, err := g.JoinFiles()
	if err != nil {
		return err
	}
	childEnds = append(childEnds, join...)
	spawnReq := map[string]any{"op": "spawn", "boot_id": randomUUID(), "tmpfs_bytes": lim.TmpfsBytes}
	if z.ids != nil {
		// Host uids of its own: the template maps its whole block, so an id
		// of the block in the template's namespace is base+id on the host.
		reaper, program, release, err := z.ids.get()
		if err != nil {
			return err
		}
		s.undo = append(s.undo, release) // once nothing of the sandbox is left
		spawnReq["reaper_uid"], spawnReq["uid"] = reaper, program
		s.layers.HostUID = z.sb.layers.HostUID - sandboxUID + program
	}
	if !b.rootless {
		for _, f := range []*os.File{inR, outW, errW} {
			if err := f.Chown(s.layers.HostUID, s.layers.HostUID); err != nil {
				return fmt.Errorf("handing stdio to the sandbox uid: %w", err)
			}
		}
	}
	// The kernel attaches the sender's credentials, its pid translated
	// into ours, to what the new sandbox's pid 1 sends on this socket.
	if err := unix.SetsockoptInt(int(chanHost.Fd()), unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return fmt.Errorf("SO_PASSCRED: %w", err)
	}
	req, _ := json.Marshal(spawnReq)
	fds := make([]int, len(childEnds))
	for i, f := range childEnds {
		fds[i] = int(f.Fd())
	}
	s.started = time.Now()
	z.mu.Lock()
	err = unix.Sendmsg(z.sock, req, unix.UnixRights(fds...), nil, 0)
	z.mu.Unlock()
	if err != nil {
		return fmt.Errorf("asking the fork server for a sandbox: %w", err)
	}
	closeAll(childEnds)
	childEnds = nil

	// Until pid 1 of the new sandbox says hello, a failure shows on the
	// report pipe; read it then. Pid 1 does not wait for our answer: it is
	// in its cgroup already, and it lives on as the reaper.
	var creds *unix.Ucred
	hello, err := recvTimeout(int(chanHost.Fd()), 10*time.Second, func(oob []byte) {
		if msgs, err := unix.ParseSocketControlMessage(oob); err == nil {
			for _, m := range msgs {
				if c, err := unix.ParseUnixCredentials(&m); err == nil {
					creds = c
				}
			}
		}
	})
	if err != nil || string(hello) != "p" || creds == nil || creds.Pid <= 0 {
		// Whatever made it into the group goes; cleanup removes the group.
		g.Kill()                                                     //nolint:errcheck
		repR.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) //nolint:errcheck
		msg, _ := io.ReadAll(io.LimitReader(repR, 4096))
		return fmt.Errorf("the fork server's sandbox failed to start: %v %s", err, sandbox.FirstLine(string(msg)))
	}
	pidfd, err := unix.PidfdOpen(int(creds.Pid), 0)
	if err != nil {
		g.Kill() //nolint:errcheck
		return fmt.Errorf("pidfd_open: %w", err)
	}
	s.mu.Lock()
	s.hostPID = int(creds.Pid)
	s.kill = func() { unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) } //nolint:errcheck // may have exited
	s.mu.Unlock()
	s.watch(ctx, outR, errR, repR, func() exitInfo {
		pfd := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
				break
			}
		}
		s.mu.Lock()
		s.kill = nil
		s.mu.Unlock()
		unix.Close(pidfd)
		return exitInfo{desc: "forked sandbox", err: errors.New("pid 1 of the sandbox ended without a report")}
	})
	return nil
}

// recvTimeout receives one message on a blocking socket, giving up after
// d; oob, if set, gets the ancillary data.
func recvTimeout(fd int, d time.Duration, oob func([]byte)) ([]byte, error) {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	buf, ob := make([]byte, 4096), make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, ob, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, io.EOF
		}
		if oob != nil {
			oob(ob[:oobn])
		}
		return buf[:n], nil
	}
}

// logWriter passes what the fork server prints to the log, and keeps the
// last of it for error messages.
type logWriter struct {
	log  interface{ Warn(string, ...any) }
	what string
	mu   sync.Mutex
	tail []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.tail = append(w.tail, p...)
	if len(w.tail) > 4096 {
		w.tail = w.tail[len(w.tail)-4096:]
	}
	w.mu.Unlock()
	w.log.Warn(w.what+" output", "text", string(p))
	return len(p), nil
}

func (w *logWriter) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.tail)
}

// Forker starts driver sandboxes the fast way: forked by a fork server it
// keeps running (and restarts if it dies), or, for what a fork server
// cannot make (input files, a larger scratch, another interpreter, plain
// programs), the cold way. Both give the same isolation layers.
type Forker struct {
	b      *Backend
	limits sandbox.Limits
	python string
	mu     sync.Mutex
	z      *Zygote
	closed bool
}

// NewForker returns a Forker whose fork server is made for limits and
// python; it starts on first use.
func (b *Backend) NewForker(limits sandbox.Limits, python string) *Forker {
	return &Forker{b: b, limits: limits, python: python}
}

// Start is Backend.Start, forking the sandbox when it can.
func (f *Forker) Start(ctx context.Context, spec *sandbox.Spec, stdout, stderr io.Writer) (*Sandbox, error) {
	if !spec.Driver || len(spec.Files) > 0 || spec.Limits.TmpfsBytes > f.limits.TmpfsBytes {
		return f.b.Start(ctx, spec, stdout, stderr)
	}
	z, err := f.zygote(ctx)
	if err != nil {
		if !errors.Is(err, ErrNoZygote) {
			f.b.log.Warn("fork server unavailable; starting a cold sandbox", "err", err)
		}
		return f.b.Start(ctx, spec, stdout, stderr)
	}
	sb, err := z.Spawn(ctx, spec, stdout, stderr)
	if errors.Is(err, sandbox.ErrInvalidSpec) {
		return f.b.Start(ctx, spec, stdout, stderr) // another interpreter
	}
	return sb, err
}

func (f *Forker) zygote(ctx context.Context) (*Zygote, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("forker closed")
	}
	if f.z != nil {
		select {
		case <-f.z.Done():
			f.b.log.Warn("fork server ended; starting a new one")
		default:
			return f.z, nil
		}
	}
	if f.b.cgroups == nil {
		return nil, ErrNoZygote
	}
	z, err := f.b.StartZygote(context.WithoutCancel(ctx), f.limits, f.python)
	if err != nil {
		return nil, err
	}
	f.z = z
	return z, nil
}

// Close ends the fork server and every sandbox it made.
func (f *Forker) Close() {
	f.mu.Lock()
	z := f.z
	f.z, f.closed = nil, true
	f.mu.Unlock()
	if z != nil {
		z.Close()
	}
}
