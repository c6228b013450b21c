package nsinit

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// makePrivate stops mount events from propagating back to the host: every
// mount below happens in this namespace only.
func makePrivate(*Config) error {
	return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
}

// openSources turns every Source mount and device into a detached,
// read-only mount tree while the host paths are still visible. Trees the
// host opened (root mode, where the sandbox's uid may not traverse the
// host's directories) arrive as fds and only get their flags here.
func openSources(cfg *Config) error {
	for _, list := range [][]Mount{cfg.Mounts, cfg.Inputs} {
		for i := range list {
			m := &list[i]
			if m.TreeFD == 0 {
				fd, err := cloneTree(m.Source)
				if err != nil {
					return err
				}
				m.TreeFD = fd
			}
		}
	}
	for _, d := range cfg.Devices {
		// Devices keep their flags: a device node needs a mount without
		// nodev to work.
		fd, err := unix.OpenTree(unix.AT_FDCWD, d, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("open_tree %s: %w", d, err)
		}
		devFDs = append(devFDs, fd)
	}
	return nil
}

// devFDs are the detached device trees, in cfg.Devices order. The init is
// single-use, so package state is as good as threading it through.
var devFDs []int

func cloneTree(src string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", src, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr %s: %w", src, err)
	}
	return fd, nil
}

func mountRoot(cfg *Config) error {
	opts := fmt.Sprintf("size=%d,mode=0755", cfg.RootBytes)
	if err := unix.Mount("tmpfs", staging, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return err
	}
	for _, d := range []string{"proc", "dev", "tmp", "etc", "pybox"} {
		if err := os.Mkdir(filepath.Join(staging, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// mountPoint creates an empty file or directory at target (inside the
// staging root) for a bind to land on.
func mountPoint(target string, file bool) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if !file {
		if err := os.Mkdir(target, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	return f.Close()
}

func moveTree(fd int, target string, file bool) error {
	if err := mountPoint(target, file); err != nil {
		return fmt.Errorf("mount point %s: %w", target, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return unix.Close(fd)
}

func bindMounts(cfg *Config) error {
	for _, m := range cfg.Mounts {
		if err := moveTree(m.TreeFD, filepath.Join(staging, m.Target), m.File); err != nil {
			return err
		}
	}
	for _, s := range cfg.Symlinks {
		p := filepath.Join(staging, s.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(s.Target, p); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// bindInputs places the user's input files, after /tmp and /dev exist, so
// that an input may sit in the scratch directory (read-only itself).
func bindInputs(cfg *Config) error {
	for _, m := range cfg.Inputs {
		if err := moveTree(m.TreeFD, filepath.Join(staging, m.Target), true); err != nil {
			return fmt.Errorf("placing %s: %w", m.Target, err)
		}
	}
	return nil
}

// mountCode mounts /pybox's own tmpfs (see Config.CodeMount).
func mountCode(cfg *Config) error {
	if !cfg.CodeMount {
		return nil
	}
	dir := filepath.Join(staging, "pybox")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=0755", cfg.RootBytes)
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts)
}

func writeFiles(cfg *Config) error {
	for _, f := range cfg.Files {
		p := filepath.Join(staging, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, os.FileMode(f.Mode)); err != nil {
			return err
		}
	}
	return nil
}

// mountScratch mounts the only writable places: /tmp, which is also the
// working directory. nosuid and nodev make planted setuid binaries and
// device nodes inert; noexec (with Landlock) stops dropped binaries.
func mountScratch(cfg *Config) error {
	opts := fmt.Sprintf("size=%d,mode=1777", cfg.TmpfsBytes)
	return unix.Mount("tmpfs", filepath.Join(staging, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts)
}

// mountDev builds a minimal /dev: the harmless character devices bound
// from the host, the usual /proc symlinks, and /dev/shm as a second
// size-limited scratch for POSIX shared memory and semaphores.
func mountDev(cfg *Config) error {
	dev := filepath.Join(staging, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return err
	}
	for i, d := range cfg.Devices {
		if err := moveTree(devFDs[i], filepath.Join(dev, filepath.Base(d)), true); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return err
	}
	opts := fmt.Sprintf("size=%d,mode=1777", cfg.TmpfsBytes)
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return err
	}
	return unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, "")
}

// mountProc mounts a /proc of the sandbox's own pid namespace, then hides
// the entries that expose the host kernel (kcore, keys, sysrq-trigger, ...)
// and makes the tunables read-only, as container runtimes do.
func mountProc(cfg *Config) error {
	proc := filepath.Join(staging, "proc")
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	devNull := filepath.Join(staging, "dev", "null")
	for _, p := range cfg.MaskedPaths {
		target := filepath.Join(staging, p)
		st, err := os.Lstat(target)
		if err != nil {
			continue // not present on this kernel
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount(devNull, target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	if err := maskBootID(cfg, proc); err != nil {
		return err
	}
	for _, p := range cfg.ReadonlyPaths {
		target := filepath.Join(staging, p)
		if _, err := os.Lstat(target); err != nil {
			continue
		}
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s: %w", p, err)
		}
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}

// maskBootID hides the host's boot id (which would tell tenants that they
// share a machine, and since when) behind one made up for this sandbox.
// The source file is unlinked once bound, so only the mount remains.
func maskBootID(cfg *Config, proc string) error {
	target := filepath.Join(proc, "sys/kernel/random/boot_id")
	if _, err := os.Stat(target); err != nil || cfg.BootID == "" {
		return nil
	}
	src := filepath.Join(staging, ".boot_id")
	if err := os.WriteFile(src, []byte(cfg.BootID+"\n"), 0o444); err != nil {
		return err
	}
	defer os.Remove(src)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("masking boot_id: %w", err)
	}
	return unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// pivotRoot swaps in the new root and detaches the old one entirely, so no
// path (not even via /proc/<pid>/root of a process we can see) leads back
// to the host's filesystem. pivot_root(".", ".") stacks the old root on
// top of the new one; unmounting "." then removes it (the nsjail/runc
// idiom, which needs no directory to park the old root in).
func pivotRoot(cfg *Config) error {
	if err := unix.Chdir(staging); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	// The root tmpfs held only what setup wrote; from now on it is
	// read-only like everything but scratch.
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making root read-only: %w", err)
	}
	return unix.Chdir(cfg.Cwd)
}
