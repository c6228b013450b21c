package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"

	"golang.org/x/sys/unix"
)

// beneath is how every path inside the workspace is resolved; the package
// comment says why each flag is there.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// Dir is a sandbox's workspace, held by a descriptor: it stays the same
// directory whatever the sandbox renames or mounts, and keeps its
// filesystem alive until Close. Its methods may be called from several
// goroutines at once, but not concurrently with Close.
type Dir struct {
	fd       int // O_PATH directory
	uid, gid int
}

// Open opens the workspace sub (e.g. "tmp") below root (e.g.
// "/proc/123/root", the sandbox's root as the host sees it); an empty sub
// makes root itself the workspace.
//
// root is the host's own path and is followed like any path, which is what
// /proc/PID/root needs: it is a magic link that must be followed once to
// enter the sandbox's mount namespace. The caller must know that PID is
// still the sandbox (its child, not yet reaped).
//
// sub belongs to the sandbox's tree and is resolved without following
// links or leaving root, but may cross mount points: the workspace is
// normally a tmpfs of its own mounted at /tmp, and entering it is crossing
// one. From the workspace down, no mount is crossed.
//
// uid and gid are the host ids that new files and directories are given,
// so that the sandboxed program owns what is uploaded; -1 leaves that id as
// created (an unprivileged host cannot give files away).
func Open(root, sub string, uid, gid int) (*Dir, error) {
	if sub == "" {
		sub = "." // root is the workspace
	} else if err := CheckPath(sub); err != nil {
		return nil, fmt.Errorf("workspace below %s: %w", root, err)
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	fd, err := openat2(rfd, sub, unix.O_PATH|unix.O_DIRECTORY, 0,
		unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if errors.Is(err, unix.ENOSYS) {
		return nil, fmt.Errorf("opening workspace %s below %s: openat2 is not available (Linux 5.6 or later is needed), and without it paths in the sandbox cannot be resolved safely: %w",
			sub, root, errors.ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("opening workspace below %s: %w", root, mapErr("open", sub, err))
	}
	return &Dir{fd: fd, uid: uid, gid: gid}, nil
}

// Close releases the workspace's descriptor.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// openat2 opens path below dirfd, retrying an open a signal interrupted.
// O_NOCTTY keeps a terminal the
// sandbox planted from becoming the host's; openat2 refuses it with O_PATH.
func openat2(dirfd int, path string, flags int, mode uint32, resolve uint64) (int, error) {
	flags |= unix.O_CLOEXEC
	if flags&unix.O_PATH == 0 {
		flags |= unix.O_NOCTTY
	}
	how := unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode), Resolve: resolve}
	for {
		fd, err := unix.Openat2(dirfd, path, &how)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// open opens p (a checked path, or "." for the top) below the workspace.
func (d *Dir) open(p string, flags int, mode uint32) (int, error) {
	return openat2(d.fd, p, flags, mode, beneath)
}

// mapErr turns an errno into one of the package's sentinels, keeping the
// path the client gave.
func mapErr(op, path string, err error) error {
	var sentinel error
	switch {
	case errors.Is(err, unix.ENOENT):
		sentinel = ErrNotFound
	case errors.Is(err, unix.ENOTDIR):
		sentinel = ErrNotDir
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		sentinel = ErrLink
	case errors.Is(err, unix.EISDIR):
		sentinel = ErrIsDir
	case errors.Is(err, unix.ENOTEMPTY):
		sentinel = ErrNotEmpty
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT), errors.Is(err, unix.EFBIG):
		sentinel = ErrNoSpace
	case errors.Is(err, unix.EWOULDBLOCK):
		// O_NONBLOCK open of a file the sandbox holds a lease on.
		return pathError(op, path, err, "the sandbox holds a lease on the file; try again later")
	default:
		return &fs.PathError{Op: op, Path: path, Err: err}
	}
	return &fs.PathError{Op: op, Path: path, Err: sentinel}
}

// asOwner runs fn on a thread whose filesystem ids are the workspace
// owner's. A sandbox's tmpfs belongs to its user namespace, where host root
// is not mapped: the kernel refuses (EOVERFLOW) to create an inode whose
// owner it cannot map, so the new file or directory must be created with
// the owner's ids rather than chowned afterwards. The thread keeps root's
// other powers: setfsuid drops the file capabilities, which are raised
// again, so permission checks stay those of the host.
func (d *Dir) asOwner(fn func() error) error {
	if d.uid < 0 || d.gid < 0 || unix.Geteuid() != 0 {
		return fn()
	}
	runtime.LockOSThread()
	prevGID, _ := unix.SetfsgidRetGid(d.gid)
	prevUID, _ := unix.SetfsuidRetUid(d.uid)
	restore := func() bool {
		unix.SetfsuidRetUid(prevUID) //nolint:errcheck // checked below
		unix.SetfsgidRetGid(prevGID) //nolint:errcheck
		uid, _ := unix.SetfsuidRetUid(-1)
		gid, _ := unix.SetfsgidRetGid(-1)
		return uid == prevUID && gid == prevGID
	}
	defer func() {
		// A thread whose ids could not be restored is left locked, so
		// that it ends with this goroutine instead of serving others.
		if restore() {
			runtime.UnlockOSThread()
		}
	}()
	if uid, _ := unix.SetfsuidRetUid(-1); uid != d.uid {
		return fmt.Errorf("switching to the workspace owner %d: setfsuid refused", d.uid)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return fn()
}
