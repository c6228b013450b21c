package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

var _ sandbox.Backend = (*Backend)(nil)

//go:embed relay.py
var relay string

// Labels on everything pybox makes. Their values are pybox's own (an
// instance id, this host and process), never a request's.
const (
	labelManaged  = "pybox.managed"
	labelInstance = "pybox.instance"
	labelOwner    = "pybox.owner"
	labelRuntime  = "pybox.runtime-of"
)

// Paths inside the runtime image.
const (
	relayPath = "/pybox/.relay.py"
	// mainLink: the driver stores a one-shot's script at /pybox/main.py,
	// as native has it, for multiprocessing's spawn to read again. The root
	// is read-only, so the image holds a link from there to the
	// sandbox's private /dev/shm.
	mainLink   = "/pybox/main.py"
	mainTarget = "/dev/shm/.pybox-main.py"
)

// Backend runs sandboxes as containers of one daemon. It is safe for
// concurrent use; Close stops its event watcher.
type Backend struct {
	cfg      Config
	log      *slog.Logger
	cli      *client.Client
	instance string // this backend's id, in every container's labels
	owner    string // host/pid/start time of this process
	image    string // the runtime image's id
	seccomp  string // the SecurityOpt that installs the profile
	inner    string // native's filter for the relay to install (base64), or ""
	layers   sandbox.Layers
	// local: the daemon shares this host's file systems and processes
	// (a unix socket, the same host name), so the host reaches a
	// container's root and cgroup directly, and binds devDir and sysDir.
	local          bool
	devDir, sysDir string
	hostsFile      string

	mu  sync.Mutex
	oom map[string]chan struct{} // container id → closed on an OOM event

	stop context.CancelFunc
}

// New connects to the daemon, derives the runtime image from cfg.Image
// when needed, removes containers orphaned by a pybox that is gone, and
// starts watching OOM events. A daemon that does not answer, or a missing
// image, is sandbox.ErrUnavailable with the fix in the message.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.UID == 0 {
		cfg.UID = DefaultUID
	}
	if cfg.GID == 0 {
		cfg.GID = cfg.UID
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/pybox/docker"
	}
	if cfg.SeccompErrno == 0 {
		cfg.SeccompErrno = syscall.EPERM
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UID < 0 || cfg.GID < 0 {
		return nil, fmt.Errorf("docker backend: uid %d and gid %d must be unprivileged ids, not root", cfg.UID, cfg.GID)
	}
	if cfg.Runtime != "" && !validName(cfg.Runtime) {
		return nil, fmt.Errorf("docker backend: --docker-runtime %q is not a runtime name", cfg.Runtime)
	}
	cli, err := Connect(cfg.Host)
	if err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, cli: cli, instance: randomID(), owner: ownerLabel(), oom: map[string]chan struct{}{}}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := cli.Info(pctx, client.InfoOptions{})
	if err != nil {
		cli.Close()
		return nil, unavailable(cli, err)
	}
	if cfg.Runtime != "" {
		if _, ok := info.Info.Runtimes[cfg.Runtime]; !ok {
			cli.Close()
			var have []string
			for name := range info.Info.Runtimes {
				have = append(have, name)
			}
			return nil, fmt.Errorf("%w: docker backend: the daemon has no runtime %q (it has %s); install it (gVisor: runsc install) and restart dockerd",
				sandbox.ErrUnavailable, cfg.Runtime, strings.Join(have, ", "))
		}
	}
	b.layers = sandbox.Layers{
		Backend:    "docker",
		Namespaces: []string{"pid", "mount", "net", "ipc", "uts", "cgroup"},
		Seccomp:    true,
		Cgroup:     "v" + info.Info.CgroupVersion,
		HostUID:    cfg.UID,
	}
	for _, opt := range info.Info.SecurityOptions {
		switch {
		case strings.Contains(opt, "name=rootless"):
			b.layers.Rootless = true
		case strings.Contains(opt, "name=userns"):
			b.layers.Namespaces = append(b.layers.Namespaces, "user")
		}
	}
	host, _ := os.Hostname()
	b.local = runtime.GOOS == "linux" && strings.HasPrefix(cli.DaemonHost(), "unix://") && info.Info.Name == host
	if b.local {
		if b.devDir, b.sysDir, b.hostsFile, err = hostDirs(cfg.StateDir); err != nil {
			b.log.Warn("docker backend: no minimal /dev and /sys to bind; containers get tmpfs ones, with /dev/tty and /dev/ptmx", "err", err)
			b.devDir, b.sysDir, b.hostsFile = "", "", ""
		}
	}
	if b.devDir == "" {
		b.layers.Warnings = append(b.layers.Warnings, "docker backend without a local minimal /dev: runc's /dev/tty and /dev/ptmx link are present (inert: no terminal, no devpts)")
	}
	if b.inner, err = innerFilter(info.Info.Architecture, cfg.SeccompErrno); err != nil {
		b.log.Warn("docker backend: no inner seccomp filter; the container's profile alone applies", "err", err)
		b.layers.Warnings = append(b.layers.Warnings, "seccomp: the container's Docker-format profile only (no inner allowlist: "+err.Error()+")")
	}
	if b.seccomp, err = seccompOption(int(cfg.SeccompErrno), b.inner != ""); err != nil {
		cli.Close()
		return nil, err
	}
	if cfg.Runtime == "runsc" {
		b.layers.Warnings = append(b.layers.Warnings, "runtime runsc: gVisor's user-space kernel sits between the program and the host's")
	}
	if b.image, err = b.runtimeImage(pctx); err != nil {
		cli.Close()
		return nil, err
	}
	b.sweep(pctx)
	wctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	go b.watchOOM(wctx)
	return b, nil
}

// Connect returns a client for host ("" means DOCKER_HOST, or the default
// socket). It does not contact the daemon.
func Connect(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: docker backend: %v", sandbox.ErrUnavailable, err)
	}
	return cli, nil
}

// unavailable explains a daemon that did not answer.
func unavailable(cli *client.Client, err error) error {
	return fmt.Errorf("%w: docker backend: the daemon at %s does not answer (%v); start dockerd, or point DOCKER_HOST at it",
		sandbox.ErrUnavailable, cli.DaemonHost(), err)
}

// Close stops watching events and releases the client. Sandboxes still
// running keep their containers until they end.
func (b *Backend) Close() error {
	if b.stop != nil {
		b.stop()
	}
	return b.cli.Close()
}

// Name implements sandbox.Backend.
func (b *Backend) Name() string { return "docker" }

// Layers reports what every container of this backend gets.
func (b *Backend) Layers() sandbox.Layers {
	l := b.layers
	l.Namespaces = append([]string(nil), l.Namespaces...)
	l.Warnings = append([]string(nil), l.Warnings...)
	return l
}

// Image is the runtime image's id.
func (b *Backend) Image() string { return b.image }

func randomID() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail
	return hex.EncodeToString(b[:])
}

// validName accepts what may be a runtime or an interpreter name: no
// separators, options or spaces.
func validName(s string) bool {
	if s == "" || len(s) > 64 || strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+", r)) {
			return false
		}
	}
	return true
}

// runtimeImage returns the id of the image sandboxes run: cfg.Image plus
// /pybox (the relay, the driver, the one-shot script's link), made once
// per base image and pybox build, and tagged by their hash.
func (b *Backend) runtimeImage(ctx context.Context) (string, error) {
	base, err := b.cli.ImageInspect(ctx, b.cfg.Image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("%w: docker backend: image %s not found; build it with `pybox image build` (no registry needed), pull it, or set --docker-image",
				sandbox.ErrUnavailable, b.cfg.Image)
		}
		return "", unavailable(b.cli, err)
	}
	// The program reads its uid as 1000 in its own user namespace (see
	// relay.py), or as the host uid where the kernel refuses one.
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:1000:1000:pybox sandbox:/tmp:/usr/sbin/nologin\n"+
		"sandbox:x:%d:%d:pybox sandbox:/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", b.cfg.UID, b.cfg.GID)
	group := fmt.Sprintf("root:x:0:\nsandbox:x:1000:\nsandbox:x:%d:\nnogroup:x:65534:\n", b.cfg.GID)
	sum := sha256.Sum256([]byte(base.ID + "\x00" + relay + "\x00" + driver.Driver + "\x00" + mainTarget + "\x00" + passwd + group + "\x00" + stripScript))
	tag := "pybox-runtime:" + hex.EncodeToString(sum[:8])
	if img, err := b.cli.ImageInspect(ctx, tag); err == nil {
		return img.ID, nil
	}
	b.log.Info("docker backend: deriving the runtime image", "base", b.cfg.Image, "tag", tag)
	// The image's programs other than the interpreter go, and no file
	// keeps a setuid or setgid bit: the sandbox can run python and nothing
	// else from the image, as in a native sandbox (no shell, no setuid
	// helpers). This runs pybox's own script, once, as the image's root.
	created, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image: base.ID, User: "0:0", Entrypoint: []string{"python3", "-I", "-S", "-c", stripScript}, Cmd: nil,
			NetworkDisabled: true, Labels: b.labels(),
		},
		HostConfig: &container.HostConfig{NetworkMode: "none", LogConfig: container.LogConfig{Type: "none"}},
	})
	if err != nil {
		return "", fmt.Errorf("docker backend: deriving the runtime image: %w", err)
	}
	defer b.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true}) //nolint:errcheck
	waited := b.cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := b.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("docker backend: deriving the runtime image: %w (does %s have python3 on its PATH?)", err, b.cfg.Image)
	}
	select {
	case r := <-waited.Result:
		if r.StatusCode != 0 {
			return "", fmt.Errorf("docker backend: deriving the runtime image: the strip script exited with %d", r.StatusCode)
		}
	case err := <-waited.Error:
		return "", fmt.Errorf("docker backend: deriving the runtime image: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	entries := []tar.Header{
		{Name: "pybox/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now},
		{Name: "pybox/.relay.py", Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(relay)), ModTime: now},
		{Name: "pybox/.driver.py", Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(driver.Driver)), ModTime: now},
		{Name: "pybox/main.py", Typeflag: tar.TypeSymlink, Linkname: mainTarget, Mode: 0o777, ModTime: now},
		// The image's own accounts are no business of the sandbox's (and
		// look like the host's): a synthetic list, as native has.
		{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(passwd)), ModTime: now},
		{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(group)), ModTime: now},
	}
	bodies := map[string]string{"pybox/.relay.py": relay, "pybox/.driver.py": driver.Driver, "etc/passwd": passwd, "etc/group": group}
	for i := range entries {
		if err := tw.WriteHeader(&entries[i]); err != nil {
			return "", err
		}
		if body, ok := bodies[entries[i].Name]; ok {
			tw.Write([]byte(body)) //nolint:errcheck // a bytes.Buffer
		}
	}
	tw.Close()
	if _, err := b.cli.CopyToContainer(ctx, created.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return "", fmt.Errorf("docker backend: deriving the runtime image: copying /pybox: %w", err)
	}
	res, err := b.cli.ContainerCommit(ctx, created.ID, client.ContainerCommitOptions{
		Reference: tag, Comment: "pybox runtime image of " + b.cfg.Image,
		Changes: []string{"LABEL " + labelRuntime + "=" + strconv.Quote(base.ID)},
	})
	if err != nil {
		return "", fmt.Errorf("docker backend: deriving the runtime image: commit: %w", err)
	}
	// Runtime images of older pybox builds are of no further use; one in
	// use by a running pybox is kept by the daemon (the removal fails).
	if old, err := b.cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", labelRuntime)}); err == nil {
		for _, img := range old.Items {
			if img.ID != res.ID {
				b.cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{PruneChildren: true}) //nolint:errcheck // best effort
			}
		}
	}
	return res.ID, nil
}

// stripScript removes every program from the image's PATH directories
// but the interpreters (python*), and every setuid and setgid bit.
const stripScript = `
import os, stat
for d in ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/usr/games", "/usr/local/games"]:
    if os.path.islink(d) or not os.path.isdir(d):
        continue
    for n in os.listdir(d):
        p = os.path.join(d, n)
        if n.startswith("python") or (os.path.isdir(p) and not os.path.islink(p)):
            continue
        os.unlink(p)
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [x for x in dirs if x not in ("proc", "sys", "dev")]
    for f in files:
        p = os.path.join(root, f)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o6000:
            os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o6000)
`

// labels are every container's.
func (b *Backend) labels() map[string]string {
	return map[string]string{labelManaged: "true", labelInstance: b.instance, labelOwner: b.owner}
}

// ownerLabel names this process so that a later pybox on the same host
// can tell whether it is still alive: host name, pid and the pid's start
// time (a reused pid has another).
func ownerLabel() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), startTime(os.Getpid()))
}

// startTime is field 22 of /proc/PID/stat, or "" where there is none.
func startTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 19 {
			return f[19]
		}
	}
	return ""
}

// ownerGone reports whether the owner label names a process of this host
// that no longer runs. Containers of other hosts (a shared daemon) are left
// to their own pybox.
func ownerGone(owner string) bool {
	parts := strings.Split(owner, "/")
	host, _ := os.Hostname()
	if len(parts) != 3 || parts[0] != host {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return false
	}
	return startTime(pid) != parts[2] || parts[2] == ""
}

// sweep removes pybox containers whose pybox is gone (SIGKILLed, or the
// host restarted under a daemon that kept them).
func (b *Backend) sweep(ctx context.Context) int {
	list, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", labelManaged+"=true")})
	if err != nil {
		b.log.Warn("docker backend: listing orphaned containers", "err", err)
		return 0
	}
	n := 0
	for _, c := range list.Items {
		if c.Labels[labelInstance] == b.instance || !ownerGone(c.Labels[labelOwner]) {
			continue
		}
		if _, err := b.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			b.log.Warn("docker backend: removing an orphaned container", "id", c.ID, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		b.log.Info("docker backend: removed orphaned containers", "count", n)
	}
	return n
}

// watchOOM follows the daemon's OOM events for this backend's containers,
// reconnecting after the daemon comes back.
func (b *Backend) watchOOM(ctx context.Context) {
	f := make(client.Filters).Add("type", "container").Add("event", "oom").Add("label", labelInstance+"="+b.instance)
	for first := true; ctx.Err() == nil; first = false {
		ev := b.cli.Events(ctx, client.EventsListOptions{Filters: f})
		if !first {
			// The stream broke: the daemon may have restarted, stopping
			// every container (their sandboxes have ended with an
			// error). Remove what it left of ours.
			b.sweepStopped(ctx)
		}
	read:
		for {
			select {
			case m, ok := <-ev.Messages:
				if !ok {
					break read
				}
				b.noteOOM(m.Actor.ID)
			case err := <-ev.Err:
				if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
					b.log.Debug("docker backend: event stream ended", "err", err)
				}
				break read
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

// sweepStopped removes this backend's containers that are no longer
// running: what a daemon restart leaves (it stops them, and they stay).
func (b *Backend) sweepStopped(ctx context.Context) {
	list, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", labelInstance+"="+b.instance).Add("status", "exited").Add("status", "dead").Add("status", "created")})
	if err != nil {
		return
	}
	for _, c := range list.Items {
		if c.State == "created" && time.Since(time.Unix(c.Created, 0)) < time.Minute {
			continue // being started right now
		}
		b.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}) //nolint:errcheck // the next sweep retries
	}
}

func (b *Backend) noteOOM(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.oom[id]; ok {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// oomChan is closed when an OOM event arrives for container id.
func (b *Backend) oomChan(id string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.oom[id]
	if !ok {
		ch = make(chan struct{})
		b.oom[id] = ch
	}
	return ch
}

func (b *Backend) forget(id string) {
	b.mu.Lock()
	delete(b.oom, id)
	b.mu.Unlock()
}
