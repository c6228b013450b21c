# pybox driver: runs the user's code inside the sandbox, as `python3 -I -B -u
# /pybox/.driver.py`, with the host's requests on fd 3 and our replies on fd 4
# (fds 0, 1 and 2 are the user's); frame.go documents the protocol. "run"
# executes one program as `python3 -I -B -u /pybox/<file>` would; "exec" runs
# notebook cells in one persistent __main__; "interrupt" stops the running
# cell. Start-up time counts, so only built-in modules are imported up front:
# json alone would cost ~7 ms (it imports re and enum), hence _json; the rest
# is imported when a request first needs it.
import builtins, os, sys, time, _json, _queue, _signal, _thread

CTRL, REPLY = 3, 4
MAX_FRAME = 64 << 20
MAX_REPLY = 32 << 20
MAX_TEXT = 256 << 10  # per value string
SIGINT = {_signal.SIGINT}
NUDGE = _signal.NSIG - 1  # SIGRTMAX, whose handler does nothing: see nudge()
__pybox__ = True  # tracebacks drop the frames of modules that set this
# A fresh __main__ gets __annotations__ if the interpreter's own one has it.
MAIN_ATTRS = {"__annotations__"} & set(vars(sys.modules["__main__"]))
# The code directory: /pybox in a sandbox. A backend without a root of its
# own (restricted) puts it at $PYBOX_ROOT/pybox; the variable is dropped so
# that the user's program sees the same environment as a cold run.
CODE_DIR = os.environ.pop("PYBOX_ROOT", "") + "/pybox/"

inbox = _queue.SimpleQueue()  # requests from the reader thread; None at EOF
READER = False  # whether the reader thread was started
lock = _thread.allocate_lock()  # makes "is a cell running? interrupt it" atomic
running = cells = 0  # the number of the running cell, 0 between cells
main_thread = pid = None  # set by main(): the fork server forks before calling it
session = None  # the namespace of the cells
future = 0  # __future__ flags of earlier cells stay on, as in IPython

def fatal(msg):
    os.write(2, ("pybox driver: %s\n" % msg).encode(errors="replace"))
    os._exit(70)

# --- frames -----------------------------------------------------------------

class _Settings:  # what _json's scanner reads from a json.JSONDecoder
    strict, object_hook, object_pairs_hook = True, None, None
    parse_float, parse_int, parse_constant = float, int, float

scan = _json.make_scanner(_Settings)
esc = _json.encode_basestring_ascii

def dumps(o):
    if isinstance(o, str):
        return esc(o)
    if o is None or o is True or o is False:
        return {None: "null", True: "true", False: "false"}[o]
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, dict):
        return "{" + ",".join(esc(k) + ":" + dumps(v) for k, v in o.items()) + "}"
    return "[" + ",".join(map(dumps, o)) + "]"

def read_exact(n):
    """Reads n bytes of fd 3; None at EOF before the first byte."""
    buf, got = bytearray(n), 0
    while got < n:
        k = os.readv(CTRL, [memoryview(buf)[got:]])
        if k == 0:
            return None if got == 0 else fatal("control pipe closed in the middle of a frame")
        got += k
    return buf

def read_request():
    head = read_exact(4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > MAX_FRAME:
        fatal("request frame of %d bytes is over the 64 MiB limit" % n)
    try:
        text = read_exact(n).decode()
        req, end = scan(text, 0)
    except Exception as e:
        fatal("bad request frame: %r" % e)
    if end != len(text) or not isinstance(req, dict):
        fatal("bad request frame: not one JSON object")
    return req

def field(req, key, kind, default):
    v = req.get(key, default)
    if not isinstance(v, kind) or kind is list and not all(isinstance(a, str) for a in v):
        fatal("bad request: %s is not a %s" % (key, kind.__name__))
    return v

def write_all(fd, data):
    """Writes all of data to fd; False if fd is unusable."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except KeyboardInterrupt:  # a stray SIGINT: with EINTR nothing was written
            pass
        except BlockingIOError:  # the user made the fd non-blocking
            import select
            select.select([], [fd], [])
        except OSError:
            return False
    return True

def send(reply):
    data = dumps(reply).encode()
    if not write_all(REPLY, len(data).to_bytes(4, "big") + data):
        fatal("cannot write to the reply pipe")

# --- the reader thread --------------------------------------------------------

def reader():
    try:
        while True:
            req = read_request()
            if req is None:
                inbox.put(None)
                return
            op = req.get("op")
            if op == "interrupt":
                # Only the main thread runs Python signal handlers, and
                # only a signal sent to it wakes it from a blocking call.
                with lock:
                    cell = running
                    if cell:
                        _signal.pthread_kill(main_thread, _signal.SIGINT)
                if cell:
                    _thread.start_new_thread(nudge, (cell,))
                continue
            inbox.put(req)
            if op == "run":
                return  # fd 3 gets closed: reading on could read a user's fd 3
    except BaseException as e:  # a bug here must not leave the host waiting
        fatal("reader: %r" % e)

def nudge(cell):
    """A SIGINT that lands just before the cell enters a blocking system call
    only marks Python's handler as due, and the call blocks on. A signal
    whose handler does nothing makes it return, and Python run the due
    handler: still one KeyboardInterrupt, however many nudges."""
    for delay in (0.02, 0.1, 0.3, 1):
        time.sleep(delay)
        with lock:
            if running != cell:
                return
            _signal.pthread_kill(main_thread, NUDGE)

# --- shared by both modes -------------------------------------------------------

def new_main(**attrs):
    """Installs a fresh __main__, so that pickle finds what the user defines."""
    mod = type(sys)("__main__")
    mod.__dict__.update({k: {} for k in MAIN_ATTRS}, __builtins__=builtins, **attrs)
    sys.modules["__main__"] = mod
    return mod.__dict__

def register(name, code):
    import linecache
    lines = code.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # as linecache reads files: traceback counts on it
    # No mtime: checkcache() then keeps an entry that has no file behind it.
    linecache.cache[name] = (len(code), None, lines, name)

def strip(tb):
    """Drops the driver's frames from the head of a traceback."""
    while tb is not None and tb.tb_frame.f_globals.get("__pybox__") is True:
        tb = tb.tb_next
    return tb

def type_name(exc):
    t, mod = type(exc), getattr(type(exc), "__module__", None)
    return t.__qualname__ if mod in (None, "builtins") else mod + "." + t.__qualname__

def safe_str(o):
    try:
        return str(o)
    except Exception:
        return "<str() failed>"

def cap(text, limit=MAX_TEXT):
    more = len(text) - limit
    return text if more <= 0 else text[:limit] + "\u2026 [truncated %d chars]" % more

# --- run mode -------------------------------------------------------------------

END = None  # run mode: (nonce, stdio identities) of the end markers

def run(req):
    global END
    path = CODE_DIR + (field(req, "filename", str, "") or "main.py")
    nonce = field(req, "sync", str, "")
    if nonce:
        try:
            END = nonce, [(st.st_dev, st.st_ino) for st in map(os.fstat, (1, 2))]
        except OSError:
            END = None
    code = field(req, "code", str, "")
    sys.argv = [path] + field(req, "args", list, [])
    ns = new_main(__file__=path, __cached__=None)
    register(path, code)
    try:  # as a cold sandbox has it: multiprocessing's spawn reads it again
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
    except OSError:
        pass  # no code directory of our own (the driver run bare, in tests)
    os.close(CTRL)
    os.close(REPLY)
    _signal.signal(NUDGE, _signal.SIG_DFL)
    single_threaded()
    try:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, SIGINT)
        exec(compile(code, path, "exec", dont_inherit=True), ns)
    except SystemExit as e:
        finish(exit_status(e.code))
    except BaseException as e:
        # Only the printing is ours, without our frames; a
        # KeyboardInterrupt is re-raised, for the interpreter's death by
        # SIGINT.
        import traceback  # not in show(): an import there could exec() a
        # string, which makes the interpreter forget the KeyboardInterrupt

        def show(t, v, tb, hook=sys.excepthook):
            sys.excepthook = hook
            tb = v.__traceback__ = strip(tb)
            # Before 3.13 the built-in hook reads source lines from the
            # file, which does not exist; traceback reads linecache. But it
            # draws a SyntaxError its own way: that part is the hook's.
            if hook is not sys.__excepthook__ or tb is None or sys.version_info >= (3, 13):
                hook(t, v, tb)
            elif isinstance(v, SyntaxError) and v.__context__ is None:
                sys.stderr.write("".join(["Traceback (most recent call last):\n"] + traceback.format_tb(tb)))
                hook(t, v.with_traceback(None), None)
            else:
                traceback.print_exception(t, v, tb)
        sys.excepthook = show
        if isinstance(e, KeyboardInterrupt):
            raise
        try:
            sys.excepthook(type(e), e, e.__traceback__)
        except BaseException:
            pass
        finish(1)
    finish(0)


def single_threaded():
    """Waits until the reader thread, which returns after a "run" request,
    is gone: a cold `python3 file.py` has one thread, and a program that
    scans for processes it can signal must not find the reader's tid."""
    if not READER:
        return
    for _ in range(5000):
        try:
            if len(os.listdir("/proc/self/task")) <= 1:
                return
        except OSError:
            return  # no /proc: nothing to wait for that could be seen
        time.sleep(0)  # lets the reader take the GIL and return


def exit_status(code):
    """The exit status of SystemExit(code), printing it as Python does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write(str(code) + "\n")
    except BaseException:
        pass
    return 1


def finish(status):
    """Exits as the interpreter does (non-daemon threads joined, atexit
    handlers run, standard streams flushed) but without tearing down every
    module and object first: in a sandbox forked from the fork server that
    touches every inherited page, copy-on-write, for ~15 ms of nothing."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    import atexit
    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BaseException:
            status = 120  # as the interpreter does when it cannot flush
    status &= 0xFF
    if END is not None:
        # The host may answer now rather than after the process has exited
        # (which takes the kernel a millisecond): the marker on stderr, then
        # on stdout with the status, say that all output is in and how the
        # program ended. Only into the pipes the program started with: a
        # stream it moved elsewhere gets nothing, and the host waits for
        # the exit as before. (The program could forge the markers; that
        # only ends its own run early, as os._exit would.)
        nonce, ids = END
        try:
            same = [(st.st_dev, st.st_ino) for st in map(os.fstat, (1, 2))] == ids
        except OSError:
            same = False
        marker = b"\0pybox-sync:" + nonce.encode() + b"\0"
        if same and write_all(2, marker):
            write_all(1, marker + b"%d\0" % status)
    os._exit(status)


# --- session mode ----------------------------------------------------------------

def compile_cell(code, name):
    """Compiles a cell into code objects to eval in turn; the last one's
    value is the cell's when the cell ends in an expression."""
    global future
    import _ast, __future__  # _ast: the ast module costs 1 ms more to import
    tree = compile(code, name, "exec", _ast.PyCF_ONLY_AST | future, dont_inherit=True)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], _ast.Expr) else None
    parts = []
    if tree.body:
        parts.append(compile(tree, name, "exec", future, dont_inherit=True))
        for f in __future__.all_feature_names:
            future |= parts[0].co_flags & getattr(__future__, f).compiler_flag
    if last is not None:
        parts.append(compile(_ast.Expression(last.value), name, "eval", future, dont_inherit=True))
    return parts

def render(value):
    try:
        text = repr(value)
    except Exception as e:
        text = "<repr failed: %s: %s>" % (type_name(e), safe_str(e))
    data = {"text/plain": cap(text)}
    try:
        html = None if isinstance(value, type) else getattr(value, "_repr_html_", None)
        html = html() if callable(html) else None
        if isinstance(html, str):
            data["text/html"] = cap(html)
    except Exception:
        pass  # the plain text will do
    return data

def figures():
    """Renders the open matplotlib figures, as the inline backend would."""
    plt, items = sys.modules.get("matplotlib.pyplot"), []
    if plt is None:
        return items
    import io, binascii
    for num in plt.get_fignums():
        try:
            buf = io.BytesIO()
            plt.figure(num).savefig(buf, format="png")
            item = ("image/png", binascii.b2a_base64(buf.getvalue(), newline=False).decode())
        except Exception as e:
            item = ("text/plain", "<figure %s could not be rendered: %s: %s>" % (num, type_name(e), safe_str(e)))
        items.append({"mime": item[0], "data": item[1]})
    return items

def cell(parts, out):
    try:
        value = None
        for co in parts:
            value = eval(co, session)  # None for the statements
        if value is not None:
            builtins._ = value
            out["value"] = render(value)
    finally:
        out["display"] = figures()

def call_user(fn, *args):
    """Calls fn with SIGINT unblocked, so that an interrupt can stop it;
    returns the exception fn raised, if any."""
    exc = None
    try:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, SIGINT)
        fn(*args)
    except BaseException as e:
        exc = e
    while True:
        try:
            # pthread_sigmask runs the pending handlers: an interrupt that
            # came as the cell ended raises here, too late to matter.
            _signal.pthread_sigmask(_signal.SIG_BLOCK, SIGINT)
            return exc
        except KeyboardInterrupt:
            pass

def describe(exc):
    import traceback
    tb = exc.__traceback__ = strip(exc.__traceback__)
    # As the REPL does, for pdb.pm(); last_exc is new in 3.12.
    sys.last_type, sys.last_value, sys.last_traceback, sys.last_exc = type(exc), exc, tb, exc
    msg = safe_str(exc.code if isinstance(exc, SystemExit) else exc)
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception as e:
        text = "<traceback could not be formatted: %s>\n" % type_name(e)
    return {"type": type_name(exc), "message": cap(msg), "traceback": cap(text, 4 * MAX_TEXT)}

def exec_cell(req):
    global running, cells
    cid, code = field(req, "id", int, 0), field(req, "code", str, "")
    marker = b"\0pybox-sync:" + field(req, "sync", str, "").encode() + b"\0"
    name = "<cell %d>" % cid
    register(name, code)
    failed, parts, out = None, [], {"display": []}
    try:
        parts = compile_cell(code, name)
    except Exception as e:  # SyntaxError, or ValueError for a NUL byte
        failed = e
    # SIGINT is blocked outside user code; drop any left pending by an
    # interrupt that came after the previous cell's code had finished.
    while _signal.sigtimedwait(SIGINT, 0) is not None:
        pass
    with lock:
        running = cells = cells + 1
    exc = call_user(cell, parts, out)
    exc = exc if failed is None else failed
    if os.getpid() != pid:  # a child the user forked left the cell: only we answer
        os._exit(0 if exc is None else 1)
    with lock:
        running = 0
    try:
        sys.modules["matplotlib.pyplot"].close("all")
    except Exception:  # KeyError, mostly
        pass
    for f in ("stdout", "stderr", "__stdout__", "__stderr__"):
        try:
            getattr(sys, f).flush()
        except BaseException:  # None, closed, or the user's own broken stream
            pass
    # The host splits fds 1 and 2 at the marker: all output before it is
    # this cell's. It goes to the fds themselves, whatever sys.stdout is.
    # "synced" tells the host which markers are on their way, so that it
    # does not wait for one it will never see (the user closed fd 1).
    synced = [fd for fd in (1, 2) if write_all(fd, marker)]
    reply = {"type": "result", "id": cid, "status": "ok", "value": out.get("value"),
             "display": [], "error": None, "synced": synced}
    if exc is not None:
        reply["status"] = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
        reply["error"] = describe(exc)
    room = MAX_REPLY - len(dumps(reply))
    for item in out["display"]:
        size = len(esc(item["data"])) + 64
        if size > room:
            item = {"mime": "text/plain", "data": "<image omitted: the reply would exceed 32 MiB>"}
            size = 128
        room -= size
        reply["display"].append(item)
    send(reply)

def main():
    global session, main_thread, pid
    try:
        for fd in (CTRL, REPLY):
            os.set_inheritable(fd, False)  # no child of the user's gets them
    except OSError as e:
        fatal("fds 3 and 4 must be the control pipes: %s" % e)
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    _signal.signal(NUDGE, lambda signum, frame: None)
    # Blocked before the reader starts, so that it inherits the mask: an
    # interrupt then only lands in user code (see call_user).
    _signal.pthread_sigmask(_signal.SIG_BLOCK, SIGINT)
    session = new_main()
    main_thread, pid = _thread.get_ident(), os.getpid()
    send({"type": "ready", "python": sys.version.split()[0], "pid": pid})
    # Both modes need linecache (~5 ms, with re and enum): import it while
    # the host has nothing for us. (The fork server has it loaded already.)
    import linecache
    # The first request is read here: a one-shot's "run" then needs no
    # reader thread at all (as a cold `python3 file.py` has one thread); a
    # session's first cell starts it, so that cells can be interrupted.
    req = read_request()
    while req is not None and req.get("op") == "interrupt":
        req = read_request()  # no cell is running: nothing to interrupt
    global READER
    while True:
        if req is None:
            return  # the host closed the session
        if req.get("op") == "run":
            return run(req)
        if req.get("op") != "exec":
            fatal("unknown op %r" % req.get("op"))
        if not READER:
            READER = True
            _thread.start_new_thread(reader, ())
        try:
            exec_cell(req)
        except KeyboardInterrupt:
            # Outside user code SIGINT is blocked in our threads, but a
            # thread of the user's may still take one sent to the process.
            pass
        while True:
            try:
                req = inbox.get()
                break
            except KeyboardInterrupt:  # stray: as above
                continue


if __name__ == "__main__":  # the fork server (zygote.py) loads us as a module
    main()
