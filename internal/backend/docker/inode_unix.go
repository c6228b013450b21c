//go:build unix

package docker

import (
	"io/fs"
	"syscall"
)

// inode identifies a file for hard-link detection.
func inode(info fs.FileInfo) (key [2]uint64, nlink uint64, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return key, 0, false
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}, uint64(st.Nlink), true
}
