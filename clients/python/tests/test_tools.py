import json
import sys
import types
import unittest

from pybox_client import Sandbox, openai_tool

from .pyboxserver import Server

server = None


def setUpModule():
    global server
    server = Server("--timeout", "10s")


def tearDownModule():
    if server is not None:
        server.stop()


class OpenAITool(unittest.TestCase):
    def setUp(self):
        self.tool = openai_tool(Sandbox(server.url, server.key))
        self.addCleanup(self.tool.close)

    def test_schema(self):
        s = self.tool.schema()
        self.assertEqual(s["type"], "function")
        fn = s["function"]
        self.assertEqual(fn["name"], "run_python")
        self.assertEqual(fn["parameters"]["required"], ["code"])
        # The description is made from the server's limits and policy.
        for want in ("no network", "256 MiB", "10 s per call", "static policy (strict)"):
            self.assertIn(want, fn["description"])
        json.dumps(s)

    def test_dispatch(self):
        msg = self.tool.dispatch({"id": "call_1", "type": "function",
                                  "function": {"name": "run_python", "arguments": json.dumps({"code": "y = 2"})}})
        self.assertEqual((msg["role"], msg["tool_call_id"]), ("tool", "call_1"))
        self.assertIn("status: ok", msg["content"])
        # An SDK-style object works too, and the session persists.
        call = types.SimpleNamespace(id="call_2", function=types.SimpleNamespace(name="run_python", arguments='{"code": "print(y * 21)"}'))
        msg = self.tool.dispatch(call)
        self.assertIn("--- stdout ---\n42\n", msg["content"])

    def test_errors_are_text_for_the_model(self):
        self.assertIn("not valid JSON", self.tool("{"))
        self.assertIn('{"code"', self.tool({"source": "1"}))
        self.assertIn("unknown tool", self.tool.dispatch({"id": "c", "function": {"name": "shell", "arguments": "{}"}})["content"])
        out = self.tool({"code": "import socket"})
        self.assertIn("policy_violation", out)
        self.assertIn("socket", out)
        out = self.tool({"code": "1/0"})
        self.assertIn("ZeroDivisionError", out)

    def test_one_shot_mode(self):
        tool = openai_tool(Sandbox(server.url, server.key), session=False)
        self.assertIn("2", tool({"code": "print(1 + 1)"}))
        self.assertIsNone(tool.session)
        self.assertIn("NameError", tool({"code": "y"}))


class LangChain(unittest.TestCase):
    def test_without_langchain_the_error_says_what_to_install(self):
        try:
            import langchain_core  # noqa: F401
            self.skipTest("langchain_core is installed here")
        except ImportError:
            pass
        from pybox_client import langchain as lc  # importing the module needs no LangChain
        with self.assertRaises(ImportError) as cm:
            lc.make_tool(Sandbox(server.url, server.key))
        self.assertIn("pip install langchain-core", str(cm.exception))

    def test_tool_logic_with_a_stand_in_base_class(self):
        # LangChain is not installed here: a stand-in BaseTool (a plain
        # class with LangChain's run -> _run contract) checks the
        # wrapper's own logic, not its fit with LangChain's pydantic model.
        class BaseTool:
            def run(self, tool_input):
                return self._run(**tool_input)

        fake = types.ModuleType("langchain_core.tools")
        fake.BaseTool = BaseTool
        saved = {k: sys.modules.get(k) for k in ("langchain_core", "langchain_core.tools")}
        sys.modules["langchain_core"] = types.ModuleType("langchain_core")
        sys.modules["langchain_core.tools"] = fake
        try:
            from pybox_client.langchain import make_tool
            tool = make_tool(Sandbox(server.url, server.key))
            self.addCleanup(tool.pybox.close)
            self.assertEqual(tool.name, "run_python")
            self.assertIn("no network", tool.description)
            tool.run({"code": "z = 5"})
            self.assertIn("--- value ---\n10", tool.run({"code": "z * 2"}))
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v


if __name__ == "__main__":
    unittest.main()
