# pybox relay: pid 1 of every docker sandbox, run as
# `python3 -I -S -B /pybox/.relay.py PYTHON [FILTER]`, FILTER being a seccomp
# program (base64 of struct sock_filter[]) that the relay installs on the
# driver, before it execs, under the container's own profile.
#
# A container has one channel to the host: its attached stdin, stdout and
# stderr, which the daemon carries over the API connection. The driver
# (driver.py) expects four: requests on fd 3, replies on fd 4, and the
# user's stdout and stderr on fds 1 and 2. The relay makes those four pipes,
# starts the driver on them (unchanged: what native runs), and multiplexes
# them over the container's stdin and stdout:
#
#   host -> relay (stdin):  type(1) length(4, big-endian) payload
#       D  bytes for the driver's fd 3 (its request frames)
#       C  close the driver's fd 3 (no request follows)
#       Q  quit: end the sandbox (EOF on stdin means the same)
#   relay -> host (stdout): type(1) length(4) payload
#       O, E  the user's stdout, stderr
#       R     bytes the driver wrote to fd 4 (its reply frames)
#       X     the driver's wait status, in decimal, once it has ended; the
#             relay has then killed every other process of the sandbox
#             and waits for Q, so that the host can read the container's
#             counters (peak memory) before it goes.
#
# It is also the container's init (instead of docker-init, a host binary
# that would be visible and readable in the sandbox): it reaps orphans, and
# when it exits the kernel kills what is left. As pid 1 it cannot be killed
# from inside: the kernel drops signals to a namespace's init that it has no
# handler for, SIGKILL included. It runs as the sandbox's user, but makes
# itself non-dumpable, so that the user's processes cannot open its
# descriptors, memory or executable through /proc. It imports only
# built-in modules (and ctypes, for prctl), and holds no secret.
import os, sys, select, _signal

PR_SET_DUMPABLE = 4
CHUNK = 64 << 10


def undumpable():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except Exception:
        pass  # best effort: an image without ctypes runs without it


SANDBOX_ID = 1000  # what the program's uid and gid read inside


def own_user_namespace():
    """Moves this process (the driver-to-be) into a user namespace of its
    own where the sandbox's host uid reads as 1000, as in a native sandbox.
    It gains no privilege: its capabilities there are cleared when it execs
    the interpreter as uid 1000, the bounding set stays empty, and the
    seccomp filter installed next denies any further namespace. Best
    effort: where the kernel refuses unprivileged user namespaces the
    program keeps the host uid."""
    import ctypes
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    # Inherited from the relay: a non-dumpable process's /proc/self is
    # root's, and it could not write its maps. The exec that follows makes
    # it dumpable anyway.
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        return
    for name, data in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (SANDBOX_ID, uid)),
                       ("gid_map", "%d %d 1" % (SANDBOX_ID, gid))):
        fd = os.open("/proc/self/" + name, os.O_WRONLY)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    # A new user namespace starts with a full bounding set: empty it again
    # (the container's was), while we hold CAP_SETPCAP there.
    for cap in range(64):
        if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAPBSET_DROP; EINVAL past the last
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


def install_filter(b64):
    """Installs the seccomp program on this process (the driver-to-be).
    Fails closed: the caller exits rather than run the driver without it."""
    import binascii, ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    prog = binascii.a2b_base64(b64)
    if not prog or len(prog) % 8:
        raise ValueError("bad filter")
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            pass


def send(kind, payload):
    write_all(1, kind + len(payload).to_bytes(4, "big") + payload)


class Input:
    """Parses the host's messages from stdin."""

    def __init__(self):
        self.buf = bytearray()

    def messages(self, data):
        self.buf += data
        while len(self.buf) >= 5:
            n = int.from_bytes(self.buf[1:5], "big")
            if len(self.buf) < 5 + n:
                return
            kind, payload = bytes(self.buf[:1]), bytes(self.buf[5:5 + n])
            del self.buf[:5 + n]
            yield kind, payload


def main():
    python = sys.argv[1] if len(sys.argv) > 1 else "python3"
    seccomp = sys.argv[2] if len(sys.argv) > 2 else ""
    undumpable()
    for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGALRM, _signal.SIGPIPE):
        _signal.signal(sig, _signal.SIG_IGN)
    # Keep fds 3 and 4 taken, so that the pipes land above them and the
    # child's dup2 calls below cannot overwrite a source.
    hold = [os.open("/dev/null", os.O_RDONLY) for _ in range(2)]
    ctl_r, ctl_w = os.pipe()
    rep_r, rep_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    _signal.signal(_signal.SIGCHLD, lambda s, f: None)
    _signal.set_wakeup_fd(wake_w)

    pid = os.fork()
    if pid == 0:
        try:
            for s in range(1, _signal.NSIG):
                try:
                    _signal.signal(s, _signal.SIG_DFL)
                except (OSError, ValueError, RuntimeError):
                    pass
            os.dup2(hold[0], 0)  # /dev/null: the program does not read the host's stdin
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.dup2(ctl_r, 3)
            os.dup2(rep_w, 4)
            if seccomp:
                # The container's profile lets unshare(CLONE_NEWUSER) through
                # only when this filter follows, which denies it to the program.
                own_user_namespace()
                install_filter(seccomp)  # last: nothing of ours runs under it but execve
            os.execvp(python, [python, "-I", "-B", "-u", "/pybox/.driver.py"])
        except BaseException as e:
            os.write(2, ("pybox relay: starting %s: %s\n" % (python, e)).encode(errors="replace"))
        os._exit(127)
    for fd in hold + [ctl_r, rep_w, out_w, err_w]:
        os.close(fd)

    streams = {out_r: b"O", err_r: b"E", rep_r: b"R"}
    inp, status = Input(), None
    poller = select.poll()
    for fd in list(streams) + [0, wake_r]:
        poller.register(fd, select.POLLIN)

    def forward(fd):
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return False
        if not data:
            poller.unregister(fd)
            del streams[fd]
            os.close(fd)
            return False
        send(streams[fd], data)
        return True

    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, ev in events:
            if fd == wake_r:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
                ended = reap(pid)
                if status is None and ended is not None:
                    status = ended
                    finish(streams, forward, status)
            elif fd == 0:
                data = os.read(0, CHUNK)
                if not data:
                    quit_now(status)
                for kind, payload in inp.messages(data):
                    if kind == b"Q":
                        quit_now(status)
                    if ctl_w is None:
                        continue
                    if kind == b"D":
                        try:
                            write_all(ctl_w, payload)
                        except OSError:  # the driver is gone; its exit is on its way
                            os.close(ctl_w)
                            ctl_w = None
                    elif kind == b"C":
                        os.close(ctl_w)
                        ctl_w = None
            elif fd in streams:
                forward(fd)


def reap(driver):
    """Reaps every child that has ended (orphans are ours, as pid 1);
    returns the driver's wait status once it is among them."""
    status = None
    while True:
        try:
            got, ws = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        except InterruptedError:
            continue
        if got == 0:
            return status
        if got == driver:
            status = ws


def finish(streams, forward, status):
    """The driver has ended: pass on what it and its children wrote, end
    every other process of the sandbox, and report the status."""
    for fd in list(streams):
        os.set_blocking(fd, False)
    drain(streams, forward)
    try:
        os.kill(-1, 9)  # every other process of the sandbox
    except OSError:
        pass
    drain(streams, forward)
    send(b"X", b"%d" % status)


def drain(streams, forward):
    for fd in list(streams):
        while fd in streams and forward(fd):
            pass


def quit_now(status):
    if status is None:
        try:
            os.kill(-1, 9)
        except OSError:
            pass
    os._exit(0)


main()
