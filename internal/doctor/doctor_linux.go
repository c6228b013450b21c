package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pybox-dev/pybox/internal/backend/native"
	"github.com/pybox-dev/pybox/internal/driver"
	"github.com/pybox-dev/pybox/internal/sandbox"
)

// Run builds the native backend with cfg, runs the probe with python and
// returns one check per layer; with warmMode "fork" it also runs the probe
// in a sandbox forked by a fork server, as pybox serve makes them.
func Run(ctx context.Context, cfg native.Config, python string, lim sandbox.Limits, warmMode string) []Check {
	var checks []Check
	add := func(layer string, s State, format string, a ...any) {
		checks = append(checks, Check{layer, s, fmt.Sprintf(format, a...)})
	}
	b, err := native.New(cfg)
	if err != nil {
		add("native backend", Unavailable, "%v", err)
		return checks
	}
	d := b.Describe()
	in, err := b.Interpreter(ctx, python)
	if err != nil {
		add("interpreter", Unavailable, "%v", err)
		return checks
	}
	add("interpreter", Info, "%s (Python %s)", in.Real, in.Version)

	res, err := b.Run(ctx, &sandbox.Spec{Code: []byte(probe), Python: python, Limits: lim})
	if err != nil {
		add("sandbox", Unavailable, "probe run failed: %v", err)
		return checks
	}
	var p probeResult
	if res.Status != sandbox.StatusOK || json.Unmarshal([]byte(res.Stdout), &p) != nil {
		add("sandbox", Unavailable, "probe ended with %s: %s %s", res.Status, res.Message, sandbox.FirstLine(res.Stderr))
		return checks
	}
	nsNames := map[string]string{"user": "user", "pid": "pid", "mount": "mnt", "net": "net", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup"}
	for _, name := range []string{"user", "pid", "mount", "net", "ipc", "uts", "cgroup"} {
		host, _ := os.Readlink("/proc/self/ns/" + nsNames[name])
		inner := p.NS[nsNames[name]]
		detail := ""
		switch name {
		case "user":
			if d.Rootless {
				detail = fmt.Sprintf("rootless: sandbox uid 1000 is your uid %d", res.Layers.HostUID)
			} else {
				detail = fmt.Sprintf("sandbox uid 1000 runs as host uid %d (slots of 65536 ids from %d, %d slots)", res.Layers.HostUID, d.UIDBase, d.UIDSlots)
			}
		case "net":
			var ifaces []string
			for _, i := range p.Ifaces {
				if i != "all" && i != "default" {
					ifaces = append(ifaces, i)
				}
			}
			detail = fmt.Sprintf("interfaces %v, none configured: no route out", ifaces)
		case "uts":
			detail = fmt.Sprintf("hostname %q", p.Hostname)
		case "mount":
			detail = fmt.Sprintf("new read-only root %v, no /sys", p.Root)
			if p.Sys {
				add("mount namespace", Unavailable, "/sys is visible in the sandbox")
				continue
			}
		case "cgroup":
			detail = fmt.Sprintf("sandbox sees its group as %q", p.Cgroup)
		}
		if host != "" && inner != "" && host != inner && !strings.HasPrefix(inner, "error") {
			add(name+" namespace", Active, "%s", detail)
		} else {
			add(name+" namespace", Unavailable, "sandbox shares the host's %s namespace (%s)", name, inner)
		}
	}
	st := p.Status
	if st["Seccomp"] == "2" {
		add("seccomp", Active, "default-deny allowlist (%d BPF instructions), errno for denied calls; mode 2 in the sandbox", d.SeccompRules)
	} else {
		add("seccomp", Unavailable, "sandbox reports Seccomp: %s", st["Seccomp"])
	}
	if st["NoNewPrivs"] == "1" {
		add("no_new_privs", Active, "set")
	} else {
		add("no_new_privs", Unavailable, "NoNewPrivs: %s", st["NoNewPrivs"])
	}
	if p.noCapabilities() {
		add("capabilities", Active, "every set empty, bounding set included")
	} else {
		add("capabilities", Unavailable, "CapEff %s CapBnd %s", st["CapEff"], st["CapBnd"])
	}
	if d.LandlockABI > 0 {
		add("landlock", Active, "ABI %d: read-only root, execute only the interpreter, write only /tmp and /dev/shm", d.LandlockABI)
	} else {
		add("landlock", Unavailable, "the kernel does not offer Landlock (needs Linux 5.13+ with CONFIG_SECURITY_LANDLOCK and lsm=landlock)")
	}
	switch {
	case d.CgroupVersion != "":
		add("cgroup", Active, "%s: memory %d MiB (swap 0), pids %d, cpu %.2f; peak memory of the probe %d KiB; groups under %s",
			d.CgroupVersion, lim.MemoryBytes>>20, lim.Pids, lim.CPU, res.PeakMemoryBytes>>10, strings.Join(d.CgroupParents, ", "))
	default:
		add("cgroup", Degraded, "not delegated (%v): memory, pids and CPU limited by rlimits only; run as root or delegate a cgroup v2 subtree", d.CgroupError)
	}
	if d.Rootless {
		add("privileges", Degraded, "unprivileged: user namespaces with your own uid only; chown and setuid inside fail with EINVAL")
	} else {
		add("privileges", Active, "root: each cold sandbox gets its own block of 65536 host ids, each forked one two ids of its fork server's block; never host root")
	}
	add("rlimits", Active, "core 0, nofile 1024, nproc = pids, fsize = tmpfs size, cpu = timeout")
	checks = append(checks, warmPath(ctx, b, python, lim, warmMode, p))
	return checks
}

// warmPath checks how pybox serve makes warm sandboxes: with a fork server,
// by running the probe in a forked sandbox and comparing what it sees of
// itself with what the cold probe saw.
func warmPath(ctx context.Context, b *native.Backend, python string, lim sandbox.Limits, mode string, cold probeResult) Check {
	const layer = "warm path"
	if mode != "fork" {
		return Check{layer, Info, "--warm-mode exec: warm sandboxes are started as pybox run starts them"}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	z, err := b.StartZygote(ctx, lim, python)
	if errors.Is(err, native.ErrNoZygote) {
		return Check{layer, Info, "no fork server without cgroups: warm sandboxes are started as pybox run starts them"}
	}
	if err != nil {
		return Check{layer, Degraded, fmt.Sprintf("the fork server did not start (%v): pybox serve starts each sandbox cold instead, ~10x the CPU", err)}
	}
	defer z.Close()
	stdout := sandbox.NewCapture(1<<20, nil)
	stderr := sandbox.NewCapture(1<<20, nil)
	sb, err := z.Spawn(ctx, &sandbox.Spec{Driver: true, Python: python, Limits: lim}, stdout, stderr)
	if err != nil {
		return Check{layer, Unavailable, fmt.Sprintf("the fork server could not make a sandbox: %v", err)}
	}
	w, r := sb.Control()
	var ready driver.Reply
	if err := driver.ReadFrame(r, &ready); err != nil || ready.Type != "ready" {
		sb.Kill(sandbox.StatusKilled)
		return Check{layer, Unavailable, fmt.Sprintf("a forked sandbox's driver did not start: %v %s", err, sandbox.FirstLine(stderr.Output().Text))}
	}
	sb.SetDeadline(10 * time.Second)
	err = driver.WriteFrame(w, &driver.Request{Op: "run", Code: probe, Filename: "main.py"})
	w.Close()
	res, werr := sb.Wait()
	if err == nil {
		err = werr
	}
	var p probeResult
	if err != nil || res.Status != sandbox.StatusOK || json.Unmarshal([]byte(stdout.Output().Text), &p) != nil {
		msg := fmt.Sprint(err)
		if res != nil {
			msg = fmt.Sprintf("%s: %s %s", res.Status, res.Message, sandbox.FirstLine(stderr.Output().Text))
		}
		return Check{layer, Unavailable, "the probe failed in a forked sandbox: " + msg}
	}
	// Its own namespaces: not the host's, and not the cold probe's (which
	// are gone) either, as a fresh sandbox's must be.
	var missing []string
	for _, n := range []string{"pid", "mnt", "net", "ipc", "uts", "cgroup"} {
		host, _ := os.Readlink("/proc/self/ns/" + n)
		if in := p.NS[n]; in == "" || in == host || in == cold.NS[n] || strings.HasPrefix(in, "error") {
			missing = append(missing, n+" namespace")
		}
	}
	st := p.Status
	if st["Seccomp"] != "2" {
		missing = append(missing, "seccomp")
	}
	if st["NoNewPrivs"] != "1" {
		missing = append(missing, "no_new_privs")
	}
	if !p.noCapabilities() {
		missing = append(missing, "an empty capability set")
	}
	if p.Sys || p.UID != cold.UID {
		missing = append(missing, "the cold sandbox's root and uid")
	}
	if len(missing) > 0 {
		return Check{layer, Unavailable, "a forked sandbox lacks " + strings.Join(missing, ", ")}
	}
	detail := fmt.Sprintf("fork server: a forked sandbox has its own pid, mount, net, ipc, uts and cgroup namespaces, seccomp, no_new_privs and no capabilities (peak memory of the probe %d KiB)", res.PeakMemoryBytes>>10)
	if tmpl := z.Layers().HostUID; res.Layers.HostUID == tmpl {
		detail += fmt.Sprintf("; forked sandboxes share the fork server's host uid %d", tmpl)
	} else {
		detail += fmt.Sprintf("; each runs as host uids of its own (the probe's program as %d, the fork server's as %d)", res.Layers.HostUID, tmpl)
	}
	return Check{layer, Active, detail}
}
