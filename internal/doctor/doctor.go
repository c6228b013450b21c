// Package doctor checks which isolation layers this host offers and
// proves that they are active by running a probe program in a real
// sandbox and reading its state from the inside.
package doctor

import (
	"fmt"
	"io"
)

// State of one layer.
type State string

const (
	Active      State = "active"      // applied to every sandbox, verified by the probe
	Degraded    State = "degraded"    // applied in a weaker form; Detail says how
	Unavailable State = "unavailable" // not applied; Detail says why and how to fix
	Info        State = "info"
)

// Check is one line of the report.
type Check struct {
	Layer  string
	State  State
	Detail string
}

// Print writes the report as aligned lines.
func Print(w io.Writer, checks []Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "%-18s %-12s %s\n", c.Layer, c.State, c.Detail)
	}
}

// OK reports whether every layer is active.
func OK(checks []Check) bool {
	for _, c := range checks {
		if c.State == Unavailable || c.State == Degraded {
			return false
		}
	}
	return true
}

// probe runs inside the sandbox and reports what it sees of itself.
const probe = `import json, os
st = {}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    st[k] = v.strip()
ns = {}
for n in ("user", "pid", "mnt", "net", "ipc", "uts", "cgroup"):
    try:
        ns[n] = os.readlink("/proc/self/ns/" + n)
    except OSError as e:
        ns[n] = "error: %s" % e
print(json.dumps({"status": st, "ns": ns, "uid": os.getuid(), "hostname": os.uname().nodename,
  "ifaces": sorted(os.listdir("/proc/sys/net/ipv4/conf")) if os.path.exists("/proc/sys/net/ipv4/conf") else [],
  "cgroup": open("/proc/self/cgroup").read().strip().splitlines()[-1],
  "root": sorted(os.listdir("/")), "sys": os.path.exists("/sys/kernel")}))
`

type probeResult struct {
	Status   map[string]string `json:"status"`
	NS       map[string]string `json:"ns"`
	UID      int               `json:"uid"`
	Hostname string            `json:"hostname"`
	Ifaces   []string          `json:"ifaces"`
	Cgroup   string            `json:"cgroup"`
	Root     []string          `json:"root"`
	Sys      bool              `json:"sys"`
}

// noCapabilities: every capability set of the probe is empty, the
// bounding set included.
func (p *probeResult) noCapabilities() bool {
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if p.Status[set] != "0000000000000000" {
			return false
		}
	}
	return true
}
