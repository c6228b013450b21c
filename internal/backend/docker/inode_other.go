//go:build !unix

package docker

import "io/fs"

func inode(info fs.FileInfo) (key [2]uint64, nlink uint64, ok bool) { return key, 0, false }
