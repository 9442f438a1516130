"""embedded.py: a private kilnd for this process.

With no KILN_ADDRESS, the first use of kiln starts its own daemon: the
kilnd binary named by KILN_DAEMON, else one shipped next to the package
(kiln/bin/kilnd), else `kilnd` on PATH, else the source tree's
build/daemon/kilnd. It listens on an ipc:// socket inside a fresh 0700
temporary directory, so no other user (and no other kiln process) can
reach it, and it is stopped when the interpreter exits.

Readiness: NNG 1.5.2's ipc listener stops accepting after a peer that
connects and closes before the SP handshake, so the socket is never
probed with a bare connect(). We wait until the socket file exists and
then dial with NNG itself (a full handshake), retrying briefly while the
daemon finishes starting; every wait is bounded, and a daemon that exits
during start-up is reported with the tail of its log.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from . import errors
from .connection import Connection

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
SOCKET_NAME = "kilnd.sock"
_SUN_PATH_MAX = 107  # bytes of a Unix socket path, without the NUL


class DaemonNotFoundError(errors.ConnectError):
    """No kilnd binary was found to start an embedded daemon."""


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def find_kilnd():
    """The path of the kilnd to start, or raise DaemonNotFoundError naming
    every place that was searched."""
    tried = []
    env = os.environ.get("KILN_DAEMON", "")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise DaemonNotFoundError(f"KILN_DAEMON={env} is not an executable file")
    pkg = _package_dir()
    for cand in (os.path.join(pkg, "bin", "kilnd"), os.path.join(pkg, "kilnd")):
        tried.append(cand)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    onpath = shutil.which("kilnd")
    tried.append("kilnd on PATH")
    if onpath:
        return onpath
    # Source tree: <repo>/clients/python/kiln -> <repo>/build/daemon/kilnd
    repo = os.path.dirname(os.path.dirname(os.path.dirname(pkg)))
    cand = os.path.join(repo, "build", "daemon", "kilnd")
    tried.append(cand)
    if os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    raise DaemonNotFoundError(
        "cannot start an embedded kiln daemon: no kilnd found (searched " + ", ".join(tried)
        + "). Set KILN_DAEMON to the kilnd binary, or KILN_ADDRESS to a running daemon.")


def _private_dir():
    """A fresh 0700 directory whose socket path fits sun_path."""
    base = tempfile.gettempdir()
    if len(os.path.join(base, "kiln-XXXXXXXX", SOCKET_NAME)) > _SUN_PATH_MAX:
        base = "/tmp"
    return tempfile.mkdtemp(prefix="kiln-", dir=base)  # mkdtemp makes it 0700


def _pdeathsig():
    """Child side of fork: ask for SIGTERM when the parent dies, so a
    killed Python does not leave a daemon behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class EmbeddedDaemon:
    """A kilnd child process on a private socket."""

    def __init__(self, path=None, args=None):
        self.path = path or find_kilnd()
        self.dir = _private_dir()
        self.socket = os.path.join(self.dir, SOCKET_NAME)
        self.address = "ipc://" + self.socket
        self.log_path = os.path.join(self.dir, "kilnd.log")
        self.owner_pid = os.getpid()
        self.final_log = ""
        extra = list(args) if args is not None else os.environ.get("KILN_DAEMON_ARGS",
                                                                     "").split()
        argv = [self.path, "--listen", self.address, "--log-level", "warn",
                "--idle-timeout", "604800"] + extra
        # PR_SET_PDEATHSIG fires when the forking *thread* exits, so it is
        # only asked for when the main thread starts the daemon.
        main = threading.current_thread() is threading.main_thread()
        # oneDNN's OpenMP threads sleep when idle instead of spinning on
        # the cores kilnd's own workers need next (a user's setting wins).
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "passive")
        with open(self.log_path, "wb") as log:
            try:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=log, close_fds=True, env=env,
                                             preexec_fn=_pdeathsig if main else None)
            except OSError as e:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise errors.ConnectError(f"cannot start {self.path}: {e}") from None

    def log_tail(self, limit=2000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                n = f.tell()
                f.seek(max(0, n - limit))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def exit_status(self):
        """None while running, else the exit status (negative: killed by that signal)."""
        return self.proc.poll()

    def describe_exit(self):
        st = self.exit_status()
        if st is None:
            return None
        how = f"was killed by signal {-st}" if st < 0 else f"exited with status {st}"
        tail = self.log_tail()
        return f"the embedded kilnd ({self.path}) {how}" + (f"; its log: {tail}" if tail else "")

    def connect(self, timeout_s=None, **kw):
        """Wait until the daemon serves, then open a session with it."""
        if timeout_s is None:
            timeout_s = float(os.environ.get("KILN_START_TIMEOUT", "") or START_TIMEOUT_S)
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        last = None
        while True:
            gone = self.describe_exit()
            if gone is not None:
                self.stop()
                raise errors.ConnectError(gone + " during start-up")
            if os.path.exists(self.socket):
                try:
                    return Connection(self.address, **kw)
                except errors.ConnectError as e:  # the file exists, not yet listening
                    last = e
            if time.monotonic() > deadline:
                self.stop()
                raise errors.ConnectError(
                    f"the embedded kilnd ({self.path}) did not listen on {self.address} within "
                    f"{timeout_s:g} s" + (f" ({last})" if last else ""))
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def stop(self):
        """SIGTERM (the daemon drains and exits), SIGKILL if it lingers,
        then remove the private directory. Only the process that started
        the daemon stops it (a forked child leaves it alone)."""
        if os.getpid() != self.owner_pid:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except OSError:
                pass
        if self.proc.returncode != 0:
            self.final_log = self.log_tail()  # for whoever asks why
        shutil.rmtree(self.dir, ignore_errors=True)
