package sandboxtest

// hostFileCases read host files and secrets: the canary file, shadow and
// passwd, home directories and keys, the server's environment and the
// command lines of host processes.
var hostFileCases = []Case{
	{
		Name:  "read-canary-file",
		Class: "host-files",
		Code: `{{PRELUDE}}
try:
    data = open("{{CANARY_FILE}}").read()
    effect("read the host secret file: " + data)
except OSError as e:
    print("denied:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "read-etc-shadow",
		Class: "host-files",
		Code: `{{PRELUDE}}
for p in ["/etc/shadow", "/etc/gshadow", "/etc/sudoers"]:
    try:
        data = open(p).read()
        effect("read %s (%d bytes)" % (p, len(data)))
    except OSError as e:
        print("denied:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "host-etc-passwd",
		Class: "host-files",
		Why:   "the sandbox gets a synthetic /etc/passwd (root, reaper, sandbox, nobody); any other account is the host's",
		Code: `{{PRELUDE}}
for p in ["/etc/passwd", "/etc/group"]:
    try:
        names = [l.split(":")[0] for l in open(p) if l.strip()]
    except OSError as e:
        print("denied:", e)
        continue
    foreign = [n for n in names if n not in ("root", "reaper", "sandbox", "nobody", "nogroup")]
    if foreign:
        effect("%s lists host accounts: %s" % (p, foreign[:5]))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "environment-canary",
		Class: "host-files",
		Why:   "the server's environment (here the test process's, holding the canary) must not reach the sandbox",
		Code: `{{PRELUDE}}
v = os.environ.get("{{CANARY_ENV}}")
if v:
    effect("os.environ holds the server's secret " + v)
_libc.getenv.restype = ctypes.c_char_p
v = _libc.getenv(b"{{CANARY_ENV}}")
if v:
    effect("libc getenv holds the server's secret %r" % v)
try:
    if b"{{CANARY_ENV}}" in open("/proc/self/environ", "rb").read():
        effect("/proc/self/environ holds the server's secret")
except OSError as e:
    print(e)
print("environment:", sorted(os.environ))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "proc-environ-scan",
		Class: "host-files",
		Why:   "reads /proc/<pid>/environ of every visible process looking for the server's secret",
		Code: `{{PRELUDE}}
seen = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        env = open("/proc/%s/environ" % pid, "rb").read()
    except OSError:
        continue
    seen += 1
    if b"{{CANARY_ENV}}" in env:
        effect("pid %s's environment holds the server's secret" % pid)
print("environments read:", seen)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "proc-cmdline-scan",
		Class: "host-files",
		Why:   "command lines of host processes (here the go test binary, run with -test.* flags) leak what the host runs",
		Code: `{{PRELUDE}}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
    except OSError:
        continue
    if any(a.startswith(b"-test.") for a in cmd):
        effect("host process %s visible: %r" % (pid, cmd[:2]))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "home-dirs-and-keys",
		Class: "host-files",
		Why:   "host home directories: /root holds the canary's directory and dotfiles; only the interpreter's path under it may be visible",
		Code: `{{PRELUDE}}
import glob
found = []
for d in ["/root", "/home"] + glob.glob("/home/*"):
    try:
        names = os.listdir(d)
    except OSError as e:
        print("denied:", e)
        continue
    for n in names:
        if n.startswith("pybox-canary-") or n in (".ssh", ".bash_history", ".npmrc", ".gitconfig", ".netrc", ".aws", ".docker", ".kube"):
            found.append(os.path.join(d, n))
for p in glob.glob("/etc/ssh/ssh_host_*key") + glob.glob("/root/.ssh/*") + glob.glob("/home/*/.ssh/*"):
    try:
        open(p, "rb").read(1)
        found.append(p)
    except OSError:
        pass
if found:
    effect("host home directories and keys visible: %s" % found[:6])
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "canary-via-links",
		Class: "host-files",
		Why:   "a symlink or hard link planted in scratch must not lead to host files",
		Code: `{{PRELUDE}}
s = os.path.join("{{SCRATCH}}", "link-sym")
h = os.path.join("{{SCRATCH}}", "link-hard")
try:
    os.symlink("{{CANARY_FILE}}", s)
    effect("symlink reads " + open(s).read())
except OSError as e:
    print("symlink:", e)
try:
    os.link("{{CANARY_FILE}}", h)
    effect("hard link reads " + open(h).read())
except OSError as e:
    print("hard link:", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
}
