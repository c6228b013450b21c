package workspace

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OpenFile opens the regular file p for reading. Anything else is
// ErrNotRegular (a FIFO among them, without blocking), a link on the way is
// ErrLink, and a file larger than maxBytes is ErrTooLarge.
//
// The sandbox may still append to the file after the size check: read at
// most maxBytes from it (io.LimitReader), not to EOF.
func (d *Dir) OpenFile(p string, maxBytes int64) (*os.File, fs.FileInfo, error) {
	if err := CheckPath(p); err != nil {
		return nil, nil, err
	}
	fd, err := d.open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENXIO) { // open(2) of a unix socket
		return nil, nil, pathError("open", p, ErrNotRegular, "not a regular file but a socket")
	}
	if err != nil {
		return nil, nil, mapErr("open", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, mapErr("open", p, err)
	}
	if kind := kindOf(st.Mode); kind != "file" {
		unix.Close(fd)
		return nil, nil, pathError("open", p, ErrNotRegular, "not a regular file but a %s", kind)
	}
	if st.Size > maxBytes {
		unix.Close(fd)
		return nil, nil, pathError("open", p, ErrTooLarge, "file is %d bytes; the limit is %d", st.Size, maxBytes)
	}
	// O_NONBLOCK has done its work in open(2); reads of a regular file
	// do not use it, and the os package expects a blocking descriptor.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, mapErr("open", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, mapErr("open", p, err)
	}
	return f, fi, nil
}

// kindOf names a file type for errors: what the client is told it met.
func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	}
	return "special file"
}

// Remove removes the file, link or empty directory p. A link is removed,
// never what it points to.
func (d *Dir) Remove(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	dir, base := split(p)
	if dir == "" {
		dir = "."
	}
	parent, err := d.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return mapErr("remove", p, err)
	}
	defer unix.Close(parent)
	// unlinkat never follows the last component; EISDIR says it is a
	// directory, which only AT_REMOVEDIR removes.
	err = d.asOwner(func() error {
		err := unix.Unlinkat(parent, base, 0)
		if errors.Is(err, unix.EISDIR) {
			err = unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
		}
		return err
	})
	if errors.Is(err, unix.EEXIST) { // rmdir's other "not empty"
		err = unix.ENOTEMPTY
	}
	if err != nil {
		return mapErr("remove", p, err)
	}
	return nil
}

// List returns what is below p ("" for the whole workspace), walked
// without following links or crossing mounts, sorted by path. It stops at
// maxEntries entries or MaxDepth levels and then says truncated; which
// entries a truncated list holds is not specified.
//
// The sandbox may change the tree during the walk: a name that vanishes
// is left out, and a directory that turns into a link is listed but not
// entered.
func (d *Dir) List(p string, maxEntries int) (entries []Entry, truncated bool, err error) {
	dir, depth := ".", 0
	if p != "" {
		if err := CheckPath(p); err != nil {
			return nil, false, err
		}
		dir, depth = p, strings.Count(p, "/")+1
	}
	fd, err := d.open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, false, mapErr("list", p, err)
	}
	l := &lister{max: max(maxEntries, 0)}
	if err := l.walk(fd, p, depth); err != nil {
		return nil, false, err
	}
	slices.SortFunc(l.entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return l.entries, l.truncated, nil
}

type lister struct {
	entries   []Entry
	max       int
	truncated bool
}

// walk lists the directory fd, whose path is rel and whose depth is the
// number of components of rel. It closes fd.
func (l *lister) walk(fd int, rel string, depth int) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if depth >= MaxDepth {
		// Deeper than a client can name: say so only if there is
		// something to miss.
		if names, _ := f.Readdirnames(1); len(names) > 0 {
			l.truncated = true
		}
		return nil
	}
	// Read one name more than may still be listed: a directory of a
	// million names costs no more than the list can hold.
	budget := l.max - len(l.entries)
	names, err := f.Readdirnames(budget + 1)
	if err != nil && err != io.EOF {
		return mapErr("list", rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		if len(l.entries) >= l.max {
			l.truncated = true
			return nil
		}
		e, isDir, err := stat(fd, rel, name)
		if errors.Is(err, unix.ENOENT) {
			continue // removed since it was read
		}
		if err != nil {
			return mapErr("list", e.Path, err)
		}
		l.entries = append(l.entries, e)
		if !isDir {
			continue
		}
		sub, err := openat2(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0, beneath)
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP),
			errors.Is(err, unix.EXDEV), errors.Is(err, unix.EACCES):
			// Gone, swapped for a file or link, a mount, or closed to
			// an unprivileged host: listed, not entered.
			continue
		case err != nil:
			return mapErr("list", e.Path, err)
		}
		if err := l.walk(sub, e.Path, depth+1); err != nil {
			return err
		}
	}
	if len(names) > budget {
		l.truncated = true // names were left unread
	}
	return nil
}

// stat describes name in the directory fd without following it.
func stat(fd int, rel, name string) (e Entry, isDir bool, err error) {
	e.Path = name
	if rel != "" {
		e.Path = rel + "/" + name
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return e, false, err
	}
	e.Mode = fs.FileMode(st.Mode & 0o777)
	e.ModTime = time.Unix(st.Mtim.Unix())
	switch kindOf(st.Mode) {
	case "file":
		e.Type, e.Size = "file", st.Size
	case "directory":
		e.Type, isDir = "dir", true
	case "symlink":
		e.Type = "symlink"
		buf := make([]byte, unix.PathMax)
		if n, err := unix.Readlinkat(fd, name, buf); err == nil {
			e.Target = string(buf[:n])
		}
	default:
		e.Type = "other"
	}
	return e, isDir, nil
}
