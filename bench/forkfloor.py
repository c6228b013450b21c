"""The floor under a forked sandbox's CPU cost: how many times per second
an interpreter with the fork server's modules loaded can fork a child that
runs print(1+1) to /dev/null and exits, with nothing else (no namespaces,
no cgroup, no confinement, no server). pybox's forked one-shots cannot go
faster than this on the same machine, since each execution gets a fresh
process.

    python3 bench/forkfloor.py [forks per worker] [workers]
"""
import gc, os, sys, time
import ctypes, json, socket, linecache, traceback  # noqa: F401  (as the fork server has them)

n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
workers = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
gc.collect()
gc.freeze()


def worker():
    null = os.open(os.devnull, os.O_WRONLY)
    code = compile("print(1+1)", "<cell>", "exec")
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os.dup2(null, 1)
            exec(code, {"__name__": "__main__"})
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)


start = time.perf_counter()
kids = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        worker()
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
took = time.perf_counter() - start
print("%d workers x %d forks: %.0f forks/s (%.2f ms of wall per fork per worker)" % (workers, n, n * workers / took, 1000 * took / n))
