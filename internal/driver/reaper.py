# pybox reaper: pid 1 of every sandbox, run as
# `python3 -I -S -B /pybox/.reaper.py <program pid>`.
#
# pid 1 is special in Linux: signals it has no handler for are ignored and
# orphans are reparented to it. So the user's program never runs there: the
# init starts it as an ordinary child, then becomes this reaper, which
# collects every orphan and reports the program's wait status on fd 3
# ("X <status>"). When pid 1 exits, the kernel kills whatever else is left
# in the sandbox. It imports only built-in modules, to start fast.
import os, sys, _signal

def main():
    program = int(sys.argv[1])
    # The program's stdout and stderr must reach EOF when the program and
    # its children are gone, not when pid 1 is: the host's result waits
    # for it. The reaper writes nothing there anyway.
    for fd in (0, 1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    # Processes of the sandbox may signal pid 1; nothing they send may end
    # the reaper before the program is reaped.
    for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGALRM, _signal.SIGPIPE):
        _signal.signal(sig, _signal.SIG_IGN)
    while True:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if pid == program:
            os.write(3, b"X %d\n" % status)
            os._exit(0)

main()
