"""_nng.py: the few NNG calls the client needs, through ctypes.

kiln talks to kilnd over one NNG req0 socket. NNG is loaded from the
system's libnng.so.1 (Debian's libnng1, which libnng-dev pulls in), so the
package needs no compile step. Only the synchronous socket API is used:
open, set options, dial, send, receive, close. ctypes releases the GIL
around every foreign call, so a thread waiting for a reply does not stop
the others.

The library is loaded on first use, not at import, so that `import kiln`
works (and its errors are readable) on a machine without NNG.
"""
import ctypes
import ctypes.util
import os
import threading

# nng.h error numbers (stable in NNG 1.x).
EINTR = 1
ENOMEM = 2
EINVAL = 3
ETIMEDOUT = 5
ECONNREFUSED = 6
ECLOSED = 7
ENOTSUP = 9
ENOENT = 12
EPROTO = 13
EUNREACHABLE = 14
EADDRINVAL = 15
EPERM = 16
EMSGSIZE = 17
ECONNABORTED = 18
ECONNRESET = 19
ECONNSHUT = 31

FLAG_ALLOC = 1
DURATION_INFINITE = -1

OPT_SENDTIMEO = b"send-timeout"
OPT_RECVTIMEO = b"recv-timeout"
OPT_RECVMAXSZ = b"recv-size-max"
OPT_RECONNMINT = b"reconnect-time-min"
OPT_RECONNMAXT = b"reconnect-time-max"
OPT_REQ_RESENDTIME = b"req:resend-time"


class _Socket(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class _Dialer(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


_lib = None
_lib_lock = threading.Lock()


class NNGError(Exception):
    """A failed NNG call: `errno` is NNG's error number."""

    def __init__(self, errno, what):
        self.errno = errno
        super().__init__(f"{what}: {strerror(errno)}")


def _candidates():
    env = os.environ.get("KILN_LIBNNG")
    if env:
        yield env
    yield "libnng.so.1"
    found = ctypes.util.find_library("nng")
    if found:
        yield found
    yield "libnng.so"


def lib():
    """The loaded libnng, with prototypes set. Raises OSError if absent."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        errors = []
        for name in _candidates():
            try:
                l = ctypes.CDLL(name)
                break
            except OSError as e:
                errors.append(f"{name}: {e}")
        else:
            raise OSError("kiln needs NNG's shared library (Debian: apt-get install libnng1): "
                          + "; ".join(errors))
        S, c_int, c_char_p, c_void_p, c_size_t = (_Socket, ctypes.c_int, ctypes.c_char_p,
                                                   ctypes.c_void_p, ctypes.c_size_t)
        protos = {
            "nng_req0_open": (c_int, [ctypes.POINTER(S)]),
            "nng_close": (c_int, [S]),
            "nng_socket_set_ms": (c_int, [S, c_char_p, ctypes.c_int32]),
            "nng_socket_set_size": (c_int, [S, c_char_p, c_size_t]),
            "nng_dial": (c_int, [S, c_char_p, ctypes.POINTER(_Dialer), c_int]),
            "nng_send": (c_int, [S, c_void_p, c_size_t, c_int]),
            "nng_recv": (c_int, [S, c_void_p, ctypes.POINTER(c_size_t), c_int]),
            "nng_free": (None, [c_void_p, c_size_t]),
            "nng_strerror": (c_char_p, [c_int]),
        }
        for fn, (res, args) in protos.items():
            f = getattr(l, fn)
            f.restype = res
            f.argtypes = args
        _lib = l
        return l


def strerror(errno):
    try:
        return lib().nng_strerror(errno).decode("utf-8", "replace")
    except OSError:
        return f"NNG error {errno}"


class ReqSocket:
    """One req0 socket, dialled to one address. Not thread-safe: the caller
    serialises requests (a REQ socket has one request in flight)."""

    def __init__(self):
        self._l = lib()
        self._s = _Socket()
        rv = self._l.nng_req0_open(ctypes.byref(self._s))
        if rv != 0:
            raise NNGError(rv, "nng_req0_open")
        self._open = True

    def set_ms(self, opt, ms):
        rv = self._l.nng_socket_set_ms(self._s, opt, int(ms))
        if rv != 0:
            raise NNGError(rv, f"set {opt.decode()}")

    def set_size(self, opt, size):
        rv = self._l.nng_socket_set_size(self._s, opt, int(size))
        if rv != 0:
            raise NNGError(rv, f"set {opt.decode()}")

    def dial(self, address):
        """Synchronous dial: fails at once (ECONNREFUSED, ENOENT) when
        nothing listens, instead of retrying in the background."""
        rv = self._l.nng_dial(self._s, address.encode(), None, 0)
        if rv != 0:
            raise NNGError(rv, f"dial {address}")

    def send(self, data):
        rv = self._l.nng_send(self._s, data, len(data), 0)
        if rv != 0:
            raise NNGError(rv, "send")

    def recv(self):
        ptr = ctypes.c_void_p()
        size = ctypes.c_size_t()
        rv = self._l.nng_recv(self._s, ctypes.byref(ptr), ctypes.byref(size), FLAG_ALLOC)
        if rv != 0:
            raise NNGError(rv, "receive")
        try:
            return ctypes.string_at(ptr, size.value)
        finally:
            self._l.nng_free(ptr, size.value)

    def close(self):
        if self._open:
            self._open = False
            self._l.nng_close(self._s)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
