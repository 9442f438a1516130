"""kiln: the Python client of the kiln compute daemon (`import kiln as jt`).

A Jittor-compatible API over lazy graphs of meta-operators that run in a
kilnd daemon: ops build a graph here (shapes and dtypes inferred at once),
sync points (numpy(), item(), jt.sync) submit it and fetch results. With
KILN_ADDRESS unset, the first op starts a private embedded kilnd; with it
set, kiln connects there. See clients/python/README.md.

Module map: var (Var), ops (sources, casts, element-wise), functions
(named element-wise functions), reduction (reductions, matmul), lowered
(indexing, transpose, concat as reindex graphs), meta (Jittor's
meta-operators), graph (the lazy graph and the session), connection /
wire / _nng (the protocol), embedded (the private daemon), errors;
autograd (jt.grad, stop_grad, no_grad), module (jt.Module), nn (layers,
losses, conv and pooling), optim (optimizers, LR schedulers), init,
misc (cumsum, gather, sort, ...), serialize (jt.save / jt.load).
"""
from .var import Var, Shape  # first: the other modules import Var
from .dtypes import dtype, bool_, int8, uint8, int32, int64, float32, float64
from .errors import (KilnError, ProtocolError, DaemonTypeError, LimitError,
                     InvalidValueError, VersionError, SessionError, AuthError, NotFoundError,
                     OutOfMemoryError, BusyError, UnsupportedError, ShutdownError, InternalError,
                     ExecError, NotReadyError, QuotaError, DeviceError, ConnectError, TimedOutError, ClosedError,
                     TransportError, ArgumentError)
from .embedded import DaemonNotFoundError
from .connection import Connection
from .flags import flags, flag_scope, no_grad, enable_grad
from .ops import (array, cast, reshape, zeros, ones, full, zeros_like, ones_like, full_like,
                  rand, randn, rand_like, randn_like, randint, randint_like, arange, linspace,
                  eye, where, nonzero, seed, broadcast_to)
from .reduction import (sum, mean, max, min, prod, argmax, argmin, matmul, std, all_,
                        any_)
from .lowered import (permute, transpose, concat, stack, flip, repeat, roll, split, chunk,
                      squeeze, unsqueeze, flatten, getitem, setitem)
from .meta import (reindex, reindex_reduce, reindex_var, broadcast, broadcast_var, reduce,
                   check_expr)
from .ops import index
from .functions import *  # noqa: F401,F403
from . import graph as _graph
from .graph import KilnWarning
from .autograd import grad
from .module import Module, make_module
from .serialize import save, load
from .misc import (cumsum, cumprod, tril, triu, diag, trace, outer, gather, scatter,
                   index_select, masked_fill, meshgrid, unbind, cross, norm, argsort, sort, topk,
                   kthvalue, randperm, random, view_as, type_as, rot90)
from . import misc, init, optim, nn
from . import optim as lr_scheduler  # jt.lr_scheduler.StepLR, ...

__version__ = "0.1.0"

bool = bool_  # noqa: A001  (jt.bool, as in Jittor)
float = float32  # noqa: A001
double = float64
int = int32  # noqa: A001
long = int64
cat = concat
all = all_  # noqa: A001
any = any_  # noqa: A001
Var.__module__ = "kiln"


def size(x, dim=None):
    return x.size(dim)


def numel(x):
    return x.numel()


def sync(vars=None, device_sync=False):
    """Wait for vars (a Var or a list) to be computed; with none, like sync_all."""
    if vars is None:
        return sync_all()
    if isinstance(vars, Var):
        vars = [vars]
    vars = [v for v in vars if v._node.value is None]
    if vars:
        from .var import wait_computed
        wait_computed(vars)


def sync_all(device_sync=False):
    """Submit everything pending, wait until the daemon has run it and
    every jt.fetch callback so far has been called."""
    marker = zeros((), dtype=bool_)
    rt = _graph.runtime()
    rt.fetch([marker._node])
    rt.release_dead()
    rt.wait_async()


def fetch(*args):
    """jt.fetch(a, b, ..., func): submit now and call func(a', b', ...) in
    a background thread once the values are ready, where a' is a Var's
    value as a numpy array and any other argument passes unchanged (as
    in Jittor). Callbacks run in the order of the calls; jt.sync_all
    waits for them and raises the first exception one of them raised."""
    if not args or not callable(args[-1]):
        raise TypeError("jt.fetch takes values and a callback last")
    *vals, func = args
    if len(vals) == 1 and isinstance(vals[0], (list, tuple)):
        vals = list(vals[0])
    nodes = [v._node for v in vals if isinstance(v, Var)]

    def call(values):
        it = iter(values)
        func(*[next(it).copy() if isinstance(v, Var) else v for v in vals])
    _graph.runtime().fetch_async(nodes, call)


def display_memory_info():
    st = _graph.runtime().conn.status()
    print(f"kiln daemon {st['server']}: {st['memory']['in_use']} bytes in use, "
          f"rss {st['memory']['rss']}")


def connection():
    """The Connection of this process's session (starting it if needed)."""
    return _graph.runtime().conn


def shutdown():
    """End the session and stop the embedded daemon; the next op starts anew."""
    _graph.shutdown()


ternary = where


def clean():
    sync_all()


def gc():
    import gc as _gc
    _gc.collect()
    _graph.runtime().release_dead()


def unique(x):
    import numpy as _np
    return array(_np.unique(x.numpy()))


def _daemon_has_cuda():
    """Whether the daemon has a CUDA device its steps can run on (STATUS
    devices.cuda): jt.flags.use_cuda = 1 then runs steps there."""
    try:
        st = _graph.runtime().conn.status()
    except KilnError:
        return False
    return len(st.get("devices", {}).get("cuda") or ()) > 0  # (`bool` is the dtype here)


def __getattr__(name):
    # jt.has_cuda, as Jittor scripts read it (`jt.flags.use_cuda = jt.has_cuda`):
    # asked of the daemon when first read, which starts it if need be.
    if name == "has_cuda":
        value = _daemon_has_cuda()
        globals()["has_cuda"] = value
        return value
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")
