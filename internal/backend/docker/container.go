package docker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// maskedPaths are bound over with an empty file or directory: Docker's
// default list, plus entries that describe the host's hardware, kernel or
// other tenants (HostConfig.MaskedPaths replaces the default, so it is
// repeated here).
var maskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/key-users", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/proc/kallsyms",
	"/proc/kmsg", "/proc/kpagecount", "/proc/kpageflags", "/proc/kpagecgroup", "/proc/sysrq-trigger",
	"/proc/vmallocinfo", "/proc/slabinfo", "/proc/pagetypeinfo", "/proc/zoneinfo", "/proc/buddyinfo",
	"/proc/iomem", "/proc/ioports", "/proc/modules", "/proc/mtrr", "/proc/partitions", "/proc/diskstats",
	"/proc/swaps", "/proc/locks", "/proc/interrupts", "/proc/softirqs", "/proc/cmdline", "/proc/config.gz",
	"/proc/sys/kernel/random/boot_id",
}

// readonlyPaths are Docker's default.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"}

// Run implements sandbox.Backend: a fresh container runs spec's code as
// `pybox run` would, and is removed before Run returns.
func (b *Backend) Run(ctx context.Context, spec *sandbox.Spec) (*sandbox.Result, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	stdout := sandbox.NewCapture(spec.Limits.MaxOutputBytes, spec.Stdout)
	stderr := sandbox.NewCapture(spec.Limits.MaxOutputBytes, spec.Stderr)
	drv := *spec
	drv.Driver = true
	c, err := b.Start(ctx, &drv, stdout, stderr)
	if err != nil {
		return nil, err
	}
	defer func() { <-c.Done() }()
	stop := context.AfterFunc(ctx, func() { c.Kill(sandbox.StatusKilled) })
	defer stop()
	w, r := c.Control()
	ready := make(chan error, 1)
	go func() {
		var rep driver.Reply
		err := driver.ReadFrame(r, &rep)
		if err == nil && rep.Type != "ready" {
			err = fmt.Errorf("the driver announced %q", rep.Type)
		}
		ready <- err
		io.Copy(io.Discard, r) //nolint:errcheck // nothing follows a "run"
	}()
	select {
	case err = <-ready:
	case <-c.Done():
		err = errors.New("the container ended before its driver was ready")
	}
	if err != nil {
		c.Kill(sandbox.StatusKilled)
		if res, werr := c.Wait(); werr == nil && res != nil {
			return nil, fmt.Errorf("docker backend: starting the program: %v: %s", err, sandbox.FirstLine(res.Stderr))
		}
		_, werr := c.Wait()
		return nil, fmt.Errorf("docker backend: starting the program: %v (%v)", err, werr)
	}
	filename := spec.Filename
	if filename == "" {
		filename = "main.py"
	}
	c.markRunning()
	c.SetDeadline(spec.Limits.Timeout)
	if err := driver.WriteFrame(w, &driver.Request{Op: "run", Code: string(spec.Code), Filename: filename, Args: spec.Args}); err != nil {
		c.Kill(sandbox.StatusKilled)
	}
	w.Close()
	return c.Wait()
}

// Start creates and starts a container whose relay runs pybox's driver
// (spec.Driver must be set: Run is the way to run code directly), and
// returns once it runs. stdout and stderr receive the program's output
// until SetOutput replaces them; nil discards. The wall-clock deadline is
// the caller's, with SetDeadline.
func (b *Backend) Start(ctx context.Context, spec *sandbox.Spec, stdout, stderr io.Writer) (*Container, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if !spec.Driver || spec.Zygote {
		return nil, fmt.Errorf("%w: the docker backend starts driver sandboxes only (use Run for a program)", sandbox.ErrInvalidSpec)
	}
	python := spec.Python
	if python == "" {
		python = "python3"
	}
	if !validName(python) && !(path.IsAbs(python) && path.Clean(python) == python && validName(strings.ReplaceAll(python[1:], "/", "_"))) {
		return nil, fmt.Errorf("%w: --python %q: the docker backend runs an interpreter of the image, by name (python3) or absolute path", sandbox.ErrInvalidSpec, spec.Python)
	}
	var mounts []mount.Mount
	for _, f := range spec.Files {
		st, err := os.Stat(f.HostPath)
		if err != nil {
			return nil, fmt.Errorf("%w: --file %s: %v", sandbox.ErrInvalidSpec, f.HostPath, err)
		}
		if !st.Mode().IsRegular() || !path.IsAbs(f.HostPath) {
			return nil, fmt.Errorf("%w: --file %s: not a regular file given by its absolute path", sandbox.ErrInvalidSpec, f.HostPath)
		}
		if st.Mode().Perm()&0o004 == 0 {
			return nil, fmt.Errorf("%w: --file %s has mode %v: the container's user could not read it; make it readable by others (chmod o+r) or pass a copy",
				sandbox.ErrInvalidSpec, f.HostPath, st.Mode().Perm())
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: f.HostPath, Target: f.SandboxPath, ReadOnly: true,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}})
	}
	lim := spec.Limits
	c := &Container{
		b: b, spec: spec, layers: b.Layers(), created: time.Now(),
		ended: make(chan struct{}), done: make(chan struct{}), exitSeen: make(chan struct{}),
	}
	c.stdout.Set(stdout)
	c.stderr.Set(stderr)
	lifetime := max(lim.Timeout, spec.Lifetime)
	pids := int64(lim.Pids)
	init := false // the relay is the init: see relay.py
	// tmpfs mounts (nosuid, nodev, noexec). Docker gives a tmpfs the mode
	// of the directory it covers, hence the modes of the image's /tmp and
	// of devDir's shm (1777).
	tmpfs := func(target string, size int64, mode os.FileMode, ro bool) mount.Mount {
		return mount.Mount{Type: mount.TypeTmpfs, Target: target, ReadOnly: ro, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: size, Mode: mode}}
	}
	mounts = append(mounts,
		tmpfs("/tmp", lim.TmpfsBytes, 0o1777, false),
		tmpfs("/dev/shm", lim.TmpfsBytes, 0o1777, false),
		// Replaces Docker's cgroup mount: nothing of the host's cgroups.
		tmpfs("/sys/fs/cgroup", 4096, 0o700, true))
	if b.devDir != "" {
		mounts = append(mounts,
			mount.Mount{Type: mount.TypeBind, Source: b.devDir, Target: "/dev", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}},
			mount.Mount{Type: mount.TypeBind, Source: b.sysDir, Target: "/sys", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}},
			mount.Mount{Type: mount.TypeBind, Source: b.hostsFile, Target: "/etc/hosts", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}})
	}
	devTmpfs := map[string]string{}
	if b.devDir == "" {
		devTmpfs["/dev"] = "rw,dev,nosuid,noexec,size=64k,mode=755"
		mounts = append(mounts, tmpfs("/sys", 4096, 0o700, true))
	}
	hc := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		Tmpfs:          devTmpfs,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges", b.seccomp},
		IpcMode:        container.IPCModePrivate,
		CgroupnsMode:   container.CgroupnsModePrivate,
		Init:           &init,
		MaskedPaths:    maskedPaths,
		ReadonlyPaths:  readonlyPaths,
		Runtime:        b.cfg.Runtime,
		Mounts:         mounts,
		LogConfig:      container.LogConfig{Type: "none"},
		Resources: container.Resources{
			Memory:     lim.MemoryBytes,
			MemorySwap: lim.MemoryBytes, // no swap
			CPUPeriod:  cpuPeriod,
			CPUQuota:   int64(lim.CPU * cpuPeriod),
			PidsLimit:  &pids,
			Ulimits: []*container.Ulimit{
				{Name: "core", Soft: 0, Hard: 0},
				{Name: "nofile", Soft: 1024, Hard: 1024},
				{Name: "fsize", Soft: lim.TmpfsBytes, Hard: lim.TmpfsBytes},
				{Name: "cpu", Soft: int64(lifetime.Seconds()) + 2, Hard: int64(lifetime.Seconds()) + 2},
				{Name: "memlock", Soft: 64 << 10, Hard: 64 << 10},
				{Name: "msgqueue", Soft: 0, Hard: 0},
				{Name: "stack", Soft: 8 << 20, Hard: 8 << 20},
				{Name: "rtprio", Soft: 0, Hard: 0},
			},
		},
	}
	cfg := &container.Config{
		Image:           b.image,
		User:            fmt.Sprintf("%d:%d", b.cfg.UID, b.cfg.GID),
		Hostname:        "pybox",
		WorkingDir:      "/tmp",
		Env:             env,
		Entrypoint:      []string{"python3", "-I", "-S", "-B", relayPath, python, b.inner},
		Cmd:             nil,
		Labels:          b.labels(),
		NetworkDisabled: true,
		AttachStdin:     true,
		AttachStdout:    true,
		AttachStderr:    true,
		OpenStdin:       true,
		StdinOnce:       true,
	}
	created, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return nil, b.apiError("creating the container", err)
	}
	c.id = created.ID
	c.log = b.log.With("sandbox_id", c.id[:12])
	c.oom = b.oomChan(c.id)
	att, err := b.cli.ContainerAttach(ctx, c.id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		c.remove()
		return nil, b.apiError("attaching to the container", err)
	}
	c.att = att.HijackedResponse
	c.replies, c.repW = io.Pipe()
	go c.read()
	if _, err := b.cli.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		c.att.Close()
		<-c.ended
		<-c.done
		return nil, b.apiError("starting the container", err)
	}
	c.started = time.Now()
	if b.local {
		// Find the init's pid and cgroup now, while the sandbox is being
		// made ahead: the counters are read when the program ends, and
		// a request must not wait for an inspect.
		c.hostCgroup()
	}
	c.log.Debug("container started", "us", c.started.Sub(c.created).Microseconds())
	return c, nil
}

// env is the program's whole environment besides what the image sets
// (Docker merges the image's Env in; pybox's names win).
var env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8", "TZ=UTC", "MPLBACKEND=Agg",
	"PYTHONDONTWRITEBYTECODE=1",
}

// apiError wraps a daemon error; one that says the daemon is unreachable
// is sandbox.ErrUnavailable.
func (b *Backend) apiError(what string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%w: docker backend: %s: the daemon at %s does not answer: %v", sandbox.ErrUnavailable, what, b.cli.DaemonHost(), err)
	}
	return fmt.Errorf("docker backend: %s: %w", what, err)
}

// Container is one sandbox: a container whose relay runs the driver, the
// API connection attached to its stdio, and its teardown. It ends when
// the driver ends (its status is reported by the relay), when it is
// killed, or when the daemon goes away; Wait then returns the Result, and
// the container is removed (then Done is closed). All methods are safe for
// concurrent use.
type Container struct {
	b      *Backend
	id     string
	spec   *sandbox.Spec
	layers sandbox.Layers
	log    *slog.Logger
	att    client.HijackedResponse
	oom    chan struct{}

	wmu     sync.Mutex // one message at a time to the relay
	wclosed bool
	replies *io.PipeReader // the driver's reply bytes
	repW    *io.PipeWriter

	stdout, stderr sandbox.Sink

	mu       sync.Mutex
	reason   sandbox.Status // why pybox killed it, if it did
	killedAt time.Time
	deadline sandbox.Deadline
	running  time.Time // the program was sent (one-shots)
	exit     waitStatus
	exitAt   time.Time
	exitSeen chan struct{}
	relayErr strings.Builder // what the relay or docker's init said on stderr
	cg       *hostCgroup
	cgTried  bool
	pid      int

	created, started time.Time
	ended            chan struct{} // the Result is known
	done             chan struct{} // and the container is removed
	result           *sandbox.Result
	err              error
}

// send writes one message to the relay.
func (c *Container) send(kind byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return errors.New("the sandbox's input is closed")
	}
	buf := make([]byte, 5, 5+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:], uint32(len(payload)))
	_, err := c.att.Conn.Write(append(buf, payload...))
	return err
}

// quit tells the relay to end the sandbox, and closes its input.
func (c *Container) quit() {
	c.send('Q', nil) //nolint:errcheck // a relay that is gone has quit
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.wclosed {
		c.wclosed = true
		c.att.CloseWrite() //nolint:errcheck
	}
}

// requests is the request side of Control: each Write goes to the driver's
// fd 3, Close closes it.
type requests struct{ c *Container }

func (r requests) Write(p []byte) (int, error) {
	if err := r.c.send('D', p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r requests) Close() error { return r.c.send('C', nil) }

// Control returns the driver's request (write) and reply (read) streams.
func (c *Container) Control() (io.WriteCloser, io.ReadCloser) { return requests{c}, c.replies }

// SetOutput replaces where the program's stdout and stderr go from now on.
func (c *Container) SetOutput(stdout, stderr io.Writer) {
	c.stdout.Set(stdout)
	c.stderr.Set(stderr)
}

// SetDeadline (re)arms the wall-clock deadline: d from now, the container
// is killed with status timeout. d <= 0 disarms it.
func (c *Container) SetDeadline(d time.Duration) {
	c.deadline.Set(d, func() { c.Kill(sandbox.StatusTimeout) })
}

func (c *Container) markRunning() {
	c.mu.Lock()
	c.running = time.Now()
	c.mu.Unlock()
}

// Kill ends the container: SIGKILL to its init, which takes the pid
// namespace with it. The first reason given is the one reported.
func (c *Container) Kill(reason sandbox.Status) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason, c.killedAt = reason, time.Now()
	}
	c.mu.Unlock()
	select {
	case <-c.ended:
		return
	default:
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.b.cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			c.log.Debug("killing container", "err", err)
			// The daemon may be gone; the connection's end ends the
			// sandbox from our side.
			c.att.Close()
		}
	}()
}

// Usage reads the container's counters so far: from cgroupfs for a local
// daemon, else from the stats API.
func (c *Container) Usage() (sandbox.Usage, error) {
	if cg := c.hostCgroup(); cg != nil {
		if u, err := cg.usage(); err == nil {
			select {
			case <-c.oom:
				u.OOMKills = max(u.OOMKills, 1)
			default:
			}
			return u, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.b.cli.ContainerStats(ctx, c.id, client.ContainerStatsOptions{})
	if err != nil {
		return sandbox.Usage{}, err
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return sandbox.Usage{}, err
	}
	u := sandbox.Usage{CPU: time.Duration(st.CPUStats.CPUUsage.TotalUsage), PeakMemoryBytes: int64(st.MemoryStats.MaxUsage)}
	if u.PeakMemoryBytes == 0 {
		u.PeakMemoryBytes = int64(st.MemoryStats.Usage) // cgroup v2 has no peak in the API: the latest usage
	}
	select {
	case <-c.oom:
		u.OOMKills = 1
	default:
	}
	return u, nil
}

// hostCgroup finds the container's cgroup on this host, once.
func (c *Container) hostCgroup() *hostCgroup {
	if !c.b.local {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cgTried {
		c.cgTried = true
		if pid := c.initPIDLocked(); pid > 0 {
			c.cg, _ = openHostCgroup(pid)
		}
	}
	return c.cg
}

func (c *Container) initPIDLocked() int {
	if c.pid == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if res, err := c.b.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{}); err == nil && res.Container.State != nil {
			c.pid = res.Container.State.Pid
		}
		if c.pid == 0 {
			c.pid = -1
		}
	}
	return c.pid
}

// RootPath is where the host reaches the container's root filesystem:
// /proc/PID/root of its init, as for a native sandbox, so that the
// workspace code opens RootPath()+"/tmp" (the container's tmpfs) beneath
// it without following links. This needs the daemon on this host (as
// root); for a remote daemon it names nothing, and file operations fail.
// Valid until Wait returns.
func (c *Container) RootPath() string {
	c.mu.Lock()
	pid := c.initPIDLocked()
	c.mu.Unlock()
	return fmt.Sprintf("/proc/%d/root", pid)
}

// FileOwner is the uid and gid the program runs as, for files the host
// places in its workspace.
func (c *Container) FileOwner() (uid, gid int) { return c.b.cfg.UID, c.b.cfg.GID }

// Layers reports the isolation applied to this container.
func (c *Container) Layers() sandbox.Layers { return c.layers }

// Done is closed once the container has ended and been removed.
func (c *Container) Done() <-chan struct{} { return c.done }

// Wait blocks until the sandbox has ended and returns how; the container's
// removal may still be under way (see Done).
func (c *Container) Wait() (*sandbox.Result, error) {
	<-c.ended
	return c.result, c.err
}

// ID is the container's id.
func (c *Container) ID() string { return c.id }

// read demultiplexes the attach stream until it ends, then accounts for
// the sandbox and removes it.
func (c *Container) read() {
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, c.errSink(), c.att.Reader)
		pw.CloseWithError(err)
	}()
	lim := c.spec.Limits
	var head [5]byte
	buf := make([]byte, 64<<10)
	var streamErr error
	for {
		if _, err := io.ReadFull(pr, head[:]); err != nil {
			if err != io.EOF {
				streamErr = err
			}
			break
		}
		n := int(binary.BigEndian.Uint32(head[1:]))
		if n > len(buf) {
			if n > driver.MaxFrame {
				streamErr = fmt.Errorf("relay message of %d bytes", n)
				break
			}
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(pr, buf[:n]); err != nil {
			streamErr = err
			break
		}
		p := buf[:n]
		switch head[0] {
		case 'O':
			if c.stdout.Pass(p) > outputKillFactor*lim.MaxOutputBytes {
				c.Kill(sandbox.StatusOutputLimit)
			}
		case 'E':
			if c.stderr.Pass(p) > outputKillFactor*lim.MaxOutputBytes {
				c.Kill(sandbox.StatusOutputLimit)
			}
		case 'R':
			c.repW.Write(p) //nolint:errcheck // the reader went away: the session is over
		case 'X':
			ws, err := strconv.Atoi(string(p))
			if err != nil {
				streamErr = fmt.Errorf("bad exit report %q", p)
				break
			}
			c.mu.Lock()
			c.exit, c.exitAt = waitStatus(ws), time.Now()
			c.mu.Unlock()
			close(c.exitSeen)
			c.repW.Close()
			// The relay waits for Q: read the counters while the
			// container's cgroup is still there.
			c.result, c.err = c.finish(nil)
			close(c.ended)
			c.quit()
			io.Copy(io.Discard, pr) //nolint:errcheck
			c.att.Close()
			c.teardown()
			return
		default:
			streamErr = fmt.Errorf("unknown relay message %q", head[0])
		}
		if streamErr != nil {
			break
		}
	}
	// The stream ended without an exit report: the container was killed,
	// its relay died, or the daemon went away.
	c.repW.CloseWithError(io.ErrUnexpectedEOF)
	c.att.Close()
	c.result, c.err = c.finish(streamErr)
	close(c.ended)
	c.teardown()
}

type errSink struct{ c *Container }

func (c *Container) errSink() errSink { return errSink{c} }

func (e errSink) Write(p []byte) (int, error) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if e.c.relayErr.Len() < 4096 {
		e.c.relayErr.Write(p)
	}
	return len(p), nil
}

// teardown removes the container and closes Done.
func (c *Container) teardown() {
	c.SetDeadline(0)
	c.remove()
	c.b.forget(c.id)
	close(c.done)
}

func (c *Container) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		_, err := c.b.cli.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			return
		}
		// "removal already in progress", or a daemon that is restarting:
		// try again, then leave it to the next pybox's sweep.
		if i >= 20 || ctx.Err() != nil {
			c.log.Warn("removing container", "err", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finish turns how the sandbox ended into a Result. streamErr is why the
// stream ended without an exit report, if it did.
func (c *Container) finish(streamErr error) (*sandbox.Result, error) {
	end := time.Now()
	c.mu.Lock()
	reason, killedAt, running := c.reason, c.killedAt, c.running
	c.mu.Unlock()
	var ws waitStatus
	haveExit := false
	select {
	case <-c.exitSeen:
		haveExit = true
		ws = c.exit
		end = c.exitAt
		if reason != "" && c.exitAt.Before(killedAt) {
			reason = "" // the program had ended before pybox killed the rest
		}
	default:
	}
	stdout, _ := c.stdout.Get().(*sandbox.Capture)
	stderr, _ := c.stderr.Get().(*sandbox.Capture)
	for _, cp := range []*sandbox.Capture{stdout, stderr} {
		if cp != nil {
			cp.FlushLive()
		}
	}
	if !haveExit && reason == "" {
		// Not killed by pybox: by the OOM killer (the relay can be its
		// victim too), by the program (which may kill its relay), or the
		// daemon is gone.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ins, err := c.b.cli.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
		if err != nil {
			return nil, c.b.apiError(fmt.Sprintf("the sandbox's connection ended (%v); inspecting it", streamErr), err)
		}
		if st := ins.Container.State; st != nil && st.OOMKilled {
			c.noteOOM()
		}
		ws = waitStatus(sigKILL)
	}
	if !haveExit && reason != "" {
		ws = waitStatus(sigKILL) // pybox killed it
	}
	t0 := c.started
	if !running.IsZero() {
		t0 = running
	}
	res := &sandbox.Result{WallMS: sandbox.Millis(end.Sub(t0)), Layers: c.layers}
	if !running.IsZero() {
		res.SetupMS = sandbox.Millis(running.Sub(c.created))
		res.WallMS = sandbox.Millis(end.Sub(c.created))
	}
	res.SetOutput(stdout, stderr)
	var oomKills int64
	if haveExit {
		u, err := c.Usage()
		if err != nil {
			c.log.Warn("reading container stats", "err", err)
		}
		res.PeakMemoryBytes, res.CPUMS, oomKills = u.PeakMemoryBytes, sandbox.Millis(u.CPU), u.OOMKills
		if oomKills == 0 && reason == "" && ws.Signaled() && ws.Signal() == sigKILL {
			// Nobody of ours killed it: the OOM killer, most likely, whose
			// event may trail the relay's report.
			select {
			case <-c.oom:
				oomKills = 1
			case <-time.After(time.Second):
			}
		}
	} else {
		select {
		case <-c.oom:
			oomKills = 1
		default:
		}
	}
	classify(res, ws, reason, oomKills, c.spec.Limits)
	if !haveExit && reason == "" && oomKills == 0 {
		c.mu.Lock()
		said := strings.TrimSpace(c.relayErr.String())
		c.mu.Unlock()
		res.Status = sandbox.StatusKilled
		res.Message = "the sandbox ended without its relay's report: the program killed pybox's relay, or the container was stopped from outside"
		if said != "" {
			res.Message += ": " + sandbox.FirstLine(said)
		}
	}
	c.log.Debug("container finished", "status", res.Status, "wall_ms", res.WallMS)
	return res, nil
}

func (c *Container) noteOOM() {
	select {
	case <-c.oom:
	default:
		c.b.noteOOM(c.id)
	}
}

// classify fills status, exit code, signal and message from the relay's
// report of the program's wait status.
func classify(res *sandbox.Result, ws waitStatus, reason sandbox.Status, oomKills int64, lim sandbox.Limits) {
	if ws.Signaled() {
		res.Ended(128+ws.Signal(), ws.signalName(), reason, oomKills, outputKillFactor, lim)
		return
	}
	res.Ended(ws.ExitStatus(), "", reason, oomKills, outputKillFactor, lim)
}
