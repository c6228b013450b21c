package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The current file, and the rotated ones named by the seq of their first
// record, zero-padded so that names sort like numbers.
const (
	currentName = "audit.jsonl"
	lockName    = ".lock"
	seqDigits   = 20
)

func rotatedName(firstSeq uint64) string {
	return fmt.Sprintf("audit-%0*d.jsonl", seqDigits, firstSeq)
}

// parseRotatedName returns the first seq a rotated file's name promises.
func parseRotatedName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, "audit-")
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, ".jsonl")
	if !ok || len(digits) != seqDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

type rotatedFile struct {
	name     string
	firstSeq uint64
}

// listRotated returns dir's rotated files, oldest first.
func listRotated(dir string) ([]rotatedFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []rotatedFile
	for _, e := range entries {
		if seq, ok := parseRotatedName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, rotatedFile{e.Name(), seq})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].firstSeq < files[j].firstSeq })
	return files, nil
}

// syncDir makes a directory's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

func lockPath(dir string) string { return filepath.Join(dir, lockName) }
