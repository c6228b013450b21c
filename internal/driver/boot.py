# pybox boot: the first Python code in every sandbox, run as pid 1 of the
# sandbox's pid namespace via `python3 -I -S -B -u /pybox/.boot.py <script> [args...]`.
#
# pid 1 is special in Linux: signals it has no handler for are ignored and
# orphans are reparented to it. User code must not run there (a script's
# os.kill(os.getpid(), SIGTERM) would do nothing), so this program forks:
# the parent stays pid 1, reaps every orphan and reports the user process's
# wait status on fd 3 ("X <status>"); the child reports "S <pid>" when the
# script is about to start, closes fd 3 and runs the script as __main__. It imports only built-in modules, to keep start-up fast.
#
# The interpreter starts with -S (no site) and the child runs site.main()
# itself: the fork then copies a small heap, and the reaper never holds
# what site-packages' .pth files import. sys.path ends up as in a normal
# start; only sys.flags.no_site tells the difference.
import os, sys, _signal

def _pybox_main():
    script = sys.argv[1]
    pid = os.fork()
    if pid:
        # A sandboxed process may signal pid 1; nothing it sends should
        # end the reaper before the user process is reaped.
        for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2):
            _signal.signal(sig, _signal.SIG_IGN)
        while True:
            try:
                p, status = os.wait()
            except ChildProcessError:
                os._exit(1)
            except InterruptedError:
                continue
            if p == pid:
                os.write(3, b"X %d\n" % status)
                os._exit(0)
    import site
    site.main()
    os.write(3, b"S %d\n" % os.getpid())
    os.close(3)
    os.closerange(3, 1 << 20)
    del sys.argv[0]
    sys.path.insert(0, os.path.dirname(script))
    main = type(sys)("__main__")
    main.__file__ = script
    main.__builtins__ = __builtins__
    main.__cached__ = None
    sys.modules["__main__"] = main
    try:
        with open(script, "rb") as f:
            code = compile(f.read(), script, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        # Print as the interpreter would, minus this program's own frame.
        import traceback
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        sys.exit(130 if isinstance(e, KeyboardInterrupt) else 1)

_pybox_main()
