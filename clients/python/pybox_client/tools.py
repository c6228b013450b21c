"""A ready `run_python` tool for OpenAI-style function calling.

    from pybox_client import Sandbox, openai_tool
    tool = openai_tool(Sandbox(url, key), session=True)
    response = client.chat.completions.create(model=..., messages=messages, tools=[tool.schema()])
    for call in response.choices[0].message.tool_calls or []:
        messages.append(tool.dispatch(call))      # {"role": "tool", "tool_call_id": ..., "content": ...}

The tool's text tells the model what the code printed, the value of its
last expression and any traceback; figures are kept as PNG bytes in
tool.images (a chat message cannot carry them as a tool result).
"""

import json

from .client import PyboxError, format_result

__all__ = ["PythonTool", "openai_tool"]

_BASE_DESCRIPTION = (
    "Run Python code in an isolated sandbox and get back what it printed, the value of its last "
    "expression (as a REPL shows it), and the traceback if it raised. Figures drawn with "
    "matplotlib.pyplot and left open are captured as PNG images. "
)


class PythonTool:
    """run_python over a Sandbox: in one session that persists between
    calls (session=True, the default: variables and files stay), or a
    fresh one-shot sandbox per call (session=False).

    description overrides the text the model sees; by default it is made
    from the server's GET /v1/limits (policy, memory, timeout) on first use.
    """

    name = "run_python"

    def __init__(self, sandbox, session=True, description=None):
        self.sandbox = sandbox
        self._use_session = session
        self._session = session if not isinstance(session, bool) else None
        self._description = description
        self.images = []  # PNGs of the last call's figures
        self.last_result = None

    @property
    def session(self):
        """The tool's Session, started on first use (None for one-shots)."""
        if self._session is None and self._use_session:
            self._session = self.sandbox.session()
        return self._session

    def description(self):
        if self._description is None:
            d = _BASE_DESCRIPTION
            if self._use_session:
                d += "Calls share one session, like notebook cells: variables, imports and files persist. "
            else:
                d += "Each call runs in a fresh sandbox; nothing persists. "
            try:
                lim = self.sandbox.limits()
                dl = lim["defaults"]
                d += ("The sandbox has no network access and nothing can be installed; limits: %d MiB of memory, "
                      "%g CPU, %g s per call. " % (dl["memory_bytes"] >> 20, dl["cpu"], dl["timeout_ms"] / 1000.0))
                if lim.get("policy") in ("strict", "standard"):
                    d += ("A static policy (%s) rejects imports such as subprocess, socket, ctypes and pickle, and calls "
                          "such as eval and exec, before the code runs, with the line and the reason. " % lim["policy"])
                    if lim["policy"] == "strict":
                        d += "Under it os, sys and open() are rejected too: read files with pandas or csv. "
            except PyboxError:
                d += "The sandbox has no network access and nothing can be installed. "
            self._description = d.strip()
        return self._description

    def schema(self):
        """The tool definition for `tools=[...]` of OpenAI-style chat APIs."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description(),
                "parameters": {
                    "type": "object",
                    "properties": {"code": {"type": "string", "description": "the Python code to run"}},
                    "required": ["code"],
                    "additionalProperties": False,
                },
            },
        }

    def run(self, code):
        """Runs code and returns the text for the model. Failures the
        server reports (rate limits, a session that ended, ...) come back
        as text too: the model can act on them."""
        self.images = []
        try:
            if self._use_session:
                res = self.session.run(code)
            else:
                res = self.sandbox.execute(code)
        except PyboxError as e:
            if e.type == "https://pybox.dev/problems/session-ended":
                self._session = None  # the next call starts a new session
                return "error: the session ended (%s); its variables and files are gone, the next call starts a new session" % e.detail
            return "error: pybox refused the call: %s: %s" % (e.title, e.detail)
        self.last_result = res
        self.images = res.images
        return format_result(res)

    def __call__(self, arguments):
        """Runs a tool call's arguments (a JSON string or a dict)."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError as e:
                return "error: the arguments are not valid JSON: %s" % e
        if not isinstance(arguments, dict) or not isinstance(arguments.get("code"), str):
            return 'error: call run_python with {"code": "<python source>"}'
        return self.run(arguments["code"])

    def dispatch(self, tool_call):
        """Runs one tool call of a chat response (a dict or an SDK object
        with id, function.name and function.arguments) and returns the
        message to append: {"role": "tool", "tool_call_id": ..., "content": ...}."""
        if isinstance(tool_call, dict):
            call_id, fn = tool_call.get("id"), tool_call.get("function") or {}
            name, args = fn.get("name"), fn.get("arguments")
        else:
            call_id, name, args = tool_call.id, tool_call.function.name, tool_call.function.arguments
        if name != self.name:
            content = "error: unknown tool %r; the tool is %s" % (name, self.name)
        else:
            content = self(args)
        return {"role": "tool", "tool_call_id": call_id, "content": content}

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None


def openai_tool(sandbox, session=True, description=None):
    """A PythonTool: .schema() for the request, .dispatch(call) for each
    tool call of the answer."""
    return PythonTool(sandbox, session=session, description=description)
