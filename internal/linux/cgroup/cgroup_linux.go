package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Resources are the limits applied to one group.
type Resources struct {
	MemoryBytes int64
	CPU         float64 // fraction of one CPU; 0 means no quota
	Pids        int
}

// Stats are read back after (or during) a run.
type Stats struct {
	PeakMemoryBytes int64
	OOMKills        int64
	CPUUsage        time.Duration
}

// Group is one sandbox's cgroup. Its methods are safe to call from one
// goroutine at a time; Destroy must be the last call.
type Group interface {
	// Attach moves pid (all its threads) into the group.
	Attach(pid int) error
	// JoinFiles opens, for writing, the files through which a process
	// moves itself into the group by writing "0" to each: on v1 the
	// "tasks" file of every hierarchy (moving the writing thread), on v2
	// "cgroup.procs" (moving the writer's process). The kernel checks the
	// opener's credentials, so the caller can hand them to a process that
	// could not open them: a forked sandbox's pid 1, which has no cgroupfs.
	// On v1 this is also much cheaper than Attach: moving oneself by
	// thread skips the kernel's global threadgroup lock, whose writer
	// waits for an RCU grace period (3-15 ms per sandbox measured on this
	// project's machine, with every fork on the host held up meanwhile).
	JoinFiles() ([]*os.File, error)
	// Dir is the group's directory in the unified (v2) hierarchy, for
	// CLONE_INTO_CGROUP; "" on v1.
	Dir() string
	Stats() (Stats, error)
	// Kill sends SIGKILL to every process in the group.
	Kill() error
	// Destroy removes the group. Processes must be gone; it retries briefly
	// because the kernel releases an exited task's membership asynchronously.
	Destroy() error
}

// ThreadEnterer is implemented by groups that can adopt the calling thread
// so that its next child is born inside (cgroup v1). See v1Group.EnterThread.
type ThreadEnterer interface {
	EnterThread() (leave func() error, err error)
}

// Manager creates groups under one parent.
type Manager interface {
	Version() string
	Create(name string, r Resources) (Group, error)
	// Parent is where groups are created (one path per hierarchy on v1).
	Parent() []string
}

// Sweep removes groups that a crashed pybox left behind: empty pybox
// groups last changed more than olderThan ago. A populated group cannot be
// removed (the kernel refuses), and the age keeps a sweep from racing a
// concurrent pybox that has created a group but not yet filled it.
func Sweep(m Manager, olderThan time.Duration) (removed int) {
	for _, parent := range m.Parent() {
		ents, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), groupPrefix) {
				continue
			}
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < olderThan {
				continue
			}
			if os.Remove(filepath.Join(parent, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed
}

// ErrNotDelegated means the hierarchy exists but this process may not
// create groups in it (an unprivileged user without delegation).
var ErrNotDelegated = errors.New("cgroup not delegated to this user")

const (
	cgroupRoot = "/sys/fs/cgroup"
	// groupPrefix names every group pybox creates, so that a restart can
	// find and remove leftovers.
	groupPrefix = "pybox-"
)

// Open finds the cgroup hierarchy of this host and returns a Manager that
// creates sandbox groups in a "pybox" child of this process's own group
// (or of parent, when given, relative to the hierarchy root).
func Open(parent string) (Manager, error) {
	if isV2(cgroupRoot) {
		return openV2(cgroupRoot, parent)
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes")); err == nil {
		return openV1(cgroupRoot, parent)
	}
	return nil, errors.New("no usable cgroup hierarchy: /sys/fs/cgroup is neither cgroup2 nor a v1 memory hierarchy")
}

// ownPath returns this process's group in the hierarchy whose
// /proc/self/cgroup line matches controller ("" for the v2 line).
func ownPath(controller string) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2], nil
			}
		}
	}
	return "", fmt.Errorf("no %q line in /proc/self/cgroup", controller)
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func writeFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
		return fmt.Errorf("writing %s=%q: %w", name, value, err)
	}
	return nil
}

func readInt(dir, name string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// readKey reads "key value" from a flat-keyed file such as memory.events.
func readKey(dir, name, key string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s has no key %q", name, key)
}

// rmdirRetry removes a cgroup directory, retrying while the kernel still
// counts exiting tasks.
func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", dir, err)
}

// cfsPeriod is the CPU quota's accounting window, in µs. The kernel's
// default (100 ms) throttles a sandbox whose interpreter needs more than
// half of it to start (a 0.5 CPU limit allows 50 ms per period): a Python
// whose site imports take 45 ms of CPU then stalls for most of a period
// before printing anything. Over 250 ms, short bursts such as interpreter
// start-up or a heavy import run at full speed, while a longer run is
// still held to its share in every quarter second.
const cfsPeriod = 250000

// cpuQuota turns a CPU fraction into a CFS quota for cfsPeriod.
func cpuQuota(cpu float64) (quota, period int64) {
	period = cfsPeriod
	quota = int64(cpu*float64(period) + 0.5) // round: 0.29*250000 is not exact in binary
	if quota < 1000 {
		quota = 1000 // the kernel's minimum is 1 ms
	}
	return quota, period
}

// killPids sends SIGKILL to every pid listed in a cgroup.procs file, until
// the list stays empty (processes may fork while being killed).
func killPids(procsFile string, kill func(pid int) error) error {
	for round := 0; round < 100; round++ {
		data, err := os.ReadFile(procsFile)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			return nil
		}
		for _, f := range fields {
			if pid, err := strconv.Atoi(f); err == nil {
				kill(pid) //nolint:errcheck // the process may already be gone
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("processes in %s survived SIGKILL", procsFile)
}
