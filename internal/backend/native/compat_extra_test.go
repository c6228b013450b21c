//go:build linux

package native

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// stdlibModules is a broad sweep of the standard library: importing a
// module runs its initialisation (C extensions, locale and time zone
// set-up, platform probes), which is where an over-tight allowlist first
// shows.
var stdlibModules = []string{
	"abc", "argparse", "array", "ast", "asyncio", "base64", "bdb", "binascii", "bisect", "bz2",
	"calendar", "cmath", "cmd", "code", "codecs", "collections", "colorsys", "compileall",
	"concurrent.futures", "configparser", "contextlib", "contextvars", "copy", "cProfile", "csv",
	"ctypes", "ctypes.util", "curses", "dataclasses", "datetime", "dbm", "dbm.gnu", "dbm.ndbm", "decimal",
	"difflib", "dis", "doctest", "email", "email.mime.multipart", "encodings.idna", "enum", "errno",
	"faulthandler", "fcntl", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools",
	"gc", "getopt", "getpass", "gettext", "glob", "graphlib", "grp", "gzip", "hashlib", "heapq",
	"hmac", "html.parser", "http.client", "http.cookiejar", "http.server", "imaplib", "importlib",
	"importlib.metadata", "importlib.resources", "inspect", "io", "ipaddress", "itertools", "json",
	"keyword", "linecache", "locale", "logging.handlers", "lzma", "mailbox", "mimetypes", "mmap",
	"modulefinder", "multiprocessing", "multiprocessing.pool", "multiprocessing.shared_memory",
	"netrc", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools",
	"pkgutil", "platform", "plistlib", "poplib", "posix", "pprint", "profile", "pstats", "pty", "pwd",
	"py_compile", "pyclbr", "pydoc", "queue", "quopri", "random", "re", "readline", "reprlib",
	"resource", "rlcompleter", "runpy", "sched", "secrets", "select", "selectors", "shelve",
	"shlex", "shutil", "signal", "site", "smtplib", "socket", "socketserver", "sqlite3", "ssl",
	"stat", "statistics", "string", "stringprep", "struct", "subprocess", "symtable", "sysconfig",
	"syslog", "tabnanny", "tarfile", "tempfile", "termios", "textwrap", "threading", "time",
	"timeit", "tkinter", "token", "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "tty",
	"turtle", "types", "typing", "unicodedata", "unittest", "unittest.mock", "urllib.parse",
	"urllib.request", "uuid", "venv", "warnings", "wave", "weakref", "wsgiref.simple_server",
	"xml.dom.minidom", "xml.etree.ElementTree", "xml.sax", "xmlrpc.client", "xmlrpc.server",
	"zipapp", "zipfile", "zipimport", "zlib", "zoneinfo",
	"_ctypes", "_decimal", "_sqlite3", "_ssl", "_hashlib", "_lzma", "_bz2", "_uuid", "_posixshmem",
	"_multiprocessing", "_curses", "_dbm", "_gdbm", "_tkinter",
}

// absentCLibs may fail to import, and only where they fail bare with the
// same interpreter too: they need C libraries (Tk, ncurses, readline,
// gdbm, ndbm) that an interpreter may have been built without.
var absentCLibs = map[string]bool{
	"tkinter": true, "_tkinter": true, "turtle": true, "curses": true, "_curses": true,
	"readline": true, "dbm.gnu": true, "_gdbm": true, "dbm.ndbm": true, "_dbm": true,
}

// sigsysProgram imports every module, then calls the os-level functions
// ordinary programs use, then imports everything again in a child
// process. It prints one JSON report on the last line.
const sigsysProgram = `
import importlib, json, os, sys, traceback
MODULES = __MODULES__
report = {"imports": {}, "ops": {}}
for m in MODULES:
    try:
        importlib.import_module(m)
        report["imports"][m] = "ok"
    except BaseException as e:
        report["imports"][m] = "%s: %s" % (type(e).__name__, e)

import grp, platform, pwd, resource, shutil, socket, time, signal, select, locale, sysconfig, ssl, sqlite3
import ctypes, multiprocessing, asyncio, uuid, tracemalloc, faulthandler, subprocess
def rlimits():
    return {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")}
def loop():
    l = asyncio.new_event_loop(); l.run_until_complete(asyncio.sleep(0)); l.close(); return True
def tm():
    tracemalloc.start(); x = [object() for _ in range(100)]; n = tracemalloc.get_traced_memory()[0]; tracemalloc.stop(); return n > 0
ops = {
    "os.listdir": lambda: len(os.listdir("/")) > 0 and len(os.listdir("/proc/self/fd")) > 0,
    "os.stat": lambda: os.stat("/tmp").st_mode and os.lstat(sys.executable).st_size >= 0,
    "os.statvfs": lambda: os.statvfs("/tmp").f_bsize,
    "os.cpu_count": os.cpu_count,
    "os.getloadavg": os.getloadavg,
    "os.sched_getaffinity": lambda: sorted(os.sched_getaffinity(0)),
    "os.getpriority": lambda: os.getpriority(os.PRIO_PROCESS, 0),
    "os.times": lambda: os.times().elapsed > 0,
    "os.uname": lambda: os.uname().sysname,
    "os.ids": lambda: (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups(), os.getresuid(), os.getresgid()),
    "os.process-group": lambda: (os.getpgrp(), os.getsid(0), os.getppid()),
    "os.umask": lambda: os.umask(os.umask(0o22)),
    "os.sysconf": lambda: {n: os.sysconf(n) for n in ("SC_PAGE_SIZE", "SC_NPROCESSORS_ONLN", "SC_PHYS_PAGES", "SC_CLK_TCK", "SC_OPEN_MAX")},
    "os.confstr": lambda: os.confstr("CS_GNU_LIBC_VERSION"),
    "os.urandom": lambda: len(os.urandom(64)) + len(os.getrandom(16)),
    "resource.getrlimit": rlimits,
    "resource.getrusage": lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0,
    "pwd.getpwuid": lambda: pwd.getpwuid(os.getuid()).pw_name,
    "pwd.getpwall": lambda: len(pwd.getpwall()) > 0,
    "grp.getgrgid": lambda: grp.getgrgid(os.getgid()).gr_name,
    "grp.getgrall": lambda: len(grp.getgrall()) > 0,
    "socket.gethostname": socket.gethostname,
    "socket.getfqdn": socket.getfqdn,
    "socket.socketpair": lambda: [s.close() for s in socket.socketpair()] and True,
    "platform.platform": platform.platform,
    "platform.uname": lambda: tuple(platform.uname()),
    "platform.libc_ver": platform.libc_ver,
    "platform.python": lambda: (platform.python_implementation(), platform.python_version(), platform.architecture()),
    "shutil.disk_usage": lambda: shutil.disk_usage("/tmp").total > 0,
    "shutil.get_terminal_size": lambda: tuple(shutil.get_terminal_size()),
    "time.clocks": lambda: [time.clock_getres(c) for c in (time.CLOCK_REALTIME, time.CLOCK_MONOTONIC, time.CLOCK_PROCESS_CPUTIME_ID, time.CLOCK_THREAD_CPUTIME_ID)],
    "signal.getitimer": lambda: signal.getitimer(signal.ITIMER_REAL),
    "select.epoll": lambda: select.epoll().close() or True,
    "locale.setlocale": lambda: locale.setlocale(locale.LC_ALL, ""),
    "sysconfig.get_config_vars": lambda: len(sysconfig.get_config_vars()) > 0,
    "ssl.create_default_context": lambda: ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED and len(ssl.RAND_bytes(8)),
    "sqlite3.connect": lambda: sqlite3.connect(":memory:").execute("select sqlite_version()").fetchone()[0],
    "ctypes.CDLL": lambda: ctypes.CDLL(None).getpid() == os.getpid(),
    "multiprocessing.cpu_count": multiprocessing.cpu_count,
    "asyncio.new_event_loop": loop,
    "uuid.uuid1": lambda: uuid.uuid1().version,
    "tracemalloc": tm,
    "faulthandler.enable": lambda: faulthandler.enable() or faulthandler.is_enabled(),
}
for name, f in ops.items():
    try:
        r = f()
        report["ops"][name] = "ok"
    except BaseException as e:
        report["ops"][name] = "%s: %s" % (type(e).__name__, e)
imported = [m for m, v in report["imports"].items() if v == "ok"]
child = subprocess.run([sys.executable, "-c", "import importlib\nfor m in %r: importlib.import_module(m)\nprint('child-ok')" % imported],
                       capture_output=True, text=True)
report["child"] = {"rc": child.returncode, "out": child.stdout.strip(), "err": child.stderr[-2000:]}
print("REPORT:" + json.dumps(report))
`

type sigsysReport struct {
	Imports map[string]string `json:"imports"`
	Ops     map[string]string `json:"ops"`
	Child   struct {
		RC  int    `json:"rc"`
		Out string `json:"out"`
		Err string `json:"err"`
	} `json:"child"`
}

func parseSigsysReport(t *testing.T, where, stdout, stderr string) *sigsysReport {
	t.Helper()
	i := strings.LastIndex(stdout, "REPORT:")
	if i < 0 {
		t.Fatalf("%s: no report in the output\nstdout:\n%s\nstderr:\n%s", where, clipOut(stdout), clipOut(stderr))
	}
	line, _, _ := strings.Cut(stdout[i+len("REPORT:"):], "\n")
	var rep sigsysReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("%s: bad report %q: %v", where, line, err)
	}
	return &rep
}

func clipOut(s string) string {
	if len(s) > 6000 {
		return s[:3000] + "\n...[clipped]...\n" + s[len(s)-3000:]
	}
	return s
}

// runBare runs python -I -c code on the host in dir, with a minimal
// environment, and returns stdout and stderr.
func runBare(t *testing.T, python, code, dir string, env []string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-c", code)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run() //nolint:errcheck // the report says what happened
	return out.String(), errb.String()
}

func pyList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		b, _ := json.Marshal(s)
		q[i] = string(b)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestNoSIGSYSEver runs a broad stdlib workload under the production
// filter shape (with the test errno, so that a denied call shows as errno
// 4000 rather than a plausible EPERM) and requires that nothing dies of
// SIGSYS, that every module importable bare imports inside, and that every
// ordinary os-level call succeeds, in the sandbox's first process and in
// a child.
func TestNoSIGSYSEver(t *testing.T) {
	requireRoot(t)
	b := newBackend(t, testErrno)
	check := postCheck(b)
	pythons := []struct {
		name, python string
		extra        []string
	}{
		{"pyenv", defaultPython(t), nil},
		{"debian", debianPython, []string{"numpy", "numpy.linalg", "pandas", "matplotlib", "matplotlib.pyplot", "PIL.Image"}},
	}
	for _, p := range pythons {
		t.Run(p.name, func(t *testing.T) {
			if p.name == "debian" {
				requireDebianPython(t)
			}
			mods := append(append([]string{}, stdlibModules...), p.extra...)
			code := strings.Replace(sigsysProgram, "__MODULES__", pyList(mods), 1)

			// Positive control: the same program bare, so that a module or
			// call that fails inside is known to work without the sandbox.
			dir := t.TempDir()
			bout, berr := runBare(t, p.python, code, dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C.UTF-8", "MPLBACKEND=Agg", "TZ=UTC"})
			bare := parseSigsysReport(t, "bare control", bout, berr)

			res := runCode(t, b, code, func(s *sandbox.Spec) {
				s.Python = p.python
				s.Limits.Timeout = 120 * time.Second
			})
			if res.Signal == "SIGSYS" || strings.Contains(res.Message, "SIGSYS") {
				t.Fatalf("the sandboxed program died of SIGSYS:\n%s", clipOut(res.Stdout+res.Stderr))
			}
			if res.Status != sandbox.StatusOK {
				t.Fatalf("status %s (%s), want ok\nstdout:\n%s\nstderr:\n%s", res.Status, res.Message, clipOut(res.Stdout), clipOut(res.Stderr))
			}
			in := parseSigsysReport(t, "sandbox", res.Stdout, res.Stderr)

			var broken, skipped []string
			for _, m := range mods {
				got, want := in.Imports[m], bare.Imports[m]
				switch {
				case got == "ok":
				case want != "ok" && absentCLibs[m]:
					skipped = append(skipped, m+" ("+want+")")
				case want != "ok":
					t.Errorf("import %s fails even bare (%s); it needs no absent C library, so the host interpreter is broken", m, want)
				default:
					broken = append(broken, m+": "+got)
				}
			}
			sort.Strings(broken)
			for _, m := range broken {
				t.Errorf("import works bare but fails in the sandbox: %s", m)
			}
			if len(skipped) > 0 {
				t.Logf("not built into %s (fails bare too): %s", p.python, strings.Join(skipped, "; "))
			}
			if len(in.Imports) != len(mods) {
				t.Errorf("report covers %d imports, want %d", len(in.Imports), len(mods))
			}
			for name, v := range bare.Ops {
				if v != "ok" {
					t.Errorf("control: %s fails bare (%s); the program is wrong", name, v)
				}
			}
			var names []string
			for name := range in.Ops {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if v := in.Ops[name]; v != "ok" {
					t.Errorf("%s fails in the sandbox: %s", name, v)
				}
			}
			if len(in.Ops) < 40 {
				t.Errorf("only %d os-level calls were exercised", len(in.Ops))
			}
			if in.Child.RC != 0 || in.Child.Out != "child-ok" {
				t.Errorf("re-importing everything in a child: rc %d (%d is SIGSYS), out %q\n%s", in.Child.RC, -31, in.Child.Out, in.Child.Err)
			}
			if strings.Contains(res.Stdout+res.Stderr, "Errno 4000") {
				t.Errorf("a call was denied by the filter (errno 4000 surfaced):\n%s", clipOut(res.Stdout+res.Stderr))
			}
			check(t)
		})
	}
}
