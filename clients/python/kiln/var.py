"""var.py: jt.Var, the user's handle on one var of the lazy graph.

A Var points at a graph Node (graph.py) and counts itself on it
(`nvars`), which is how a SUBMIT knows which vars the daemon must keep.
Nodes never change; what changes is which node a Var points at: in-place
operators (`+=`), `assign` and item assignment make a new node and move
the Var to it, as Jittor does.

Reading a value (numpy(), data, item(), printing) is a sync point: the
pending graph is submitted and the value fetched, then cached on the node.
Everything else is lazy.
"""
import numbers

import numpy as np

from . import dtypes as dt


class Var:
    """A lazily computed tensor. jt.Var(data) is jt.array(data)."""

    # numpy arrays and scalars defer to our reflected operators (and numpy
    # ufuncs refuse Vars instead of silently fetching them).
    __array_ufunc__ = None

    def __init__(self, data=None, dtype=None):
        v = ops.array(data if data is not None else [], dtype)
        self._node = v._node
        self._node.nvars += 1
        self._stop_grad = False

    @classmethod
    def _wrap(cls, node):
        v = cls.__new__(cls)
        v._node = node
        node.nvars += 1
        v._stop_grad = False
        return v

    def __del__(self):
        n = getattr(self, "_node", None)
        if n is not None:
            n.nvars -= 1

    def _set_node(self, node):
        old = self._node
        node.nvars += 1
        self._node = node
        old.nvars -= 1
        return self

    # ---- what it is ------------------------------------------------------

    @property
    def shape(self):
        return Shape(self._node.shape)

    @property
    def dtype(self):
        return self._node.dtype

    @property
    def ndim(self):
        return len(self._node.shape)

    def dim(self):
        return self.ndim

    def numel(self):
        n = 1
        for s in self._node.shape:
            n *= s
        return n

    def size(self, dim=None):
        return self.shape if dim is None else self._node.shape[ops.norm_dim(dim, self.ndim)]

    def __len__(self):
        if not self._node.shape:
            raise TypeError("len() of a 0-d var")
        return self._node.shape[0]

    @property
    def id(self):
        return self._node.id

    def name(self, *a):
        return f"var{self._node.id}"

    # ---- values ----------------------------------------------------------

    def _value(self):
        n = self._node
        if n.value is None:
            n.rt.fetch([n])
        return n.value

    def numpy(self):
        """The value, as a new numpy array (a sync point)."""
        return self._value().copy()

    @property
    def data(self):
        return self.numpy()

    @data.setter
    def data(self, value):
        self.assign(value)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs one element, this var has {self.numel()}")
        return self._value().reshape(-1)[0].item()

    def tolist(self):
        return self._value().tolist()

    def sync(self):
        """Wait until the daemon has computed this var (its value stays
        there until read); raises if its step failed."""
        if self._node.value is None:
            wait_computed([self])
        return self

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __bool__(self):
        if self.numel() != 1:
            raise ValueError("the truth value of a var with more than one element is "
                             "ambiguous; use .any() or .all()")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if not self.dtype.is_int():
            raise TypeError("only integer vars can be used as an index")
        return int(self.item())

    def __format__(self, spec):
        if self.numel() == 1 and spec:
            return format(self.item(), spec)
        return format(str(self), spec)

    def __repr__(self):
        return f"jt.Var({np.array2string(self._value(), separator=', ')}, dtype={self.dtype})"

    __str__ = __repr__

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def __hash__(self):
        return id(self)

    # ---- gradients and identity ----------------------------------------------

    def stop_grad(self):
        """No gradient flows back through this var from now on (in place,
        as in Jittor): it moves to a stop_grad node of its value."""
        if not self._stop_grad:
            self._stop_grad = True
            node = autograd.stop_grad_node(self._node)
            if node is not self._node:
                self._set_node(node)
        return self

    def start_grad(self):
        """Undo stop_grad: back to the node it was taken from, when that
        node is still this var's value."""
        if self._stop_grad:
            self._stop_grad = False
            n = self._node
            if n.op == "stop_grad" and n.inputs:
                self._set_node(n.inputs[0])
        return self

    def is_stop_grad(self):
        return self._stop_grad

    @property
    def requires_grad(self):
        return not self._stop_grad

    @requires_grad.setter
    def requires_grad(self, v):
        if v:
            self.start_grad()
        else:
            self.stop_grad()

    def requires_grad_(self, v=True):
        self.requires_grad = v
        return self

    def detach(self):
        """A new Var with this value, through which no gradient flows."""
        v = Var._wrap(self._node)
        return v.stop_grad()

    @property
    def grad(self):
        raise AttributeError(
            "kiln Vars, like Jittor's, have no .grad: use jt.grad(loss, [vars]), or "
            "optimizer.backward(loss) and then var.opt_grad(optimizer)")

    def backward(self, *a, **k):
        raise AttributeError(
            "kiln Vars, like Jittor's, have no .backward(): use optimizer.step(loss), or "
            "optimizer.backward(loss) then optimizer.step(), or jt.grad(loss, vars)")

    def opt_grad(self, optimizer):
        """This parameter's gradient held by `optimizer` (after its
        backward(loss) or step(loss)), as in Jittor."""
        return optimizer.grad_of(self)

    def clone(self):
        return Var._wrap(self._node)

    def assign(self, v):
        """Make this Var hold v (broadcast and cast to this var's shape and
        dtype); other Vars sharing the old value are unchanged."""
        v = ops.to_var(v) if not ops.is_scalar(v) else ops.const(v, (), self.dtype)
        v = ops.broadcast_to(ops.cast(v, self.dtype), self._node.shape)
        return self._set_node(v._node)

    def update(self, v):
        """Jittor's update: assign, with the gradient between this var's
        old and new value cut (optimizers and running statistics)."""
        self.assign(v)
        if self._node.dtype.is_float() and self._node.op != "stop_grad":
            node = autograd.stop_grad_node(self._node)
            if node is not self._node:
                self._set_node(node)
        return self

    def swap(self, other):
        a, b = self._node, other._node
        self._set_node(b)
        other._set_node(a)
        return self

    # ---- filling in place (Jittor's and PyTorch's trailing-underscore forms) ----

    def fill_(self, value):
        return self.update(ops.full(self._node.shape, value, self.dtype))

    def zero_(self):
        return self.fill_(0)

    def uniform_(self, low=0.0, high=1.0):
        from . import init
        return init.uniform_(self, low, high)

    def gauss_(self, mean=0.0, std=1.0):
        from . import init
        return init.gauss_(self, mean, std)

    normal_ = gauss_

    def cuda(self, *a, **k):
        return self  # the daemon places data; accepted for Jittor and PyTorch code

    cpu = cuda

    def to(self, *a, **k):
        d = next((x for x in list(a) + [k.get("dtype")] if isinstance(x, (str, dt.dtype))
                  and x not in ("cpu", "cuda")), None)
        return self.astype(d) if d is not None else self

    # ---- dtypes ------------------------------------------------------------

    def astype(self, d):
        return ops.cast(self, dt.get(d))

    cast = astype

    def float32(self):
        return ops.cast(self, dt.float32)

    def float64(self):
        return ops.cast(self, dt.float64)

    def int8(self):
        return ops.cast(self, dt.int8)

    def uint8(self):
        return ops.cast(self, dt.uint8)

    def int32(self):
        return ops.cast(self, dt.int32)

    def int64(self):
        return ops.cast(self, dt.int64)

    def bool(self):
        return ops.cast(self, dt.bool_)

    float = float32
    double = float64
    int = int32
    long = int64

    def is_float(self):
        return self.dtype.is_float()

    # ---- indexing ------------------------------------------------------------

    def __getitem__(self, idx):
        return lowered.getitem(self, idx)

    def __setitem__(self, idx, value):
        self._set_node(lowered.setitem(self, idx, value)._node)

    # ---- arithmetic ----------------------------------------------------------

    def __add__(self, o): return ops.binary("add", self, o)
    def __radd__(self, o): return ops.binary("add", o, self)
    def __sub__(self, o): return ops.binary("sub", self, o)
    def __rsub__(self, o): return ops.binary("sub", o, self)
    def __mul__(self, o): return ops.binary("mul", self, o)
    def __rmul__(self, o): return ops.binary("mul", o, self)
    def __truediv__(self, o): return ops.binary("div", self, o)
    def __rtruediv__(self, o): return ops.binary("div", o, self)
    def __floordiv__(self, o): return ops.binary("floor_div", self, o)
    def __rfloordiv__(self, o): return ops.binary("floor_div", o, self)
    def __mod__(self, o): return ops.binary("mod", self, o)
    def __rmod__(self, o): return ops.binary("mod", o, self)
    def __pow__(self, o): return ops.binary("pow", self, o)
    def __rpow__(self, o): return ops.binary("pow", o, self)
    def __matmul__(self, o): return reduction.matmul(self, o)
    def __rmatmul__(self, o): return reduction.matmul(o, self)
    def __and__(self, o): return ops.binary("bitwise_and", self, o)
    def __rand__(self, o): return ops.binary("bitwise_and", o, self)
    def __or__(self, o): return ops.binary("bitwise_or", self, o)
    def __ror__(self, o): return ops.binary("bitwise_or", o, self)
    def __xor__(self, o): return ops.binary("bitwise_xor", self, o)
    def __rxor__(self, o): return ops.binary("bitwise_xor", o, self)
    def __lshift__(self, o): return ops.binary("shl", self, o)
    def __rlshift__(self, o): return ops.binary("shl", o, self)
    def __rshift__(self, o): return ops.binary("shr", self, o)
    def __rrshift__(self, o): return ops.binary("shr", o, self)
    def __eq__(self, o): return ops.binary("eq", self, o)
    def __ne__(self, o): return ops.binary("ne", self, o)
    def __lt__(self, o): return ops.binary("lt", self, o)
    def __le__(self, o): return ops.binary("le", self, o)
    def __gt__(self, o): return ops.binary("gt", self, o)
    def __ge__(self, o): return ops.binary("ge", self, o)
    def __neg__(self): return ops.unary("neg", self)
    def __pos__(self): return self
    def __abs__(self): return ops.unary("abs", self)
    def __invert__(self): return ops.unary("bitwise_not", self)

    def _inplace(op):
        def f(self, o):
            return self.assign(ops.binary(op, self, o))
        return f

    __iadd__ = _inplace("add")
    __isub__ = _inplace("sub")
    __imul__ = _inplace("mul")
    __itruediv__ = _inplace("div")
    __ifloordiv__ = _inplace("floor_div")
    __imod__ = _inplace("mod")
    __ipow__ = _inplace("pow")
    __iand__ = _inplace("bitwise_and")
    __ior__ = _inplace("bitwise_or")
    __ixor__ = _inplace("bitwise_xor")
    del _inplace

    # ---- shapes ----------------------------------------------------------------

    def reshape(self, *shape): return ops.reshape(self, *shape)
    view = reshape
    def flatten(self, start_dim=0, end_dim=-1): return lowered.flatten(self, start_dim, end_dim)
    def squeeze(self, dim=None): return lowered.squeeze(self, dim)
    def unsqueeze(self, dim): return lowered.unsqueeze(self, dim)
    def permute(self, *dims): return lowered.permute(self, *dims)
    def transpose(self, *dims): return lowered.transpose(self, *dims)
    def t(self): return lowered.transpose(self)

    @property
    def T(self):
        return lowered.permute(self)

    def broadcast(self, shape, dims=None): return meta.broadcast(self, shape, dims)
    def broadcast_var(self, y): return meta.broadcast(self, y.shape)
    def expand(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = tuple(shape[0])
        shape = [self.shape[k - (len(shape) - self.ndim)] if s == -1 else s
                 for k, s in enumerate(shape)]
        return ops.broadcast_to(self, shape)
    expand_as = broadcast_var
    def repeat(self, *reps): return lowered.repeat(self, *reps)
    def flip(self, dim=0): return lowered.flip(self, dim)
    def roll(self, shifts, dims=None): return lowered.roll(self, shifts, dims)
    def split(self, size, dim=0): return lowered.split(self, size, dim)
    def chunk(self, chunks, dim=0): return lowered.chunk(self, chunks, dim)
    def reindex(self, *a, **k): return meta.reindex(self, *a, **k)
    def reindex_reduce(self, *a, **k): return meta.reindex_reduce(self, *a, **k)
    def reindex_var(self, *a, **k): return meta.reindex_var(self, *a, **k)
    def matmul(self, o): return reduction.matmul(self, o)
    def where(self, a, b): return ops.where(self, a, b)

    # ---- reductions ----------------------------------------------------------------

    def sum(self, *a, **k): return reduction.sum(self, *a, **k)
    def mean(self, *a, **k): return reduction.mean(self, *a, **k)
    def max(self, *a, **k): return reduction.max(self, *a, **k)
    def min(self, *a, **k): return reduction.min(self, *a, **k)
    def prod(self, *a, **k): return reduction.prod(self, *a, **k)
    def all(self, *a, **k): return reduction.all_(self, *a, **k)
    def any(self, *a, **k): return reduction.any_(self, *a, **k)
    def var(self, *a, **k): return reduction.var(self, *a, **k)
    def std(self, *a, **k): return reduction.std(self, *a, **k)
    def argmax(self, dim=None, keepdims=False): return reduction.argmax(self, dim, keepdims)
    def argmin(self, dim=None, keepdims=False): return reduction.argmin(self, dim, keepdims)
    def reduce(self, op, *a, **k):
        dims, keep = reduction.parse_reduce_args(a, k)
        return reduction.reduce(self, op, dims, keep)
    add = __add__
    subtract = sub = __sub__
    multiply = mul = __mul__
    divide = div = __truediv__
    maximum = lambda self, o: ops.binary("maximum", self, o)  # noqa: E731
    minimum = lambda self, o: ops.binary("minimum", self, o)  # noqa: E731


class Shape(tuple):
    """A var's shape: a tuple that also equals the same sizes as a list,
    as Jittor's NanoVector does (x.shape == [2, 3])."""

    def __eq__(self, other):
        if isinstance(other, list):
            other = tuple(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


from . import ops, reduction, lowered, meta, autograd  # noqa: E402  (they import Var)
from . import functions  # noqa: E402,F401  (adds the element-wise methods)


SYNC_FETCH_BYTES = 64 << 10  # values this small are fetched by a sync: one round trip


def wait_computed(vars):
    """Block until every var is computed in the daemon. Small values
    (SYNC_FETCH_BYTES in all) are simply fetched, in one request, and then
    read for free; for larger ones a scalar that reads none of their
    elements (an empty slice of each, summed) is fetched instead, so no
    data moves. Steps of a session run in order and a step fails when an
    input failed, so its answer says both that they are done and whether
    they failed."""
    from . import ops
    nodes = [v._node for v in vars]
    if sum(n.dtype.itemsize * int(np.prod(n.shape, dtype=np.int64)) for n in nodes) \
            <= SYNC_FETCH_BYTES:
        if nodes:
            nodes[0].rt.fetch(nodes)
        return
    marker = None
    for v in vars:
        flat = ops.reshape(v, -1)[0:0]
        part = ops.cast(flat, "int32").sum()
        marker = part if marker is None else marker + part
    if marker is not None:
        marker._node.rt.fetch([marker._node])
