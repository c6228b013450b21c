package sandboxtest

// pyMakeSocket creates a socket and reports whether creation worked;
// nothing is connected or sent.
const pyMakeSocket = `
import socket
def make(label, family, type_, proto=0):
    try:
        s = socket.socket(family, type_, proto)
    except OSError as e:
        print(label, "->", e)
        return None
    effect("created a %s socket" % label)
    return s
`

// networkCases reach for the network: host loopback (the canary port),
// cloud metadata, DNS, raw, packet, netlink and vsock sockets, unix and
// abstract sockets of host daemons, listening sockets and io_uring.
// Controls send traffic only to 127.0.0.1 and the canary listeners; for
// other destinations they only create the socket.
var networkCases = []Case{
	{
		Name:  "tcp-host-loopback",
		Class: "network",
		Code: `{{PRELUDE}}
import socket
try:
    s = socket.create_connection(("127.0.0.1", {{CANARY_PORT}}), timeout=2)
    effect("connected to the host's loopback: %r" % s.recv(100))
except OSError as e:
    print("blocked:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "tcp6-mapped-loopback",
		Class: "network",
		Why:   "the IPv4 loopback reached through an IPv4-mapped IPv6 address (a family filter that only knows AF_INET misses it)",
		Code: `{{PRELUDE}}
import socket
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("::ffff:127.0.0.1", {{CANARY_PORT}}))
    effect("connected to the host's loopback over IPv6: %r" % s.recv(100))
except OSError as e:
    print("blocked:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "cloud-metadata",
		Class: "network",
		Why:   "169.254.169.254 hands out cloud credentials. The control only creates the sockets; the sandboxed program connects only if creation (already the breach) succeeded, inside an empty network namespace",
		Code: `{{PRELUDE}}` + pyMakeSocket + `
for label, fam, typ, addr in [("TCP", socket.AF_INET, socket.SOCK_STREAM, ("169.254.169.254", 80)),
                              ("UDP", socket.AF_INET, socket.SOCK_DGRAM, ("169.254.169.254", 53)),
                              ("TCP6", socket.AF_INET6, socket.SOCK_STREAM, ("fd00:ec2::254", 80))]:
    s = make(label, fam, typ)
    if s is None:
        continue
    s.settimeout(1)
    try:
        s.connect(addr)
        effect("connected to the metadata address over " + label)
    except OSError as e:
        print("connect ->", e)
` + pyFinish,
		Control: `{{PRELUDE}}` + pyMakeSocket + `
make("TCP", socket.AF_INET, socket.SOCK_STREAM)
make("UDP", socket.AF_INET, socket.SOCK_DGRAM)
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "dns-resolution",
		Class: "network",
		Why:   "DNS is a classic exfiltration channel. The control reads the resolver configuration and creates a UDP socket, but sends no query",
		Code: `{{PRELUDE}}` + pyMakeSocket + `
try:
    conf = open("/etc/resolv.conf").read()
    if "nameserver" in conf:
        effect("host resolver configuration visible: " + conf.strip().replace("\n", "; "))
except OSError as e:
    print("resolv.conf ->", e)
make("UDP", socket.AF_INET, socket.SOCK_DGRAM)
make("UDP6", socket.AF_INET6, socket.SOCK_DGRAM)
import signal
signal.alarm(3)
try:
    addrs = {a[4][0] for a in socket.getaddrinfo("pybox-dns-probe.example.com", 80)}
    addrs -= {"127.0.0.1", "::1"}
    if addrs:
        effect("resolved a name through DNS: %s" % addrs)
except (OSError, UnicodeError) as e:
    print("getaddrinfo ->", e)
signal.alarm(0)
` + pyFinish,
		Control: `{{PRELUDE}}` + pyMakeSocket + `
conf = open("/etc/resolv.conf").read()
if "nameserver" in conf:
    effect("host resolver configuration visible")
make("UDP", socket.AF_INET, socket.SOCK_DGRAM)
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "raw-sockets",
		Class: "network",
		Why:   "raw IP sockets forge packets; only creation is attempted",
		Code: `{{PRELUDE}}` + pyMakeSocket + `
make("raw ICMP", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
make("raw IP", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
make("ICMP ping", socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
make("raw ICMPv6", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "packet-sockets",
		Class: "network",
		Why:   "AF_PACKET sees and injects link-layer frames (and has a history of kernel bugs); protocol 0 receives nothing until bound",
		Code: `{{PRELUDE}}` + pyMakeSocket + `
make("packet raw", socket.AF_PACKET, socket.SOCK_RAW, 0)
make("packet dgram", socket.AF_PACKET, socket.SOCK_DGRAM, 0)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "netlink-sockets",
		Class: "network",
		Why:   "netlink configures interfaces, routes, firewalls and audit; only creation is attempted",
		Code: `{{PRELUDE}}` + pyMakeSocket + `
for proto, name in [(0, "route"), (9, "audit"), (12, "netfilter"), (15, "kobject_uevent"), (16, "generic"), (4, "sock_diag")]:
    make("netlink " + name, socket.AF_NETLINK, socket.SOCK_RAW, proto)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "vsock",
		Class: "network",
		Why:   "AF_VSOCK is not confined by network namespaces: it talks to the hypervisor (this VM's agent listens on vsock). Only creation is attempted",
		Code: `{{PRELUDE}}` + pyMakeSocket + `
make("vsock stream", 40, socket.SOCK_STREAM)
make("vsock dgram", 40, socket.SOCK_DGRAM)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "host-unix-sockets",
		Class: "network",
		Why:   "unix sockets of host daemons (docker.sock, systemd, dbus, syslog) are root on the host; the canary socket stands in for them",
		Code: `{{PRELUDE}}
import socket
for p in ["{{CANARY_UNIX}}", "/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
          "/run/dbus/system_bus_socket", "/run/systemd/private", "/run/systemd/notify", "/dev/log", "/run/podman/podman.sock"]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(p)
    except OSError as e:
        print(p, "->", e.strerror)
        continue
    data = s.recv(100) if p == "{{CANARY_UNIX}}" else b""
    effect("connected to %s %r" % (p, data))
    s.close()
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "abstract-unix-socket",
		Class: "network",
		Why:   "abstract unix sockets live in the network namespace, not the file system: no mount hides them",
		Code: `{{PRELUDE}}
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect("\0{{CANARY_ABSTRACT}}")
    effect("connected to the host's abstract socket: %r" % s.recv(100))
except OSError as e:
    print("blocked:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "listening-sockets",
		Class: "network",
		Why:   "a listener would let the outside (or other tenants) reach into the sandbox; the control binds 127.0.0.1 on an ephemeral port for an instant",
		Code: `{{PRELUDE}}
import socket
for fam, addr in [(socket.AF_INET, ("0.0.0.0", 0)), (socket.AF_INET, ("127.0.0.1", 0)), (socket.AF_INET6, ("::", 0))]:
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind(addr)
        s.listen()
        effect("listening on %s" % (s.getsockname(),))
        s.close()
    except OSError as e:
        print(addr, "->", e)
` + pyFinish,
		Control: `{{PRELUDE}}
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen()
effect("listening on %s" % (s.getsockname(),))
s.close()
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "io-uring",
		Class: "network",
		Why:   "io_uring performs socket and file operations outside the syscall filter's view; every entry point must be blocked",
		Code: `{{PRELUDE}}
reached(425, 1, 0, label="io_uring_setup(1, NULL)")
reached(426, -1, 0, 0, 0, 0, 0, label="io_uring_enter(-1)")
reached(427, -1, 0, 0, 0, label="io_uring_register(-1)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "socket-family-high-bits",
		Class: "network",
		Why:   "the kernel reads the family as a 32-bit int: a filter comparing 64 bits would let (1<<32)|AF_INET through. The control creates an AF_INET socket and nothing more",
		Code: `{{PRELUDE}}
reached(41, (1 << 32) | 2, 1, 0, label="socket((1<<32)|AF_INET, SOCK_STREAM)")
reached(41, (0xffff << 32) | 10, 2, 0, label="socket(high|AF_INET6, SOCK_DGRAM)")
reached(53, (1 << 32) | 2, 1, 0, 0, label="socketpair((1<<32)|AF_INET)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "host-interfaces",
		Class: "network",
		Why:   "the sandbox's network namespace has only lo; host interfaces (eth0) visible would mean the host's network stack",
		Code: `{{PRELUDE}}
import socket
names = set()
try:
    names |= {l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]}
except OSError as e:
    print(e)
try:
    names |= {n for _, n in socket.if_nameindex()}
except OSError as e:
    print("if_nameindex ->", e)
print("interfaces:", sorted(names))
if names - {"lo"}:
    effect("host interfaces visible: %s" % sorted(names - {"lo"}))
` + pyFinish,
		Check: stdoutHas(done),
	},
}
