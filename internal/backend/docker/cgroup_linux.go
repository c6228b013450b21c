package docker

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// hostCgroup reads a local container's counters straight from cgroupfs:
// tens of microseconds, where the stats API costs milliseconds, and a
// session reads them twice per cell. It is found through the host's view
// of /proc/PID/cgroup of the container's init; when that is not possible
// (a remote daemon, Docker Desktop's VM) the stats API answers instead.
type hostCgroup struct {
	v2                bool
	memory, cpu, unif string // v1 controller dirs; v2 dir
}

func openHostCgroup(pid int) (*hostCgroup, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g := &hostCgroup{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			switch c {
			case "memory":
				g.memory = filepath.Join("/sys/fs/cgroup/memory", parts[2])
			case "cpuacct":
				g.cpu = filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			g.unif = filepath.Join("/sys/fs/cgroup", parts[2])
		}
	}
	if g.memory == "" && g.unif != "" {
		g.v2 = true
	}
	if _, err := g.usage(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *hostCgroup) usage() (sandbox.Usage, error) {
	var u sandbox.Usage
	if g.v2 {
		peak, err := readInt(filepath.Join(g.unif, "memory.peak")) // kernel 5.19+
		if err != nil {
			return u, err
		}
		usec, err := readKey(filepath.Join(g.unif, "cpu.stat"), "usage_usec")
		if err != nil {
			return u, err
		}
		ooms, _ := readKey(filepath.Join(g.unif, "memory.events"), "oom_kill")
		return sandbox.Usage{CPU: time.Duration(usec) * time.Microsecond, PeakMemoryBytes: peak, OOMKills: ooms}, nil
	}
	peak, err := readInt(filepath.Join(g.memory, "memory.max_usage_in_bytes"))
	if err != nil {
		return u, err
	}
	ns, err := readInt(filepath.Join(g.cpu, "cpuacct.usage"))
	if err != nil {
		return u, err
	}
	ooms, _ := readKey(filepath.Join(g.memory, "memory.oom_control"), "oom_kill") // kernel 4.13+
	return sandbox.Usage{CPU: time.Duration(ns), PeakMemoryBytes: peak, OOMKills: ooms}, nil
}

func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

func readKey(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == key {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}
