package sandboxtest

// pyFDScan looks at every descriptor of every visible process for a way
// out: a directory (the CVE-2024-21626 leak of a host directory), or any
// path that walks up to the host root and the canary.
const pyFDScan = `
def fd_scan():
    canary_rel = "{{CANARY_FILE}}".lstrip("/")
    cwd = os.getcwd()
    if cwd.startswith("(unreachable)"):
        effect("working directory is outside the root: " + cwd)
    for pid in ["self"] + [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            link = "/proc/%s/fd/%s" % (pid, fd)
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if not os.path.isdir(link):
                continue
            if pid == "self" and target == "/proc/self/fd":
                continue
            print("directory descriptor:", pid, fd, target)
            try:
                data = open(link + "/" + "../" * 16 + canary_rel).read()
                effect("host file read through %s -> %s: %s" % (link, target, data))
            except OSError as e:
                print("  walk up:", e.strerror)
`

// runtimeCases attack the runtime itself: the interpreter binary behind
// /proc/<pid>/exe (CVE-2019-5736), descriptors leaked into the sandbox
// (CVE-2024-21626), /proc/<pid>/root and cwd, the report pipe of pid 1.
var runtimeCases = []Case{
	{
		Name:  "overwrite-proc-exe",
		Class: "runtime",
		Why: "CVE-2019-5736: open the runtime's binary through /proc/<pid>/exe, keep an O_PATH descriptor until it stops " +
			"executing, then reopen it for writing. Inside, the target is the interpreter shared with the host (the " +
			"program only opens it, never writes). The control replays the technique on a copy of /bin/sleep in scratch.",
		Code: `{{PRELUDE}}
import subprocess, time
targets = ["/proc/self/exe", "/proc/1/exe", os.path.realpath("/proc/self/exe")]
try_open(targets, os.O_WRONLY | os.O_APPEND, "opened %s for writing")
# The CVE's path: an O_PATH descriptor on a child's exe, reopened after it exits.
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(0.2)
try:
    opath = os.open("/proc/%d/exe" % child.pid, os.O_PATH)
except OSError as e:
    opath = None
    print("O_PATH ->", e.strerror)
child.kill(); child.wait()
if opath is not None:
    try:
        fd = os.open("/proc/self/fd/%d" % opath, os.O_WRONLY | os.O_APPEND)
        os.close(fd)
        effect("reopened the interpreter for writing through an O_PATH descriptor")
    except OSError as e:
        print("reopen ->", e.strerror)
` + pyFinish,
		Control: `{{PRELUDE}}
import shutil, subprocess, time
victim = os.path.join("{{SCRATCH}}", "runtime-binary")
shutil.copy(os.path.realpath("/bin/sleep"), victim)
child = subprocess.Popen([victim, "30"])
time.sleep(0.2)
opath = os.open("/proc/%d/exe" % child.pid, os.O_PATH)
child.kill(); child.wait()
fd = os.open("/proc/self/fd/%d" % opath, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"#pybox")
os.close(fd)
if open(victim, "rb").read().endswith(b"#pybox"):
    effect("overwrote the binary of an exited process through its O_PATH descriptor")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "runtime-binary-visible",
		Class: "runtime",
		Why:   "no process but the interpreter may be visible: the runtime's own binary (pybox, here the test binary) must not be reachable through /proc/<pid>/exe",
		Code: `{{PRELUDE}}
interp = os.path.realpath(sys.executable)
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        exe = os.readlink("/proc/%s/exe" % pid)
    except OSError:
        continue
    if exe != interp:
        try:
            os.open("/proc/%s/exe" % pid, os.O_RDONLY)
            effect("pid %s runs %s, readable from here" % (pid, exe))
        except OSError as e:
            print(pid, exe, e.strerror)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "leaked-descriptors",
		Class: "runtime",
		Why:   "CVE-2024-21626: a descriptor of a host directory left open into the sandbox leads back to the host through /proc/self/fd/N/..; the control leaks one on purpose to show the scan finds and uses it",
		Code: `{{PRELUDE}}` + pyFDScan + `
own = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        own[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass
print("own descriptors:", own)
fd_scan()
` + pyFinish,
		Control: `{{PRELUDE}}` + pyFDScan + `
leak = os.open(os.path.dirname("{{CANARY_FILE}}"), os.O_RDONLY)
fd_scan()
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "proc-pid-root-traversal",
		Class: "runtime",
		Code: `{{PRELUDE}}
for pid in ["self", "thread-self"] + [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        data = open("/proc/%s/root{{CANARY_FILE}}" % pid).read()
        effect("read the host secret through /proc/%s/root: %s" % (pid, data))
    except OSError:
        pass
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "proc-pid-cwd-traversal",
		Class: "runtime",
		Code: `{{PRELUDE}}
up = "../" * 16 + "{{CANARY_FILE}}".lstrip("/")
for pid in ["self"] + [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        data = open("/proc/%s/cwd/%s" % (pid, up)).read()
        effect("read the host secret through /proc/%s/cwd: %s" % (pid, data))
    except OSError:
        pass
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "forge-report-pipe",
		Class: "runtime",
		Why: "pid 1 (the reaper) reports the user process's exit status to the host on fd 3; the user process must not " +
			"hold or reopen it, or it could forge a result (\"X 0\") or a setup error (\"E ...\"). The control leaks a pipe as fd 3 to show the probe detects a writable report descriptor.",
		Code: `{{PRELUDE}}
hits = []
for fd in range(3, 256):
    try:
        os.write(fd, b"E pybox-forged-report\n")
        hits.append(fd)
    except OSError:
        pass
for p in ["/proc/1/fd/3", "/proc/self/fd/3"]:
    try:
        fd = os.open(p, os.O_WRONLY)
        os.write(fd, b"E pybox-forged-report\n")
        hits.append(p)
    except OSError as e:
        print(p, "->", e.strerror)
if hits:
    effect("wrote a forged report line to %s" % hits)
` + pyFinish,
		Control: `{{PRELUDE}}
r, w = os.pipe()
reader = os.dup(r)  # keep the read end open even if the pipe got fd 3
os.set_blocking(w, False)
os.dup2(w, 3)
hits = []
for fd in range(3, 256):
    try:
        os.write(fd, b"E pybox-forged-report\n")
        hits.append(fd)
    except OSError:
        pass
if hits:
    effect("wrote a forged report line to %s" % hits)
`,
		Check: checks(stdoutHas(done), noSignal),
	},
	{
		Name:  "overwrite-mapped-libraries",
		Class: "runtime",
		Why:   "shared libraries mapped by the interpreter (libc, the loader, extension modules) are not protected by ETXTBSY; the program only opens them",
		Code: `{{PRELUDE}}
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/" in l.split()[-1]})
try_open(libs, os.O_WRONLY | os.O_APPEND, "opened mapped library %s for writing")
` + pyFinish,
		Control: `{{PRELUDE}}
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/" in l.split()[-1]})
w = [p for p in libs if os.access(p, os.W_OK)]
if w:
    effect("mapped libraries writable bare: %s" % w[:3])
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "write-reaper-memory",
		Class: "runtime",
		Why:   "pid 1 of the sandbox is pybox's reaper and holds the report pipe; writing its memory would let user code forge results. The control opens the memory of a child it started",
		Code: `{{PRELUDE}}
try_open(["/proc/1/mem", "/proc/%d/mem" % os.getppid()], os.O_RDWR, "opened %s for writing")
` + pyFinish,
		Control: `{{PRELUDE}}
import subprocess, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(0.1)
try:
    fd = os.open("/proc/%d/mem" % child.pid, os.O_RDWR)
    os.close(fd)
    effect("opened a child's memory for writing")
finally:
    child.kill(); child.wait()
`,
		Check: stdoutHas(done),
	},
}
