package sandboxtest

import (
	"os"
	"strings"
)

// pyInotify watches the json package of the stdlib (files the program
// itself does not touch while watching) and counts open and access events.
const pyInotify = `
import select, struct
def watch(seconds):
    import time
    d = os.path.dirname(__import__("json").__file__)
    fd = _libc.inotify_init1(os.O_NONBLOCK)
    if fd < 0 or _libc.inotify_add_watch(fd, d.encode(), 0x1 | 0x20) < 0:
        print("inotify ->", ctypes.get_errno())
        return 0
    n, t = 0, time.time()
    while time.time() - t < seconds:
        if select.select([fd], [], [], 0.1)[0]:
            data = os.read(fd, 65536)
            while data:
                wd, mask, cookie, ln = struct.unpack_from("iIII", data)
                n += 1
                data = data[16 + ln:]
    return n
`

// infoLeakCases look for what identifies the host and its other tenants:
// host name, boot and machine ids, other processes, host sockets, kernel
// pointers and the kernel log.
var infoLeakCases = []Case{
	{
		Name:  "host-name",
		Class: "info-leak",
		Why:   "the sandbox's UTS namespace is named pybox; any other name is the host's",
		Code: `{{PRELUDE}}
import socket
names = {"uname": os.uname().nodename, "gethostname": socket.gethostname()}
for p in ["/proc/sys/kernel/hostname", "/etc/hostname"]:
    try:
        names[p] = open(p).read().strip()
    except OSError as e:
        print(p, "->", e)
print(names)
for k, v in names.items():
    if v != "pybox":
        effect("host name via %s: %s" % (k, v))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "host-boot-and-machine-id",
		Class: "info-leak",
		Why: "boot_id and machine-id identify the physical host: two tenants comparing them learn they share a machine (the first step " +
			"of a co-residency side channel). The sandbox may show a boot id, but never the host's",
		Code: `{{PRELUDE}}
HOST_IDS = "` + hostIDs() + `"
host = set(HOST_IDS.split())
for p in ["/proc/sys/kernel/random/boot_id", "/etc/machine-id", "/var/lib/dbus/machine-id", "/sys/class/dmi/id/product_uuid"]:
    try:
        v = open(p).read().strip()
    except OSError as e:
        print(p, "->", e.strerror)
        continue
    print(p, "=", v)
    if v in host:
        effect("host identity from %s: %s" % (p, v))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "other-processes",
		Class: "info-leak",
		Why:   "other tenants' and the host's processes (kernel threads included) must be invisible: only pid 1 (the reaper) and the program's own tree",
		Code: `{{PRELUDE}}
me = os.getpid()
def ancestry(pid):
    while pid > 1:
        if pid == me:
            return True
        try:
            pid = int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False
foreign = []
for p in [p for p in os.listdir("/proc") if p.isdigit()]:
    pid = int(p)
    if pid in (1, me) or ancestry(pid):
        continue
    try:
        foreign.append((pid, open("/proc/%d/comm" % pid).read().strip()))
    except OSError:
        pass
if foreign:
    effect("%d foreign processes visible: %s" % (len(foreign), foreign[:5]))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "host-sockets-visible",
		Class: "info-leak",
		Why:   "/proc/net lists the sockets of the network namespace: the host's would show the canary listeners",
		Code: `{{PRELUDE}}
port = ":%04X" % {{CANARY_PORT}}
for p in ["/proc/net/tcp", "/proc/net/tcp6"]:
    try:
        if port in open(p).read():
            effect("%s lists the host's canary listener" % p)
    except OSError as e:
        print(p, "->", e)
try:
    unix = open("/proc/net/unix").read()
    if "{{CANARY_UNIX}}" in unix or "{{CANARY_ABSTRACT}}" in unix:
        effect("/proc/net/unix lists the host's canary sockets")
except OSError as e:
    print(e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "kernel-pointers",
		Class: "info-leak",
		Why:   "kernel addresses defeat KASLR: kallsyms, modules, timer_list, kernel stacks, wchan",
		Code: `{{PRELUDE}}
import re
pat = re.compile(r"\bffff[89a-f][0-9a-f]{11}\b")
for p in ["/proc/kallsyms", "/proc/modules", "/proc/timer_list", "/proc/self/stack", "/proc/1/stack",
          "/proc/vmallocinfo", "/proc/self/syscall", "/proc/iomem", "/proc/net/unix", "/proc/net/netlink",
          "/proc/net/packet", "/proc/slabinfo", "/proc/self/wchan"]:
    try:
        data = open(p).read(1 << 20)
    except OSError as e:
        print(p, "->", e.strerror)
        continue
    m = pat.search(data)
    if m:
        effect("kernel pointer in %s: %s" % (p, m.group(0)))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "kernel-log",
		Class: "info-leak",
		Why:   "dmesg holds host hardware, addresses and other tenants' crashes. syslog(READ_ALL) and /dev/kmsg read without consuming; /proc/kmsg (destructive) is never read",
		Code: `{{PRELUDE}}
buf = ctypes.create_string_buffer(1 << 14)
n = _libc.syscall(ctypes.c_long(103), ctypes.c_long(3), buf, ctypes.c_long(len(buf)))
if n > 0:
    effect("syslog(READ_ALL) returned %d bytes: %r" % (n, buf.raw[:40]))
else:
    print("syslog -> errno", ctypes.get_errno())
reached(103, 10, 0, 0, label="syslog(SIZE_BUFFER)")
try:
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    effect("/dev/kmsg: %r" % os.read(fd, 8192)[:40])
except OSError as e:
    print("/dev/kmsg ->", e.strerror)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "inotify-other-tenants",
		Class: "info-leak",
		Why: "the interpreter and its stdlib are bind mounts of the host's own inodes, shared by every sandbox: an inotify watch " +
			"on them reports every other tenant's (and the host's) imports as they happen, a cross-tenant side channel. The " +
			"control starts a detached host process that reads json/__init__.py for 3 s (standing in for another tenant), sees " +
			"its events itself, and leaves it running into the sandboxed run",
		Code: `{{PRELUDE}}` + pyInotify + `
n = watch(2.0)
print("events from outside:", n)
if n:
    effect("saw %d file events of other processes on the shared stdlib" % n)
` + pyFinish,
		Control: `{{PRELUDE}}` + pyInotify + `
import json, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in (0, 1, 2):
            os.close(fd)
        t = time.time()
        while time.time() - t < 3:
            open(json.__file__, "rb").read(1)
            time.sleep(0.05)
        os._exit(0)
    os._exit(0)
n = watch(0.5)
if n:
    effect("saw %d file events of another process on the stdlib" % n)
`,
		Check: stdoutHas(done),
	},
}

// hostIDs are the host's own identifiers (boot id, machine id), which a
// sandbox must never show.
func hostIDs() string {
	var ids []string
	for _, p := range []string{"/proc/sys/kernel/random/boot_id", "/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			ids = append(ids, strings.TrimSpace(string(b)))
		}
	}
	return strings.Join(ids, " ")
}
