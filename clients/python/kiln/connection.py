"""connection.py: one session with a kilnd — dial, HELLO, requests, BYE.

A Connection owns one NNG req0 socket and the session HELLO opened on it.
Every request waits at most the connection's timeout to be sent and as
long again for its reply (FETCH adds the wait it asks the daemon for), so
a daemon that died or hangs surfaces as TimedOutError, never a hang. The
REQ socket's automatic resend is turned off: HELLO and SUBMIT are not
idempotent, and the timeout already bounds every wait.

Dialling is synchronous, so an address where nothing listens fails at
once with ConnectError. The default ipc:// address (no address given and
no KILN_ADDRESS) is dialled only after its runtime directory passes the
ownership check of PROTOCOL.md section 1, so that a listener another
local user planted in /tmp never receives our token.

Requests on one Connection are serialised by a lock; a Connection may be
shared between threads, but one request is in flight at a time.
"""
import os
import stat
import threading

from . import _nng, errors, wire

DEFAULT_TIMEOUT_MS = 10000
BYE_TIMEOUT_MS = 1000
CLIENT_NAME = "kiln-python/0.1"


def runtime_dir():
    """The default runtime directory: $XDG_RUNTIME_DIR/kiln or /tmp/kiln-<uid>."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "kiln")
    return f"/tmp/kiln-{os.getuid()}"


def default_address():
    """KILN_ADDRESS when set and not empty, else ipc://<runtime dir>/kilnd.sock."""
    env = os.environ.get("KILN_ADDRESS", "")
    if env:
        return env
    return "ipc://" + os.path.join(runtime_dir(), "kilnd.sock")


def check_runtime_dir(path):
    """None if `path` is safe to hold our daemon's socket, else why not.
    Raises ConnectError (no field) when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise errors.ConnectError(f"no daemon answers at ipc://{path}/kilnd.sock "
                                  f"({path} does not exist)") from None
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != os.getuid():
        return f"{path} is owned by uid {st.st_uid}, not {os.getuid()}"
    if st.st_mode & 0o077:
        return f"{path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others may use it"
    return None


def _nng_error(e, what, address):
    """A KilnError for a failed NNG call."""
    if e.errno == _nng.ETIMEDOUT:
        return errors.TimedOutError(f"{what}: no reply from {address} within the timeout "
                                    "(the daemon may have died or hang)")
    if e.errno == _nng.ECLOSED:
        return errors.ClosedError(f"{what}: the connection to {address} is closed")
    if e.errno in (_nng.ECONNREFUSED, _nng.ENOENT):
        return errors.ConnectError(f"no daemon answers at {address} ({e})")
    if e.errno in (_nng.EADDRINVAL, _nng.ENOTSUP):
        return errors.ArgumentError(f"invalid address {address}: {e}", field="address")
    if e.errno == _nng.ENOMEM:
        return errors.OutOfMemoryError(f"{what}: out of memory ({e})")
    return errors.TransportError(f"{what} ({address}): {e}")


class Connection:
    """A session with one daemon. See the module comment for timeouts."""

    def __init__(self, address=None, timeout_ms=None, client=CLIENT_NAME, token=None):
        if address is None:
            env = os.environ.get("KILN_ADDRESS", "")
            if env:
                address = env
            else:
                d = runtime_dir()
                why = check_runtime_dir(d)
                if why is not None:
                    raise errors.ConnectError(f"refusing to dial the default address "
                                              f"ipc://{d}/kilnd.sock: {why}", field="address")
                address = "ipc://" + os.path.join(d, "kilnd.sock")
        if not address:
            raise errors.ArgumentError("address is empty", field="address")
        if timeout_ms is None:
            timeout_ms = int(os.environ.get("KILN_TIMEOUT_MS", "0") or 0) or DEFAULT_TIMEOUT_MS
        if not client or len(client.encode()) > wire.LIMITS["name"] or "\0" in client:
            raise errors.ArgumentError("client name must be 1..128 bytes without NUL",
                                       field="client")
        if token is None and os.environ.get("KILN_TOKEN", ""):
            token = os.environ["KILN_TOKEN"]  # a shared daemon's credential
        if token is not None and len(token.encode()) > wire.LIMITS["token"]:
            raise errors.ArgumentError("token is longer than 256 bytes", field="token")
        self.address = address
        self.timeout_ms = int(timeout_ms)
        self.session = 0
        self.proto = 0
        self.server = ""
        self.idle_timeout_ms = 0
        self.limits = dict(wire.LIMITS)
        self.failure_hook = None  # called with the error before a transport failure is raised
        self._lock = threading.Lock()
        self._sock = None
        self._owner = True  # False for a sibling: its close() sends no BYE
        self._dial()
        try:
            self._hello(client, token)
        except BaseException:
            self._abandon()
            raise

    def _dial(self):
        try:
            self._sock = _nng.ReqSocket()
            s = self._sock
            s.set_size(_nng.OPT_RECVMAXSZ, wire.LIMITS["message_bytes"] + 4096)
            s.set_ms(_nng.OPT_SENDTIMEO, self.timeout_ms)
            s.set_ms(_nng.OPT_RECVTIMEO, self.timeout_ms)
            s.set_ms(_nng.OPT_RECONNMINT, 50)
            s.set_ms(_nng.OPT_RECONNMAXT, 1000)
            s.set_ms(_nng.OPT_REQ_RESENDTIME, _nng.DURATION_INFINITE)
            s.dial(self.address)
        except _nng.NNGError as e:
            self._abandon()
            raise _nng_error(e, "dial", self.address) from None
        except OSError as e:  # libnng missing
            self._abandon()
            raise errors.ConnectError(str(e)) from None
        maxsz = self.limits.get("message_bytes", 0)
        if 0 < maxsz < wire.LIMITS["message_bytes"]:
            self._sock.set_size(_nng.OPT_RECVMAXSZ, maxsz)

    def sibling(self):
        """A second socket on the same session (PROTOCOL.md: to pipeline,
        open more sockets), for requests that wait -- a background FETCH --
        while this one goes on serving. Closing it leaves the session open."""
        c = Connection.__new__(Connection)
        c.address, c.timeout_ms = self.address, self.timeout_ms
        c.session, c.proto, c.server = self.session, self.proto, self.server
        c.idle_timeout_ms, c.limits = self.idle_timeout_ms, dict(self.limits)
        c.failure_hook = self.failure_hook
        c._lock = threading.Lock()
        c._sock = None
        c._owner = False
        c._dial()
        return c

    def _abandon(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _hello(self, client, token):
        body = {"proto_min": wire.PROTO_VERSION_MIN, "proto_max": wire.PROTO_VERSION_MAX,
                "client": client}
        if token is not None:
            body["token"] = token
        r = self.request(wire.HELLO, body, session=0)
        self.session = r["session"]
        self.proto = r["proto"]
        self.server = r["server"]
        self.idle_timeout_ms = r["idle_timeout_ms"]
        self.limits = r["limits"]
        if not wire.PROTO_VERSION_MIN <= self.proto <= wire.PROTO_VERSION_MAX:
            self.close()
            raise errors.ProtocolError(f"daemon chose protocol {self.proto}, outside the "
                                       f"{wire.PROTO_VERSION_MIN}..{wire.PROTO_VERSION_MAX} "
                                       "this client speaks", field="body.proto")
        maxsz = self.limits.get("message_bytes", 0)
        if 0 < maxsz < wire.LIMITS["message_bytes"]:
            self._sock.set_size(_nng.OPT_RECVMAXSZ, maxsz)

    @property
    def closed(self):
        return self._sock is None

    def request(self, kind, body, session=None, extra_wait_ms=0, error_prefix=""):
        """Send one request and return the checked body of its reply.
        Raises the KilnError of an error reply, or of a transport failure."""
        if session is None:
            session = self.session
        data = wire.encode(kind, session, body)
        limit = self.limits.get("message_bytes") or wire.LIMITS["message_bytes"]
        if len(data) > limit:
            # The daemon would drop the connection without a reply.
            raise errors.ArgumentError(
                f"{wire.KIND_NAMES.get(kind, kind)} of {len(data)} bytes does not fit in one "
                f"message (message_bytes {limit}): send less at once", field="body")
        with self._lock:
            if self._sock is None:
                raise errors.ClosedError(f"the connection to {self.address} is closed")
            what = wire.KIND_NAMES.get(kind, str(kind))
            try:
                self._sock.send(data)
                if extra_wait_ms:
                    self._sock.set_ms(_nng.OPT_RECVTIMEO, self.timeout_ms + extra_wait_ms)
                try:
                    raw = self._sock.recv()
                finally:
                    if extra_wait_ms:
                        self._sock.set_ms(_nng.OPT_RECVTIMEO, self.timeout_ms)
            except _nng.NNGError as e:
                err = _nng_error(e, what, self.address)
                if self.failure_hook is not None:
                    err = self.failure_hook(err) or err
                raise err from None
        r = wire.decode_reply(kind, raw)
        if r.code != 0:
            raise r.error(error_prefix)
        return r.body

    # ---- the requests ----------------------------------------------------

    def ping(self):
        self.request(wire.PING, {})

    def status(self):
        """The daemon's counters (PROTOCOL.md, STATUS), as a dict."""
        return self.request(wire.STATUS, {})

    def submit(self, nodes, keep, device=None, tf32=False):
        """Submit one graph (a list of node dicts) and keep `keep`; returns
        the step number. `device`: "cuda" asks for the daemon's CUDA device
        (PROTOCOL.md, SUBMIT), None or "cpu" the CPU. The daemon's refusal
        raises its typed error."""
        return self.submit_step(nodes, keep, device, tf32)["step"]

    def submit_step(self, nodes, keep, device=None, tf32=False):
        """As submit, but returns the reply: `step` and `warnings` (a list
        of dicts node, field, message; empty when the daemon had none)."""
        body = {"nodes": nodes, "keep": list(keep)}
        if device is not None and device != "cpu":
            body["device"] = device
        if tf32:
            body["tf32"] = True
        return self.request(wire.SUBMIT, body)

    def fetch(self, ids, timeout_ms=60000):
        """Values of kept vars: a list of dicts id, dtype, shape, data."""
        ids = list(ids)
        if not 0 <= timeout_ms <= wire.FETCH_TIMEOUT_MAX_MS:
            raise errors.ArgumentError(f"fetch wait {timeout_ms} ms is outside "
                                       f"0..{wire.FETCH_TIMEOUT_MAX_MS}", field="timeout_ms")
        body = self.request(wire.FETCH, {"vars": ids, "timeout_ms": int(timeout_ms)},
                            extra_wait_ms=timeout_ms)
        got = body["vars"]
        if len(got) != len(ids):
            raise errors.ProtocolError(f"FETCH of {len(ids)} vars answered with {len(got)}",
                                       field="body.vars")
        for i, (want, t) in enumerate(zip(ids, got)):
            if t["id"] != want:
                raise errors.ProtocolError(f"FETCH asked for var {want} at {i}, the reply "
                                           f"holds var {t['id']}", field="body.vars")
        return got

    def cancel(self):
        """Drop this session's steps that have not started; returns how
        many. Their kept vars fail (fetching one raises ExecError)."""
        return self.request(wire.CANCEL, {})["cancelled"]

    def release(self, ids):
        """Drop kept vars; returns (released, unknown)."""
        body = self.request(wire.RELEASE, {"vars": list(ids)})
        return body["released"], body["unknown"]

    def close(self):
        """End the session (a best-effort BYE) and close the socket."""
        if self._sock is None:
            return
        if self.session and self._owner:
            try:
                with self._lock:
                    t = min(self.timeout_ms, BYE_TIMEOUT_MS)
                    self._sock.set_ms(_nng.OPT_SENDTIMEO, t)
                    self._sock.set_ms(_nng.OPT_RECVTIMEO, t)
                    self._sock.send(wire.encode(wire.BYE, self.session, {}))
                    self._sock.recv()
            except Exception:
                pass
        self.session = 0
        with self._lock:
            self._abandon()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<kiln.Connection {self.address} session={self.session} {self.server!r}>"
