//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on dir's lock file for as long as the
// returned file stays open. flock locks belong to the open file, so a second
// Open in the same process is refused too, and the kernel drops the lock
// when a killed writer's files are closed: no stale lock files to clean up.
func lockDir(dir string) (*os.File, error) {
	p := lockPath(dir)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("audit log %s is in use by another writer (%s is locked): %w", dir, p, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return f, nil
}
