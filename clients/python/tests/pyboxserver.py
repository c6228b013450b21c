"""A real `pybox serve` for the tests: the binary named by PYBOX_BIN, on a
free loopback port, with an API key, an audit log and a uid range and
cgroup parent of its own. Without PYBOX_BIN the tests that need it skip
(the Go test clients/python runs them with it set; CI runs that)."""

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request


class Server:
    def __init__(self, *extra):
        binary = os.environ.get("PYBOX_BIN")
        if not binary:
            raise unittest.SkipTest("set PYBOX_BIN to a built pybox binary (go test ./clients/python does)")
        self.dir = tempfile.mkdtemp(prefix="pybox-pyclient-")
        os.chmod(self.dir, 0o755)
        self.key = "pbx_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        keys = os.path.join(self.dir, "keys.json")
        with open(keys, "w") as f:
            json.dump([{"tenant": "py", "sha256": hashlib.sha256(self.key.encode()).hexdigest()}], f)
        self.audit_dir = os.path.join(self.dir, "audit")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        addr = "127.0.0.1:%d" % s.getsockname()[1]
        s.close()
        self.url = "http://" + addr
        args = [binary, "serve", "--listen", addr,
                "--uid-base", os.environ.get("PYBOX_UID_BASE", "1650000000"), "--uid-slots", "64",
                "--cgroup-parent", os.environ.get("PYBOX_CGROUP_PARENT", "pybox-test-pyclient"),
                "--warm-pool", "1", "--api-keys-file", keys, "--audit-dir", self.audit_dir]
        python = os.environ.get("PYBOX_SANDBOX_PYTHON")
        if python:
            args += ["--python", python]
        args += list(extra)
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if json.load(r).get("warm_ready", 0) >= 1:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("pybox serve did not start:\n" + self.logs())
            time.sleep(0.05)

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
