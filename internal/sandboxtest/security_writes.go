package sandboxtest

// pyWriteTargets lists host places a sandboxed program must not write:
// the root, system directories, the interpreter's stdlib and
// site-packages, the sandbox's own code and device directories.
const pyWriteTargets = `
import sys, sysconfig, site
def write_targets():
    ts = ["/", "/etc", "/usr", "/usr/lib", "/usr/local", "/lib", "/root", "/var", "/opt", "/pybox", "/dev", "/proc", "/run"]
    for k in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(k)
        if p:
            ts.append(p)
    ts += site.getsitepackages()
    ts.append(os.path.dirname(os.path.realpath(sys.executable)))
    return [t for t in dict.fromkeys(ts) if os.path.isdir(t)]
def stdlib_files():
    import json
    return [os.__file__, json.__file__, os.path.realpath(sys.executable)]
`

// writeCases try to write outside scratch: new files in system
// directories, the stdlib, site-packages, metadata of read-only files,
// and setuid-root files in scratch.
var writeCases = []Case{
	{
		Name:  "create-files-outside-scratch",
		Class: "writes",
		Code: `{{PRELUDE}}` + pyWriteTargets + `
import uuid
name = "pybox-write-probe-" + uuid.uuid4().hex
for d in write_targets():
    p = os.path.join(d, name)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        print(d, "->", e.strerror)
        continue
    os.close(fd)
    try:
        os.unlink(p)
    except OSError:
        pass
    effect("created a file in " + d)
` + pyFinish,
		Control: `{{PRELUDE}}` + pyWriteTargets + `
# Bounded twin: ask the kernel whether root may write there, without writing.
w = [d for d in write_targets() if os.access(d, os.W_OK)]
if w:
    effect("writable bare: %s" % w[:5])
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "overwrite-stdlib",
		Class: "writes",
		Why:   "the stdlib and the interpreter are shared with the host and every other sandbox; opening them for writing is the breach (the program does not write, so a failure cannot damage the host)",
		Code: `{{PRELUDE}}` + pyWriteTargets + `
for p in stdlib_files():
    for flags in (os.O_WRONLY | os.O_APPEND, os.O_RDWR):
        try:
            fd = os.open(p, flags)
        except OSError as e:
            print(p, "->", e.strerror)
            continue
        os.close(fd)
        effect("opened %s for writing" % p)
` + pyFinish,
		Control: stdlibWritableBare,
		Check:   stdoutHas(done),
	},
	{
		Name:  "site-packages-poison",
		Class: "writes",
		Why:   "a sitecustomize.py or .pth file in site-packages runs in every later interpreter, sandboxed or not",
		Code: `{{PRELUDE}}` + pyWriteTargets + `
import sys
dirs = [d for d in dict.fromkeys(site.getsitepackages() + [p for p in sys.path if p]) if os.path.isdir(d)]
for d in dirs:
    for n in ("sitecustomize.py", "usercustomize.py", "pybox-poison.pth"):
        p = os.path.join(d, n)
        if os.path.exists(p):
            continue
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as e:
            print(p, "->", e.strerror)
            continue
        os.close(fd)
        os.unlink(p)
        effect("created " + p)
print("import path dirs tried:", len(dirs))
` + pyFinish,
		Control: `{{PRELUDE}}` + pyWriteTargets + `
import sys
w = [d for d in site.getsitepackages() + sys.path if d and os.path.isdir(d) and os.access(d, os.W_OK)]
if w:
    effect("import path writable bare: %s" % w[:3])
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "metadata-of-readonly-files",
		Class: "writes",
		Why:   "chmod, chown and utime on the stdlib with unchanged values: success proves the permission without altering anything; the control applies the same calls to a scratch copy",
		Code: `{{PRELUDE}}` + pyWriteTargets + `
for p in stdlib_files() + [os.path.dirname(os.__file__)]:
    st = os.stat(p)
    for name, fn in [
        ("chmod", lambda: os.chmod(p, st.st_mode & 0o7777)),
        ("chown", lambda: os.chown(p, -1, -1)),
        ("chown-to-self", lambda: os.chown(p, st.st_uid, st.st_gid)),
        ("utime", lambda: os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))),
    ]:
        try:
            fn()
        except OSError as e:
            print(name, p, "->", e.strerror)
            continue
        effect("%s succeeded on %s" % (name, p))
` + pyFinish,
		Control: `{{PRELUDE}}` + pyWriteTargets + `
import shutil
src = os.__file__
dst = os.path.join("{{SCRATCH}}", "os.py")
shutil.copy(src, dst)
st = os.stat(src)
os.chmod(dst, st.st_mode & 0o7777)
os.chown(dst, st.st_uid, st.st_gid)
os.chown(dst, 1000, 1000)
os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
effect("chmod, chown and utime work on a root-owned copy in scratch")
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "rename-readonly-files",
		Class: "writes",
		Why:   "rename(x, x) passes every permission check and then does nothing, so it is safe even bare",
		Code: `{{PRELUDE}}` + pyWriteTargets + `
for p in stdlib_files() + [os.path.dirname(os.__file__), "/etc/passwd", "/pybox"]:
    if not os.path.exists(p):
        continue
    try:
        os.rename(p, p)
    except OSError as e:
        print("rename", p, "->", e.strerror)
        continue
    effect("rename allowed on " + p)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "truncate-readonly-files",
		Class: "writes",
		Why:   "truncate to the current size changes no byte; success proves the write permission",
		Code: `{{PRELUDE}}` + pyWriteTargets + `
for p in stdlib_files() + ["/etc/passwd", "/etc/hosts"]:
    try:
        os.truncate(p, os.stat(p).st_size)
    except OSError as e:
        print("truncate", p, "->", e.strerror)
        continue
    effect("truncate allowed on " + p)
` + pyFinish,
		Control: stdlibWritableBare,
		Check:   stdoutHas(done),
	},
	{
		Name:  "setuid-root-file-in-scratch",
		Class: "writes",
		Why:   "a root-owned setuid file planted in scratch would be a privilege escalation for whoever can run it",
		Code: `{{PRELUDE}}
import shutil, stat
p = os.path.join("{{SCRATCH}}", "suid-probe")
shutil.copy(sys.executable, p)
for uid in (0, 65534):
    try:
        os.chown(p, uid, uid)
        print("chown to", uid, "ok")
    except OSError as e:
        print("chown", uid, "->", e.strerror)
try:
    os.chmod(p, 0o6755)
except OSError as e:
    print("chmod ->", e.strerror)
st = os.stat(p)
print("owner", st.st_uid, "mode", oct(st.st_mode))
if st.st_uid != os.getuid() and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
    effect("planted a setuid file owned by uid %d" % st.st_uid)
if st.st_uid == 0 and os.getuid() != 0:
    effect("gave a file to root")
mi = open("/proc/self/mountinfo").read().splitlines()
for l in mi:
    f = l.split()
    if f[4] == "{{SCRATCH}}" and "nosuid" not in f[5]:
        effect("scratch is mounted without nosuid: " + l)
` + pyFinish,
		Control: `{{PRELUDE}}
import shutil, stat
p = os.path.join("{{SCRATCH}}", "suid-probe")
shutil.copy(sys.executable, p)
os.chown(p, 65534, 65534)
os.chmod(p, 0o6755)
st = os.stat(p)
if st.st_uid != os.getuid() and st.st_mode & stat.S_ISUID:
    effect("planted a setuid file owned by uid %d" % st.st_uid)
`,
		Check: stdoutHas(done),
	},
}

// stdlibWritableBare is the bounded twin of the stdlib write attacks: it
// asks the kernel whether root may write the files, without writing.
var stdlibWritableBare = `{{PRELUDE}}` + pyWriteTargets + `
w = [p for p in stdlib_files() if os.access(p, os.W_OK)]
if w:
    effect("writable bare: %s" % w)
`
