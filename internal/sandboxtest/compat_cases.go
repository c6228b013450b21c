package sandboxtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pybox-dev/pybox/internal/sandbox"
)

// CompatCases are ordinary programs that must work inside the sandbox.
// sciPython is an interpreter with numpy, pandas and matplotlib.
//
// Every case computes something and prints it; Want holds the value only a
// working feature produces (a known digest, a count, a decoded payload), so
// a broken feature fails the case even when it does not raise. They double
// as the broad workload the seccomp allowlist is checked against: a call
// the filter denies shows up here as an exception or a wrong result.
func CompatCases(sciPython string) []Case {
	var cases []Case
	cases = append(cases, compatConcurrencyCases()...)
	cases = append(cases, compatProcessCases()...)
	cases = append(cases, compatFileCases()...)
	cases = append(cases, compatDataCases()...)
	cases = append(cases, compatSystemCases()...)
	cases = append(cases, compatOutputCases()...)
	// Debian's interpreter links a different set of system libraries
	// (libsqlite3, libmpdec, libexpat, libffi, OpenSSL) and is laid out
	// differently on disk: run the cases most sensitive to that with it too.
	for _, c := range cases {
		if compatDebianToo[c.Name] {
			c.Name += "/debian"
			c.Python = sciPython
			cases = append(cases, c)
		}
	}
	cases = append(cases, compatScientificCases(sciPython)...)
	return cases
}

var compatDebianToo = map[string]bool{
	"asyncio-subprocess": true, "multiprocessing-pool": true, "multiprocessing-spawn": true,
	"shared-memory": true, "subprocess-run": true, "sqlite3-file-and-memory": true,
	"zoneinfo": true, "ctypes-callback": true, "locale": true, "compression": true,
	"hashlib-hmac-secrets": true, "subprocess-python3-on-path": true,
}

func compatConcurrencyCases() []Case {
	return []Case{
		{Name: "threads-lock", Code: `
import threading
n = 0
lock = threading.Lock()
def work():
    global n
    for _ in range(10000):
        with lock:
            n += 1
ts = [threading.Thread(target=work) for _ in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print("count=%d threads=%d alive=%d" % (n, len(ts), sum(t.is_alive() for t in ts)))
`, Want: "count=160000 threads=16 alive=0"},

		{Name: "thread-pool-executor", Why: "the barrier proves four workers ran at the same time", Code: `
from concurrent.futures import ThreadPoolExecutor, as_completed
import hashlib, threading
barrier = threading.Barrier(4, timeout=10)
def first(i):
    barrier.wait()
    return threading.get_ident()
def h(i):
    return i, hashlib.sha256(str(i).encode()).hexdigest()
with ThreadPoolExecutor(max_workers=4) as ex:
    idents = {f.result() for f in [ex.submit(first, i) for i in range(4)]}
    res = list(ex.map(h, range(500)))
    futs = [ex.submit(pow, 2, k) for k in range(20)]
    total = sum(f.result() for f in as_completed(futs))
ok = all(d == hashlib.sha256(str(i).encode()).hexdigest() for i, d in res)
print("concurrent=%d results=%d ok=%s total=%d" % (len(idents), len(res), ok, total))
`, Want: "concurrent=4 results=500 ok=True total=1048575"},

		{Name: "thread-sync-primitives", Code: `
import threading, queue, time
q = queue.Queue(maxsize=5)
def producer():
    for i in range(100): q.put(i)
    q.put(None)
out = []
def consumer():
    while (x := q.get()) is not None: out.append(x)
tp, tc = threading.Thread(target=producer), threading.Thread(target=consumer)
tp.start(); tc.start(); tp.join(); tc.join()
ev = threading.Event()
threading.Timer(0.05, ev.set).start()
timer_ok = ev.wait(5)
cond = threading.Condition(); state = []
def waiter():
    with cond:
        cond.wait_for(lambda: state, timeout=5)
        state.append("woken")
w = threading.Thread(target=waiter); w.start()
time.sleep(0.05)
with cond:
    state.append("go"); cond.notify_all()
w.join()
sem = threading.BoundedSemaphore(2); peak = [0]; cur = [0]; m = threading.Lock()
def limited():
    with sem:
        with m: cur[0] += 1; peak[0] = max(peak[0], cur[0])
        time.sleep(0.01)
        with m: cur[0] -= 1
ts = [threading.Thread(target=limited) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
local = threading.local(); seen = []
def tl(v):
    local.v = v; time.sleep(0.01); seen.append(local.v == v)
ts = [threading.Thread(target=tl, args=(i,)) for i in range(5)]
[t.start() for t in ts]; [t.join() for t in ts]
print("queue=%d sum=%d timer=%s cond=%s sem-peak=%d tls=%s" % (len(out), sum(out), timer_ok, state, peak[0], all(seen)))
`, Want: "queue=100 sum=4950 timer=True cond=['go', 'woken'] sem-peak=2 tls=True"},

		{Name: "asyncio-tasks", Code: `
import asyncio, time
async def worker(i, q):
    await asyncio.sleep(0.01 * (5 - i))
    await q.put(i)
    return i * i
def blocking(x):
    time.sleep(0.05)
    return x + 1
async def main():
    q = asyncio.Queue()
    t0 = time.monotonic()
    res = await asyncio.gather(*(asyncio.create_task(worker(i, q)) for i in range(5)))
    order = [q.get_nowait() for _ in range(5)]
    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.05)
        timed_out = False
    except asyncio.TimeoutError:
        timed_out = True
    th = await asyncio.to_thread(blocking, 41)
    ev = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, ev.set)
    await ev.wait()
    elapsed = time.monotonic() - t0
    print("gather=%s order=%s wait_for-timeout=%s to_thread=%d fast=%s" % (res, order, timed_out, th, elapsed < 5))
asyncio.run(main())
`, Want: "gather=[0, 1, 4, 9, 16] order=[4, 3, 2, 1, 0] wait_for-timeout=True to_thread=42 fast=True"},

		{Name: "asyncio-subprocess", Code: `
import asyncio, sys
async def main():
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; d = sys.stdin.read(); print(d.upper()); print('to-err', file=sys.stderr); sys.exit(7)",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await p.communicate(b"hello from parent")
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", "print(%d * 3)" % i, stdout=asyncio.subprocess.PIPE) for i in range(4)]
    outs = await asyncio.gather(*(q.communicate() for q in procs))
    print("child said %s err=%s rc=%d parallel=%s" % (out.decode().strip(), err.decode().strip(), p.returncode,
          [int(o.strip()) for o, _ in outs]))
asyncio.run(main())
`, Want: "child said HELLO FROM PARENT err=to-err rc=7 parallel=[0, 3, 6, 9]"},

		{Name: "asyncio-socketpair-streams", Code: `
import asyncio, socket
async def main():
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    w1.write(b"ping\n" * 3); await w1.drain()
    got = [await r2.readline() for _ in range(3)]
    w2.write(b"".join(got).upper()); await w2.drain()
    back = await r1.readexactly(15)
    big = bytes(range(256)) * 4096
    async def send():
        w1.write(big); await w1.drain(); w1.write_eof()
    _, recv = await asyncio.gather(send(), r2.read())
    for w in (w1, w2): w.close()
    print("echo=%r big-ok=%s" % (back, recv == big))
asyncio.run(main())
`, Want: "echo=b'PING\\nPING\\nPING\\n' big-ok=True"},

		{Name: "asyncio-unix-server", Code: `
import asyncio
async def handle(r, w):
    data = await r.readline()
    w.write(data[::-1].strip() + b"\n"); await w.drain(); w.close()
async def client(i):
    r, w = await asyncio.open_unix_connection("/tmp/srv.sock")
    w.write(b"msg%02d\n" % i); await w.drain()
    line = await r.readline(); w.close()
    return line.strip().decode()
async def main():
    srv = await asyncio.start_unix_server(handle, path="/tmp/srv.sock")
    async with srv:
        res = await asyncio.gather(*(client(i) for i in range(20)))
    print("clients=%d first=%s last=%s" % (len(res), res[0], res[-1]))
asyncio.run(main())
`, Want: "clients=20 first=00gsm last=91gsm"},

		{Name: "signal-itimer-alarm", Code: `
import signal, time
hits = []
signal.signal(signal.SIGALRM, lambda s, f: hits.append(time.monotonic()))
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
t0 = time.monotonic()
while len(hits) < 5 and time.monotonic() - t0 < 10:
    time.sleep(0.01)
signal.setitimer(signal.ITIMER_REAL, 0)
real = len(hits) >= 5
prof = []
signal.signal(signal.SIGPROF, lambda s, f: prof.append(1))
signal.setitimer(signal.ITIMER_PROF, 0.02)
t0 = time.monotonic(); x = 0
while not prof and time.monotonic() - t0 < 10:
    x += 1
class Alarm(Exception): pass
def on_alarm(s, f): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(1)
t0 = time.monotonic()
try:
    time.sleep(20)
    interrupted = False
except Alarm:
    interrupted = True
print("itimer-real=%s itimer-prof=%s alarm-interrupted=%s after=%.0fs" % (real, bool(prof), interrupted, time.monotonic() - t0))
`, Want: "itimer-real=True itimer-prof=True alarm-interrupted=True after=1s"},

		{Name: "signal-handlers", Code: `
import os, signal, time
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append("usr1"))
os.kill(os.getpid(), signal.SIGUSR1)
signal.signal(signal.SIGUSR2, lambda s, f: got.append("usr2"))
signal.raise_signal(signal.SIGUSR2)
pid = os.fork()
if pid == 0:
    os.kill(os.getppid(), signal.SIGUSR1)
    os._exit(0)
os.waitpid(pid, 0)
t0 = time.monotonic()
while len(got) < 3 and time.monotonic() - t0 < 5:
    time.sleep(0.01)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
os.kill(os.getpid(), signal.SIGHUP)
pending = signal.SIGHUP in signal.sigpending()
waited = signal.sigwait({signal.SIGHUP})
print("handled=%s pending=%s sigwait=%s" % (got, pending, waited.name))
`, Want: "handled=['usr1', 'usr2', 'usr1'] pending=True sigwait=SIGHUP"},

		{Name: "select-selectors", Code: `
import os, select, selectors, socket
r, w = os.pipe()
empty = select.select([r], [], [], 0)[0] == []
os.write(w, b"x")
ready = select.select([r], [w], [], 1)
p = select.poll(); p.register(r, select.POLLIN)
polled = p.poll(1000) == [(r, select.POLLIN)]
ep = select.epoll(); ep.register(r, select.EPOLLIN)
epolled = ep.poll(1) == [(r, select.EPOLLIN)]; ep.close()
sel = selectors.DefaultSelector()
a, b = socket.socketpair()
sel.register(a, selectors.EVENT_READ, data="sock-a")
timeout_empty = sel.select(0.01) == []
b.send(b"hi")
events = sel.select(1)
print("empty=%s select=%s poll=%s epoll=%s selector=%s timeout-empty=%s event=%s" % (
    empty, ready == ([r], [w], []), polled, epolled, type(sel).__name__, timeout_empty, events[0][0].data))
`, Want: "empty=True select=True poll=True epoll=True selector=EpollSelector timeout-empty=True event=sock-a"},

		{Name: "unix-sockets-fd-passing", Code: `
import socket, threading, os
path = "/tmp/echo.sock"
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(path); srv.listen()
def serve():
    for _ in range(3):
        c, _ = srv.accept()
        with c: c.sendall(c.recv(100)[::-1])
t = threading.Thread(target=serve); t.start()
out = []
for word in ["abc", "hello", "xyz"]:
    c = socket.socket(socket.AF_UNIX); c.connect(path); c.sendall(word.encode())
    out.append(c.recv(100).decode()); c.close()
t.join()
a, b = socket.socketpair()
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [r])
msg, fds, _, _ = socket.recv_fds(b, 10, 1)
os.write(w, b"through a passed fd")
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d1.send(b"datagram")
ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); ab.bind("\0pybox-compat-abstract"); ab.listen()
cl = socket.socket(socket.AF_UNIX); cl.connect("\0pybox-compat-abstract")
print("echo=%s passed=%r dgram=%r abstract=%s" % (out, os.read(fds[0], 100), d2.recv(100), cl.getpeername() != ""))
`, Want: "echo=['cba', 'olleh', 'zyx'] passed=b'through a passed fd' dgram=b'datagram' abstract=True"},
	}
}

func compatProcessCases() []Case {
	return []Case{
		{Name: "multiprocessing-pool", Code: `
import multiprocessing as mp, os, time
def f(x):
    time.sleep(0.005)
    return x * x, os.getpid()
if __name__ == "__main__":
    with mp.Pool(4) as p:
        r = p.map(f, range(100), chunksize=1)
        a = p.apply_async(pow, (3, 4)).get(timeout=10)
        st = list(p.starmap(max, [(1, 5), (7, 2)]))
    pids = {b for _, b in r}
    print("start=%s sum=%d workers>1=%s parent-excluded=%s apply=%d starmap=%s" % (
        mp.get_start_method(), sum(a for a, _ in r), len(pids) > 1, os.getpid() not in pids, a, st))
`, Want: "start=fork sum=328350 workers>1=True parent-excluded=True apply=81 starmap=[5, 7]"},

		{Name: "multiprocessing-spawn", Why: "spawn re-executes sys.executable and re-imports the main script by path", Code: `
import multiprocessing as mp, os
def f(x):
    return x + 1000, __name__
if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as p:
        r = p.map(f, range(10))
    print("spawn sum=%d child-module=%s" % (sum(a for a, _ in r), r[0][1]))
`, Want: "spawn sum=10045 child-module=__mp_main__"},

		{Name: "multiprocessing-forkserver", Code: `
import multiprocessing as mp
def f(x):
    return x * 2
if __name__ == "__main__":
    ctx = mp.get_context("forkserver")
    with ctx.Pool(2) as p:
        print("forkserver sum=%d" % sum(p.map(f, range(10))))
`, Want: "forkserver sum=90"},

		{Name: "process-pool-executor", Code: `
from concurrent.futures import ProcessPoolExecutor
import os, math
def work(n):
    return sum(math.isqrt(i) for i in range(n)), os.getpid()
if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=3) as ex:
        res = list(ex.map(work, [10000, 20000, 30000, 40000]))
    print("results=%s parent-excluded=%s" % ([r for r, _ in res], os.getpid() not in {p for _, p in res}))
`, Want: "results=[661650, 1875629, 3449101, 5313300] parent-excluded=True"},

		{Name: "multiprocessing-queue-lock-value", Code: `
import multiprocessing as mp
def worker(q, lock, counter, arr, i):
    for _ in range(200):
        with lock:
            counter.value += 1
    arr[i] = i * 10
    q.put(("done", i))
if __name__ == "__main__":
    q = mp.Queue(); lock = mp.Lock()
    counter = mp.Value("i", 0, lock=False); arr = mp.Array("i", 4)
    ps = [mp.Process(target=worker, args=(q, lock, counter, arr, i)) for i in range(4)]
    for p in ps: p.start()
    got = sorted(q.get(timeout=20)[1] for _ in ps)
    for p in ps: p.join()
    a, b = mp.Pipe()
    child = mp.Process(target=lambda c: c.send(sum(range(10))), args=(b,))
    child.start(); piped = a.recv(); child.join()
    sem = mp.Semaphore(2); sem.acquire(); sem.acquire(); blocked = not sem.acquire(timeout=0.05)
    print("counter=%d queue=%s array=%s exitcodes=%s pipe=%d sem-blocked=%s" % (
        counter.value, got, list(arr), [p.exitcode for p in ps], piped, blocked))
`, Want: "counter=800 queue=[0, 1, 2, 3] array=[0, 10, 20, 30] exitcodes=[0, 0, 0, 0] pipe=45 sem-blocked=True"},

		{Name: "shared-memory", Code: `
from multiprocessing import shared_memory, Process, Manager
import os
def child(name):
    s = shared_memory.SharedMemory(name=name)
    s.buf[:5] = b"HELLO"
    s.close()
def fill(d, l):
    d["k"] = "v"; l.append(42)
if __name__ == "__main__":
    shm = shared_memory.SharedMemory(create=True, size=1 << 20)
    in_dev_shm = os.path.exists("/dev/shm/" + shm.name.lstrip("/"))
    p = Process(target=child, args=(shm.name,)); p.start(); p.join()
    data = bytes(shm.buf[:5])
    shm.close(); shm.unlink()
    sl = shared_memory.ShareableList([1, "two", 3.0])
    sl[0] = 100; vals = list(sl); sl.shm.close(); sl.shm.unlink()
    with Manager() as m:
        d, l = m.dict(), m.list()
        q = Process(target=fill, args=(d, l)); q.start(); q.join()
        managed = (dict(d), list(l))
    print("shm=%r in-dev-shm=%s exit=%d shareable=%s manager=%s" % (data, in_dev_shm, p.exitcode, vals, managed))
`, Want: "shm=b'HELLO' in-dev-shm=True exit=0 shareable=[100, 'two', 3.0] manager=({'k': 'v'}, [42])"},

		{Name: "subprocess-run", Code: `
import subprocess, sys, os
r = subprocess.run([sys.executable, "-c",
    "import sys, os; print('child-distinct', os.getpid() != int(sys.argv[1])); print('oops', file=sys.stderr); sys.exit(5)", str(os.getpid())],
    capture_output=True, text=True)
r2 = subprocess.run([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"], input="abc", capture_output=True, text=True, check=True)
try:
    subprocess.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    to = "no"
except subprocess.TimeoutExpired:
    to = "expired"
env_out = subprocess.check_output([sys.executable, "-c", "import os; print(os.getcwd(), os.environ.get('FOO'))"],
    cwd="/dev/shm", env={"FOO": "bar"}, text=True).strip()
p1 = subprocess.Popen([sys.executable, "-c", "print('\\n'.join(map(str, range(1000))))"], stdout=subprocess.PIPE)
p2 = subprocess.Popen([sys.executable, "-c", "import sys; print(sum(int(l) for l in sys.stdin))"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
piped = p2.communicate()[0].decode().strip(); p1.wait()
try:
    subprocess.run(["/nonexistent/binary"])
except FileNotFoundError:
    missing = "FileNotFoundError"
print("rc=%d out=%s err=%s reversed=%s timeout=%s env=%s pipeline=%s missing=%s" % (
    r.returncode, r.stdout.strip(), r.stderr.strip(), r2.stdout.strip(), to, env_out, piped, missing))
`, Want: "rc=5 out=child-distinct True err=oops reversed=cba timeout=expired env=/dev/shm bar pipeline=499500 missing=FileNotFoundError"},

		{Name: "subprocess-python3-on-path", Why: "many programs start `python3` by name rather than sys.executable", Code: `
import subprocess, shutil
out = subprocess.run(["python3", "-c", "print(6 * 7)"], capture_output=True, text=True)
print("found=%s answer=%s" % (shutil.which("python3") is not None, out.stdout.strip()))
`, Want: "found=True answer=42"},

		{Name: "posix-spawn-fork-waitpid", Code: `
import os, sys
r, w = os.pipe()
pids = []
for i in range(5):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"%d;" % (i * i))
        os._exit(10 + i)
    pids.append(pid)
os.close(w)
codes = sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids)
data = b""
while chunk := os.read(r, 100):
    data += chunk
pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "raise SystemExit(9)"], {})
spawned = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
pid = os.fork()
if pid == 0:
    os._exit(3)
_, st, ru = os.wait4(pid, 0)
try:
    os.waitpid(-1, os.WNOHANG)
    no_children = False
except ChildProcessError:
    no_children = True
print("codes=%s sum=%d posix_spawn=%d wait4=%d no-children=%s" % (
    codes, sum(int(x) for x in data.decode().split(";") if x), spawned, os.waitstatus_to_exitcode(st), no_children))
`, Want: "codes=[10, 11, 12, 13, 14] sum=30 posix_spawn=9 wait4=3 no-children=True"},
	}
}

func compatFileCases() []Case {
	return []Case{
		{Name: "tempfile", Code: `
import tempfile, os
gt = tempfile.gettempdir()
with tempfile.NamedTemporaryFile("w+", suffix=".txt") as f:
    f.write("data"); f.flush(); f.seek(0); content = f.read(); name = f.name
    existed = os.path.exists(name)
with tempfile.TemporaryDirectory() as d:
    for i in range(50):
        with open(os.path.join(d, "f%d" % i), "w") as g: g.write(str(i))
    n = len(os.listdir(d)); dd = d
fd, p = tempfile.mkstemp(); os.write(fd, b"x" * 10); os.close(fd); size = os.path.getsize(p); os.unlink(p)
sp = tempfile.SpooledTemporaryFile(max_size=10); sp.write(b"x" * 100); rolled = sp._rolled; sp.close()
with tempfile.TemporaryFile() as tf:
    tf.write(b"anon"); tf.seek(0); anon = tf.read()
print("dir=%s named=%s,%s,%s tmpdir=%d,%s mkstemp=%d spooled=%s anon=%r" % (
    gt, content, existed, os.path.exists(name), n, os.path.exists(dd), size, rolled, anon))
`, Want: "dir=/tmp named=data,True,False tmpdir=50,False mkstemp=10 spooled=True anon=b'anon'"},

		{Name: "sqlite3-file-and-memory", Code: `
import sqlite3, os, threading
db = sqlite3.connect("/tmp/t.db")
mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, v REAL)")
db.executemany("INSERT INTO t (grp, v) VALUES (?, ?)", [("g%d" % (i % 3), i * 0.5) for i in range(10000)])
db.commit()
agg = db.execute("SELECT grp, COUNT(*), SUM(v) FROM t GROUP BY grp ORDER BY grp").fetchall()
db.execute("CREATE INDEX ix ON t (grp)"); db.commit()
other = []
def reader():
    c = sqlite3.connect("/tmp/t.db"); other.append(c.execute("SELECT COUNT(*) FROM t").fetchone()[0]); c.close()
th = threading.Thread(target=reader); th.start(); th.join()
mem = sqlite3.connect(":memory:")
db.backup(mem)
db.close()
win = mem.execute("SELECT id, SUM(v) OVER (ORDER BY id ROWS 1 PRECEDING) FROM t WHERE id <= 3").fetchall()
mem.execute("CREATE TABLE kv (k TEXT UNIQUE, v BLOB)")
try:
    mem.execute("INSERT INTO kv VALUES ('a', x'00'), ('a', x'01')")
    dup = "no"
except sqlite3.IntegrityError:
    dup = "IntegrityError"
print("journal=%s agg=%s reader=%s window=%s unique=%s size>0=%s" % (
    mode, agg, other, win, dup, os.path.getsize("/tmp/t.db") > 0))
`, Want: "journal=wal agg=[('g0', 3334, 8334166.5), ('g1', 3333, 8330833.5), ('g2', 3333, 8332500.0)] reader=[10000] window=[(1, 0.0), (2, 0.5), (3, 1.5)] unique=IntegrityError size>0=True"},

		{Name: "files-mmap-flock", Code: `
import mmap, os, fcntl
with open("/tmp/m.bin", "wb") as f:
    f.write(b"\0" * 65536)
with open("/tmp/m.bin", "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[100:105] = b"hello"; m.flush()
    found = m.find(b"hello"); m.close()
on_disk = open("/tmp/m.bin", "rb").read()[100:105]
shared = mmap.mmap(-1, 4096, flags=mmap.MAP_SHARED)
pid = os.fork()
if pid == 0:
    shared[0:5] = b"child"; os._exit(0)
os.waitpid(pid, 0)
anon = mmap.mmap(-1, 8 << 20); anon[-1:] = b"z"; anon.madvise(mmap.MADV_DONTNEED)
lf = open("/tmp/lock", "w")
fcntl.flock(lf, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    g = open("/tmp/lock", "w")
    try:
        fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB); os._exit(1)
    except BlockingIOError:
        os._exit(42)
_, st = os.waitpid(pid, 0)
fcntl.lockf(lf, fcntl.LOCK_EX)
print("find=%d disk=%r shared=%r flock-conflict=%s" % (found, on_disk, shared[0:5], os.waitstatus_to_exitcode(st) == 42))
`, Want: "find=100 disk=b'hello' shared=b'child' flock-conflict=True"},

		{Name: "scratch-big-files", Why: "20 MiB in /tmp and 4 MiB in /dev/shm stay under the 64 MiB tmpfs", Code: `
import os, hashlib, shutil
h = hashlib.sha256()
block = os.urandom(1 << 20)
with open("/tmp/big.bin", "wb") as f:
    for i in range(20):
        f.write(block); h.update(block)
    f.flush(); os.fsync(f.fileno())
h2 = hashlib.sha256()
with open("/tmp/big.bin", "rb") as f:
    while b := f.read(1 << 16): h2.update(b)
with open("/dev/shm/x", "wb") as f: f.write(b"s" * (4 << 20))
os.truncate("/tmp/big.bin", 1000)
du = shutil.disk_usage("/tmp")
print("size=%d match=%s shm=%d truncated=%d tmp-total=%dMiB" % (20, h.digest() == h2.digest(), os.path.getsize("/dev/shm/x") >> 20,
      os.path.getsize("/tmp/big.bin"), du.total >> 20))
`, Want: "size=20 match=True shm=4 truncated=1000 tmp-total=64MiB"},

		{Name: "filesystem-ops", Code: `
import os, pathlib, shutil, glob, stat
base = pathlib.Path("/tmp/tree")
for d in ["a/b/c", "a/d", "e"]:
    (base / d).mkdir(parents=True, exist_ok=True)
for i, f in enumerate(["a/x.py", "a/b/y.py", "a/b/c/z.txt", "e/w.py"]):
    (base / f).write_text("print(%d)\n" % i)
walked = sorted(os.path.relpath(os.path.join(r, f), base) for r, _, fs in os.walk(base) for f in fs)
pys = sorted(str(p.relative_to(base)) for p in base.rglob("*.py"))
g = sorted(glob.glob("/tmp/tree/**/*.txt", recursive=True))
shutil.copytree(base / "a", "/tmp/copy")
os.rename("/tmp/copy/x.py", "/tmp/copy/renamed.py")
os.symlink("/tmp/copy/renamed.py", "/tmp/link.py"); os.link("/tmp/copy/renamed.py", "/tmp/hard.py")
os.chmod("/tmp/hard.py", 0o600)
st = os.stat("/tmp/hard.py")
os.utime("/tmp/hard.py", (1000000000, 1000000000))
shutil.rmtree("/tmp/tree")
print("walk=%d pys=%s txt=%s link=%s nlink=%d mode=%o mtime=%d removed=%s cwd=%s home=%s" % (
    len(walked), pys, [os.path.basename(x) for x in g], os.readlink("/tmp/link.py"), st.st_nlink,
    stat.S_IMODE(st.st_mode), os.stat("/tmp/hard.py").st_mtime, not base.exists(), os.getcwd(), pathlib.Path.home()))
`, Want: "walk=4 pys=['a/b/y.py', 'a/x.py', 'e/w.py'] txt=['z.txt'] link=/tmp/copy/renamed.py nlink=2 mode=600 mtime=1000000000 removed=True cwd=/tmp home=/tmp"},

		{Name: "import-module-from-scratch", Code: `
import sys, importlib, zipfile
with open("/tmp/mymod.py", "w") as f:
    f.write("VALUE = 6 * 7\ndef hello(n):\n    return 'hi ' + n\n")
sys.path.insert(0, "/tmp")
import mymod
with open("/tmp/mymod.py", "w") as f:
    f.write("VALUE = 99\ndef hello(n):\n    return 'bye ' + n\n")
importlib.reload(mymod)
with zipfile.ZipFile("/tmp/lib.zip", "w") as z:
    z.writestr("zipped/__init__.py", "X = 'from zip'\n")
sys.path.insert(0, "/tmp/lib.zip")
import zipped
print("value=%d hello=%s zip=%s" % (mymod.VALUE, mymod.hello("x"), zipped.X))
`, Want: "value=99 hello=bye x zip=from zip"},

		{Name: "placed-files", Why: "Case.Files binds host files read-only; the check compares the digest with the host's copy",
			Files: []sandbox.File{
				{HostPath: "/etc/os-release", SandboxPath: "/data/os-release"},
				{HostPath: "/etc/os-release", SandboxPath: "/srv/input/copy.txt"},
			},
			Code: `
import hashlib, os
data = open("/data/os-release", "rb").read()
same = open("/srv/input/copy.txt", "rb").read() == data
try:
    open("/data/os-release", "a").write("x")
    ro = "writable"
except OSError as e:
    ro = "read-only"
print("os-release sha256=%s same=%s %s has-ID=%s" % (hashlib.sha256(data).hexdigest(), same, ro, b"\nID=" in b"\n" + data))
`, Want: "same=True read-only has-ID=True",
			Check: func(t *testing.T, r *sandbox.Result) {
				data, err := os.ReadFile("/etc/os-release")
				if err != nil {
					t.Fatalf("reading the host's copy: %v", err)
				}
				sum := sha256.Sum256(data)
				if want := "sha256=" + hex.EncodeToString(sum[:]); !strings.Contains(r.Stdout, want) {
					t.Errorf("placed file differs from the host's: want %s in %q", want, r.Stdout)
				}
			}},
	}
}

func compatDataCases() []Case {
	return []Case{
		{Name: "decimal-fractions", Code: `
from decimal import Decimal, getcontext, localcontext, ROUND_HALF_EVEN
from fractions import Fraction
getcontext().prec = 50
with localcontext() as ctx:
    ctx.prec = 10
    seventh = Decimal(1) / Decimal(7)
print("sqrt2=%s sum=%s seventh=%s round=%s harmonic=%s limit=%s" % (
    Decimal(2).sqrt(), Decimal("0.1") + Decimal("0.2"), seventh,
    Decimal("2.675").quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN),
    sum(Fraction(1, n) for n in range(1, 11)), Fraction(3.14159).limit_denominator(1000)))
`, Want: "sqrt2=1.4142135623730950488016887242096980785696718753769 sum=0.3 seventh=0.1428571429 round=2.68 harmonic=7381/2520 limit=355/113"},

		{Name: "hashlib-hmac-secrets", Code: `
import hashlib, hmac, secrets
print("sha256=" + hashlib.sha256(b"abc").hexdigest())
print("md5=" + hashlib.md5(b"abc").hexdigest())
print("sha3=" + hashlib.sha3_256(b"abc").hexdigest())
print("blake2b=" + hashlib.blake2b(b"abc", digest_size=16).hexdigest())
print("pbkdf2=" + hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1, 32).hex())
print("scrypt=" + hashlib.scrypt(b"password", salt=b"NaCl", n=1024, r=8, p=16, dklen=64).hex()[:32])
mac = hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", "sha256").hexdigest()
print("hmac=" + mac, hmac.compare_digest(mac, mac))
toks = {secrets.token_hex(16) for _ in range(1000)}
print("tokens=%d len=%d below=%s" % (len(toks), len(next(iter(toks))), all(secrets.randbelow(10) < 10 for _ in range(100))))
`, Want: "sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n" +
			"md5=900150983cd24fb0d6963f7d28e17f72\n" +
			"sha3=3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532\n" +
			"blake2b=cf4ab791c62b8d2b2109c90275287816\n" +
			"pbkdf2=120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b\n" +
			"scrypt=fdbabe1c9d3472007856e7190d01e9fe\n" +
			"hmac=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8 True\n" +
			"tokens=1000 len=32 below=True"},

		{Name: "compression", Code: `
import zlib, gzip, bz2, lzma, io, zipfile, tarfile, os
data = (b"pybox compat " * 5000) + bytes(range(256))
rt = {}
for name, c, d in [("zlib", zlib.compress, zlib.decompress), ("gzip", gzip.compress, gzip.decompress),
                   ("bz2", bz2.compress, bz2.decompress), ("lzma", lzma.compress, lzma.decompress)]:
    z = c(data)
    rt[name] = d(z) == data and len(z) < len(data) // 10
with gzip.open("/tmp/d.gz", "wb") as f: f.write(data)
with gzip.open("/tmp/d.gz", "rb") as f: rt["gzip-file"] = f.read() == data
with zipfile.ZipFile("/tmp/a.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a.txt", data); z.writestr("b/c.txt", b"c")
with zipfile.ZipFile("/tmp/a.zip") as z:
    rt["zip"] = z.read("a.txt") == data and z.namelist() == ["a.txt", "b/c.txt"]
with tarfile.open("/tmp/a.tar.xz", "w:xz") as t:
    t.add("/tmp/d.gz", arcname="d.gz")
with tarfile.open("/tmp/a.tar.xz") as t:
    t.extractall("/tmp/x", filter="data") if hasattr(tarfile, "data_filter") else t.extractall("/tmp/x")
rt["tar"] = open("/tmp/x/d.gz", "rb").read() == open("/tmp/d.gz", "rb").read()
print("crc32=%08x adler=%08x" % (zlib.crc32(b"hello"), zlib.adler32(b"hello")), sorted(k for k, v in rt.items() if v))
`, Want: "crc32=3610a686 adler=062c0215 ['bz2', 'gzip', 'gzip-file', 'lzma', 'tar', 'zip', 'zlib']"},

		{Name: "json-re-csv-pickle", Code: `
import json, re, csv, pickle, io, dataclasses
obj = {"a": [1, 2.5, None, True], "b": {"c": "\u00e9\u6f22"}, "n": 10**20}
s = json.dumps(obj, sort_keys=True, ensure_ascii=False)
back = json.loads(s)
emails = re.findall(r"(\w+)@(\w+)\.com", "x alice@example.com, bob@test.com; nope@x.org")
sub = re.sub(r"(?P<w>\b\w)", lambda m: m.group("w").upper(), "hello big world")
with open("/tmp/x.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["name", "note"]); w.writerow(["a", 'has "quotes", commas']); w.writerow(["b", "multi\nline"])
with open("/tmp/x.csv", newline="") as f:
    rows = list(csv.DictReader(f))
@dataclasses.dataclass
class Point:
    x: int
    y: list
p = Point(3, [1, {"k": b"bytes"}])
p2 = pickle.loads(pickle.dumps(p, protocol=5))
print("json=%s %s re=%s sub=%s csv=%d %r pickle=%s" % (back == obj, s[:20], emails, sub, len(rows), rows[0]["note"], p2 == p))
`, Want: `json=True {"a": [1, 2.5, null, re=[('alice', 'example'), ('bob', 'test')] sub=Hello Big World csv=2 'has "quotes", commas' pickle=True`},

		{Name: "zoneinfo", Code: `
from datetime import datetime, timezone, timedelta, date
from zoneinfo import ZoneInfo, available_timezones
import time
paris, ny = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
utc = datetime(2024, 7, 1, 12, 0, tzinfo=timezone.utc)
winter = datetime(2024, 1, 15, 12, 0, tzinfo=timezone.utc).astimezone(paris)
before = datetime(2024, 3, 31, 0, 59, tzinfo=timezone.utc).astimezone(paris)
after = datetime(2024, 3, 31, 1, 0, tzinfo=timezone.utc).astimezone(paris)
ny_fall = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ny)
print("paris=%s ny=%s winter=%s dst=%s/%s fold=%s tz=%s leap=%d known=%s" % (
    utc.astimezone(paris).isoformat(), utc.astimezone(ny).isoformat(), winter.utcoffset(),
    before.strftime("%H:%M %Z"), after.strftime("%H:%M %Z"), ny_fall.tzname(), time.strftime("%Z"),
    (date(2024, 3, 1) - date(2024, 2, 1)).days, "Asia/Tokyo" in available_timezones()))
`, Want: "paris=2024-07-01T14:00:00+02:00 ny=2024-07-01T08:00:00-04:00 winter=1:00:00 dst=01:59 CET/03:00 CEST fold=EST tz=UTC leap=29 known=True"},

		{Name: "struct-array-binary", Code: `
import struct, array, base64, binascii, io
b = struct.pack("<IhQd?3s", 0xDEADBEEF, -2, 2**40 + 5, 1.5, True, b"abc")
u = struct.unpack("<IhQd?3s", b)
a = array.array("d", [1.5, 2.5, 3.0]); a2 = array.array("d"); a2.frombytes(a.tobytes())
print("packed=%s size=%d unpacked=%s array=%s b64=%s crc=%d" % (b.hex(), struct.calcsize("<IhQd?3s"), u[1:4], a2 == a,
      base64.b64encode(b"pybox").decode(), binascii.crc_hqx(b"abc", 0)))
`, Want: "packed=efbeaddefeff0500000000010000000000000000f83f01616263 size=26 unpacked=(-2, 1099511627781, 1.5) array=True b64=cHlib3g= crc=40406"},

		{Name: "unicodedata-text", Code: `
import unicodedata, textwrap, html, codecs
print("name=%s nfd=%s cat=%s lookup=%s nfkc=%s upper=%s casefold=%s width=%s" % (
    unicodedata.name("\u00e9"), ascii(unicodedata.normalize("NFD", "\u00e9")), unicodedata.category("A"),
    unicodedata.lookup("SNOWMAN") == "\u2603", unicodedata.normalize("NFKC", "\ufb01"), "stra\u00dfe".upper(),
    "\u00df".casefold(), unicodedata.east_asian_width("\u6f22")))
print("utf16=%s wrap=%d escape=%s idna=%s" % ("\u00e9".encode("utf-16-le").hex(), len(textwrap.wrap("word " * 50, 30)),
      html.escape("<a&b>"), codecs.encode("b\u00fccher.example", "idna").decode()))
`, Want: "name=LATIN SMALL LETTER E WITH ACUTE nfd='e\\u0301' cat=Lu lookup=True nfkc=fi upper=STRASSE casefold=ss width=W\nutf16=e900 wrap=9 escape=&lt;a&amp;b&gt; idna=xn--bcher-kva.example"},

		{Name: "uuid", Code: `
import uuid
u4 = {uuid.uuid4() for _ in range(1000)}
u1 = uuid.uuid1()
print("v4=%d version=%d v1=%d v5=%s v3=%s" % (len(u4), next(iter(u4)).version, u1.version,
      uuid.uuid5(uuid.NAMESPACE_DNS, "python.org"), uuid.uuid3(uuid.NAMESPACE_DNS, "python.org")))
`, Want: "v4=1000 version=4 v1=1 v5=886313e1-3b8a-5372-9b90-0c9aee199e5d v3=6fa459ea-ee8a-3ca4-894e-db77e160355e"},

		{Name: "random", Code: `
import random, os, statistics
r = random.Random(2024)
seq = [r.randint(0, 999) for _ in range(5)]
l = list(range(10)); random.Random(7).shuffle(l)
sr = random.SystemRandom()
draws = [sr.random() for _ in range(10000)]
print("seeded=%s first=%s shuffled=%s sysrandom-mean-ok=%s urandom=%d" % (seq, random.Random(42).random(), l,
      abs(statistics.fmean(draws) - 0.5) < 0.05, len(set(os.urandom(16) for _ in range(100)))))
`, Want: "seeded=[481, 186, 745, 592, 311] first=0.6394267984578837 shuffled=[8, 3, 1, 4, 7, 0, 9, 6, 2, 5] sysrandom-mean-ok=True urandom=100"},

		{Name: "text-formats", Code: `
import xml.etree.ElementTree as ET, html.parser, email.message, email.parser, email.policy, configparser, tomllib, io, plistlib, ipaddress
root = ET.fromstring("<r><i n='1'>a</i><i n='2'>b</i></r>")
items = [(e.get("n"), e.text) for e in root.iter("i")]
class P(html.parser.HTMLParser):
    links = []
    def handle_starttag(self, tag, attrs):
        if tag == "a": self.links.append(dict(attrs)["href"])
P().feed("<p><a href='/x'>x</a><a href='/y'>y</a></p>")
m = email.message.EmailMessage(); m["Subject"] = "hi"; m.set_content("body"); m.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream", filename="a.bin")
m2 = email.parser.BytesParser(policy=email.policy.default).parsebytes(m.as_bytes())
cp = configparser.ConfigParser(); cp.read_string("[s]\nk = v\n")
t = tomllib.loads('a = 1\n[b]\nc = "d"\n')
pl = plistlib.loads(plistlib.dumps({"k": [1, 2]}))
net = ipaddress.ip_network("10.0.0.0/30")
print("xml=%s html=%s email=%s,%d ini=%s toml=%s plist=%s net=%s" % (items, P.links, m2["Subject"], len(list(m2.iter_attachments())),
      cp["s"]["k"], t, pl, [str(h) for h in net.hosts()]))
`, Want: "xml=[('1', 'a'), ('2', 'b')] html=['/x', '/y'] email=hi,1 ini=v toml={'a': 1, 'b': {'c': 'd'}} plist={'k': [1, 2]} net=['10.0.0.1', '10.0.0.2']"},

		{Name: "logging-to-file", Code: `
import logging, logging.handlers
log = logging.getLogger("app")
h = logging.handlers.RotatingFileHandler("/tmp/app.log", maxBytes=500, backupCount=2)
h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
log.addHandler(h); log.setLevel(logging.INFO)
for i in range(100):
    log.info("line %03d", i)
log.debug("hidden")
h.close()
import os
print("files=%s last=%s" % (sorted(f for f in os.listdir("/tmp") if f.startswith("app.log")),
      open("/tmp/app.log").read().strip().splitlines()[-1]))
`, Want: "files=['app.log', 'app.log.1', 'app.log.2'] last=INFO line 099"},
	}
}

func compatSystemCases() []Case {
	return []Case{
		{Name: "locale", Code: `
import locale, time
print("setlocale=%s enc=%s fmt=%s point=%s collate=%s fsenc=%s" % (
    locale.setlocale(locale.LC_ALL, ""), locale.getpreferredencoding(False),
    locale.format_string("%.2f", 1234.5, grouping=True), locale.localeconv()["decimal_point"],
    locale.strxfrm("b") > locale.strxfrm("a"), __import__("sys").getfilesystemencoding()))
print(time.strftime("%A %d %B %Y", time.gmtime(0)))
`, Want: "setlocale=C.UTF-8 enc=UTF-8 fmt=1234.50 point=. collate=True fsenc=utf-8\nThursday 01 January 1970"},

		{Name: "ctypes-callback", Why: "a Python callback needs an executable trampoline from libffi", Code: `
import ctypes
libc = ctypes.CDLL(None)
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
arr = (ctypes.c_int * 8)(5, 3, 8, 1, 9, 2, 7, 4)
libc.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), CMP(lambda a, b: a[0] - b[0]))
buf = ctypes.create_string_buffer(32)
libc.snprintf(buf, 32, b"%d-%s", 42, b"ok")
class S(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_double)]
print("strlen=%d qsort=%s snprintf=%s struct=%d getpid-match=%s" % (libc.strlen(b"hello"), list(arr), buf.value.decode(),
      ctypes.sizeof(S), libc.getpid() == __import__("os").getpid()))
`, Want: "strlen=5 qsort=[1, 2, 3, 4, 5, 7, 8, 9] snprintf=42-ok struct=16 getpid-match=True"},

		{Name: "system-info", Code: `
import os, sys, platform, resource, socket, pwd, grp, getpass, shutil, time
info = {
    "uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name,
    "getuser": getpass.getuser(), "host": socket.gethostname(), "cpus": os.cpu_count() >= 1,
    "affinity": len(os.sched_getaffinity(0)) >= 1, "loadavg": len(os.getloadavg()), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "system": platform.system(), "machine": platform.machine() != "", "localhost": socket.gethostbyname("localhost"),
    "ru": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0, "clock": time.clock_gettime(time.CLOCK_MONOTONIC) > 0,
    "pt": time.process_time() >= 0, "tt": time.thread_time() >= 0, "stdin": sys.stdin.read(), "uname": os.uname().nodename,
}
print(" ".join("%s=%s" % kv for kv in info.items()))
`, Want: "uid=1000 user=sandbox group=sandbox getuser=sandbox host=pybox cpus=True affinity=True loadavg=3 nofile=1024 system=Linux machine=True localhost=127.0.0.1 ru=True clock=True pt=True tt=True stdin= uname=pybox"},

		{Name: "os-descriptors", Why: "memfd_create is denied by design (see the seccomp profile); O_TMPFILE serves the same purpose", Code: `
import os, socket
efd = os.eventfd(0); os.eventfd_write(efd, 5); os.eventfd_write(efd, 2)
pfd = os.pidfd_open(os.getpid())
mfd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600); os.write(mfd, b"tmpfile data"); os.lseek(mfd, 0, 0)
r, w = os.pipe2(os.O_CLOEXEC)
saved = os.dup(1); os.dup2(w, 1); os.write(1, b"redirected"); os.dup2(saved, 1); os.close(w)
with open("/tmp/src", "wb") as f: f.write(b"0123456789" * 1000)
src = os.open("/tmp/src", os.O_RDONLY); dst = os.open("/tmp/dst", os.O_WRONLY | os.O_CREAT, 0o644)
copied = os.copy_file_range(src, dst, 10000); sent = os.sendfile(dst, src, 0, 100)
print("eventfd=%d pidfd=%s tmpfile=%r pipe=%r copy_file_range=%d sendfile=%d inheritable=%s" % (os.eventfd_read(efd), pfd > 2,
      os.read(mfd, 100), os.read(r, 100), copied, sent, os.get_inheritable(r)))
`, Want: "eventfd=7 pidfd=True tmpfile=b'tmpfile data' pipe=b'redirected' copy_file_range=10000 sendfile=100 inheritable=False"},

		{Name: "dev-stdout-stderr", Why: "writing to /dev/stdout or /dev/stderr by path is a common idiom (logging.FileHandler, csv to stdout)", Code: `
import sys, logging
with open("/dev/stdout", "w") as f:
    f.write("via /dev/stdout\n")
logging.basicConfig(handlers=[logging.FileHandler("/dev/stderr")], level=logging.INFO, format="%(message)s")
logging.info("via /dev/stderr")
print("stdin=%r" % open("/dev/stdin").read())
`, Want: "via /dev/stdout\nstdin=''", Check: func(t *testing.T, r *sandbox.Result) {
			if !strings.Contains(r.Stderr, "via /dev/stderr") {
				t.Errorf("stderr lacks the line logged to /dev/stderr: %q", r.Stderr)
			}
		}},

		{Name: "subprocess-sessions-venv", Code: `
import subprocess, sys
sess = subprocess.run([sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid())"], start_new_session=True,
                      capture_output=True, text=True).stdout.strip()
pg = subprocess.run([sys.executable, "-c", "import os; print(os.getpgid(0) == os.getpid())"], process_group=0,
                    capture_output=True, text=True).stdout.strip()
v = subprocess.run([sys.executable, "-m", "venv", "--without-pip", "/tmp/venv"], capture_output=True, text=True)
inner = subprocess.run(["/tmp/venv/bin/python", "-c", "import sys; print(sys.prefix, sys.prefix != sys.base_prefix)"],
                       capture_output=True, text=True)
print("new-session=%s new-group=%s venv-rc=%d venv=%s" % (sess, pg, v.returncode, inner.stdout.strip() or inner.stderr))
`, Want: "new-session=True new-group=True venv-rc=0 venv=/tmp/venv True"},

		{Name: "tzset", Code: `
import os, time
os.environ["TZ"] = "America/New_York"; time.tzset()
ny = time.strftime("%H:%M %Z", time.localtime(1719835200))
os.environ["TZ"] = "Europe/Paris"; time.tzset()
paris = time.strftime("%H:%M %Z", time.localtime(1719835200))
print("ny=%s paris=%s" % (ny, paris))
`, Want: "ny=08:00 EDT paris=14:00 CEST"},

		{Name: "memory-allocation", Why: "160 MiB touched stays under the 256 MiB default limit", Code: `
chunks = []
for i in range(10):
    b = bytearray(16 << 20)
    b[::4096] = b"\x01" * len(b[::4096])
    chunks.append(b)
total = sum(len(c) for c in chunks)
print("allocated=%dMiB touched=%d" % (total >> 20, sum(c.count(1) for c in chunks)))
`, Want: "allocated=160MiB touched=40960"},

		{Name: "cpu-bound-and-recursion", Code: `
import sys, math, functools
sys.setrecursionlimit(5000)
def depth(n): return 0 if n == 0 else 1 + depth(n - 1)
@functools.lru_cache(None)
def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
primes = sum(1 for n in range(2, 50000) if all(n % p for p in range(2, math.isqrt(n) + 1)))
print("depth=%d fib=%d primes=%d bigint-digits=%d" % (depth(4000), fib(300) % 1000007, primes, len(str(math.factorial(1000)))))
`, Want: "depth=4000 fib=", Check: func(t *testing.T, r *sandbox.Result) {
			if !strings.Contains(r.Stdout, "primes=5133 bigint-digits=2568") {
				t.Errorf("wrong computation: %q", r.Stdout)
			}
		}},
	}
}

func compatOutputCases() []Case {
	const lines, width = 3000, 100
	return []Case{
		{Name: "large-output", Why: "300 kB of stdout and 200 kB of stderr, under the 1 MiB cap: nothing may be cut", Code: fmt.Sprintf(`
import sys
line = "x" * %d + "\n"
for i in range(%d):
    sys.stdout.write(line)
    if i %% 3 == 0:
        sys.stderr.write("e" * 199 + "\n")
print("done")
`, width-1, lines), Want: "done",
			Check: func(t *testing.T, r *sandbox.Result) {
				wantOut := int64(lines*width + len("done\n"))
				wantErr := int64(lines / 3 * 200)
				if r.StdoutBytes != wantOut || int64(len(r.Stdout)) != wantOut || r.StdoutTruncated {
					t.Errorf("stdout: %d bytes counted, %d kept, truncated=%v; want %d, nothing cut", r.StdoutBytes, len(r.Stdout), r.StdoutTruncated, wantOut)
				}
				if r.StderrBytes != wantErr || int64(len(r.Stderr)) != wantErr || r.StderrTruncated {
					t.Errorf("stderr: %d bytes counted, %d kept, truncated=%v; want %d", r.StderrBytes, len(r.Stderr), r.StderrTruncated, wantErr)
				}
				if n := strings.Count(r.Stdout, strings.Repeat("x", width-1)+"\n"); n != lines {
					t.Errorf("stdout has %d full lines, want %d (reordered or corrupted output)", n, lines)
				}
			}},
		{Name: "binary-and-unicode-output", Code: `
import sys
sys.stdout.write("\u00e9\u6f22\U0001F600\n")
sys.stdout.buffer.write(bytes([0x41, 0x42, 0x0a]))
sys.stdout.flush()
print("end")
`, Want: "\u00e9\u6f22\U0001F600\nAB\nend"},
	}
}

func compatScientificCases(py string) []Case {
	return []Case{
		{Name: "numpy-linalg", Python: py, Code: `
import numpy as np
rng = np.random.default_rng(0)
A = rng.standard_normal((300, 300)); b = rng.standard_normal(300)
x = np.linalg.solve(A, b)
inv = np.linalg.inv(A)
S = A @ A.T
w, v = np.linalg.eigh(S)
U, s, Vt = np.linalg.svd(A)
q, r = np.linalg.qr(A)
L = np.linalg.cholesky(S + 300 * np.eye(300))
B = rng.standard_normal((1000, 1000)); C = B @ B.T
print("solve=%s inv=%s eigh=%s,%s svd=%s qr=%s chol=%s gemm-sym=%s det=%.6f fft=%s" % (
    np.allclose(A @ x, b), np.allclose(A @ inv, np.eye(300), atol=1e-8), np.allclose(S @ v, v * w), bool((w > 0).all()),
    np.allclose((U * s) @ Vt, A), np.allclose(q @ r, A), np.allclose(L @ L.T, S + 300 * np.eye(300)), np.allclose(C, C.T),
    np.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]])), np.allclose(np.fft.ifft(np.fft.fft(b)).real, b)))
`, Want: "solve=True inv=True eigh=True,True svd=True qr=True chol=True gemm-sym=True det=5.000000 fft=True"},

		{Name: "numpy-random", Python: py, Code: `
import numpy as np
rng = np.random.default_rng(12345)
x = rng.normal(5.0, 2.0, 1_000_000)
np.random.seed(0)
legacy = np.random.rand()
perm = np.sort(rng.permutation(10))
print("mean-ok=%s std-ok=%s seeded=%s legacy=%r perm=%s" % (abs(x.mean() - 5) < 0.01, abs(x.std() - 2) < 0.01,
      np.random.default_rng(42).integers(0, 100, 5).tolist(), float(legacy), perm.tolist()))
`, Want: "mean-ok=True std-ok=True seeded=[8, 77, 65, 43, 43] legacy=0.5488135039273248 perm=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"},

		{Name: "numpy-large-arrays", Python: py, Why: "two 50 MiB arrays and temporaries, under the 256 MiB limit", Code: `
import numpy as np
n = 50 * 1024 * 1024 // 8
a = np.ones(n); a *= 2
b = np.arange(n, dtype=np.float64)
dot = float(np.dot(a[:1000], b[:1000]))
s = a.sum()
b += a
srt = np.sort(np.random.default_rng(1).random(2_000_000))
np.save("/tmp/arr.npy", b[:1_000_000]); back = np.load("/tmp/arr.npy")
print("mib=%d sum=%d last=%d dot=%d sorted=%s saved=%s" % (a.nbytes >> 20, s, b[-1], dot, bool((np.diff(srt) >= 0).all()),
      np.array_equal(back, b[:1_000_000])))
`, Want: "mib=50 sum=13107200 last=6553601 dot=999000 sorted=True saved=True"},

		{Name: "numpy-multiprocessing", Python: py, Code: `
import numpy as np, multiprocessing as mp
def norm(seed):
    return float(np.linalg.norm(np.random.default_rng(seed).standard_normal((200, 200)) @ np.eye(200)) > 0)
if __name__ == "__main__":
    np.dot(np.ones((500, 500)), np.ones((500, 500)))
    with mp.Pool(2) as p:
        print("pool=%s" % sum(p.map(norm, range(8))))
`, Want: "pool=8.0"},

		{Name: "pandas", Python: py, Code: `
import pandas as pd, numpy as np
df = pd.DataFrame({"city": ["Paris", "NYC", "Paris", "Tokyo", "NYC", "Paris"], "temp": [20, 25, 22, 30, 27, 18],
                   "day": pd.date_range("2024-01-01", periods=6, freq="D")})
g = df.groupby("city")["temp"].agg(["mean", "count", "max"])
df.to_csv("/tmp/df.csv", index=False)
back = pd.read_csv("/tmp/df.csv", parse_dates=["day"])
pv = df.pivot_table(index="city", values="temp", aggfunc="sum")
m = df.merge(pd.DataFrame({"city": ["Paris", "NYC"], "country": ["FR", "US"]}), on="city", how="left")
roll = df["temp"].rolling(3).mean().iloc[-1]
tz = df["day"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris").iloc[0].isoformat()
big = pd.DataFrame(np.random.default_rng(0).integers(0, 100, (200000, 3)), columns=list("abc"))
print("paris-mean=%.1f nyc-count=%d roundtrip=%s pivot-tokyo=%d fr=%d roll=%.2f tz=%s big-groups=%d" % (
    g.loc["Paris", "mean"], g.loc["NYC", "count"], back.equals(df), pv.loc["Tokyo", "temp"], (m["country"] == "FR").sum(),
    roll, tz, big.groupby("a").size().shape[0]))
`, Want: "paris-mean=20.0 nyc-count=2 roundtrip=True pivot-tokyo=30 fr=3 roll=25.00 tz=2024-01-01T01:00:00+01:00 big-groups=100"},

		{Name: "matplotlib-agg-png", Python: py, Why: "first use builds matplotlib's font cache under HOME=/tmp", Code: `
import matplotlib
import matplotlib.pyplot as plt, numpy as np, struct, os, io
fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
x = np.linspace(0, 10, 200)
ax.plot(x, np.sin(x), label="sin"); ax.hist(np.random.default_rng(0).normal(size=1000), bins=20, alpha=0.3)
ax.set_title("pybox \u00e9"); ax.legend()
fig.savefig("/tmp/plot.png")
data = open("/tmp/plot.png", "rb").read()
w, h = struct.unpack(">II", data[16:24])
svg = io.BytesIO(); fig.savefig(svg, format="svg")
pdf = io.BytesIO(); fig.savefig(pdf, format="pdf")
print("backend=%s png-bytes=%d sig=%s ihdr=%s size=%dx%d big=%s svg=%s pdf=%s" % (matplotlib.get_backend().lower(), len(data),
      data[:8] == b"\x89PNG\r\n\x1a\n", data[12:16] == b"IHDR", w, h, len(data) > 5000, b"<svg" in svg.getvalue(),
      pdf.getvalue().startswith(b"%PDF")))
`, Want: "sig=True ihdr=True size=400x300 big=True svg=True pdf=True", Check: func(t *testing.T, r *sandbox.Result) {
			if !strings.Contains(r.Stdout, "backend=agg ") {
				t.Errorf("matplotlib did not use the Agg backend (MPLBACKEND=Agg): %q", r.Stdout)
			}
		}},
	}
}
