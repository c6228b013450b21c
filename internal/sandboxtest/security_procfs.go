package sandboxtest

// procfsCases go after the kernel through its file systems: /proc/sys,
// masked /proc entries, root-only /proc files, sysfs and cgroupfs
// (release_agent), and device nodes.
var procfsCases = []Case{
	{
		Name:  "proc-sys-write",
		Class: "procfs",
		Why: "host-wide tunables: core_pattern and modprobe run a program as host root, drop_caches and the rest change the host. " +
			"Opening for writing is the breach; nothing is written, bare or sandboxed",
		Code: `{{PRELUDE}}
try_open(["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/vm/drop_caches",
          "/proc/sys/kernel/panic", "/proc/sys/vm/overcommit_memory", "/proc/sys/net/ipv4/ip_forward",
          "/proc/sys/fs/binfmt_misc/register", "/proc/sys/kernel/randomize_va_space"],
         os.O_WRONLY, "opened %s for writing")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "masked-proc-entries",
		Class: "procfs",
		Why: "entries runc and Docker mask (kcore, kallsyms, sysrq-trigger, timer_list, keys, ...) must be /dev/null or an empty " +
			"directory inside. This kernel has neither /proc/kcore nor /proc/sysrq-trigger, so the control shows the effect through the " +
			"entries it does have; the program never reads /proc/kmsg (a destructive read) and never writes sysrq-trigger",
		Code: `{{PRELUDE}}
import stat
proc_dev = os.stat("/proc/self").st_dev
for p in ["/proc/kcore", "/proc/kallsyms", "/proc/sysrq-trigger", "/proc/kmsg", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/keys", "/proc/latency_stats", "/proc/interrupts",
          "/proc/vmallocinfo", "/proc/acpi", "/proc/asound", "/proc/scsi"]:
    try:
        st = os.stat(p)
    except OSError:
        continue
    if stat.S_ISCHR(st.st_mode) or (stat.S_ISDIR(st.st_mode) and not os.listdir(p)):
        print(p, "masked")
        continue
    if st.st_dev != proc_dev and not stat.S_ISDIR(st.st_mode):
        print(p, "replaced")
        continue
    try:
        if stat.S_ISDIR(st.st_mode):
            effect("%s is not masked: %s" % (p, os.listdir(p)[:3]))
        elif p in ("/proc/kmsg", "/proc/sysrq-trigger", "/proc/kcore"):
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
            effect("%s is the real entry and opens" % p)
        else:
            data = open(p, "rb").read(4096)
            if data:
                effect("%s is not masked: %r" % (p, data[:60]))
    except OSError as e:
        print(p, "->", e.strerror)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "sysrq-trigger-write",
		Class: "procfs",
		Why: "writing /proc/sysrq-trigger can reboot or crash the host; inside it must be /dev/null (an open for writing that " +
			"lands on the real file is the breach; nothing is written). This kernel has no CONFIG_MAGIC_SYSRQ, so no bare control " +
			"can show the effect here; masked-proc-entries carries the control for the masking mechanism",
		Control: "-",
		Code: `{{PRELUDE}}
import stat
try:
    fd = os.open("/proc/sysrq-trigger", os.O_WRONLY)
    st = os.fstat(fd)
    os.close(fd)
    if stat.S_ISREG(st.st_mode):
        effect("opened the real /proc/sysrq-trigger for writing")
    else:
        print("masked: device", os.major(st.st_rdev), os.minor(st.st_rdev))
except OSError as e:
    print("denied:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "root-only-proc-files",
		Class: "procfs",
		Why:   "physical page maps (rowhammer and KASLR aids) and kernel stacks are readable only by host root",
		Code: `{{PRELUDE}}
for p in ["/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup", "/proc/self/stack", "/proc/1/stack",
          "/proc/self/pagemap"]:
    try:
        with open(p, "rb") as f:
            data = f.read(64)
    except OSError as e:
        print(p, "->", e.strerror)
        continue
    if p.endswith("pagemap"):
        # Readable by anyone, but page frame numbers are zero without CAP_SYS_ADMIN.
        import struct
        libc_addr = int(open("/proc/self/maps").readline().split("-")[0], 16)
        with open(p, "rb") as f:
            f.seek(libc_addr // 4096 * 8)
            entry = struct.unpack("<Q", f.read(8))[0]
        if entry & ((1 << 55) - 1):
            effect("pagemap shows physical frame numbers: %x" % entry)
        continue
    if data:
        effect("read %s: %r" % (p, data[:32]))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "sysfs-access",
		Class: "procfs",
		Why:   "sysfs exposes host hardware, cgroups and kernel knobs; the sandbox has no /sys and may not mount one",
		Code: `{{PRELUDE}}
for p in ["/sys", "/sys/fs/cgroup", "/sys/kernel", "/sys/class/net", "/sys/firmware"]:
    try:
        effect("%s lists %s" % (p, os.listdir(p)[:4]))
    except OSError as e:
        print(p, "->", e.strerror)
target = os.path.join("{{SCRATCH}}", "sysfs")
os.makedirs(target, exist_ok=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
if _libc.mount(b"sysfs", target.encode(), b"sysfs", 0, None) == 0:
    effect("mounted sysfs: %s" % os.listdir(target)[:4])
else:
    print("mount sysfs -> errno", ctypes.get_errno())
` + pyFinish,
		Control: `{{PRELUDE}}
for p in ["/sys", "/sys/fs/cgroup"]:
    try:
        effect("%s lists %s" % (p, os.listdir(p)[:4]))
    except OSError as e:
        print(p, "->", e.strerror)
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "cgroup-release-agent",
		Class: "procfs",
		Why: "CVE-2022-0492: a cgroup v1 release_agent runs as host root. The program looks for a writable release_agent, " +
			"a mounted cgroup file system, and tries to mount its own after unsharing user, mount and cgroup namespaces " +
			"(it never writes release_agent). The control only checks bare writability and mount reachability with invalid arguments",
		Code: `{{PRELUDE}}
import glob
for p in glob.glob("/sys/fs/cgroup/*/release_agent") + glob.glob("/sys/fs/cgroup/release_agent"):
    try:
        fd = os.open(p, os.O_WRONLY); os.close(fd)
        effect("opened %s for writing" % p)
    except OSError as e:
        print(p, "->", e.strerror)
for l in open("/proc/self/mountinfo"):
    if " - cgroup" in l:
        effect("a cgroup file system is mounted: " + l.strip())
for flags in (0x10000000 | 0x00020000 | 0x02000000, 0x00020000, 0x02000000):
    e = sc(272, flags)
    if e == 0:
        effect("unshare(%#x) succeeded" % flags)
target = os.path.join("{{SCRATCH}}", "cg")
os.makedirs(target, exist_ok=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
for opts in (b"memory", b"rdma", b"pids", b"none,name=pybox"):
    if _libc.mount(b"cgroup", target.encode(), b"cgroup", 0, opts) == 0:
        effect("mounted cgroup v1 (%s): %s" % (opts, os.listdir(target)[:4]))
        break
    print("mount cgroup", opts, "-> errno", ctypes.get_errno())
reached(165, 0, 0, 0, 0, 0, label="mount(NULL, ...)")
` + pyFinish,
		Control: `{{PRELUDE}}
import glob
for p in glob.glob("/sys/fs/cgroup/*/release_agent"):
    if os.access(p, os.W_OK):
        effect("%s is writable bare" % p)
reached(165, 0, 0, 0, 0, 0, label="mount(NULL, ...)")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "device-nodes-listing",
		Class: "procfs",
		Why:   "/dev holds only null, zero, full, random, urandom, the /proc/self/fd links and shm",
		Code: `{{PRELUDE}}
allowed = {"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr", "shm"}
extra = sorted(set(os.listdir("/dev")) - allowed)
if extra:
    effect("extra device entries: %s" % extra[:10])
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "open-host-devices",
		Class: "procfs",
		Why:   "device nodes beyond the harmless five (kernel log, KVM, disks, consoles, FUSE, loop control, tun); they are only opened read-only, never read or written",
		Code: `{{PRELUDE}}
for p in ["/dev/kmsg", "/dev/kvm", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem", "/dev/port", "/dev/console",
          "/dev/tty", "/dev/tty0", "/dev/fuse", "/dev/loop-control", "/dev/loop0", "/dev/net/tun", "/dev/hwrng",
          "/dev/cpu/0/msr", "/dev/btrfs-control", "/dev/autofs", "/dev/vsock", "/dev/vhost-vsock"]:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        continue
    os.close(fd)
    effect("opened " + p)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "mknod-block-device",
		Class: "procfs",
		Why: "device nodes made in scratch: the host disk (raw access to every host file; the program reads one sector), " +
			"/dev/kmsg and /dev/mem (only opened). Bare, root makes them all; opening the disk may still be refused by the host's device policy",
		Code: `{{PRELUDE}}
import stat
dev = os.stat(os.__file__).st_dev
made = []
for name, mode, rdev in [("disk", stat.S_IFBLK, dev), ("kmsg", stat.S_IFCHR, os.makedev(1, 11)), ("mem", stat.S_IFCHR, os.makedev(1, 1))]:
    p = os.path.join("{{SCRATCH}}", "dev-" + name)
    try:
        os.mknod(p, mode | 0o600, rdev)
        made.append((name, p))
    except OSError as e:
        print("mknod", name, "->", e.strerror)
for name, p in made:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        print("open", name, "->", e.strerror)
        continue
    if name == "disk":
        effect("read %d bytes of the host disk" % len(os.read(fd, 512)))
    else:
        effect("opened device node " + name)
    os.close(fd)
` + pyFinish,
		Check: stdoutHas(done),
	},
}
