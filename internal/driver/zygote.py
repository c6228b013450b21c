# pybox zygote: the fork server of the warm path.
#
# It runs as the program of a template sandbox (whose root, user namespace
# and limits it shares with every sandbox it makes), keeps the driver loaded,
# and on each "spawn" request from the host forks a new sandbox:
#
#   zygote ── clone(new mount, net, ipc, uts and pid namespaces) ─> G
#   G (pid 1 of the new pid namespace): moves itself into its own cgroup
#       (through files the host opened), mounts a fresh /tmp, /dev/shm and
#       /proc, says hello to the host, then forks P and becomes the reaper
#       (uid 999, confined)
#   P: the program: as root, enters a user namespace of its own, where pid 1
#       maps its uid 1000 to an id of the template's that no other sandbox
#       has (the host picks it, with pid 1's own); confines itself
#       (capabilities, no_new_privs, Landlock, seccomp, in that order) and
#       runs the driver, which waits for code.
#
# The zygote itself never runs user code: it only reads the host's requests.
# Every sandbox it forks has its own process tree, mount, pid, net, ipc, uts
# and cgroup namespaces, its own cgroup and its own scratch; none is reused.
# The host end of the protocol is internal/backend/native/zygote_linux.go.
#
# CPU per sandbox is what limits a server's throughput, and most of it is
# the kernel copying pages that a forked interpreter touches. Hence: one
# clone straight into the new namespaces (no intermediate process), the
# confinement's structures built once here, and little Python in G and P.
import _signal, ctypes, os, socket, sys

libc = ctypes.CDLL(None, use_errno=True)
# The same libc, called with the GIL held: a clone must happen as os.fork
# does, between PyOS_BeforeFork and PyOS_AfterFork_*.
libc_gil = ctypes.PyDLL(None, use_errno=True)
__pybox__ = True  # the driver hides frames of ours from user tracebacks
CTL = 3  # SOCK_SEQPACKET socket to the host

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWUSER = 0x00020000, 0x02000000, 0x04000000, 0x10000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 22, 38, 47
PR_SET_CHILD_SUBREAPER, PR_CAP_AMBIENT_CLEAR_ALL = 36, 4
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
SYS_CLOSE_RANGE = 436
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
SIGCHLD = 17
IN_ZYGOTE = True  # False in every sandbox forked from it


class SetupError(Exception):
    pass


def check(ret, what):
    if ret < 0:
        e = ctypes.get_errno()
        raise SetupError("%s: %s" % (what, os.strerror(e)))
    return ret


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), "mount " + target)


def prctl(op, a=0, b=0, c=0, d=0):
    return check(libc.prctl(op, ctypes.c_ulong(a), ctypes.c_ulong(b), ctypes.c_ulong(c), ctypes.c_ulong(d)), "prctl %d" % op)


# --- confinement (the same steps and order as nsinit's confine) -------------------

class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


class RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


def drop_bounding_set(caps):
    """Empties the bounding set and the ambient set. The zygote does it for
    every sandbox to inherit (it keeps the capabilities it has: it needs
    them to make namespaces and mounts, as pid 1 of each sandbox does), and
    a program again in the user namespace it makes, which starts with a
    full bounding set."""
    for c in caps:
        if libc.prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            check(-1, "dropping capability %d from the bounding set" % c.value)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def drop_caps():
    """Clears this process's own capabilities; the bounding and ambient
    sets are empty already (drop_bounding_set)."""
    hdr, data = CapHeader(0x20080522, 0), (CapData * 2)()
    check(libc.capset(ctypes.byref(hdr), data), "capset")


def landlock(cfg):
    if not cfg:
        return
    attr = RulesetAttr(cfg["fs"], cfg["net"], cfg["scoped"])
    # The whole struct: a kernel that knows fewer fields accepts the extra
    # ones as long as they are zero, which they are for its ABI.
    fd = check(libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0), "landlock_create_ruleset")
    try:
        for path, access, is_dir in cfg["rules"]:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                if is_dir is None:
                    is_dir = os.path.isdir("/proc/self/fd/%d" % pfd)
                if not is_dir:
                    access &= cfg["file_mask"]  # directory-only rights are invalid on a file
                pb = PathBeneath(access, pfd)
                check(libc.syscall(SYS_LANDLOCK_ADD_RULE, fd, 1, ctypes.byref(pb), 0), "landlock_add_rule " + path)
            finally:
                os.close(pfd)
        check(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock_restrict_self")
    finally:
        os.close(fd)


def seccomp_prog(prog):
    """The sock_fprog for prog, built once in the zygote: every sandbox
    installs the same filter."""
    filt = (SockFilter * len(prog))(*[SockFilter(f["c"], f["t"], f["f"], f["k"]) for f in prog])
    fprog = SockFprog(len(prog), filt)
    fprog.keep = filt  # the filter must live as long as the program
    return fprog


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def confine(cfg, uid):
    """Becomes uid and drops every privilege; seccomp last, as nsinit does.
    Only this process's own code runs between here and the driver."""
    if uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    drop_caps()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    landlock(cfg["landlock"])
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(cfg["fprog"]))


# --- a new sandbox ---------------------------------------------------------------------

def build_fs(cfg, req):
    """G's mounts: private propagation, its own scratch and /proc."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    scratch = "size=%d,mode=1777" % min(int(req.get("tmpfs_bytes") or cfg["tmpfs_bytes"]), cfg["tmpfs_bytes"])
    boot_id = req.get("boot_id", "")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, scratch)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, scratch)
    # Its own /pybox, where the driver stores a one-shot's script; the
    # driver itself is already loaded.
    # The program owns it and its one file (the ids it runs as, if it has
    # its own): Landlock's one writable file, where a one-shot's code goes.
    uid = req.get("uid")
    owner = ",uid=%d,gid=%d" % (uid, uid) if uid else ""
    mount("tmpfs", "/pybox", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=%d,mode=0755%s" % (17 << 20, owner))
    if uid:
        libc.setfsgid(uid)
        libc.setfsuid(uid)
    try:
        os.close(os.open("/pybox/main.py", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    finally:
        if uid:
            libc.setfsuid(os.geteuid())
            libc.setfsgid(os.getegid())
    if uid and os.stat("/pybox/main.py").st_uid != uid:
        raise SetupError("/pybox/main.py is not the program's")
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for p, is_dir in cfg["masked"]:
        if is_dir:
            mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
        else:
            mount("/dev/null", p, None, MS_BIND)
    target = "/proc/sys/kernel/random/boot_id"
    if boot_id and os.path.exists(target):
        src = "/dev/shm/.boot_id"
        with open(src, "w") as f:
            f.write(boot_id + "\n")
        mount(src, target, None, MS_BIND)
        os.unlink(src)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for p in cfg["readonly"]:
        mount(p, p, None, MS_BIND | MS_REC)
        mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def report(fd, line):
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        pass


def sandbox(cfg, req, fds, driver):
    """G: pid 1 of the new sandbox. Never returns. (No try may enclose the
    fork of the program: its exceptions, SystemExit included, must reach
    the interpreter's top level.)"""
    stdin, stdout, stderr, ctl, rep, rpt, chan = fds[:7]
    try:
        # Into the sandbox's own cgroup before anything is charged: the
        # host opened the files, so the kernel lets us write them; writing
        # "0" moves the writer, which is cheap (see cgroup.Group.JoinFiles).
        for fd in fds[7:]:
            os.write(fd, b"0")
            os.close(fd)
        build_fs(cfg, req)
        # The host learns our pid from the credentials the kernel attaches.
        ch = socket.socket(fileno=chan)
        ch.send(b"p")
        ch.close()
        check(libc.unshare(CLONE_NEWCGROUP), "unshare cgroup namespace")
        # The program's own ids: a socket pair to map them when it has
        # made its user namespace.
        uid = req.get("uid")
        ids = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if uid else (None, None)
    except BaseException as e:
        report(rpt, "E %s" % e)
        os._exit(1)
    pid = os.fork()
    if pid == 0:
        if ids[0]:
            ids[0].close()
        program(cfg, (stdin, stdout, stderr, ctl, rep), rpt, driver, ids[1])
    try:
        if ids[0]:
            ids[1].close()
            map_ids(ids[0], pid, cfg["uid"], uid)
        for fd in (stdin, stdout, stderr, ctl, rep):
            os.close(fd)
        os.dup2(rpt, 3)
        if rpt != 3:
            os.close(rpt)
        libc.syscall(SYS_CLOSE_RANGE, 4, ctypes.c_uint(0xFFFFFFFF), 0)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)
        report(3, "F %d" % pid)
        confine(cfg, req.get("reaper_uid") or cfg["reaper_uid"])
    except BaseException as e:
        report(3, "E reaper: %s" % e)
        os._exit(1)
    # The reaper: reap every orphan; report the program's status.
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if got == pid:
            report(3, "X %d" % status)
            os._exit(0)


def map_ids(sock, pid, inner, outer):
    """Maps uid and gid inner of the program's new user namespace to outer
    of ours, once it has made it, and tells it so."""
    if sock.recv(16) != b"u":
        raise SetupError("the program did not make its user namespace")
    line = b"%d %d 1\n" % (inner, outer)
    for kind in ("uid", "gid"):
        fd = os.open("/proc/%d/%s_map" % (pid, kind), os.O_WRONLY)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    sock.send(b"m")
    sock.close()


def program(cfg, fds, rpt, driver, ids=None):
    """P: the user's program, once confined: the driver."""
    try:
        if ids is not None:
            check(libc.unshare(CLONE_NEWUSER), "unshare user namespace")
            # The new credentials made us non-dumpable, which gives our
            # /proc files to a root that pid 1 cannot act for: dumpable
            # until pid 1 has written our maps, as the zygote made us after.
            prctl(PR_SET_DUMPABLE, 1)
            ids.send(b"u")
            if ids.recv(16) != b"m":
                raise SetupError("pid 1 did not map the program's ids")
            ids.close()
            prctl(PR_SET_DUMPABLE, 0)
            drop_bounding_set(cfg["caps"])
        # The zygote's socket object outlives us on main()'s frame; its
        # finalizer must not close whatever fd 3 is by then (a file of the
        # user's: double closes crash C extensions at exit).
        ZSOCK.detach()
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        os.setsid()
        for i, fd in enumerate(fds):
            os.dup2(fd, 64 + i)  # out of the way of the final numbers
        for i in range(len(fds)):
            os.dup2(64 + i, i)
        libc.syscall(SYS_CLOSE_RANGE, len(fds), ctypes.c_uint(0xFFFFFFFF), 0)
        os.chdir(cfg["cwd"])
        confine(cfg, cfg["uid"])
    except BaseException as e:
        report(rpt, "E program: %s" % e)
        os._exit(1)
    sys.argv = [driver["__file__"]]
    driver["main"]()
    sys.exit(0)


def clone(flags):
    """fork(2) into new namespaces: os.fork's steps around a raw clone, so
    that the child is pid 1 of its own pid namespace at once, without an
    intermediate process. (glibc's cached tid in the child's thread block
    stays the zygote's; the child only forks, and glibc's fork sets the
    right one for the program.)"""
    pythonapi = ctypes.pythonapi
    pythonapi.PyOS_BeforeFork()
    pid = libc_gil.syscall(SYS_CLONE, ctypes.c_ulong(flags | SIGCHLD), None, None, None, None)
    if pid == 0:
        pythonapi.PyOS_AfterFork_Child()
        global IN_ZYGOTE
        IN_ZYGOTE = False
        return 0
    err = ctypes.get_errno()
    pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise SetupError("clone: %s" % os.strerror(err))
    return pid


def spawn(cfg, req, fds, driver):
    if SYS_CLONE is None:
        raise SetupError("no clone system call number for %s" % os.uname().machine)
    g = clone(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)
    if g:
        return g
    try:
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)  # the zygote's reaping is not ours
        # Pid 1 must not die of a KeyboardInterrupt; the program sets its
        # own handler again.
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        os.close(CTL)
    except BaseException as e:
        report(fds[5], "E %s" % e)
        os._exit(1)
    sandbox(cfg, req, fds, driver)


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main():
    import json
    driver = {"__name__": "__pybox_driver__", "__file__": "/pybox/.driver.py", "__builtins__": __builtins__}
    with open(driver["__file__"]) as f:
        exec(compile(f.read(), driver["__file__"], "exec"), driver)
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # G of every sandbox comes back to us
    prctl(PR_SET_DUMPABLE, 0)
    global ZSOCK
    sock = ZSOCK = socket.socket(fileno=CTL)
    cfg = json.loads(sock.recv(1 << 20))
    cfg["fprog"] = seccomp_prog(cfg["seccomp"])
    # Which of the /proc paths to mask or make read-only this kernel has,
    # and which are directories: the same in every sandbox's new /proc as
    # in ours, so looked up once.
    cfg["masked"] = [(p, os.path.isdir(p)) for p in cfg["masked"] if os.path.lexists(p)]
    cfg["readonly"] = [p for p in cfg["readonly"] if os.path.lexists(p)]
    # The prctl arguments, made once: programs drop the set again.
    cfg["caps"] = [ctypes.c_ulong(c) for c in range(last_cap() + 1)]
    drop_bounding_set(cfg["caps"])
    if cfg["landlock"]:
        # Each rule's rights, and whether its path is a directory where the
        # template has it (the sandbox's own /tmp and /dev/shm are too).
        ll = cfg["landlock"]
        ll["rules"] = [(r["path"], r["access"] & ll["fs"], os.path.isdir(r["path"]) if os.path.lexists(r["path"]) else None)
                       for r in ll["rules"]]
    _signal.signal(_signal.SIGCHLD, lambda *_: reap())
    # What is loaded now lives in every sandbox; freezing it keeps their
    # garbage collector from touching (and copying) those pages.
    import gc
    # Modules each sandbox's driver would otherwise import after the fork,
    # in every sandbox anew: loaded once here, they are shared.
    import linecache, traceback, atexit, _ast, __future__, select, io, binascii  # noqa: F401
    gc.collect()
    gc.freeze()
    # Heap pages freed by the start-up go back to the kernel: every fork
    # copies the page table entries of what is left, and every exit
    # tears them down.
    trim = getattr(libc, "malloc_trim", None)  # glibc's
    if trim is not None:
        trim(0)
    sock.send(b'{"type":"ready"}')
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 16)
        if not msg:
            return  # the host is gone or done
        try:
            req = json.loads(msg)
            if req.get("op") == "spawn" and len(fds) >= 7:
                spawn(cfg, req, fds, driver)
        except BaseException as e:
            # Only the zygote handles errors here: in a sandbox's program
            # this is how SystemExit and the user's exceptions leave.
            # (Not told apart by pid: the program is pid 2 of its own pid
            # namespace, as the zygote is of the template's.)
            if not IN_ZYGOTE:
                raise
            if len(fds) >= 7:
                report(fds[5], "E spawning: %r" % e)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    main()
