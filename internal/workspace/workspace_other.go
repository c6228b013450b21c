//go:build !linux

package workspace

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// Dir is a sandbox's workspace; it needs Linux's openat2.
type Dir struct{}

// Open is Linux-only.
func Open(root, sub string, uid, gid int) (*Dir, error) { return nil, errors.ErrUnsupported }

// Close is Linux-only.
func (d *Dir) Close() error { return errors.ErrUnsupported }

// Write is Linux-only.
func (d *Dir) Write(p string, r io.Reader, maxBytes int64) (int64, error) {
	return 0, errors.ErrUnsupported
}

// OpenFile is Linux-only.
func (d *Dir) OpenFile(p string, maxBytes int64) (*os.File, fs.FileInfo, error) {
	return nil, nil, errors.ErrUnsupported
}

// List is Linux-only.
func (d *Dir) List(p string, maxEntries int) ([]Entry, bool, error) {
	return nil, false, errors.ErrUnsupported
}

// Remove is Linux-only.
func (d *Dir) Remove(p string) error { return errors.ErrUnsupported }
