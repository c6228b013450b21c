package native

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// slots hands out host id ranges so that no two live sandboxes, even from
// different pybox processes, share a uid. A slot is held by an flock on
// its lock file; the kernel releases it if pybox dies.
type slots struct {
	dir string
	n   int
}

func (s *slots) acquire() (int, func(), error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return 0, nil, fmt.Errorf("creating slot directory: %w", err)
	}
	start := rand.IntN(s.n)
	for i := 0; i < s.n; i++ {
		slot := (start + i) % s.n
		f, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprint(slot)), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return 0, nil, fmt.Errorf("opening slot lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue
			}
			return 0, nil, fmt.Errorf("locking slot: %w", err)
		}
		return slot, func() { f.Close() }, nil
	}
	return 0, nil, fmt.Errorf("all %d uid slots are in use; raise uid_slots", s.n)
}
