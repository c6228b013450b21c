// Package workspace lets the host upload, list, download and remove files
// in a sandbox's workspace while the sandboxed program may be changing it
// underneath: it never follows a link the sandbox planted, never blocks on
// a special file and never touches anything outside the workspace.
//
// Every path is resolved by the kernel, with openat2(2), relative to a
// descriptor of the workspace; no path below it is ever joined into a
// string and handed to a path-based call. The resolve flags each close a
// way out:
//
//   - RESOLVE_NO_SYMLINKS refuses a symbolic link in any component, final
//     or intermediate. A sandbox that turns "data" into a link to /etc, even
//     between two of the host's calls, cannot make an upload of
//     "data/passwd" land in the host's /etc: the symlink-exchange race of
//     docker cp (CVE-2018-15664).
//   - RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd-style links, which jump
//     anywhere without being resolved as text. NO_SYMLINKS implies it; it is
//     stated so that relaxing one can never silently drop the other.
//   - RESOLVE_NO_XDEV refuses to cross a mount point, so a mount the sandbox
//     makes inside its workspace cannot lead the host into another tree.
//   - RESOLVE_BENEATH refuses absolute paths and ".." above the workspace.
//     CheckPath refuses both first, with a message a client can act on; the
//     flag is the kernel's guarantee behind it.
//
// A link or mount met on the way is ErrLink (ELOOP, EXDEV). If the kernel
// has no openat2 (before Linux 5.6), Open fails: there is no fallback to a
// walk that could be raced.
//
// Uploads are written to a hidden temporary file, created with
// O_CREAT|O_EXCL (which never follows a link) in the final directory, and
// renamed over the name. rename(2) replaces whatever has the name, a
// planted symlink or hard link included, instead of writing through it, and
// nobody sees half an upload.
//
// Downloads open with O_NONBLOCK, so that a FIFO the sandbox planted cannot
// block the host in open(2) (a FIFO opened for reading waits for a writer)
// nor a lease the sandbox took stall it for the lease-break time; fstat
// must then show a regular file before a byte is read.
//
// Hard links need no defence of their own: link(2) does not cross
// filesystems and RESOLVE_NO_XDEV keeps the host on the workspace's, so a
// hard link in the workspace names a file the sandbox could reach anyway.
package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// Limits on client-supplied paths. MaxDepth also bounds List, so that
// anything that can be uploaded can be listed.
const (
	MaxPathLen = 4096 // bytes, as PATH_MAX
	MaxNameLen = 255  // bytes per component, as NAME_MAX
	MaxDepth   = 64   // components
)

// tempPrefix names uploads in progress. CheckPath refuses it so that a
// client cannot reach a half-written file, and List hides it.
const tempPrefix = ".pybox-upload-"

// Errors, checked with errors.Is. The errors returned are *fs.PathError
// naming the operation and the client's path; their Err wraps one of
// these.
var (
	ErrInvalidPath = errors.New("invalid path")
	ErrNotFound    = errors.New("no such file or directory")
	ErrNotDir      = errors.New("not a directory")
	ErrIsDir       = errors.New("is a directory")
	ErrNotEmpty    = errors.New("directory not empty")
	ErrNotRegular  = errors.New("not a regular file")
	ErrTooLarge    = errors.New("file too large")
	ErrNoSpace     = errors.New("no space left in the workspace")
	ErrLink        = errors.New("the path goes through a symbolic link or mount point, which the host never follows")
)

// Entry describes one name found by List.
type Entry struct {
	Path    string      `json:"path"` // slash-separated, relative to the workspace
	Type    string      `json:"type"` // "file", "dir", "symlink" or "other"
	Size    int64       `json:"size"` // files only
	Mode    fs.FileMode `json:"mode"` // permission bits
	ModTime time.Time   `json:"mtime"`
	// Target is a symlink's text as the sandbox wrote it: never resolved,
	// and not necessarily valid UTF-8.
	Target string `json:"target,omitempty"`
}

// detail is a sentinel with a message for this occurrence.
type detail struct {
	sentinel error
	msg      string
}

func (e *detail) Error() string { return e.msg }
func (e *detail) Unwrap() error { return e.sentinel }

func pathError(op, path string, sentinel error, format string, args ...any) error {
	return &fs.PathError{Op: op, Path: path, Err: &detail{sentinel, fmt.Sprintf(format, args...)}}
}

// CheckPath reports whether p is a path a client may name in the
// workspace: relative, without "." or ".." or empty components, within
// the length limits. Backslashes and any other bytes but NUL are plain name
// characters. The error wraps ErrInvalidPath and says how to fix the path.
func CheckPath(p string) error {
	bad := func(format string, args ...any) error {
		return pathError("check", p, ErrInvalidPath, format, args...)
	}
	switch {
	case p == "":
		return bad("path is empty; give a path relative to the workspace, e.g. data/input.csv")
	case len(p) > MaxPathLen:
		return bad("path is %d bytes long; at most %d are allowed", len(p), MaxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return bad("path contains a NUL byte")
	case p[0] == '/':
		return bad("path must be relative to the workspace, e.g. data/input.csv, not absolute")
	}
	comps := strings.Split(p, "/")
	if len(comps) > MaxDepth {
		return bad("path has %d components; at most %d are allowed", len(comps), MaxDepth)
	}
	for _, c := range comps {
		switch {
		case c == "":
			return bad("path has an empty component (a doubled or trailing slash); write it as e.g. data/input.csv")
		case c == ".":
			return bad(`path has a "." component; write it without, e.g. data/input.csv`)
		case c == "..":
			return bad(`path must stay inside the workspace; ".." is not allowed`)
		case len(c) > MaxNameLen:
			return bad("a path component is %d bytes long; at most %d are allowed", len(c), MaxNameLen)
		case strings.HasPrefix(c, tempPrefix):
			return bad("names starting with %q are reserved for uploads in progress", tempPrefix)
		}
	}
	return nil
}

// split returns the directory part of a checked path ("" for the top) and
// its last component.
func split(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
