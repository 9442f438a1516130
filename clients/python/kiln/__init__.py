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
wire / _nng (the protocol), embedded (the private daemon), errors.
"""
from .var import Var, Shape  # first: the other modules import Var
from .dtypes import dtype, bool_, int8, uint8, int32, int64, float32, float64
from .errors import (KilnError, ProtocolError, DaemonTypeError, LimitError,
                     InvalidValueError, VersionError, SessionError, AuthError, NotFoundError,
                     OutOfMemoryError, BusyError, UnsupportedError, ShutdownError, InternalError,
                     ExecError, NotReadyError, ConnectError, TimedOutError, ClosedError,
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
    vars = list(vars)
    if vars:
        _graph.runtime().fetch([v._node for v in vars])


def sync_all(device_sync=False):
    """Submit everything pending and wait until the daemon has run it."""
    marker = zeros((), dtype=bool_)
    rt = _graph.runtime()
    rt.fetch([marker._node])
    rt.release_dead()


def fetch(*args):
    """jt.fetch(v1, v2, ..., func): call func with the vars' numpy values.
    (Called before fetch returns; kiln has no async callback thread yet.)"""
    *vars_, func = args
    if len(vars_) == 1 and isinstance(vars_[0], (list, tuple)):
        vars_ = list(vars_[0])
    vals = _graph.runtime().fetch([v._node for v in vars_])
    func(*[v.copy() for v in vals])


def grad(loss, targets, retain_graph=True):
    raise NotImplementedError(
        "jt.grad is not available yet: the kiln daemon does not do autodiff yet "
        "(it is planned: gradient requests in SUBMIT)")


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


def clean():
    sync_all()


def gc():
    import gc as _gc
    _gc.collect()
    _graph.runtime().release_dead()


def unique(x):
    import numpy as _np
    return array(_np.unique(x.numpy()))
