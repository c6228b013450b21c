package sandboxtest

// pySecrets is what every Python-level trick goes after once it has
// reached a primitive: the host secret file and the server's environment.
// Each takes the primitive it obtained (an open, an environ mapping).
const pySecrets = `
def try_open(opener, how):
    try:
        data = opener("{{CANARY_FILE}}").read()
    except OSError as e:
        print(how, "open ->", e)
        return
    effect("%s read the host secret: %s" % (how, data))
def try_environ(environ, how):
    v = environ.get("{{CANARY_ENV}}")
    if v:
        effect("%s found the server's secret in the environment: %s" % (how, v))
    else:
        print(how, "environ has no secret")
`

// pythonCases use Python-level tricks that a static policy might miss:
// class hierarchy walks, assembled attribute names, builtins and globals,
// str.format traversal, frames, gc, ctypes, encoding cookies, NFKC
// identifiers and obfuscated exec/eval/compile/marshal/pickle. Whatever
// a policy catches, the kernel must still contain each one: the trick is
// only the way to an open() of the canary file or the environment.
var pythonCases = []Case{
	{
		Name:  "subclasses-walk",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
for cls in ().__class__.__base__.__subclasses__():
    if cls.__name__ == "_wrap_close":
        g = cls.__init__.__globals__
        try_environ(g["environ"], "object.__subclasses__ -> os._wrap_close")
        try_open(lambda p: g["fdopen"](g["open"](p, g["O_RDONLY"])), "object.__subclasses__ -> os")
    if cls.__name__ == "FileLoader":
        try_open(lambda p: __import__("io").BytesIO(cls.get_data(None, p)), "FileLoader.get_data")
    if cls.__name__ == "BuiltinImporter":
        try_environ(cls.load_module("posix").environ and {k.decode(): v.decode() for k, v in cls.load_module("posix").environ.items()}, "BuiltinImporter posix")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "getattr-assembled-names",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
b = __import__("".join(map(chr, [98, 117, 105, 108, 116, 105, 110, 115])))
opener = getattr(b, "op" + "en"[::-1][::-1])
try_open(opener, "getattr(builtins, 'op'+'en')")
o = __import__(bytes.fromhex("6f73").decode())
try_environ(getattr(o, "en" + "viron"), "getattr(os, assembled)")
try_open(lambda p: getattr(o, "fd" + "open")(getattr(o, "op" + "en")(p, 0)), "getattr(os, 'open')")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "builtins-and-globals",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
def f():
    pass
bi = f.__globals__["__builtins__"]
bi = bi if isinstance(bi, dict) else bi.__dict__
try_open(bi["open"], "function.__globals__['__builtins__']['open']")
imp = bi["__import__"]
try_environ(imp("os").environ, "__builtins__.__import__('os')")
import json
try_environ(json.decoder.__dict__["__builtins__"]["__import__"]("os").environ, "module globals chain")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "str-format-traversal",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
import os as _os_for_format
def g():
    pass
leak = "{0.__globals__[_os_for_format].environ}".format(g)
if "{{CANARY_ENV}}" in leak:
    effect("str.format reached os.environ: " + leak[leak.find("{{CANARY_ENV}}"):][:80])
else:
    print("format traversal saw no secret")
leak = "{0.__globals__[__builtins__].__dict__[open]}".format(g) if not isinstance(g.__globals__["__builtins__"], dict) else ""
print("format reached:", leak[:40])
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "frame-introspection",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
import sys
try:
    1 / 0
except ZeroDivisionError as e:
    fr = e.__traceback__.tb_frame
while fr is not None:
    b = fr.f_globals.get("__builtins__")
    if b is not None:
        b = b if isinstance(b, dict) else b.__dict__
        try_open(b["open"], "traceback frame builtins")
        break
    fr = fr.f_back
def gen():
    yield 1
gi = gen()
try_environ(gi.gi_frame.f_globals["os"].environ, "generator frame globals")
try_environ(sys._getframe(0).f_builtins["__import__"]("os").environ, "sys._getframe builtins")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "gc-objects",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
import gc
for o in gc.get_objects():
    if type(o).__name__ == "module" and getattr(o, "__name__", "") == "posix":
        try_environ({k.decode(): v.decode() for k, v in o.environ.items()}, "gc -> posix module")
    if isinstance(o, dict) and "open" in o and "__import__" in o:
        try_open(o["open"], "gc -> builtins dict")
        break
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "ctypes-libc",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
libc = ctypes.CDLL(None, use_errno=True)
libc.getenv.restype = ctypes.c_char_p
v = libc.getenv(b"{{CANARY_ENV}}")
if v:
    effect("libc getenv: %r" % v)
fd = libc.syscall(ctypes.c_long(257), ctypes.c_long(-100), b"{{CANARY_FILE}}", ctypes.c_long(0), ctypes.c_long(0))
if fd >= 0:
    buf = ctypes.create_string_buffer(200)
    n = libc.read(fd, buf, 200)
    effect("raw openat read %r" % buf.raw[:n])
else:
    print("raw openat -> errno", ctypes.get_errno())
envp = ctypes.POINTER(ctypes.c_char_p).in_dll(libc, "environ")
i = 0
while envp[i]:
    if envp[i].startswith(b"{{CANARY_ENV}}="):
        effect("libc environ: %r" % envp[i])
    i += 1
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "encoding-cookie",
		Class: "python",
		Why:   "source in UTF-7 hides the names a text scan looks for; compiled from bytes so the cookie applies bare (-c) and inside",
		Code: `{{PRELUDE}}` + pySecrets + `
src = b"# -*- coding: utf-7 -*-\ntry+AF8-open(+AG8AcABlAG4-, 'utf-7 cookie')\ntry+AF8-environ(+AF8AXwBpAG0AcABvAHIAdABfAF8-('os').environ, 'utf-7 cookie')\n"
exec(compile(src, "<utf7>", "exec"))
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "nfkc-identifiers",
		Class: "python",
		Why:   "the parser folds identifiers with NFKC: full-width and mathematical letters spell open and __import__",
		Code: `{{PRELUDE}}` + pySecrets + `
try_open(ｏｐｅｎ, "full-width open")
try_environ(__𝐢𝐦𝐩𝐨𝐫𝐭__("os").environ, "mathematical bold __import__")
try_open(𝘰𝘱𝘦𝘯, "mathematical italic open")
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "obfuscated-exec-eval",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
import base64, codecs, zlib
payload = base64.b64encode(zlib.compress(b"try_open(open, 'base64+zlib exec')"))
exec(zlib.decompress(base64.b64decode(payload)))
eval(compile(codecs.decode("gel_raiveba(__vzcbeg__('bf').raiveba, 'ebg13 riny')", "rot13"), "<x>", "eval"))
getattr(__import__("builtins"), "ex" + "ec")("try_environ(__import__('os').environ, 'getattr exec')")
(lambda: None).__class__((lambda: try_open(open, "rebuilt function")).__code__, globals())()
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "code-objects-marshal",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
import marshal, types
code = marshal.loads(marshal.dumps(compile("try_open(open, 'marshal code object')", "<m>", "exec")))
exec(code)
c = compile("lambda: try_environ(__import__('os').environ, 'CodeType.replace')", "<c>", "eval")
fn = eval(c)
fn2 = types.FunctionType(fn.__code__.replace(co_name="innocent"), globals())
fn2()
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "pickle-reduce",
		Class: "python",
		Code: `{{PRELUDE}}` + pySecrets + `
import pickle
class P:
    def __reduce__(self):
        return (open, ("{{CANARY_FILE}}",))
try:
    f = pickle.loads(pickle.dumps(P()))
    effect("pickle opened the host secret: " + f.read())
except OSError as e:
    print("pickle open ->", e)
class Q:
    def __reduce__(self):
        return (os.getenv, ("{{CANARY_ENV}}",))
v = pickle.loads(pickle.dumps(Q()))
if v:
    effect("pickle getenv: " + v)
` + pyFinish,
		Check: stdoutHas(done),
	},
	{
		Name:  "posixsubprocess-fork-exec",
		Class: "python",
		Why:   "the private _posixsubprocess.fork_exec runs a host binary without the subprocess module",
		Code: `{{PRELUDE}}
import _posixsubprocess, inspect
r, w = os.pipe()
found = [p for p in ("/bin/cat", "/usr/bin/cat", "/bin/busybox") if os.path.exists(p)]
print("cat binaries:", found)
for exe in found + ["/bin/cat"]:
    try:
        errpipe_read, errpipe_write = os.pipe()
        pid = _posixsubprocess.fork_exec(
            [exe, "{{CANARY_FILE}}"], [exe.encode()], True, (errpipe_write,), None, None,
            -1, -1, -1, w, -1, -1, errpipe_read, errpipe_write,
            False, False, -1, None, None, None, -1, None, False)
        os.close(errpipe_write)
        err = os.read(errpipe_read, 200)
        os.waitpid(pid, 0)
        if err:
            print(exe, "->", err)
            continue
        os.close(w)
        out = os.read(r, 200)
        if out:
            effect("fork_exec ran %s: %r" % (exe, out))
        break
    except (OSError, TypeError) as e:
        print(exe, "->", e)
` + pyFinish,
		Check: stdoutHas(done),
	},
}
