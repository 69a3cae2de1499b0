"""A real `tokend serve` for the tests, started once per test process.

The binary is TOKEND_BIN when set (sdk/sdk_test.go builds one), else built
here with `go build` from the repository root into a temporary directory.
The server listens on 127.0.0.1:0 with a fresh data directory; its URL and
its first admin token come from the start-up banner. Without a binary or a
Go toolchain the tests skip, except under CI=true, where they fail.
"""

import atexit
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
from typing import Any, List, Optional

import tokend
from tokend._secret import _example

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

_LISTENING = re.compile(r"listening on (http://\S+)")
_ADMIN = re.compile(r"^\s+(tkd_admin_[0-9A-Za-z]+_[0-9A-Za-z]{6})\s*$")


class Server:
    def __init__(self, proc: "subprocess.Popen[str]", url: str, admin: str, workdir: str, logs: str) -> None:
        self.proc = proc
        self.url = url
        self.admin = admin
        self.workdir = workdir
        self.logs = logs

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


_lock = threading.Lock()
_server: Optional[Server] = None
_failure: Optional[str] = None


def _unavailable(why: str) -> None:
    """Skip, or fail under CI=true, where the suite must run."""
    if os.environ.get("CI") == "true":
        raise RuntimeError("the Python SDK tests need a tokend binary under CI=true: " + why)
    raise unittest.SkipTest(why)


def _binary(workdir: str) -> str:
    b = os.environ.get("TOKEND_BIN")
    if b:
        if not os.access(b, os.X_OK):
            raise RuntimeError("TOKEND_BIN=%s is not an executable" % b)
        return b
    if shutil.which("go") is None:
        _unavailable("no TOKEND_BIN and no go toolchain to build tokend with")
    out = os.path.join(workdir, "tokend")
    r = subprocess.run(["go", "build", "-o", out, "./cmd/tokend"], cwd=REPO_ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("go build ./cmd/tokend failed:\n" + r.stderr)
    return out


def _die_with_parent() -> None:
    """Have Linux stop the server if the test process dies without its
    atexit (killed by a test runner's timeout)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def start(extra_args: Optional[List[str]] = None) -> Server:
    """Start a tokend serve of its own (the caller stops it)."""
    workdir = tempfile.mkdtemp(prefix="tokend-py-")
    try:
        bin_path = _binary(workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKEND_")}
        logs = os.path.join(workdir, "stderr.log")
        # The failure throttle is off: the tests present many refused
        # tokens from one address on purpose.
        args = [bin_path, "serve", "--addr", "127.0.0.1:0", "--data-dir", os.path.join(workdir, "data"), "--failure-limit", "0"]
        with open(logs, "w") as errf:
            proc = subprocess.Popen(
                args + (extra_args or []), stdout=subprocess.PIPE, stderr=errf, env=env, text=True, preexec_fn=_die_with_parent
            )
        assert proc.stdout is not None
        url = admin = ""
        ready = threading.Event()

        def read() -> None:
            nonlocal url, admin
            assert proc.stdout is not None
            for line in proc.stdout:
                m = _LISTENING.search(line)
                if m:
                    url = m.group(1)
                m = _ADMIN.match(line)
                if m:
                    admin = m.group(1)
                if line.startswith("Press Ctrl+C"):
                    ready.set()
            ready.set()  # the process ended

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or not url or not admin:
            proc.kill()
            proc.wait()
            with open(logs) as f:
                raise RuntimeError("tokend serve did not start:\n" + f.read())
        return Server(proc, url, admin, workdir, logs)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def shared() -> Server:
    """The server every test of this process shares, started on first use."""
    global _server, _failure
    with _lock:
        if _server is None:
            if _failure is not None:
                raise unittest.SkipTest(_failure) if os.environ.get("CI") != "true" else RuntimeError(_failure)
            try:
                _server = start()
            except unittest.SkipTest as e:
                _failure = str(e)
                raise
            atexit.register(_server.stop)
        return _server


def admin_client() -> tokend.Client:
    s = shared()
    return tokend.Client(s.url, admin_token=s.admin)


def unknown_secret(prefix: str = "tkd") -> str:
    """A well-formed secret, checksum and all, that no token has."""
    return _example(prefix)


class TokendCase(unittest.TestCase):
    """A test case with an app of its own (prefix shop, orders:read and
    orders:write), the admin client, and self.client, a CountingClient
    without an admin token."""

    admin: tokend.Client
    app: tokend.App

    @classmethod
    def setUpClass(cls) -> None:
        cls.admin = admin_client()
        cls.app = cls.admin.create_app(name(cls.__name__), token_prefix="shop", permissions=["orders:read", "orders:write"])

    def setUp(self) -> None:
        self.client = CountingClient(shared().url)

    def token(self, **fields: Any) -> tokend.IssuedToken:
        return self.admin.create_token(self.app["id"], name("bot"), **fields)


class CountingClient(tokend.Client):
    """A real client that counts its calls to tokend."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, *args: Any, **kwargs: Any) -> tokend.VerifyResult:
        with self._lock:
            self.calls += 1
        return super().verify(*args, **kwargs)


_names = 0
_names_lock = threading.Lock()


def name(base: str) -> str:
    """A name no other test uses."""
    global _names
    with _names_lock:
        _names += 1
        return "%s %d-%d" % (base, os.getpid(), _names)
