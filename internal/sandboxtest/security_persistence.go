package sandboxtest

// pyPersist names what persist-plant leaves behind and the later cases
// look for. Inside, {{SCRATCH}} is /tmp, the sandbox's writable root.
const pyPersist = `
import socket, time
MARKER = "pybox-persist-marker"
MODULE = "pybox_persist_mod"
KEY = 0x70796273
DAEMON = "pybox-persist-daemon"
SOCK = "\0pybox-persist-sock"
SHM_DIRS = ["{{SCRATCH}}", "/dev/shm"]
`

// persistenceCases plant files, modules, SysV objects, a daemon and an
// abstract socket in one run (persist-plant) and look for them in later
// runs: nothing may survive from one execution to the next, for the same
// tenant or another. Each finder's control plants the object bare (in
// scratch, or as a child it kills) and finds it, proving the finder works.
var persistenceCases = []Case{
	{
		Name:  "persist-plant",
		Class: "persistence",
		Why:   "plants everything the following persist-find-* cases look for; planting inside the sandbox is allowed, so this program never shows an effect; its control plants in scratch",
		Code: `{{PRELUDE}}` + pyPersist + `
import subprocess
for d in SHM_DIRS:
    with open(os.path.join(d, MARKER), "w") as f:
        f.write("planted")
    with open(os.path.join(d, MODULE + ".py"), "w") as f:
        f.write("print('poisoned module imported from', __file__)\n")
print("shm", _libc.shmget(KEY, 4096, 0o1666), "sem", _libc.semget(KEY, 1, 0o1666), "msg", _libc.msgget(KEY, 0o1666))
if os.fork() == 0:
    os.setsid()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(SOCK)
    s.listen()
    s.set_inheritable(True)
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", DAEMON])
time.sleep(0.3)
print("planted", flush=True)
`,
		Control: `{{PRELUDE}}` + pyPersist + `
with open(os.path.join("{{SCRATCH}}", MARKER), "w") as f:
    f.write("planted")
if os.path.exists(os.path.join("{{SCRATCH}}", MARKER)):
    effect("planted " + MARKER)
`,
		Check: stdoutHas("planted"),
	},
	{
		Name:  "persist-find-files",
		Class: "persistence",
		Code: `{{PRELUDE}}` + pyPersist + `
def find():
    for d in SHM_DIRS:
        for n in (MARKER, MODULE + ".py"):
            if os.path.exists(os.path.join(d, n)):
                effect("found %s left in %s" % (n, d))
    print("scratch holds:", os.listdir("{{SCRATCH}}"), os.listdir("/dev/shm") if os.path.isdir("/dev/shm") else "")
find()
` + pyFinish,
		Control: `{{PRELUDE}}` + pyPersist + `
SHM_DIRS = ["{{SCRATCH}}"]
open(os.path.join("{{SCRATCH}}", MARKER), "w").write("planted")
for d in SHM_DIRS:
    if os.path.exists(os.path.join(d, MARKER)):
        effect("found %s left in %s" % (MARKER, d))
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "persist-find-sysv",
		Class: "persistence",
		Why:   "the control creates the objects on the host, finds them, and removes them",
		Code: `{{PRELUDE}}` + pyPersist + `
for kind, get in (("shm", lambda: _libc.shmget(KEY, 0, 0)), ("sem", lambda: _libc.semget(KEY, 0, 0)), ("msg", lambda: _libc.msgget(KEY, 0))):
    if get() >= 0:
        effect("found the planted SysV %s object" % kind)
` + pyFinish,
		Control: `{{PRELUDE}}` + pyPersist + `
shm, sem, msg = _libc.shmget(KEY, 4096, 0o1600), _libc.semget(KEY, 1, 0o1600), _libc.msgget(KEY, 0o1600)
try:
    for kind, get in (("shm", lambda: _libc.shmget(KEY, 0, 0)), ("sem", lambda: _libc.semget(KEY, 0, 0)), ("msg", lambda: _libc.msgget(KEY, 0))):
        if get() >= 0:
            effect("found the planted SysV %s object" % kind)
finally:
    _libc.shmctl(shm, 0, None)
    _libc.semctl(sem, 0, 0)
    _libc.msgctl(msg, 0, None)
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "persist-find-daemon",
		Class: "persistence",
		Why:   "the daemon and its abstract socket from persist-plant; the control starts both as its own children and finds them",
		Code: `{{PRELUDE}}` + pyPersist + `
def find():
    for p in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if DAEMON.encode() in open("/proc/%s/cmdline" % p, "rb").read():
                effect("daemon from an earlier run alive as pid " + p)
        except OSError:
            pass
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(SOCK)
        effect("connected to the abstract socket of an earlier run")
    except OSError as e:
        print("abstract socket ->", e)
find()
` + pyFinish,
		Control: `{{PRELUDE}}` + pyPersist + `
import subprocess
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(SOCK)
s.listen()
d = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", DAEMON])
time.sleep(0.2)
try:
    for p in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if DAEMON.encode() in open("/proc/%s/cmdline" % p, "rb").read():
                effect("daemon alive as pid " + p)
        except OSError:
            pass
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(SOCK)
    effect("connected to the abstract socket")
finally:
    d.kill(); d.wait()
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "persist-poisoned-import",
		Class: "persistence",
		Why:   "a module planted in a writable directory by an earlier run must not be importable, and the stdlib must not be shadowed",
		Code: `{{PRELUDE}}` + pyPersist + `
import importlib
sys.path[:0] = SHM_DIRS
try:
    m = importlib.import_module(MODULE)
    effect("imported a module planted by an earlier run: " + m.__file__)
except ImportError as e:
    print("import ->", e)
import json
if not json.__file__.startswith(os.path.dirname(os.__file__)):
    effect("json shadowed by " + json.__file__)
` + pyFinish,
		Control: `{{PRELUDE}}` + pyPersist + `
import importlib
open(os.path.join("{{SCRATCH}}", MODULE + ".py"), "w").write("X = 1\n")
sys.path[:0] = ["{{SCRATCH}}"]
m = importlib.import_module(MODULE)
effect("imported a planted module: " + m.__file__)
`,
		Check: stdoutHas(done),
	},
}
