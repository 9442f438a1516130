"""errors.py: the exceptions of the kiln client, one per error code.

Every failure that involves the daemon or the connection is a KilnError
carrying the protocol's error code (PROTOCOL.md section 5), its stable
name, the field at fault (``"body.nodes[3].shape"``), the graph node at
fault (or -1) and the daemon's message. Codes below 100 come from the
daemon; 100 and up arise in this client. Each code has its own class, so
callers can catch exactly what they expect; the classes also derive from
the closest Python built-in (a refused value is a ValueError, a timeout a
TimeoutError), so generic handlers keep working. KilnError itself is a
RuntimeError, which is what Jittor raises for its own failures.

Mistakes caught on the client before anything is sent (a shape that does
not broadcast, an index out of range) raise the plain built-ins
(ValueError, TypeError, IndexError) at the line that made them.
"""

OK = 0
MALFORMED = 1
TYPE = 2
MISSING = 3
FIELD = 4
LIMIT = 5
VALUE = 6
KIND = 7
VERSION = 8
SESSION = 9
AUTH = 10
NOTFOUND = 11
NOMEM = 12
BUSY = 13
UNSUPPORTED = 14
SHUTDOWN = 15
INTERNAL = 16
EXEC = 17
NOTREADY = 18
QUOTA = 19
DEVICE = 20
CONNECT = 100
TIMEDOUT = 101
CLOSED = 102
IO = 103
PROTO = 104
ARG = 105

NAMES = {
    OK: "OK", MALFORMED: "MALFORMED", TYPE: "TYPE", MISSING: "MISSING", FIELD: "FIELD",
    LIMIT: "LIMIT", VALUE: "VALUE", KIND: "KIND", VERSION: "VERSION", SESSION: "SESSION",
    AUTH: "AUTH", NOTFOUND: "NOTFOUND", NOMEM: "NOMEM", BUSY: "BUSY",
    UNSUPPORTED: "UNSUPPORTED", SHUTDOWN: "SHUTDOWN", INTERNAL: "INTERNAL", EXEC: "EXEC",
    NOTREADY: "NOTREADY", QUOTA: "QUOTA", DEVICE: "DEVICE", CONNECT: "CONNECT", TIMEDOUT: "TIMEDOUT", CLOSED: "CLOSED",
    IO: "IO", PROTO: "PROTO", ARG: "ARG",
}


def code_name(code):
    """The stable name of a code, or "UNKNOWN" for one this client does not know."""
    return NAMES.get(code, "UNKNOWN")


class KilnError(RuntimeError):
    """A failure reported by the daemon or the connection to it."""

    code = -1

    def __init__(self, message, code=None, field="", node=-1, name=None):
        if code is not None:
            self.code = code
        self.name = name or code_name(self.code)
        self.field = field or ""
        self.node = node
        self.message = message
        super().__init__(message)

    def __str__(self):
        return f"{self.name}: {self.message}"


class ProtocolError(KilnError):
    """A message broke the protocol: ours (MALFORMED, MISSING, FIELD, KIND,
    refused by the daemon: a bug in this client) or the daemon's (PROTO)."""
    code = PROTO


class DaemonTypeError(KilnError, TypeError):
    """TYPE: a field or graph input has the wrong type (e.g. exp of an int)."""
    code = TYPE


class LimitError(KilnError, ValueError):
    """LIMIT: a protocol limit was exceeded; the message names it."""
    code = LIMIT


class InvalidValueError(KilnError, ValueError):
    """VALUE: a value is out of range (a bad shape, an index expression
    that does not parse)."""
    code = VALUE


class VersionError(KilnError):
    code = VERSION


class SessionError(KilnError):
    """SESSION: the session is unknown or expired (the daemon restarted, or
    the session was idle too long)."""
    code = SESSION


class AuthError(KilnError, PermissionError):
    code = AUTH


class NotFoundError(KilnError, LookupError):
    code = NOTFOUND


class OutOfMemoryError(KilnError, MemoryError):
    code = NOMEM


class BusyError(KilnError):
    code = BUSY


class UnsupportedError(KilnError, NotImplementedError):
    code = UNSUPPORTED


class ShutdownError(KilnError):
    code = SHUTDOWN


class InternalError(KilnError):
    code = INTERNAL


class ExecError(KilnError):
    """EXEC: a step failed while running; the message names the node and op."""
    code = EXEC


class NotReadyError(KilnError, TimeoutError):
    code = NOTREADY


class QuotaError(KilnError):
    """QUOTA: the user's quota (set by the daemon's operator) does not allow
    the request; the message names the quota."""
    code = QUOTA


class DeviceError(KilnError):
    """DEVICE: the daemon's compute device failed (a CUDA error that leaves
    it unusable). The step's results are lost; the daemon exits so that
    its supervisor restarts it (an embedded daemon is restarted by the
    next connection)."""
    code = DEVICE


class ConnectError(KilnError, ConnectionError):
    """CONNECT: no daemon answers at the address, or none could be started."""
    code = CONNECT


class TimedOutError(KilnError, TimeoutError):
    """TIMEDOUT: no reply within the timeout (the daemon hangs or died)."""
    code = TIMEDOUT


class ClosedError(KilnError, ConnectionError):
    code = CLOSED


class TransportError(KilnError, ConnectionError):
    """IO: the transport failed (connection reset, message too large)."""
    code = IO


class ArgumentError(KilnError, ValueError):
    code = ARG


_BY_CODE = {
    MALFORMED: ProtocolError, TYPE: DaemonTypeError, MISSING: ProtocolError,
    FIELD: ProtocolError, LIMIT: LimitError, VALUE: InvalidValueError, KIND: ProtocolError,
    VERSION: VersionError, SESSION: SessionError, AUTH: AuthError, NOTFOUND: NotFoundError,
    NOMEM: OutOfMemoryError, BUSY: BusyError, UNSUPPORTED: UnsupportedError,
    SHUTDOWN: ShutdownError, INTERNAL: InternalError, EXEC: ExecError,
    NOTREADY: NotReadyError, QUOTA: QuotaError, DEVICE: DeviceError, CONNECT: ConnectError, TIMEDOUT: TimedOutError,
    CLOSED: ClosedError, IO: TransportError, PROTO: ProtocolError, ARG: ArgumentError,
}


def error_class(code):
    """The exception class for a code; KilnError for codes not known here."""
    return _BY_CODE.get(code, KilnError)


def make_error(code, message, field="", node=-1, name=None):
    """An exception of the right class for `code` (any int)."""
    cls = error_class(code)
    if name is None:
        name = code_name(code)
    return cls(message, code=code, field=field, node=node, name=name)
