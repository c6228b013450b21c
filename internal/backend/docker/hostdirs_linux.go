package docker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// hostDirs prepares, under base, the two directories a local daemon binds
// read-only into every container:
//
//   - dev: only null, zero, full, random and urandom, the /proc/self/fd
//     links and an empty shm (a tmpfs of the container's own is mounted
//     there). With /dev a bind mount, runc makes no device of its own:
//     no /dev/tty, no /dev/ptmx and /dev/pts (no terminals), no
//     /dev/mqueue.
//   - sys: an empty directory only root may open, in place of sysfs
//     (host hardware, kernel knobs); Docker's cgroup mount under it is
//     replaced by an empty tmpfs.
//
// Docker's API can replace its default /dev and /sys mounts, not remove
// them; without a local daemon the backend uses tmpfs mounts instead (see
// Start), which leave /dev/tty, /dev/ptmx and an empty /sys visible.
func hostDirs(base string) (dev, sys, hosts string, err error) {
	dev, sys = filepath.Join(base, "dev"), filepath.Join(base, "sys")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", "", "", err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(base, &st); err != nil {
		return "", "", "", err
	}
	if st.Flags&unix.ST_NODEV != 0 {
		return "", "", "", fmt.Errorf("%s is on a file system mounted nodev: device nodes there do not work", base)
	}
	if err := os.MkdirAll(filepath.Join(dev, "shm"), 0o755); err != nil {
		return "", "", "", err
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}} {
		p := filepath.Join(dev, d.name)
		var cur unix.Stat_t
		if unix.Lstat(p, &cur) == nil {
			if cur.Mode&unix.S_IFMT == unix.S_IFCHR && cur.Rdev == unix.Mkdev(d.major, d.minor) && cur.Mode&0o777 == 0o666 {
				continue
			}
			os.Remove(p)
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return "", "", "", fmt.Errorf("making %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // past the umask
			return "", "", "", err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		p := filepath.Join(dev, name)
		if t, err := os.Readlink(p); err == nil && t == target {
			continue
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return "", "", "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(sys, "fs", "cgroup"), 0o700); err != nil {
		return "", "", "", err
	}
	if err := os.Chmod(sys, 0o700); err != nil {
		return "", "", "", err
	}
	// shm is only a mount point, but the container's tmpfs there takes its
	// mode; base keeps host users out of it.
	if err := os.Chmod(filepath.Join(dev, "shm"), 0o1777); err != nil {
		return "", "", "", err
	}
	if err := os.Chmod(dev, 0o755); err != nil {
		return "", "", "", err
	}
	if err := os.Chmod(base, 0o700); err != nil {
		return "", "", "", err
	}
	// Docker's own /etc/hosts is empty without a network; the sandbox
	// gets native's.
	hosts = filepath.Join(base, "hosts")
	if err := os.WriteFile(hosts, []byte(hostsFile), 0o444); err != nil {
		return "", "", "", err
	}
	if err := os.Chmod(hosts, 0o444); err != nil {
		return "", "", "", err
	}
	return dev, sys, hosts, nil
}

const hostsFile = "127.0.0.1\tlocalhost pybox\n::1\tlocalhost\n"

var errNotLocal = errors.New("the daemon is not on this host")
