package sandboxtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// cpuShareUnder asserts that the run used at most frac of one CPU over its
// wall time (plus slack for start-up).
func cpuShareUnder(frac float64) func(*testing.T, *sandbox.Result) {
	return func(t *testing.T, r *sandbox.Result) {
		t.Helper()
		if r.CPUMS > r.WallMS*frac+300 {
			t.Errorf("used %.0f ms of CPU in %.0f ms, more than %.2f CPU", r.CPUMS, r.WallMS, frac)
		}
	}
}

// outputCapped asserts that a flood was cut to the cap and reported.
func outputCapped(cap int64) func(*testing.T, *sandbox.Result) {
	return func(t *testing.T, r *sandbox.Result) {
		t.Helper()
		if !r.StdoutTruncated {
			t.Errorf("stdout not marked truncated (%d bytes seen)", r.StdoutBytes)
		}
		if int64(len(r.Stdout)) > cap+512 {
			t.Errorf("kept %d bytes of stdout, cap %d", len(r.Stdout), cap)
		}
		if !strings.Contains(r.Stdout, "bytes of output cut") {
			t.Errorf("stdout lacks pybox's cut marker")
		}
	}
}

const mib = 1 << 20

// resourceCases exhaust resources: memory (touched, lazy, through tmpfs,
// SysV shm, across processes), CPU, threads, time, stdin, output, disk,
// inodes, descriptors, IPC objects, regex and big-integer blow-ups,
// recursion, locked memory and real-time priority. Each sandboxed run is
// bounded by the limit under test; each control is a bounded twin that
// shows the mechanism works bare.
var resourceCases = []Case{
	{
		Name:  "memory-touched",
		Class: "resources",
		Code: `{{PRELUDE}}
chunks, total = [], 0
try:
    while total < 2 << 30:
        chunks.append(b"\x01" * (16 << 20))
        total += 16 << 20
except MemoryError:
    print("MemoryError at", total >> 20, "MiB")
if total >= 2 << 30:
    effect("allocated and touched %d MiB" % (total >> 20))
`,
		Control: `{{PRELUDE}}
chunks = [b"\x01" * (16 << 20) for i in range(4)]
effect("allocated and touched 64 MiB")
`,
		Limits:   limits(10*time.Second, func(l *sandbox.Limits) { l.MemoryBytes = 128 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusMemoryLimit},
		Check:    messageHas("memory limit"),
	},
	{
		Name:  "memory-lazy-then-touched",
		Class: "resources",
		Why:   "a huge lazy mapping costs nothing until touched; the limit must bite on the touch",
		Code: `{{PRELUDE}}
import mmap
m = mmap.mmap(-1, 4 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
print("mapped 4 GiB lazily", flush=True)
for off in range(0, 4 << 30, 4096):
    m[off] = 1
effect("touched 4 GiB")
`,
		Control: `{{PRELUDE}}
import mmap
m = mmap.mmap(-1, 4 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for off in range(0, 64 << 20, 4096):
    m[off] = 1
effect("mapped 4 GiB lazily and touched 64 MiB")
`,
		Limits:   limits(10*time.Second, func(l *sandbox.Limits) { l.MemoryBytes = 128 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusMemoryLimit},
		Check:    checks(messageHas("memory limit"), stdoutHas("mapped 4 GiB lazily")),
	},
	{
		Name:  "memory-through-tmpfs",
		Class: "resources",
		Why:   "tmpfs pages are memory: with scratch (512 MiB) larger than the memory limit (64 MiB), files in /dev/shm and /tmp must be charged to the sandbox",
		Code: `{{PRELUDE}}
total = 0
chunk = b"x" * (1 << 20)
for d in ["/dev/shm", "{{SCRATCH}}"]:
    try:
        for i in range(1000):
            with open("%s/fill-%d" % (d, i), "wb") as f:
                for j in range(4):
                    f.write(chunk)
                    total += len(chunk)
    except OSError as e:
        print(d, "stopped:", e)
    print(d, total >> 20, "MiB so far", flush=True)
if total > 256 << 20:
    effect("stored %d MiB in tmpfs past a 64 MiB memory limit" % (total >> 20))
`,
		Control: `{{PRELUDE}}
with open("{{SCRATCH}}/fill", "wb") as f:
    for j in range(16):
        f.write(b"x" * (1 << 20))
effect("wrote 16 MiB to scratch")
`,
		Limits: limits(10*time.Second, func(l *sandbox.Limits) {
			l.MemoryBytes = 64 * mib
			l.TmpfsBytes = 512 * mib
		}),
		Statuses: []sandbox.Status{sandbox.StatusMemoryLimit},
		Check:    messageHas("memory limit"),
	},
	{
		Name:  "memory-across-processes",
		Class: "resources",
		Why:   "the memory limit covers the whole sandbox, not each process: four children of 48 MiB each cannot all live under 128 MiB",
		Code: `{{PRELUDE}}
import time
r, w = os.pipe()
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        block = b"\x01" * (48 << 20)
        os.write(w, b"1")
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
os.close(w)
alive = 0
for pid in kids:
    _, st = os.waitpid(pid, 0)
    if os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0:
        alive += 1
print("children that kept 48 MiB to the end:", alive)
if alive == 4:
    effect("4 processes held 192 MiB together")
` + pyFinish,
		Control: `{{PRELUDE}}
kids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        block = b"\x01" * (32 << 20)
        os._exit(0)
    kids.append(pid)
ok = sum(1 for p in kids if os.waitpid(p, 0)[1] == 0)
if ok == 2:
    effect("2 processes of 32 MiB each")
`,
		Limits:   limits(8*time.Second, func(l *sandbox.Limits) { l.MemoryBytes = 128 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusOK, sandbox.StatusMemoryLimit},
	},
	{
		Name:  "memory-sysv-shm",
		Class: "resources",
		Why:   "SysV shared memory outlives the process that made it (it lives in the IPC namespace) and must still count against the sandbox. The control makes 64 MiB and marks it for removal at once",
		Code: `{{PRELUDE}}
_libc.shmat.restype = ctypes.c_void_p
size = 1 << 30
shmid = _libc.shmget(0, ctypes.c_size_t(size), 0o1600)
if shmid < 0:
    print("shmget -> errno", ctypes.get_errno())
else:
    addr = _libc.shmat(shmid, None, 0)
    print("attached 1 GiB segment", flush=True)
    buf = (ctypes.c_char * size).from_address(addr)
    for off in range(0, size, 4096):
        buf[off] = b"\x01"
    effect("touched 1 GiB of SysV shared memory")
`,
		Control: `{{PRELUDE}}
_libc.shmat.restype = ctypes.c_void_p
size = 64 << 20
shmid = _libc.shmget(0, ctypes.c_size_t(size), 0o1600)
addr = _libc.shmat(shmid, None, 0)
_libc.shmctl(shmid, 0, None)  # IPC_RMID: gone at detach
buf = (ctypes.c_char * size).from_address(addr)
for off in range(0, size, 4096):
    buf[off] = b"\x01"
_libc.shmdt(ctypes.c_void_p(addr))
effect("touched 64 MiB of SysV shared memory")
`,
		Limits:   limits(10*time.Second, func(l *sandbox.Limits) { l.MemoryBytes = 128 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusMemoryLimit},
		Check:    checks(messageHas("memory limit"), stdoutHas("attached 1 GiB")),
	},
	{
		Name:  "cpu-spin",
		Class: "resources",
		Code: `
while True:
    pass
`,
		Control: `{{PRELUDE}}
import time
t = time.time()
while time.time() - t < 0.2:
    pass
effect("spun for 0.2 s")
`,
		Limits:   limits(2*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), wallUnder(5*time.Second)),
	},
	{
		Name:  "cpu-spin-many-processes",
		Class: "resources",
		Why:   "four spinning processes still get only the sandbox's CPU quota (0.5 CPU), so neighbours keep theirs",
		Code: `
import os
for i in range(3):
    if os.fork() == 0:
        break
while True:
    pass
`,
		Control: `{{PRELUDE}}
import time
pids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        t = time.time()
        while time.time() - t < 0.2:
            pass
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
effect("two processes spun")
`,
		Limits:   limits(3*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), wallUnder(6*time.Second), cpuShareUnder(0.6)),
	},
	{
		Name:  "many-threads",
		Class: "resources",
		Code: `{{PRELUDE}}
import threading, time
n = 0
try:
    while n < 5000:
        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
        t.start()
        n += 1
except RuntimeError as e:
    print("thread refused after", n, ":", e)
if n > 1000:
    effect("started %d threads" % n)
` + pyFinish,
		Control: `{{PRELUDE}}
import threading, time
ts = [threading.Thread(target=time.sleep, args=(0.2,)) for i in range(50)]
for t in ts:
    t.start()
for t in ts:
    t.join()
effect("started 50 threads")
`,
		Limits: limits(5*time.Second, nil),
		Check:  checks(stdoutHas(done), wallUnder(5*time.Second)),
	},
	{
		Name:  "sleep-forever",
		Class: "resources",
		Code: `
import signal, threading, time
threading.Thread(target=threading.Event().wait, daemon=True).start()
print("sleeping", flush=True)
time.sleep(1e9)
`,
		Control: `{{PRELUDE}}
import time
time.sleep(0.1)
effect("slept")
`,
		Limits:   limits(2*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), wallUnder(5*time.Second), stdoutHas("sleeping")),
	},
	{
		Name:  "read-stdin",
		Class: "resources",
		Why:   "stdin must be empty and never the host's terminal or a pipe the server reads from; reading it must not hang the run. The control feeds a pipe to show the probe sees data",
		Code: `{{PRELUDE}}
import select
def probe():
    if os.isatty(0):
        effect("stdin is a terminal")
    r, _, _ = select.select([0], [], [], 1.0)
    data = os.read(0, 100) if r else None
    if data:
        effect("read %r from stdin" % data)
    print("stdin:", os.readlink("/proc/self/fd/0"), repr(data), repr(sys.stdin.read()))
probe()
` + pyFinish,
		Control: `{{PRELUDE}}
import select
r, w = os.pipe()
os.write(w, b"host input")
os.close(w)
os.dup2(r, 0)
if select.select([0], [], [], 1.0)[0]:
    data = os.read(0, 100)
    if data:
        effect("read %r from stdin" % data)
`,
		Limits:   limits(5*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    checks(stdoutHas(done), wallUnder(4*time.Second)),
	},
	{
		Name:  "huge-output",
		Class: "resources",
		Why:   "a flood is cut to the cap, the sandbox is killed past 8x the cap, and the run says so; the last line would only appear if the flood ran to its end",
		Code: `{{PRELUDE}}
chunk = "A" * 65535 + "\n"
for i in range(4096):
    sys.stdout.write(chunk)
sys.stdout.flush()
effect("wrote 256 MiB unhindered")
`,
		Control: `{{PRELUDE}}
chunk = "A" * 65535 + "\n"
for i in range(16):
    sys.stdout.write(chunk)
effect("wrote 1 MiB")
`,
		Limits:   limits(20*time.Second, func(l *sandbox.Limits) { l.MaxOutputBytes = 64 << 10 }),
		Statuses: []sandbox.Status{sandbox.StatusOutputLimit},
		Check:    checks(messageHas("output"), outputCapped(64<<10), wallUnder(8*time.Second)),
	},
	{
		Name:  "huge-stderr",
		Class: "resources",
		Code: `{{PRELUDE}}
chunk = "E" * 65535 + "\n"
for i in range(4096):
    sys.stderr.write(chunk)
sys.stderr.flush()
effect("wrote 256 MiB to stderr unhindered")
`,
		Control: `{{PRELUDE}}
for i in range(16):
    sys.stderr.write("E" * 65535 + "\n")
effect("wrote 1 MiB to stderr")
`,
		Limits:   limits(20*time.Second, func(l *sandbox.Limits) { l.MaxOutputBytes = 64 << 10 }),
		Statuses: []sandbox.Status{sandbox.StatusOutputLimit},
		Check: checks(messageHas("output"), wallUnder(8*time.Second), func(t *testing.T, r *sandbox.Result) {
			if !r.StderrTruncated || int64(len(r.Stderr)) > 64<<10+512 {
				t.Errorf("stderr: truncated=%v, %d bytes kept", r.StderrTruncated, len(r.Stderr))
			}
		}),
	},
	{
		Name:  "binary-output",
		Class: "resources",
		Why:   "NULs, invalid UTF-8, terminal escapes and a forged pybox cut marker must come back byte-exact and leave the result encodable",
		Code: `{{PRELUDE}}
import random
rng = random.Random(1)
blob = bytes(rng.getrandbits(8) for i in range(50000)).replace(b"EFFECT", b"effect")
blob += b"\0\xff\xfe\xc3\x28\x1b[2J\x1b]0;owned\x07\n... [pybox: 0 bytes of output cut; 0 bytes in total] ...\n"
os.write(1, blob)
os.write(2, blob)
print(len(blob))
`,
		Control: `{{PRELUDE}}
import random
rng = random.Random(1)
blob = bytes(rng.getrandbits(8) for i in range(50000))
os.write(1, blob)
effect("wrote %d binary bytes" % len(blob))
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check: func(t *testing.T, r *sandbox.Result) {
			if r.StdoutTruncated || r.StdoutBytes != int64(len(r.Stdout)) || r.StdoutBytes < 50000 {
				t.Errorf("stdout: %d bytes kept of %d, truncated=%v", len(r.Stdout), r.StdoutBytes, r.StdoutTruncated)
			}
			if !strings.Contains(r.Stdout, "\x00\xff\xfe\xc3\x28") || !strings.Contains(r.Stderr, "\x1b]0;owned") {
				t.Errorf("binary bytes were altered")
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("result not encodable: %v", err)
			}
		},
	},
	{
		Name:  "slow-drip-output",
		Class: "resources",
		Why:   "output that never stops but never floods is ended by the timeout, with what was printed kept",
		Code: `
import time
i = 0
while True:
    print("drip", i, flush=True)
    i += 1
    time.sleep(0.1)
`,
		Control: `{{PRELUDE}}
import time
for i in range(3):
    print("drip", i, flush=True)
    time.sleep(0.1)
effect("dripped 3 lines")
`,
		Limits:   limits(2*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), stdoutHas("drip 5"), wallUnder(5*time.Second)),
	},
	{
		Name:  "disk-fill",
		Class: "resources",
		Why:   "scratch (16 MiB here) fills up with ENOSPC; /dev/shm is capped the same way",
		Code: `{{PRELUDE}}
for d in ["{{SCRATCH}}", "/dev/shm"]:
    total = 0
    try:
        for i in range(1000):
            with open("%s/disk-fill-%d" % (d, i), "wb") as f:
                for j in range(4):
                    f.write(b"\0" * (1 << 20))
                    total += 1 << 20
    except OSError as e:
        print(d, "full after", total >> 20, "MiB:", e.strerror)
    if total > 17 << 20:
        effect("wrote %d MiB to %s" % (total >> 20, d))
` + pyFinish,
		Control: `{{PRELUDE}}
with open("{{SCRATCH}}/disk-fill", "wb") as f:
    for j in range(8):
        f.write(b"\0" * (1 << 20))
effect("wrote 8 MiB to scratch")
`,
		Limits:   limits(10*time.Second, func(l *sandbox.Limits) { l.TmpfsBytes = 16 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    stdoutHas(done),
	},
	{
		Name:  "sparse-and-fallocate",
		Class: "resources",
		Why:   "a sparse file larger than scratch, and fallocate past its size; the control makes a sparse 1 TiB file in scratch (no blocks) and deletes it",
		Code: `{{PRELUDE}}
p = "{{SCRATCH}}/sparse"
fd = os.open(p, os.O_CREAT | os.O_WRONLY)
for size in (1 << 40, 1 << 30):
    try:
        os.ftruncate(fd, size)
    except OSError as e:
        print("truncate", size, "->", e.strerror)
try:
    os.pwrite(fd, b"x", (1 << 40) - 1)
except OSError as e:
    print("write at 1 TiB ->", e.strerror)
os.close(fd)
size = os.stat(p).st_size
print("size", size)
if size > 1 << 30:
    effect("sparse file of %d bytes" % size)
fd = os.open("{{SCRATCH}}/falloc", os.O_CREAT | os.O_WRONLY)
try:
    os.posix_fallocate(fd, 0, 1 << 30)
    effect("fallocated 1 GiB")
except OSError as e:
    print("fallocate ->", e.strerror)
` + pyFinish,
		Control: `{{PRELUDE}}
p = "{{SCRATCH}}/sparse"
with open(p, "wb") as f:
    f.truncate(1 << 40)
size = os.stat(p).st_size
os.unlink(p)
if size > 1 << 30:
    effect("sparse file of %d bytes" % size)
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    checks(stdoutHas(done), noSignal),
	},
	{
		Name:  "inode-exhaustion",
		Class: "resources",
		Why:   "tmpfs inodes are not limited by its size; each costs kernel memory, which must count against the sandbox (64 MiB here)",
		Code: `{{PRELUDE}}
n = 0
try:
    while n < 2000000:
        open("{{SCRATCH}}/i%d" % n, "w").close()
        n += 1
except OSError as e:
    print("stopped after", n, ":", e)
if n >= 2000000:
    effect("created %d inodes" % n)
`,
		Control: `{{PRELUDE}}
for i in range(1000):
    open("{{SCRATCH}}/i%d" % i, "w").close()
effect("created 1000 inodes")
`,
		Limits: limits(3*time.Second, func(l *sandbox.Limits) { l.MemoryBytes = 64 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusMemoryLimit, sandbox.StatusTimeout, sandbox.StatusOK,
			sandbox.StatusError},
		Check: wallUnder(6 * time.Second),
	},
	{
		Name:  "descriptor-exhaustion",
		Class: "resources",
		Code: `{{PRELUDE}}
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
for lim in ((1 << 20, 1 << 20), (hard, hard)):
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, lim)
        print("RLIMIT_NOFILE set to", lim)
    except (OSError, ValueError) as e:
        print("setrlimit", lim, "->", e)
fds = []
try:
    while len(fds) < 100000:
        fds.extend(os.pipe())
except OSError as e:
    print("refused after", len(fds), ":", e)
if len(fds) > 1100:
    effect("opened %d descriptors" % len(fds))
` + pyFinish,
		Control: `{{PRELUDE}}
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
fds = []
while len(fds) < 2000:
    fds.extend(os.pipe())
effect("opened %d descriptors" % len(fds))
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    stdoutHas(done),
	},
	{
		Name:  "sysv-ipc-objects",
		Class: "resources",
		Why:   "SysV objects outlive processes: the sandbox must see none of the host's and leave none behind (the post-conditions count them). The control creates one and removes it",
		Code: `{{PRELUDE}}
for kind in ("shm", "sem", "msg"):
    lines = open("/proc/sysvipc/" + kind).read().splitlines()[1:]
    if lines:
        effect("foreign SysV %s objects visible: %d" % (kind, len(lines)))
made = {"shm": 0, "sem": 0, "msg": 0}
for i in range(3000):
    key = 0x70790000 + i
    if _libc.shmget(key, 4096, 0o1600) >= 0: made["shm"] += 1
    if _libc.semget(key, 8, 0o1600) >= 0: made["sem"] += 1
    if _libc.msgget(key, 0o1600) >= 0: made["msg"] += 1
print("created", made)
` + pyFinish,
		Control: `{{PRELUDE}}
shmid = _libc.shmget(0, 4096, 0o1600)
seen = "%d" % shmid in open("/proc/sysvipc/shm").read()
_libc.shmctl(shmid, 0, None)
if seen:
    effect("SysV segment visible in /proc/sysvipc/shm")
`,
		Statuses: []sandbox.Status{sandbox.StatusOK},
		Check:    stdoutHas(done),
	},
	{
		Name:  "regex-blowup",
		Class: "resources",
		Code: `
import re
print("matching", flush=True)
re.match(r"(a+)+$", "a" * 64 + "b")
`,
		Control: `{{PRELUDE}}
import re
re.match(r"(a+)+$", "a" * 16 + "b")
effect("catastrophic backtracking on 16 characters finished")
`,
		Limits:   limits(2*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusTimeout},
		Check:    checks(messageHas("timed out"), wallUnder(5*time.Second)),
	},
	{
		Name:  "bigint-blowup",
		Class: "resources",
		Why:   "integer arithmetic that needs gigabytes or hours; CPython's str-conversion limit stops only one form",
		Code: `
import sys
try:
    int("1" * 100000)
except ValueError as e:
    print("int() limit:", e)
sys.set_int_max_str_digits(0)
print("computing", flush=True)
x = 7 ** (10 ** 10)
print(len(str(x)))
`,
		Control: `{{PRELUDE}}
x = 7 ** (10 ** 5)
effect("computed a %d-bit integer" % x.bit_length())
`,
		Limits:   limits(2*time.Second, func(l *sandbox.Limits) { l.MemoryBytes = 128 * mib }),
		Statuses: []sandbox.Status{sandbox.StatusMemoryLimit, sandbox.StatusTimeout, sandbox.StatusError},
		Check:    checks(wallUnder(6*time.Second), stdoutHas("computing")),
	},
	{
		Name:  "stack-overflow",
		Class: "resources",
		Why:   "C recursion past the stack limit (nested repr with the recursion limit lifted) crashes the interpreter; pybox must report a signal death, not hang",
		Code: `
import sys
sys.setrecursionlimit(10 ** 8)
l = []
for i in range(3 * 10 ** 5):
    l = [l]
print("recursing", flush=True)
print(len(repr(l)))
`,
		Control: `{{PRELUDE}}
l = []
for i in range(500):
    l = [l]
effect("nested repr %d characters deep" % len(repr(l)))
`,
		Limits:   limits(10*time.Second, nil),
		Statuses: []sandbox.Status{sandbox.StatusKilled},
		Check:    checks(messageHas("SIGSEGV", "killed"), stdoutHas("recursing"), wallUnder(8*time.Second)),
	},
	{
		Name:  "locked-memory",
		Class: "resources",
		Why:   "locked memory cannot be reclaimed; RLIMIT_MEMLOCK is 64 KiB inside. The control locks 16 MiB and unlocks it",
		Code: `{{PRELUDE}}
import mmap
size = 32 << 20
m = mmap.mmap(-1, size)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
if _libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(size)) == 0:
    effect("locked 32 MiB")
else:
    print("mlock -> errno", ctypes.get_errno())
if _libc.mlockall(3) == 0:
    effect("mlockall succeeded")
else:
    print("mlockall -> errno", ctypes.get_errno())
` + pyFinish,
		Control: `{{PRELUDE}}
import mmap
size = 16 << 20
m = mmap.mmap(-1, size)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
if _libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(size)) == 0:
    effect("locked 16 MiB")
    _libc.munlock(ctypes.c_void_p(addr), ctypes.c_size_t(size))
`,
		Check: stdoutHas(done),
	},
	{
		Name:  "realtime-priority",
		Class: "resources",
		Why:   "a SCHED_FIFO or negative-nice process starves the host's; the control raises its own priority for an instant and restores it",
		Code: `{{PRELUDE}}
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    effect("got SCHED_FIFO")
except OSError as e:
    print("SCHED_FIFO ->", e)
try:
    os.setpriority(os.PRIO_PROCESS, 0, -10)
    effect("got nice -10")
except OSError as e:
    print("nice -10 ->", e)
if sc(251, 1, 0, (1 << 13) | 0) == 0:  # ioprio_set(WHO_PROCESS, self, IOPRIO_CLASS_RT)
    effect("got real-time I/O priority")
` + pyFinish,
		Control: `{{PRELUDE}}
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
effect("got SCHED_FIFO")
`,
		Check: stdoutHas(done),
	},
}
