package sandboxtest

import (
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// pySleeper starts a child the program owns, for controls that need a
// victim: bare, they attack their own child, never a host process.
const pySleeper = `
import subprocess, time
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    time.sleep(0.2)
    return p
`

// pyTinyELF builds a minimal static x86_64 executable that writes msg to
// stdout and exits 0: a "dropped binary" needing no library.
const pyTinyELF = `
import struct
def tiny_elf(msg):
    code = (b"\xb8\x01\x00\x00\x00" b"\xbf\x01\x00\x00\x00" b"\x48\x8d\x35\x10\x00\x00\x00"
            + b"\xba" + struct.pack("<I", len(msg)) + b"\x0f\x05" b"\xb8\x3c\x00\x00\x00" b"\x31\xff" b"\x0f\x05")
    body = code + msg
    base, hdrs = 0x400000, 64 + 56
    ehdr = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHIQQQIHHHHHH", 2, 0x3e, 1, base + hdrs, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, hdrs + len(body), hdrs + len(body), 0x1000)
    return ehdr + phdr + body
`

// pyFindSupervisor looks for the runtime's processes (the pybox binary or
// here the go test binary running the suite) and signals them with 0,
// which proves the right to kill without killing.
const pyFindSupervisor = `
def find_supervisor():
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(argv[0]) if argv else b""
        if name in (b"pybox", b"native.test") or any(a.startswith(b"-test.") for a in argv):
            try:
                os.kill(int(pid), 0)
                effect("may signal the supervisor, pid %s (%r)" % (pid, name))
            except OSError as e:
                print("supervisor", pid, "->", e)
`

// processCases attack processes: fork bombs, shells, setuid helpers,
// ptrace and process_vm_readv, killing the supervisor, daemons and
// zombies that try to outlive the run, ignored SIGTERM and core dumps.
var processCases = []Case{
	{
		Name:  "seccomp-blocks-ptrace",
		Class: "processes",
		Code: `{{PRELUDE}}
reached(101, 16, 1, 0, 0, label="ptrace(PTRACE_ATTACH, 1)")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "ptrace-attach",
		Class: "processes",
		Why:   "attaching to pid 1 (the reaper holding the report pipe) or any process; the control attaches to a child it started",
		Code: `{{PRELUDE}}
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
for req, name in [(16, "PTRACE_ATTACH"), (0x4206, "PTRACE_SEIZE")]:
    for pid in (1, os.getppid()):
        ctypes.set_errno(0)
        if _libc.ptrace(req, pid, None, None) == 0:
            effect("%s on pid %d succeeded" % (name, pid))
            _libc.ptrace(17, pid, None, None)
        else:
            print(name, pid, "-> errno", ctypes.get_errno())
pid = os.fork()
if pid == 0:
    r = _libc.ptrace(0, 0, None, None)
    os._exit(0 if r == 0 else 1)
_, st = os.waitpid(pid, 0)
if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
    effect("PTRACE_TRACEME succeeded")
` + pyFinish,
		Control: `{{PRELUDE}}` + pySleeper + `
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
p = sleeper()
try:
    if _libc.ptrace(16, p.pid, None, None) == 0:
        effect("PTRACE_ATTACH to a child succeeded")
        os.waitpid(p.pid, 0)
        _libc.ptrace(17, p.pid, None, None)
finally:
    p.kill(); p.wait()
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "process-vm-readv",
		Class: "processes",
		Why:   "process_vm_readv/writev and pidfd_getfd read memory and steal descriptors (pid 1's report pipe) without ptrace; the control reads a child it started",
		Code: `{{PRELUDE}}
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
def readv(pid):
    try:
        addr = int(open("/proc/%d/maps" % pid).readline().split("-")[0], 16)
    except OSError as e:  # pid 1 is outside the program's Landlock domain
        print("maps of", pid, "->", e)
        addr = 0x400000
    buf = ctypes.create_string_buffer(16)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = iovec(addr, 16)
    ctypes.set_errno(0)
    n = _libc.syscall(ctypes.c_long(310), ctypes.c_long(pid), ctypes.byref(local), ctypes.c_long(1), ctypes.byref(remote), ctypes.c_long(1), ctypes.c_long(0))
    return n, ctypes.get_errno(), buf.raw
n, err, data = readv(1)
if n > 0:
    effect("read pid 1's memory: %r" % data)
print("process_vm_readv(1) ->", n, err)
reached(311, 1, 0, 0, 0, 0, 0, label="process_vm_writev(1, no iovecs)")
reached(438, -1, 3, 0, label="pidfd_getfd(-1, 3)")
reached(312, 1, 1, 99, 0, 0, label="kcmp(1, 1, invalid)")
` + pyFinish,
		Control: `{{PRELUDE}}` + pySleeper + `
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
p = sleeper()
try:
    addr = int(open("/proc/%d/maps" % p.pid).readline().split("-")[0], 16)
    buf = ctypes.create_string_buffer(16)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = iovec(addr, 16)
    n = _libc.syscall(ctypes.c_long(310), ctypes.c_long(p.pid), ctypes.byref(local), ctypes.c_long(1), ctypes.byref(remote), ctypes.c_long(1), ctypes.c_long(0))
    if n > 0:
        effect("read a child's memory: %r" % buf.raw[:4])
finally:
    p.kill(); p.wait()
reached(438, -1, 3, 0, label="pidfd_getfd(-1, 3)")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "kill-supervisor",
		Class: "processes",
		Why: "the supervisor (pybox, here the go test binary) and other tenants must be invisible; the program signals them only " +
			"with 0. It then throws every signal at pid 1, the reaper, which must survive to report the exit (status ok); with Landlock " +
			"ABI 6+ the signals do not even reach it (they leave the program's domain)",
		Code: `{{PRELUDE}}` + pyFindSupervisor + `
import signal, time
find_supervisor()
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGSEGV,
            signal.SIGSTOP, signal.SIGKILL):
    for pid in (1, os.getppid()):
        try:
            os.kill(pid, sig)
        except OSError as e:
            print("kill", pid, sig, "->", e)
try:
    fd = os.pidfd_open(1)
    signal.pidfd_send_signal(fd, signal.SIGKILL)
except OSError as e:
    print("pidfd_send_signal ->", e)
time.sleep(0.3)
try:
    os.kill(1, signal.SIGCONT)  # undo a SIGSTOP, were it delivered
except OSError as e:
    print("kill 1 SIGCONT ->", e)
print("reaper state:", open("/proc/1/stat").read().split()[2])
` + pyFinish,
		Control: `{{PRELUDE}}` + pyFindSupervisor + `
find_supervisor()
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    stdoutHas(done),
	},
	{
		Name:  "kill-every-process",
		Class: "processes",
		Why: "kill(-1) must hit only the sandbox's own processes (pid 1 is exempt); a sweep of every pid number with signal 0 " +
			"then finds anything else signalable. The control kills a child it started",
		Code: `{{PRELUDE}}
import signal
try:
    os.kill(-1, signal.SIGKILL)
except OSError as e:
    print("kill(-1) ->", e)
killed = []
for pid in range(2, 4 << 10):
    if pid == os.getpid():
        continue
    try:
        os.kill(pid, 0)
        killed.append(pid)
    except OSError:
        pass
if killed:
    effect("processes that survived kill(-1) and may still be signalled: %s" % killed[:10])
print("signalled:", killed)
` + pyFinish,
		Control: `{{PRELUDE}}` + pySleeper + `
p = sleeper()
os.kill(p.pid, 9)
if p.wait() == -9:
    effect("killed pid %d" % p.pid)
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    stdoutHas(done),
	},
	{
		Name:  "fork-bomb-count",
		Class: "processes",
		Why:   "forks until refused; more than the pids limit is the effect. The control forks 50",
		Code: `{{PRELUDE}}
import time
n = 0
try:
    while n < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print("fork refused after", n, ":", e)
if n >= 1000:
    effect("forked %d processes" % n)
` + pyFinish,
		Control: `{{PRELUDE}}
import time
pids = []
for i in range(50):
    pid = os.fork()
    if pid == 0:
        time.sleep(0.5)
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
effect("forked %d processes" % len(pids))
`,
		Limits: limits(5*time.Second, nil),
		Check:  checks(stdoutHas(done), wallUnder(5*time.Second)),
	},
	{
		Name:  "fork-bomb-exponential",
		Class: "processes",
		Why:   "every process forks forever; the pids limit caps it and the timeout kills the whole tree. The control forks 50",
		Code: `
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
`,
		Control: `{{PRELUDE}}
pids = []
for i in range(50):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
effect("forked %d processes" % len(pids))
`,
		Limits:   limits(2*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), wallUnder(6*time.Second)),
	},
	{
		Name:  "subprocess-shell",
		Class: "processes",
		Code: `{{PRELUDE}}
import subprocess
tries = [
    ("subprocess sh", lambda: subprocess.run(["/bin/sh", "-c", "echo shell-ran-$((6*7))"], capture_output=True, timeout=5).stdout),
    ("subprocess bash", lambda: subprocess.run(["bash", "-c", "echo shell-ran-$((6*7))"], capture_output=True, timeout=5).stdout),
    ("shell=True", lambda: subprocess.run("echo shell-ran-$((6*7))", shell=True, capture_output=True, timeout=5).stdout),
    ("os.popen", lambda: os.popen("echo shell-ran-$((6*7))").read().encode()),
    ("env", lambda: subprocess.run(["/usr/bin/env", "sh", "-c", "echo shell-ran-$((6*7))"], capture_output=True, timeout=5).stdout),
    ("id", lambda: subprocess.run(["id"], capture_output=True, timeout=5).stdout and b"shell-ran-42"),
]
for name, fn in tries:
    try:
        out = fn()
    except Exception as e:
        print(name, "->", e)
        continue
    if b"shell-ran-42" in (out or b""):
        effect("ran a shell via " + name)
    else:
        print(name, "-> no output")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "setuid-helpers",
		Class: "processes",
		Why: "setuid-root helpers (some live in the bound /usr/lib) must not run: executing one is the effect. The control runs only " +
			"ssh-keysign, which exits at once when host-based auth is off",
		Code: `{{PRELUDE}}
import subprocess, stat
cands = ["/usr/lib/openssh/ssh-keysign", "/usr/lib/dbus-1.0/dbus-daemon-launch-helper",
         "/usr/lib/polkit-1/polkit-agent-helper-1", "/usr/bin/su", "/bin/su", "/usr/bin/sudo", "/usr/bin/passwd",
         "/usr/bin/mount", "/usr/bin/newgrp", "/usr/bin/pkexec", "/usr/bin/newuidmap"]
for d in ["/usr/lib", "/lib", "/usr/local/lib"]:
    for root, dirs, files in os.walk(d):
        if root.count("/") > 4:
            dirs[:] = []
        for f in files:
            p = os.path.join(root, f)
            try:
                if os.lstat(p).st_mode & stat.S_ISUID:
                    cands.append(p)
            except OSError:
                pass
cands = [p for p in dict.fromkeys(cands) if os.path.exists(p)]
print("setuid candidates:", cands)
for p in cands:
    try:
        r = subprocess.run([p], stdin=subprocess.DEVNULL, capture_output=True, timeout=3)
    except (OSError, subprocess.SubprocessError) as e:
        print(p, "->", e)
        continue
    effect("executed setuid helper %s (exit %d)" % (p, r.returncode))
` + pyFinish,
		Control: `{{PRELUDE}}
import subprocess
p = "/usr/lib/openssh/ssh-keysign"
if os.stat(p).st_mode & 0o4000:
    r = subprocess.run([p], stdin=subprocess.DEVNULL, capture_output=True, timeout=3)
    effect("executed setuid helper %s (exit %d)" % (p, r.returncode))
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "exec-dropped-binary",
		Class: "processes",
		Why: "a binary the program writes must not run: scratch and /dev/shm are noexec and Landlock grants execute on the " +
			"interpreter only. The program tries the file directly, through the dynamic loader, and from a memfd (execve of " +
			"/proc/self/fd/N, and the loader on it). Bare, the same tiny ELF runs from scratch",
		Code: `{{PRELUDE}}` + pyTinyELF + `
import glob, subprocess
elf = tiny_elf(b"dropped-binary-ran\n")
loaders = glob.glob("/lib64/ld-linux-x86-64.so.2") + glob.glob("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
paths = []
for d in ["{{SCRATCH}}", "/dev/shm"]:
    p = os.path.join(d, "dropped")
    try:
        with open(p, "wb") as f:
            f.write(elf)
        os.chmod(p, 0o755)
        paths.append(p)
    except OSError as e:
        print(d, "->", e)
tries = [("file " + p, [p]) for p in paths] + [("loader " + p, loaders[:1] + [p]) for p in paths]
fds = ()
try:
    mfd = os.memfd_create("dropped", 0)
    os.write(mfd, elf)
    memfd_path = "/proc/%d/fd/%d" % (os.getpid(), mfd)
    tries += [("memfd execve", [memfd_path]), ("memfd via loader", loaders[:1] + [memfd_path])]
    fds = (mfd,)
except OSError as e:
    print("memfd_create ->", e)
for label, argv in tries:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=5, pass_fds=fds).stdout
    except (OSError, subprocess.SubprocessError) as e:
        print(label, "->", e)
        continue
    if b"dropped-binary-ran" in out:
        effect("a dropped binary ran: " + label)
    else:
        print(label, "-> did not run")
` + pyFinish,
		Control: `{{PRELUDE}}` + pyTinyELF + `
import subprocess
p = os.path.join("{{SCRATCH}}", "dropped")
with open(p, "wb") as f:
    f.write(tiny_elf(b"dropped-binary-ran\n"))
os.chmod(p, 0o755)
if b"dropped-binary-ran" in subprocess.run([p], capture_output=True, timeout=5).stdout:
    effect("a dropped binary ran from scratch")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "daemon-outlives-run",
		Class: "processes",
		Why:   "a double-forked, setsid daemon must die with the run: the host post-conditions find any survivor. The control shows the daemon survives its parent bare, then kills it",
		Code: `{{PRELUDE}}
import time, signal
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.write(w, b"%d\n" % os.getpid())
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(60)
        os._exit(0)
    os._exit(0)
daemon = int(os.read(r, 32))
print("daemon pid", daemon)
` + pyFinish,
		Control: `{{PRELUDE}}
import time, signal
r, w = os.pipe()
mid = os.fork()
if mid == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, b"%d\n" % os.getpid())
        time.sleep(5)
        os._exit(0)
    os._exit(0)
daemon = int(os.read(r, 32))
os.waitpid(mid, 0)
try:
    os.kill(daemon, 0)
    effect("daemon %d alive after its parent exited" % daemon)
finally:
    os.kill(daemon, 9)
`,
		Limits:   limits(10*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    checks(stdoutHas(done), wallUnder(3*time.Second)),
	},
	{
		Name:  "daemon-holds-output",
		Class: "processes",
		Why: "a daemon that keeps stdout open must not keep pybox waiting for end of file until the timeout, nor write " +
			"after the run ended. The control shows bare that the daemon's late line arrives after its parent exited",
		Code: `{{PRELUDE}}
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for i in range(100):
            time.sleep(0.5)
            print("daemon still writing", i, flush=True)
        os._exit(0)
    os._exit(0)
` + pyFinish,
		Control: `{{PRELUDE}}
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(0.3)
        effect("daemon wrote after its parent exited")
        os._exit(0)
    os._exit(0)
`,
		Limits:   limits(10*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    checks(stdoutHas(done), wallUnder(3*time.Second)),
	},
	{
		Name:  "zombies",
		Class: "processes",
		Why:   "children never waited for, and orphans reparented to pid 1, must all be gone after the run",
		Code: `{{PRELUDE}}
import time
for i in range(60):
    if os.fork() == 0:
        os._exit(0)
if os.fork() == 0:
    for i in range(20):
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
    os._exit(0)
time.sleep(0.3)
z = 0
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            if open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
                z += 1
        except OSError:
            pass
print("zombies:", z)
` + pyFinish,
		Control: `{{PRELUDE}}
import time
pids = []
for i in range(10):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pids.append(pid)
time.sleep(0.2)
z = [p for p in pids if open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0] == "Z"]
if z:
    effect("%d zombies" % len(z))
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    stdoutHas(done),
	},
	{
		Name:  "ignore-sigterm",
		Class: "processes",
		Why:   "a program that ignores or blocks every catchable signal, in several processes and sessions, is still killed at the timeout. The control shows a child survives SIGTERM bare",
		Code: `
import os, signal, time
for s in range(1, 32):
    try:
        signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError, RuntimeError):
        pass
signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP})
for i in range(3):
    if os.fork() == 0:
        os.setsid()
        break
print("started", flush=True)
while True:
    try:
        time.sleep(1)
    except BaseException:
        pass
`,
		Control: `{{PRELUDE}}
import signal, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(5)
    os._exit(0)
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
time.sleep(0.2)
if os.waitpid(pid, os.WNOHANG) == (0, 0):
    effect("child ignored SIGTERM")
os.kill(pid, 9)
os.waitpid(pid, 0)
`,
		Limits:   limits(2*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), wallUnder(6*time.Second), stdoutHas("started")),
	},
	{
		Name:  "core-dump",
		Class: "processes",
		Why:   "a core dump may land on the host or feed a core_pattern helper running as host root; the sandbox's RLIMIT_CORE is 0 and cannot be raised. Bare, core_pattern is \"core\" so the dump lands in the scratch directory",
		Code: `{{PRELUDE}}
import resource, signal, glob
os.chdir("{{SCRATCH}}")
pid = os.fork()
if pid == 0:
    for lim in ((resource.RLIM_INFINITY, resource.RLIM_INFINITY), (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_CORE)[1])):
        try:
            resource.setrlimit(resource.RLIMIT_CORE, lim)
            break
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGABRT, signal.SIG_DFL)
    os.abort()
_, st = os.waitpid(pid, 0)
print("child:", "signal %d" % os.WTERMSIG(st) if os.WIFSIGNALED(st) else "exit %d" % os.WEXITSTATUS(st),
      "core limit", resource.getrlimit(resource.RLIMIT_CORE))
if os.WIFSIGNALED(st) and os.WCOREDUMP(st):
    effect("the kernel dumped core")
cores = glob.glob("core*")
if cores:
    effect("core files: %s" % cores)
` + pyFinish,
		Check: stdoutHas(done),
	},
}
