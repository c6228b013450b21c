"""The HTTP client: Sandbox (a pybox server) and Session (one session on it).

Standard library only (urllib, json). Every failure the server reports is
raised as PyboxError carrying the RFC 9457 problem's fields.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Sandbox", "Session", "Result", "PyboxError", "format_result"]

# Problem types (api/api.go): switch on PyboxError.type.
PROBLEM_BAD_REQUEST = "https://pybox.dev/problems/bad-request"
PROBLEM_INVALID_LIMITS = "https://pybox.dev/problems/invalid-limits"
PROBLEM_NOT_FOUND = "https://pybox.dev/problems/not-found"
PROBLEM_SESSION_ENDED = "https://pybox.dev/problems/session-ended"
PROBLEM_SESSION_BUSY = "https://pybox.dev/problems/session-busy"
PROBLEM_TOO_LARGE = "https://pybox.dev/problems/too-large"
PROBLEM_TOO_MANY = "https://pybox.dev/problems/too-many-requests"
PROBLEM_UNAVAILABLE = "https://pybox.dev/problems/unavailable"
PROBLEM_INVALID_PATH = "https://pybox.dev/problems/invalid-path"
PROBLEM_NO_SPACE = "https://pybox.dev/problems/no-space"
PROBLEM_UNAUTHORIZED = "https://pybox.dev/problems/unauthorized"
PROBLEM_RATE_LIMITED = "https://pybox.dev/problems/rate-limited"
PROBLEM_QUOTA = "https://pybox.dev/problems/quota"
PROBLEM_AUDIT_UNAVAILABLE = "https://pybox.dev/problems/audit-unavailable"


class PyboxError(Exception):
    """A problem the server answered with (application/problem+json).

    Attributes: type (a stable URI, one of the PROBLEM_* constants), title,
    status (the HTTP status), detail (a sentence saying what to do), field
    (the request field at fault, or None), retry_after (seconds, for 429
    and 503, or None), and problem (the whole body as a dict).
    """

    def __init__(self, status, problem=None, retry_after=None):
        problem = dict(problem or {})
        self.problem = problem
        self.type = problem.get("type", "about:blank")
        self.title = problem.get("title", "HTTP %d" % status)
        self.status = problem.get("status", status) or status
        self.detail = problem.get("detail", "")
        self.field = problem.get("field")
        self.retry_after = retry_after
        msg = "pybox: %d %s" % (self.status, self.title)
        if self.detail:
            msg += ": " + self.detail
        super().__init__(msg)


class Result(dict):
    """An execution's or a cell's result: the server's JSON object, with
    its keys also readable as attributes (res.stdout, res.status, ...).

    Cells have value (by MIME type), display (rich outputs) and error;
    `text` is the last expression's text/plain value and `images` the PNG
    bytes of the figures.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def ok(self):
        return self.get("status") == "ok"

    @property
    def text(self):
        return (self.get("value") or {}).get("text/plain")

    @property
    def images(self):
        import base64

        return [base64.b64decode(d["data"]) for d in self.get("display") or [] if d.get("mime") == "image/png"]


def _retry_after(headers):
    v = headers.get("Retry-After") if headers is not None else None
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def _problem_from(err):
    """Turns an HTTPError into a PyboxError."""
    body = b""
    try:
        body = err.read()
    except Exception:
        pass
    try:
        problem = json.loads(body.decode("utf-8"))
        if not isinstance(problem, dict) or "type" not in problem:
            raise ValueError
    except ValueError:
        problem = {"type": "about:blank", "title": err.reason or "HTTP error",
                   "detail": body.decode("utf-8", "replace").strip()}
    return PyboxError(err.code, problem, _retry_after(err.headers))


class Sandbox:
    """A pybox server (`pybox serve`): one-shot executions and sessions.

    base_url and api_key default to the environment's PYBOX_URL and
    PYBOX_API_KEY. timeout is the socket timeout of each request, in
    seconds: keep it above the longest execution you allow. Safe to share
    between threads (each request is independent).
    """

    def __init__(self, base_url=None, api_key=None, timeout=600.0):
        base_url = base_url or os.environ.get("PYBOX_URL") or "http://127.0.0.1:8080"
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("PYBOX_API_KEY")
        self.timeout = timeout

    # -- plumbing

    def _request(self, method, path, body=None, content_type=None, accept="application/json"):
        req = urllib.request.Request(self.base_url + path, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        if accept:
            req.add_header("Accept", accept)
        if self.api_key:
            req.add_header("Authorization", "Bearer " + self.api_key)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise _problem_from(e) from None

    def _call(self, method, path, payload=None):
        body = None
        ct = None
        if payload is not None:
            body, ct = json.dumps(payload).encode("utf-8"), "application/json"
        with self._request(method, path, body, ct) as resp:
            data = resp.read()
        if not data:
            return None
        return json.loads(data.decode("utf-8"))

    def _stream(self, path, payload, on_output):
        """POSTs payload asking for server-sent events; passes stdout and
        stderr chunks to on_output(stream, text) and returns the result."""
        body = json.dumps(payload).encode("utf-8")
        with self._request("POST", path, body, "application/json", "text/event-stream") as resp:
            event, data = None, []
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[len("event:"):].strip()
                elif line.startswith("data:"):
                    v = line[len("data:"):]
                    data.append(v[1:] if v.startswith(" ") else v)
                elif line == "":
                    if event is not None:
                        obj = json.loads("\n".join(data)) if data else None
                        if event in ("stdout", "stderr"):
                            if on_output is not None:
                                on_output(event, obj.get("text", ""))
                        elif event == "result":
                            return Result(obj)
                        elif event == "error":
                            raise PyboxError(obj.get("status", 500), obj)
                    event, data = None, []
        raise PyboxError(502, {"type": "about:blank", "title": "Stream ended early",
                               "detail": "the server closed the event stream before the result"})

    # -- the API

    def execute(self, code, limits=None, filename=None, args=None, on_output=None):
        """Runs code once in a fresh sandbox and returns its Result (status,
        exit_code, stdout, stderr, ...). With on_output(stream, text), output
        is streamed as it is printed."""
        payload = {"code": code}
        if limits:
            payload["limits"] = limits
        if filename:
            payload["filename"] = filename
        if args:
            payload["args"] = list(args)
        if on_output is not None:
            return self._stream("/v1/execute", payload, on_output)
        return Result(self._call("POST", "/v1/execute", payload))

    def session(self, limits=None, ttl=None):
        """Starts a session: a sandbox whose variables and files persist
        between cells. Use it as a context manager to end it on exit."""
        payload = {}
        if limits:
            payload["limits"] = limits
        if ttl:
            payload["ttl"] = ttl
        info = self._call("POST", "/v1/sessions", payload)
        return Session(self, info["id"], info)

    def attach(self, session_id):
        """A Session object for an existing session id."""
        return Session(self, session_id, None)

    def sessions(self):
        """The caller's sessions, as dicts."""
        return self._call("GET", "/v1/sessions")["sessions"]

    def limits(self):
        """What the caller's key may do: policy, rates, default limits."""
        return self._call("GET", "/v1/limits")

    def health(self):
        return self._call("GET", "/healthz")


def _quote_path(path):
    return "/".join(urllib.parse.quote(p, safe="") for p in path.split("/"))


class Session:
    """One session of a Sandbox. run() executes cells; upload(), download(),
    files() and delete_file() reach its workspace (the code's working
    directory). close() ends it; so does leaving a `with` block."""

    def __init__(self, sandbox, session_id, info=None):
        self.sandbox = sandbox
        self.id = session_id
        self.info_at_start = info
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Session(%r)" % self.id

    @property
    def _base(self):
        return "/v1/sessions/" + urllib.parse.quote(self.id, safe="")

    def run(self, code, timeout=None, on_output=None):
        """Runs a cell and returns its Result: status, stdout, stderr, value
        (the last expression, by MIME type), display (figures as PNG),
        error (type, message, traceback). An exception in the code is not
        raised: it is in result.error, with status "error"."""
        payload = {"code": code}
        if timeout:
            payload["timeout"] = timeout
        if on_output is not None:
            return self.sandbox._stream(self._base + "/execute", payload, on_output)
        return Result(self.sandbox._call("POST", self._base + "/execute", payload))

    def info(self):
        """The session's state: idle, busy or ended (with end_reason)."""
        return self.sandbox._call("GET", self._base)

    def upload(self, path, data):
        """Stores data (bytes, str or a binary file object) at path in the
        workspace; returns the file's description."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif hasattr(data, "read"):
            data = data.read()
        with self.sandbox._request("PUT", self._base + "/files/" + _quote_path(path), bytes(data),
                                   "application/octet-stream") as resp:
            return json.loads(resp.read().decode("utf-8"))

    def download(self, path):
        """The bytes of a workspace file."""
        with self.sandbox._request("GET", self._base + "/files/" + _quote_path(path), None, None,
                                   "application/octet-stream") as resp:
            return resp.read()

    def files(self, path=None):
        """The workspace's entries (path, type, size, mode, mod_time)."""
        q = "?path=" + urllib.parse.quote(path, safe="") if path else ""
        return self.sandbox._call("GET", self._base + "/files" + q)["files"]

    def delete_file(self, path):
        self.sandbox._call("DELETE", self._base + "/files/" + _quote_path(path))

    def close(self):
        """Ends the session (its sandbox, variables and files). Closing a
        session that already ended is not an error."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sandbox._call("DELETE", self._base)
        except PyboxError as e:
            if e.status not in (404, 410):
                raise


def format_result(res):
    """Renders a Result as text for a language model: status, output, the
    last expression's value, and the error's traceback."""
    status = res.get("status")
    lines = []
    if status == "policy_violation":
        lines.append("status: policy_violation")
        lines.append("The static policy rejected the code before it ran. Rewrite it without what is listed:")
        for v in res.get("violations") or []:
            lines.append("line %s, col %s: %s" % (v.get("line"), v.get("col"), v.get("message")))
    else:
        head = "status: %s" % status
        if "execution_count" in res:
            head += " (cell %s)" % res["execution_count"]
        lines.append(head)
        if res.get("message"):
            lines.append(res["message"])
    out = "\n".join(lines) + "\n"

    def section(label, text):
        nonlocal out
        if text:
            out += "--- %s ---\n%s" % (label, text if text.endswith("\n") else text + "\n")

    section("stdout", res.get("stdout"))
    section("stderr", res.get("stderr"))
    section("value", (res.get("value") or {}).get("text/plain"))
    err = res.get("error")
    if err:
        section("error", err.get("traceback") or "%s: %s" % (err.get("type"), err.get("message")))
    n = len([d for d in res.get("display") or [] if d.get("mime") == "image/png"])
    if n:
        out += "[%d figure%s returned as PNG]\n" % (n, "" if n == 1 else "s")
    return out
