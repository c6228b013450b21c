package workspace

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Modes of what the host creates, set with fchmod so the host's umask does
// not decide them.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

// Write stores what r yields at p, creating missing parent directories.
// It replaces whatever had the name, a link included, atomically: the
// data goes to a temporary file that is renamed over the name once
// complete. It returns the number of bytes stored.
//
// At most maxBytes are accepted; a longer upload is ErrTooLarge. A full
// workspace is ErrNoSpace, a directory with the name is ErrIsDir. On any
// error nothing is left behind: no temporary file, and no directory that
// Write created.
func (d *Dir) Write(p string, r io.Reader, maxBytes int64) (int64, error) {
	if err := CheckPath(p); err != nil {
		return 0, err
	}
	var n int64
	err := d.asOwner(func() error {
		dir, base := split(p)
		parent, made, err := d.mkdirAll(p, dir)
		if err != nil {
			return err
		}
		n, err = d.writeIn(parent, p, base, r, maxBytes)
		unix.Close(parent)
		if err != nil {
			d.unmake(made)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// writeIn writes the file base in the directory parent; p is for errors.
func (d *Dir) writeIn(parent int, p, base string, r io.Reader, maxBytes int64) (int64, error) {
	// Refuse a directory in the way before taking the upload, not after.
	var st unix.Stat_t
	if unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return 0, isDirError(p)
	}

	f, tmp, err := createTemp(parent)
	if err != nil {
		return 0, mapErr("write", p, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			unix.Unlinkat(parent, tmp, 0)
		}
	}()

	w := &fileWriter{f: f}
	n, err := io.Copy(w, io.LimitReader(r, maxBytes))
	switch {
	case w.err != nil:
		return 0, mapErr("write", p, w.err)
	case err != nil:
		return 0, &fs.PathError{Op: "write", Path: p, Err: fmt.Errorf("reading the upload: %w", err)}
	}
	// One byte more than allowed means the upload is too large; it is
	// probed, not written, so that the limit and not the disk decides.
	if k, err := io.ReadFull(r, make([]byte, 1)); k > 0 {
		return 0, pathError("write", p, ErrTooLarge, "upload is larger than the limit of %d bytes", maxBytes)
	} else if err != io.EOF && err != io.ErrUnexpectedEOF {
		return 0, &fs.PathError{Op: "write", Path: p, Err: fmt.Errorf("reading the upload: %w", err)}
	}

	if d.uid != -1 || d.gid != -1 {
		if err := unix.Fchown(int(f.Fd()), d.uid, d.gid); err != nil {
			return 0, mapErr("write", p, fmt.Errorf("chown: %w", err))
		}
	}
	if err := unix.Fchmod(int(f.Fd()), fileMode); err != nil {
		return 0, mapErr("write", p, fmt.Errorf("chmod: %w", err))
	}
	if err := f.Close(); err != nil {
		return 0, mapErr("write", p, err)
	}
	// rename replaces a link at base rather than following it.
	if err := unix.Renameat(parent, tmp, parent, base); err != nil {
		if errors.Is(err, unix.EISDIR) {
			return 0, isDirError(p)
		}
		return 0, mapErr("write", p, err)
	}
	done = true
	return n, nil
}

func isDirError(p string) error {
	return pathError("write", p, ErrIsDir, "a directory has this name; remove it or choose another name")
}

// fileWriter keeps the file's error apart from the reader's: a full disk
// is ErrNoSpace, a broken upload is the client's.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		w.err = err
	}
	return n, err
}

// createTemp creates a new, empty, hidden file in dir. A random name makes
// a collision (or a sandbox planting the name first) fail O_EXCL only by
// chance, and then another name is tried.
func createTemp(dir int) (*os.File, string, error) {
	for range 8 {
		name := fmt.Sprintf("%s%016x", tempPrefix, rand.Uint64())
		fd, err := openat2(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600, beneath)
		if err == nil {
			return os.NewFile(uintptr(fd), name), name, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, "", err
		}
	}
	return nil, "", unix.EEXIST
}

// mkdirAll opens dir (a checked path or "") below the workspace, creating
// what is missing, and returns its descriptor (O_PATH) and the paths of
// the directories it created, outermost first. p is for errors.
func (d *Dir) mkdirAll(p, dir string) (fd int, made []string, err error) {
	fd, err = d.open(".", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil || dir == "" {
		return fd, nil, err
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			d.unmake(made)
			made = nil
		}
	}()
	comps := strings.Split(dir, "/")
	for i, c := range comps {
		next, err := openat2(fd, c, unix.O_PATH|unix.O_DIRECTORY, 0, beneath)
		if errors.Is(err, unix.ENOENT) {
			var created bool
			next, created, err = d.mkdir(fd, c)
			if created {
				made = append(made, strings.Join(comps[:i+1], "/"))
			}
			if errors.Is(err, unix.EEXIST) {
				// Someone else made it meanwhile; take it as found.
				next, err = openat2(fd, c, unix.O_PATH|unix.O_DIRECTORY, 0, beneath)
			}
		}
		if err != nil {
			return fd, made, mapErr("write", p, err)
		}
		unix.Close(fd)
		fd = next
	}
	return fd, made, nil
}

// mkdir creates the directory name in parent and gives it its owner and
// mode. It opens what it created through the resolve flags, so a link the
// sandbox swaps in meanwhile is refused, and a directory it swaps in is
// merely chowned (it is the sandbox's own). created says whether mkdirat
// succeeded, even if what follows failed.
func (d *Dir) mkdir(parent int, name string) (fd int, created bool, err error) {
	if err := unix.Mkdirat(parent, name, dirMode); err != nil {
		return -1, false, err
	}
	// O_RDONLY, not O_PATH: fchown and fchmod need a real open.
	fd, err = openat2(parent, name, unix.O_RDONLY|unix.O_DIRECTORY, 0, beneath)
	if err != nil {
		return -1, true, err
	}
	if d.uid != -1 || d.gid != -1 {
		err = unix.Fchown(fd, d.uid, d.gid)
	}
	if err == nil {
		err = unix.Fchmod(fd, dirMode)
	}
	if err != nil {
		unix.Close(fd)
		return -1, true, err
	}
	return fd, true, nil
}

// unmake removes directories that a failed Write created, innermost
// first. It removes only empty directories, so a name the sandbox reused
// meanwhile survives.
func (d *Dir) unmake(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		dir, base := split(made[i])
		if dir == "" {
			dir = "."
		}
		fd, err := d.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return
		}
		unix.Unlinkat(fd, base, unix.AT_REMOVEDIR)
		unix.Close(fd)
	}
}
