import os
import threading
import time
import unittest

from pybox_client import PyboxError, Sandbox, Session
from pybox_client import client as pc

from .pyboxserver import Server

PNG = b"\x89PNG\r\n\x1a\n"
server = None


def setUpModule():
    global server
    server = Server("--timeout", "10s")


def tearDownModule():
    if server is not None:
        server.stop()


def has_pandas():
    # The sandbox's interpreter (PYBOX_SANDBOX_PYTHON) has them in CI.
    return bool(os.environ.get("PYBOX_SANDBOX_PYTHON"))


class OneShots(unittest.TestCase):
    def setUp(self):
        self.box = Sandbox(server.url, server.key)

    def test_execute(self):
        res = self.box.execute("print('hello')\n6 * 7")
        self.assertEqual(res.status, "ok")
        self.assertTrue(res.ok)
        self.assertEqual(res.stdout, "hello\n")
        self.assertEqual(res["exit_code"], 0)

    def test_exit_code_and_stderr(self):
        res = self.box.execute("raise SystemExit(3)")
        self.assertEqual(res.exit_code, 3)
        res = self.box.execute("1/0")
        self.assertEqual(res.status, "error")
        self.assertIn("ZeroDivisionError", res.stderr)

    def test_streaming(self):
        chunks = []
        res = self.box.execute("for i in range(3):\n    print(i, flush=True)", on_output=lambda s, t: chunks.append((s, t)))
        self.assertEqual(res.status, "ok")
        self.assertEqual("".join(t for s, t in chunks if s == "stdout"), "0\n1\n2\n")
        self.assertEqual(res.stdout, "0\n1\n2\n")

    def test_policy_violation_is_a_result(self):
        res = self.box.execute("import subprocess")
        self.assertEqual(res.status, "policy_violation")
        self.assertEqual(res.violations[0]["line"], 1)
        self.assertIn("subprocess", pc.format_result(res))

    def test_problems_are_exceptions(self):
        with self.assertRaises(PyboxError) as cm:
            Sandbox(server.url, "pbx_wrong").execute("1")
        e = cm.exception
        self.assertEqual((e.status, e.type), (401, pc.PROBLEM_UNAUTHORIZED))
        self.assertTrue(e.detail)
        with self.assertRaises(PyboxError) as cm:
            self.box.execute("1", limits={"memory": "lots"})
        self.assertEqual((cm.exception.status, cm.exception.type, cm.exception.field),
                         (400, pc.PROBLEM_INVALID_LIMITS, "limits.memory"))
        with self.assertRaises(PyboxError) as cm:
            self.box.attach("no-such-session").run("1")
        self.assertEqual((cm.exception.status, cm.exception.type), (404, pc.PROBLEM_NOT_FOUND))
        self.assertIn("404", str(cm.exception))

    def test_limits(self):
        lim = self.box.limits()
        self.assertEqual(lim["tenant"], "py")
        self.assertEqual(lim["policy"], "strict")


class Sessions(unittest.TestCase):
    def setUp(self):
        self.box = Sandbox(server.url, server.key)

    def test_state_values_errors(self):
        with self.box.session() as s:
            self.assertIsInstance(s, Session)
            self.assertEqual(s.run("x = 41").status, "ok")
            res = s.run("x + 1")
            self.assertEqual(res.text, "42")
            self.assertEqual(res.execution_count, 2)
            res = s.run("def f():\n    return 1/0\nf()")
            self.assertEqual(res.status, "error")
            self.assertEqual(res.error["type"], "ZeroDivisionError")
            self.assertIn("<cell 3>", res.error["traceback"])
            self.assertEqual(s.info()["state"], "idle")
            sid = s.id
        self.assertTrue(s.closed)
        self.assertNotIn(sid, [x["id"] for x in self.box.sessions()])
        s.close()  # again: not an error

    def test_files(self):
        with self.box.session() as s:
            data = bytes(range(256)) * 10
            info = s.upload("dir/blob.bin", data)
            self.assertEqual(info["size"], len(data))
            s.upload("notes.txt", "héllo\n")
            self.assertEqual(s.download("dir/blob.bin"), data)
            self.assertEqual(s.download("notes.txt").decode("utf-8"), "héllo\n")
            paths = {f["path"]: f for f in s.files()}
            self.assertEqual(paths["dir/blob.bin"]["size"], 2560)
            self.assertEqual(paths["dir"]["type"], "dir")
            self.assertEqual([f["path"] for f in s.files("dir")], ["dir/blob.bin"])
            s.delete_file("notes.txt")
            with self.assertRaises(PyboxError) as cm:
                s.download("notes.txt")
            self.assertEqual(cm.exception.status, 404)
            with self.assertRaises(PyboxError) as cm:
                s.upload("../escape", b"x")
            self.assertEqual((cm.exception.status, cm.exception.type), (400, pc.PROBLEM_INVALID_PATH))

    def test_streaming_cell(self):
        with self.box.session() as s:
            chunks = []
            res = s.run("import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)\n'done'",
                        on_output=lambda stream, text: chunks.append(text))
            self.assertEqual(res.text, "'done'")
            self.assertEqual("".join(chunks), "0\n1\n2\n")

    def test_busy_has_retry_after(self):
        with self.box.session() as s:
            t = threading.Thread(target=s.run, args=("import time\ntime.sleep(3)",))
            t.start()
            try:
                deadline = time.monotonic() + 10
                while s.info()["state"] != "busy":
                    self.assertLess(time.monotonic(), deadline, "the cell never started")
                    time.sleep(0.02)
                with self.assertRaises(PyboxError) as cm:
                    s.run("1")
                self.assertEqual((cm.exception.status, cm.exception.type), (409, pc.PROBLEM_SESSION_BUSY))
                self.assertGreaterEqual(cm.exception.retry_after, 1)
            finally:
                t.join()

    @unittest.skipUnless(has_pandas(), "the sandbox's interpreter needs pandas and matplotlib (PYBOX_SANDBOX_PYTHON)")
    def test_pandas_and_figures(self):
        with self.box.session() as s:
            s.upload("data.csv", "x,y\n1,2\n2,4\n3,6\n")
            res = s.run("import pandas as pd\nimport matplotlib.pyplot as plt\n"
                        "df = pd.read_csv('data.csv')\nplt.plot(df.x, df.y)\nint(df.y.sum())")
            self.assertEqual(res.status, "ok", res)
            self.assertEqual(res.text, "12")
            self.assertEqual(len(res.images), 1)
            self.assertTrue(res.images[0].startswith(PNG))


if __name__ == "__main__":
    unittest.main()
