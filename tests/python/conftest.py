"""pytest setup for the kiln Python client.

The suite imports kiln from the source tree (clients/python) and runs
against a real kilnd: the embedded daemon the client starts on a private
socket, found through KILN_DAEMON (deploy/test.sh sets it to the build's
kilnd) or the source tree's build/daemon/kilnd. KILN_ADDRESS is cleared so
that a developer's own daemon is never used by accident.
"""
import os
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYDIR = os.path.join(ROOT, "clients", "python")
sys.path.insert(0, PYDIR)
os.environ.pop("KILN_ADDRESS", None)
if not os.environ.get("KILN_DAEMON"):
    cand = os.path.join(ROOT, "build", "daemon", "kilnd")
    if os.path.exists(cand):
        os.environ["KILN_DAEMON"] = cand


def kilnd_path():
    p = os.environ.get("KILN_DAEMON")
    if not p or not os.path.exists(p):
        pytest.skip("no kilnd binary (set KILN_DAEMON)")
    return p


@pytest.fixture(scope="session")
def jt():
    kilnd_path()
    import kiln
    from kiln import graph
    kiln.seed(1234)
    yield kiln
    daemon = graph.runtime().daemon
    kiln.shutdown()
    if daemon is not None:  # the embedded daemon must have shut down cleanly
        assert daemon.proc.returncode == 0, daemon.final_log


def run_python(code, env=None, timeout=60):
    """Run code in a fresh interpreter with kiln importable; returns
    (returncode, stdout, stderr, seconds)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = PYDIR + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("KILN_ADDRESS", None)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


class Kilnd:
    """A kilnd started by a test on its own socket (not embedded)."""

    def __init__(self, *args, env=None):
        self.dir = tempfile.mkdtemp(prefix="kiln-pytest-")
        self.socket = os.path.join(self.dir, "kilnd.sock")
        self.address = "ipc://" + self.socket
        e = None if env is None else {**os.environ, **env}
        self.proc = subprocess.Popen([kilnd_path(), "--listen", self.address, "--log-level",
                                      "warn", *args], stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=e)
        deadline = time.monotonic() + 10
        # Wait for the socket file; the client's dial does the handshake.
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("kilnd did not start")
            time.sleep(0.01)

    def connect(self, **kw):
        """A Connection, retried while the daemon finishes starting."""
        from kiln.connection import Connection
        from kiln.errors import ConnectError
        deadline = time.monotonic() + 10
        while True:
            try:
                return Connection(self.address, **kw)
            except ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def kilnd():
    d = Kilnd()
    yield d
    d.stop()
