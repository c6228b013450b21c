package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pybox-dev/pybox/internal/backend/docker"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Docker builds the docker backend with cfg, runs the probe in a container
// and returns one check per layer, prefixed "docker". The first check says
// whether the backend is available at all.
func Docker(ctx context.Context, cfg docker.Config, lim sandbox.Limits) []Check {
	var checks []Check
	add := func(layer string, s State, format string, a ...any) {
		checks = append(checks, Check{layer, s, fmt.Sprintf(format, a...)})
	}
	b, err := docker.New(ctx, cfg)
	if err != nil {
		add("docker backend", Unavailable, "%v", err)
		return checks
	}
	defer b.Close()
	res, err := b.Run(ctx, &sandbox.Spec{Code: []byte(probe), Limits: lim})
	if err != nil {
		add("docker backend", Unavailable, "probe run failed: %v", err)
		return checks
	}
	var p probeResult
	if res.Status != sandbox.StatusOK || json.Unmarshal([]byte(res.Stdout), &p) != nil {
		add("docker backend", Unavailable, "probe ended with %s: %s %s", res.Status, res.Message, sandbox.FirstLine(res.Stderr))
		return checks
	}
	runtime := cfg.Runtime
	if runtime == "" {
		runtime = "the daemon's default"
	}
	add("docker backend", Active, "image %s (runtime image %s), runtime %s, cgroup %s, uid %d; probe's peak memory %d KiB",
		orDefault(cfg.Image, docker.DefaultImage), short12(b.Image()), runtime, res.Layers.Cgroup, p.UID, res.PeakMemoryBytes>>10)
	st := p.Status
	if st["Seccomp"] == "2" {
		inner := "no inner allowlist (" + strings.Join(res.Layers.Warnings, "; ") + ")"
		if st["Seccomp_filters"] == "2" {
			inner = "and native's allowlist inside it (2 filters)"
		}
		add("docker seccomp", Active, "Docker's default profile with pybox's denials (io_uring, keyrings, userfaultfd, bpf, perf_event_open, ptrace, personality, sockets but AF_UNIX), %s; mode 2 in the container", inner)
	} else {
		add("docker seccomp", Unavailable, "container reports Seccomp: %s", st["Seccomp"])
	}
	zero := "0000000000000000"
	if st["NoNewPrivs"] == "1" && st["CapEff"] == zero && st["CapPrm"] == zero && st["CapBnd"] == zero {
		add("docker privileges", Active, "no-new-privileges, every capability dropped, non-root: uid %d in the program's user namespace, host uid %d", p.UID, res.Layers.HostUID)
	} else {
		add("docker privileges", Unavailable, "NoNewPrivs %s CapEff %s CapBnd %s uid %d", st["NoNewPrivs"], st["CapEff"], st["CapBnd"], p.UID)
	}
	var ifaces []string
	for _, i := range p.Ifaces {
		if i != "all" && i != "default" && i != "lo" {
			ifaces = append(ifaces, i)
		}
	}
	if len(ifaces) == 0 {
		add("docker network", Active, "--network none: loopback only")
	} else {
		add("docker network", Unavailable, "the container has interfaces %v", ifaces)
	}
	if p.Sys {
		add("docker /sys", Degraded, "/sys/kernel is visible in the container")
	}
	return checks
}

// Choice reports what --backend auto picks: native when its checks show
// no unavailable layer, else docker when it is available.
func Choice(native, dock []Check) Check {
	nativeOK := len(native) > 0 && OK(native)
	dockerOK := len(dock) > 0 && dock[0].State == Active
	switch {
	case nativeOK:
		return Check{"auto backend", Info, "native (the kernel offers every layer); docker " + availability(dockerOK)}
	case dockerOK:
		why := "unavailable"
		for _, c := range native {
			if c.State == Unavailable || c.State == Degraded {
				why = c.Layer + ": " + c.Detail
				break
			}
		}
		return Check{"auto backend", Info, "docker, because native is not fully available (" + why + ")"}
	default:
		return Check{"auto backend", Unavailable, "neither native nor docker is available; --backend auto refuses to run"}
	}
}

// Demote turns a report that is not about the configured backend into
// information: it does not make doctor fail.
func Demote(checks []Check) []Check {
	out := make([]Check, len(checks))
	for i, c := range checks {
		if c.State == Unavailable || c.State == Degraded {
			c.Detail = string(c.State) + ": " + c.Detail
			c.State = Info
		}
		out[i] = c
	}
	return out
}

func availability(ok bool) string {
	if ok {
		return "is available too"
	}
	return "is not available"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func short12(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
