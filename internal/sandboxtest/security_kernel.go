package sandboxtest

// kernelCases probe the kernel attack surface the syscall filter must
// close. Most use reached() with arguments the kernel rejects before doing
// anything (NULL or the invalid address 1, fd -1, invalid flags), so the
// bare control has no side effect: bare, the kernel answers EFAULT, EBADF
// or EINVAL; inside, the filter answers {{BLOCKED_ERRNO}}.
var kernelCases = []Case{
	{
		Name:  "unshare-namespaces",
		Class: "kernel",
		Why:   "new namespaces (a user namespace first) unlock most kernel container-escape bugs. The program asks for real ones; the control adds CLONE_PARENT, which unshare rejects with EINVAL",
		Code: `{{PRELUDE}}
for flag, name in [(0x10000000, "NEWUSER"), (0x00020000, "NEWNS"), (0x40000000, "NEWNET"), (0x20000000, "NEWPID"),
                   (0x08000000, "NEWIPC"), (0x04000000, "NEWUTS"), (0x02000000, "NEWCGROUP"), (0x00000080, "NEWTIME"),
                   (0x10000000 | 0x00020000, "NEWUSER|NEWNS")]:
    reached(272, flag, label="unshare(CLONE_%s)" % name)
` + pyFinish,
		Control: `{{PRELUDE}}
for flag, name in [(0x10000000, "NEWUSER"), (0x00020000, "NEWNS"), (0x40000000, "NEWNET")]:
    reached(272, flag | 0x00008000, label="unshare(CLONE_%s|CLONE_PARENT)" % name)
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "clone-namespace-flags",
		Class: "kernel",
		Why:   "clone with namespace flags must be refused by the filter; CLONE_THREAD without CLONE_SIGHAND makes the kernel return EINVAL before creating anything",
		Code: `{{PRELUDE}}
bad = 0x00010000  # CLONE_THREAD without CLONE_SIGHAND
for flag, name in [(0x10000000, "NEWUSER"), (0x00020000, "NEWNS"), (0x40000000, "NEWNET"), (0x20000000, "NEWPID"),
                   (0x08000000, "NEWIPC"), (0x04000000, "NEWUTS"), (0x02000000, "NEWCGROUP")]:
    reached(56, flag | bad, 0, 0, 0, 0, label="clone(CLONE_%s)" % name)
    reached(56, (1 << 32) | flag | bad, 0, 0, 0, 0, label="clone(high bits|CLONE_%s)" % name)
e = sc(56, bad, 0, 0, 0, 0)
print("witness: clone without namespace flags reaches the kernel, errno", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "clone3",
		Class: "kernel",
		Why:   "clone3 passes flags in memory the filter cannot read, so it must fail with ENOSYS (libc then falls back to clone); any other answer means it reached the kernel",
		Code: `{{PRELUDE}}
import struct
ENOSYS = 38
def try_clone3(label, buf, size):
    e = sc(435, buf, size)
    if e not in (BLOCKED, ENOSYS):
        effect("%s reached the kernel (errno %d)" % (label, e))
    else:
        print(label, "->", e)
try_clone3("clone3(NULL, 0)", 0, 0)
# flags CLONE_NEWUSER|CLONE_THREAD (no CLONE_SIGHAND): EINVAL in the kernel.
args = ctypes.create_string_buffer(struct.pack("<11Q", 0x10000000 | 0x00010000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 88)
try_clone3("clone3(CLONE_NEWUSER)", ctypes.addressof(args), 88)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "setns",
		Class: "kernel",
		Why:   "setns joins another namespace through an fd; the program tries pid 1's, the control only fd -1",
		Code: `{{PRELUDE}}
for ns in ["user", "mnt", "net", "pid", "ipc", "uts", "cgroup"]:
    try:
        fd = os.open("/proc/1/ns/" + ns, os.O_RDONLY)
    except OSError as e:
        print(ns, "->", e.strerror)
        continue
    reached(308, fd, 0, label="setns(/proc/1/ns/%s)" % ns)
    os.close(fd)
reached(308, -1, 0, label="setns(-1)")
` + pyFinish,
		Control: `{{PRELUDE}}
reached(308, -1, 0, label="setns(-1)")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "mount-old-api",
		Class: "kernel",
		Why:   "mount, umount2, pivot_root and chroot with NULL paths: EFAULT bare. The program also tries a real tmpfs mount and the classic double-chroot escape",
		Code: `{{PRELUDE}}
reached(165, 0, 0, 0, 0, 0, label="mount(NULL)")
reached(166, 0, 0, label="umount2(NULL)")
reached(155, 0, 0, label="pivot_root(NULL, NULL)")
reached(161, 0, label="chroot(NULL)")
d = os.path.join("{{SCRATCH}}", "mnt")
os.makedirs(d, exist_ok=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
if _libc.mount(b"tmpfs", d.encode(), b"tmpfs", 0, None) == 0:
    effect("mounted a tmpfs")
if _libc.mount(b"/", d.encode(), None, 0x1000 | 0x4000, None) == 0:
    effect("bind-mounted /")
if _libc.chroot(d.encode()) == 0:
    effect("chroot succeeded")
    for i in range(32):
        os.chdir("..")
    _libc.chroot(b".")
    if os.path.exists("{{CANARY_FILE}}"):
        effect("escaped chroot to the host root")
` + pyFinish,
		Control: `{{PRELUDE}}
reached(165, 0, 0, 0, 0, 0, label="mount(NULL)")
reached(166, 0, 0, label="umount2(NULL)")
reached(155, 0, 0, label="pivot_root(NULL, NULL)")
reached(161, 0, label="chroot(NULL)")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "mount-new-api",
		Class: "kernel",
		Why:   "fsopen/fsconfig/fsmount/fspick/open_tree/move_mount/mount_setattr and the mount listing calls, with invalid pointers or fds",
		Code: `{{PRELUDE}}
reached(430, 1, 0, label="fsopen(bad)")
reached(431, -1, 0, 0, 0, 0, label="fsconfig(-1)")
reached(432, -1, 0, 0, label="fsmount(-1)")
reached(433, -1, 1, 0, label="fspick(-1, bad)")
reached(428, -1, 1, 0, label="open_tree(-1, bad)")
reached(429, -1, 1, -1, 1, 0, label="move_mount(-1, bad)")
reached(442, -1, 1, 0, 0, 0, label="mount_setattr(-1, bad)")
reached(457, 1, 1, 0, 0, label="statmount(bad)")
reached(458, 1, 1, 0, 0, label="listmount(bad)")
reached(467, -1, 1, 0, 0, 0, label="open_tree_attr(-1, bad)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "keyrings",
		Class: "kernel",
		Why:   "the kernel keyring is not namespaced: keys of other users and services, and a long record of kernel bugs",
		Code: `{{PRELUDE}}
reached(248, 1, 1, 0, 0, 0, label="add_key(bad)")
reached(249, 1, 1, 0, 0, label="request_key(bad)")
reached(250, 0x7fff, 0, 0, 0, 0, label="keyctl(invalid)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "bpf",
		Class: "kernel",
		Code: `{{PRELUDE}}
reached(321, 0x7fff, 0, 0, label="bpf(invalid command)")
reached(321, 0, 0, 0, label="bpf(BPF_MAP_CREATE, NULL)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "userfaultfd",
		Class: "kernel",
		Why:   "userfaultfd stalls kernel page faults at will, the classic way to win kernel races",
		Code: `{{PRELUDE}}
reached(323, 0xffff, label="userfaultfd(invalid flags)")
try:
    os.open("/dev/userfaultfd", os.O_RDWR)
    effect("opened /dev/userfaultfd")
except OSError as e:
    print("/dev/userfaultfd ->", e.strerror)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "perf-event-open",
		Class: "kernel",
		Code: `{{PRELUDE}}
reached(298, 0, 0, -1, -1, 0, label="perf_event_open(NULL)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "tiocsti",
		Class: "kernel",
		Why:   "TIOCSTI pushes keystrokes into a terminal another process reads; the kernel reads the request as 32 bits, so high bits must not hide it (CVE-2019-10063 class). fd -1: EBADF bare",
		Code: `{{PRELUDE}}
TIOCSTI = 0x5412
for req in (TIOCSTI, (1 << 32) | TIOCSTI, (0xdeadbeef << 32) | TIOCSTI):
    reached(16, -1, req, 0, label="ioctl(-1, %#x)" % req)
print("witness: ioctl(-1, FIONREAD) ->", sc(16, -1, 0x541B, 0))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "tioclinux",
		Class: "kernel",
		Why:   "TIOCLINUX subcodes paste the console selection as input, with the same high-bit trick",
		Code: `{{PRELUDE}}
TIOCLINUX = 0x541C
for req in (TIOCLINUX, (1 << 32) | TIOCLINUX, (0xffffffff << 32) | TIOCLINUX):
    reached(16, -1, req, 0, label="ioctl(-1, %#x)" % req)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "open-by-handle-at",
		Class: "kernel",
		Why: "the 2014 \"shocker\" escape: a hand-made file handle for inode 2 opens the root of the file system behind any bind " +
			"mount. It only reads, so the control runs the real attack bare and reads the canary through the handle",
		Code: `{{PRELUDE}}
import struct
reached(303, -1, 1, 0, 0, 0, label="name_to_handle_at(bad)")
reached(304, -1, 0, 0, label="open_by_handle_at(-1, NULL)")
mount_fd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)
handle = ctypes.create_string_buffer(struct.pack("<IiII", 8, 1, 2, 0))
ctypes.set_errno(0)
fd = _libc.syscall(ctypes.c_long(304), ctypes.c_long(mount_fd), handle, ctypes.c_long(os.O_RDONLY | os.O_DIRECTORY))
if fd >= 0:
    try:
        data = open(os.open("{{CANARY_FILE}}".lstrip("/"), os.O_RDONLY, dir_fd=fd)).read()
        effect("opened the file system root by handle and read " + data)
    except OSError as e:
        effect("opened the file system root by handle: %s" % os.listdir(fd)[:5])
else:
    print("open_by_handle_at -> errno", ctypes.get_errno())
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "exotic-socket-families",
		Class: "kernel",
		Why:   "rarely used protocol families are where socket bugs live; an invalid type (11) makes the kernel return EINVAL before it looks the family up, so no module is ever loaded",
		Code: `{{PRELUDE}}
fams = {3: "AX25", 4: "IPX", 5: "APPLETALK", 9: "X25", 10: "INET6", 12: "DECnet", 15: "KEY", 16: "NETLINK",
        17: "PACKET", 21: "RDS", 23: "IRDA", 24: "PPPOX", 26: "LLC", 27: "IB", 28: "MPLS", 29: "CAN", 30: "TIPC",
        31: "BLUETOOTH", 33: "RXRPC", 34: "ISDN", 35: "PHONET", 36: "IEEE802154", 37: "CAIF", 38: "ALG", 39: "NFC",
        40: "VSOCK", 41: "KCM", 42: "QIPCRTR", 43: "SMC", 44: "XDP", 45: "MCTP"}
for fam, name in fams.items():
    reached(41, fam, 11, 0, label="socket(AF_%s)" % name)
print("witness: socket(AF_UNIX, invalid type) ->", sc(41, 1, 11, 0))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "x32-abi",
		Class: "kernel",
		Why:   "x32 system calls (nr | 0x40000000) share the x86_64 audit arch, so an arch check alone lets them past a filter keyed on numbers. Bare this kernel answers ENOSYS (no x32), which still shows they reach it",
		Code: `{{PRELUDE}}
X32 = 0x40000000
for nr, name, args in [(39, "getpid", ()), (101, "ptrace", (16, 1, 0, 0)), (521, "ptrace (x32)", (16, 1, 0, 0)),
                       (272, "unshare", (0x10000000 | 0x8000,)), (41, "socket", (2, 11, 0)), (165, "mount", (0, 0, 0, 0, 0))]:
    reached(X32 | nr, *args, label="x32 " + name)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "i386-abi",
		Class: "kernel",
		Why: "int 0x80 from a 64-bit process enters the i386 table, where numbers mean other calls; the filter must kill it " +
			"(SIGSYS, in a child here so the program can report) rather than allow or answer. Bare the child gets its pid back",
		Code: `{{PRELUDE}}
import mmap, signal
pid = os.fork()
if pid == 0:
    code = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"  # mov eax, 20 (i386 getpid); int 0x80; ret
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    r = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    os._exit(0 if r == os.getpid() else 3)
_, st = os.waitpid(pid, 0)
if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
    effect("int 0x80 getpid reached the i386 table")
elif os.WIFSIGNALED(st):
    print("child killed by", signal.Signals(os.WTERMSIG(st)).name)
else:
    print("child exit", os.WEXITSTATUS(st))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "personality",
		Class: "kernel",
		Why:   "personality flags such as READ_IMPLIES_EXEC and ADDR_NO_RANDOMIZE weaken the address space; only the query (0xffffffff) and PER_LINUX may pass. The control restores its persona",
		Code: `{{PRELUDE}}
_libc.syscall.restype = ctypes.c_long
old = _libc.syscall(ctypes.c_long(135), ctypes.c_long(0xffffffff))
for val in (0x0400000, 0x0040000, 0x0008, (1 << 32) | 0x0040000, 0x0020000 | 0x0040000):
    reached(135, val, label="personality(%#x)" % val)
    _libc.syscall(ctypes.c_long(135), ctypes.c_long(old))
print("witness: personality query ->", old)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "prctl-dangerous",
		Class: "kernel",
		Why:   "prctl options outside CPython's needs (PR_SET_MM, PR_SET_PTRACER, PR_SET_SECCOMP, speculation and syscall user dispatch); each with an argument the kernel rejects",
		Code: `{{PRELUDE}}
for opt, args, name in [(35, (0xff, 0, 0, 0), "PR_SET_MM"), (0x59616d61, (-5, 0, 0, 0), "PR_SET_PTRACER"),
                        (22, (99, 0, 0, 0), "PR_SET_SECCOMP"), (53, (0xff, 0, 0, 0), "PR_SET_SPECULATION_CTRL"),
                        (59, (0xff, 0, 0, 0), "PR_SET_SYSCALL_USER_DISPATCH"), (26, (0, 0, 0, 0), "PR_SET_TSC"),
                        ((1 << 32) | 35, (0xff, 0, 0, 0), "high bits|PR_SET_MM")]:
    reached(157, opt, *args, label=name)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "modules-kexec-reboot",
		Class: "kernel",
		Why: "every argument is one the kernel rejects first: reboot with bad magic (EINVAL), kexec_load with an unknown flag and " +
			"17 segments (EINVAL), kexec_file_load with an unknown flag, init_module of 0 bytes (ENOEXEC or ENOSYS), finit_module(-1), " +
			"delete_module/swapon/swapoff/acct with the invalid address 1 (EFAULT; acct(NULL) would switch accounting off)",
		Code: `{{PRELUDE}}
reached(169, 0, 0, 0, 0, label="reboot(bad magic)")
reached(246, 0, 17, 0, 0x100, label="kexec_load(bad flags)")
reached(320, -1, -1, 0, 0, 0x80000000, label="kexec_file_load(bad flags)")
reached(175, 0, 0, 1, label="init_module(0 bytes)")
reached(313, -1, 1, 0, label="finit_module(-1)")
reached(176, 1, 0, label="delete_module(bad)")
reached(167, 1, 0, label="swapon(bad)")
reached(168, 1, label="swapoff(bad)")
reached(163, 1, label="acct(bad)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "set-clocks",
		Class: "kernel",
		Why:   "the clocks are not namespaced: setting them moves the host's time (invalid address 1: EFAULT bare)",
		Code: `{{PRELUDE}}
reached(164, 1, 1, label="settimeofday(bad)")
reached(227, 0, 1, label="clock_settime(REALTIME, bad)")
reached(305, 0, 1, label="clock_adjtime(REALTIME, bad)")
reached(159, 1, label="adjtimex(bad)")
reached(170, 1, 5, label="sethostname(bad)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "io-ports",
		Class: "kernel",
		Code: `{{PRELUDE}}
reached(172, 4, label="iopl(4)")
reached(173, 0x10000, 1, 1, label="ioperm(out of range)")
reached(154, 0xff, 0, 0, label="modify_ldt(invalid)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "rare-syscalls",
		Class: "kernel",
		Why:   "calls no Python workload needs, each a past source of kernel bugs or a side door (fanotify, seccomp stacking, memfd_secret, process_madvise, move_pages, quotactl, name_to_handle_at, landlock, lsm)",
		Code: `{{PRELUDE}}
for nr, args, name in [(300, (0xffffffff, 0), "fanotify_init(invalid)"), (317, (0xff, 0, 0), "seccomp(invalid)"),
                       (447, (0xffff,), "memfd_secret(invalid)"), (440, (-1, 0, 0, 0, 0), "process_madvise(-1)"),
                       (279, (0, 1, 1, 1, 1, 0xffff), "move_pages(invalid)"), (256, (0, 0, 1, 1), "migrate_pages(bad)"),
                       (179, (0, 1, 0, 0), "quotactl(bad)"), (134, (1,), "uselib(bad)"), (139, (0xff, 0, 0), "sysfs(invalid)"),
                       (136, (0, 1), "ustat(bad)"), (212, (0, 0, 0), "lookup_dcookie"), (180, (), "nfsservctl"),
                       (460, (1, 1, 0), "lsm_get_self_attr(bad)"), (444, (0, 0, 0xff), "landlock_create_ruleset(invalid)")]:
    reached(nr, *args, label=name)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "every-task-confined",
		Class: "kernel",
		Why:   "every thread of every process, pid 1 included, must show Seccomp: 2, NoNewPrivs: 1 and empty capability sets; bare, none does",
		Code: `{{PRELUDE}}
import subprocess, threading, time
ev = threading.Event()
ts = [threading.Thread(target=ev.wait) for i in range(3)]
for t in ts:
    t.start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
time.sleep(0.3)
tasks = 0
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        tids = os.listdir("/proc/%s/task" % pid)
    except OSError:
        continue
    for tid in tids:
        try:
            st = dict(l.split(":", 1) for l in open("/proc/%s/task/%s/status" % (pid, tid)) if ":" in l)
        except OSError:
            continue
        tasks += 1
        bad = [k for k, want in (("Seccomp", "2"), ("NoNewPrivs", "1")) if st.get(k, "").strip() != want]
        bad += [k for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if int(st.get(k, "0"), 16) != 0]
        if bad:
            effect("task %s/%s (%s) is not confined: %s" % (pid, tid, st["Name"].strip(), bad))
ev.set()
child.kill(); child.wait()
print("tasks checked:", tasks)
` + pyFinish,
		Check: stdoutHas(done),
	},
}
