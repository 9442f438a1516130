"""reduction.py: reductions, arg-reductions and matmul.

All are built from the `reduce` meta-op and element-wise ops. Dtypes
follow Jittor: sum and prod keep an integer dtype (bool counts as int32),
mean gives a float (float32, float64 for int64 or float64 input), max and
min keep the dtype (bool included). argmax/argmin return Jittor's pair
(index as int32, value); the index is the first position of the extreme,
found as the smallest coordinate where x equals the reduced value (NaN
counts as the maximum and the minimum, as in numpy).

matmul broadcasts both operands to [..., n, k, m], multiplies and sums
over k: one broadcast_to per operand, a mul and a reduce, which the
daemon's fusion turns into one kernel (and a library relay later).
"""
import math
import numbers

from . import dtypes as dt
from .ops import (binary, broadcast_shapes, broadcast_to, cast, index, make, norm_dim,
                  reshape, to_var, unary, where)


def norm_dims(dims, rank):
    """Sorted unique dims; None (or empty for Jittor's reduce) means all."""
    if dims is None:
        return list(range(rank))
    if isinstance(dims, numbers.Integral):
        dims = [dims]
    out = sorted({norm_dim(d, rank) for d in dims})
    return out


def parse_reduce_args(args, kw):
    """(dims, keepdims) from Jittor's and numpy's spellings: x.sum(1),
    x.sum(1, True), x.sum(0, 1), x.sum(dim=1, keepdims=True), axis=, keepdim=."""
    dims, keep = None, False
    ints = []
    for a in args:
        if isinstance(a, bool):
            keep = a
        elif isinstance(a, numbers.Integral):
            ints.append(int(a))
        elif a is None:
            pass
        else:
            ints.extend(int(d) for d in a)
            if len(a) == 0:
                dims = ()
    if ints:
        dims = ints
    for k in ("dim", "dims", "axis"):
        if k in kw:
            dims = kw.pop(k)
    for k in ("keepdims", "keepdim"):
        if k in kw:
            keep = bool(kw.pop(k))
    if kw:
        raise TypeError(f"unexpected arguments {sorted(kw)}")
    return dims, keep


def reduce(x, op, dims=None, keepdims=False):
    """x reduced with op ("add"/"sum", "mul"/"prod", "max"/"maximum",
    "min"/"minimum", "mean") over dims (None: all)."""
    op = {"sum": "add", "prod": "mul", "multiply": "mul", "maximum": "max",
          "minimum": "min"}.get(op, op)
    if op not in ("add", "mul", "max", "min", "mean"):
        raise ValueError(f"unknown reduce op {op!r}")
    x = to_var(x)
    dims = norm_dims(dims, x.ndim)
    d = x.dtype
    back = None
    if op in ("add", "mul") and d.is_bool():
        x = cast(x, dt.int32)
    elif op in ("max", "min") and d.is_bool():
        x, back = cast(x, dt.int8), dt.bool_
    elif op == "mean":
        x = cast(x, dt.float_for(d))
    shape = []
    for k, s in enumerate(x.shape):
        if k not in dims:
            shape.append(s)
        elif keepdims:
            shape.append(1)
    from .graph import REDUCE_OPS
    y = make("reduce", x.dtype, shape, [x], reduce_op=REDUCE_OPS[op], dims=dims,
             keepdims=bool(keepdims))
    return cast(y, back) if back is not None else y


def _reducer(op):
    def f(x, *args, **kw):
        dims, keep = parse_reduce_args(args, kw)
        return reduce(x, op, dims, keep)
    f.__name__ = {"add": "sum", "mul": "prod"}.get(op, op)
    return f


sum = _reducer("add")
prod = _reducer("mul")
mean = _reducer("mean")
max = _reducer("max")
min = _reducer("min")


def all_(x, *args, **kw):
    dims, keep = parse_reduce_args(args, kw)
    return reduce(cast(to_var(x), dt.bool_), "min", dims, keep)


def any_(x, *args, **kw):
    dims, keep = parse_reduce_args(args, kw)
    return reduce(cast(to_var(x), dt.bool_), "max", dims, keep)


def var(x, *args, unbiased=False, **kw):
    dims, keep = parse_reduce_args(args, kw)
    x = to_var(x)
    x = cast(x, dt.float_for(x.dtype))
    m = reduce(x, "mean", dims, True)
    dev = binary("sub", x, broadcast_to(m, x.shape))
    dn = norm_dims(dims, x.ndim)
    n = 1
    for k in dn:
        n *= x.shape[k]
    s = reduce(binary("mul", dev, dev), "add", dims, keep)
    return binary("div", s, float(max_(n - (1 if unbiased else 0), 1)))


def std(x, *args, **kw):
    return unary("sqrt", var(x, *args, **kw))


def max_(a, b):
    return a if a > b else b


def _arg(x, dim, keepdims, op):
    x = to_var(x)
    if dim is None:
        x, dim = reshape(x, -1), 0
    dim = norm_dim(dim, x.ndim)
    v = reduce(x, op, [dim], True)
    vb = broadcast_to(v, x.shape)
    hit = binary("eq", x, vb)
    if x.dtype.is_float():  # NaN is the extreme, as in numpy
        hit = binary("logical_or", hit, binary("logical_and", binary("ne", x, x),
                                               binary("ne", vb, vb)))
    n = x.shape[dim]
    i = where(hit, index(x.shape, dim, dt.int32), n)
    idx = reduce(i, "min", [dim], keepdims)
    if not keepdims:
        v = reshape(v, [s for k, s in enumerate(v.shape) if k != dim])
    return idx, v


def argmax(x, dim=None, keepdims=False):
    """Jittor's argmax: (indices as int32, values) along dim."""
    return _arg(x, dim, keepdims, "max")


def _matmul_node(a, b, d, tb):
    """a @ op(b) as one relay node (b at least 2-D; op transposes when tb)."""
    a, b = cast(a, d), cast(b, d)
    a1 = a.ndim == 1
    if a1:
        a = reshape(a, 1, a.shape[0])
    n, k = a.shape[-2:]
    m, k2 = (b.shape[-2], b.shape[-1]) if tb else (b.shape[-1], b.shape[-2])
    if k != k2:
        raise ValueError(f"matmul of {list(a.shape)} and {list(b.shape)}"
                         f"{' transposed' if tb else ''}: inner dims {k} and {k2} differ")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if b.ndim == 2:  # rows of every batch at once: one 2-D product
        rows = math.prod(a.shape[:-1])
        y = make("matmul", d, (rows, m), [reshape(a, rows, k), b], trans=[0, 1 if tb else 0])
        y = reshape(y, a.shape[:-1] + (m,))
    else:
        nb = len(batch)
        if tuple(a.shape[:-2]) != batch:
            a = broadcast_to(a, batch + (n, k), list(range(nb - (a.ndim - 2))))
        bs = tuple(b.shape[-2:])
        if tuple(b.shape[:-2]) != batch:
            b = broadcast_to(b, batch + bs, list(range(nb - (b.ndim - 2))))
        y = make("matmul", d, batch + (n, m), [a, b], trans=[0, 1 if tb else 0])
    return reshape(y, y.shape[:-2] + (m,)) if a1 else y


def argmin(x, dim=None, keepdims=False):
    return _arg(x, dim, keepdims, "min")


def matmul(a, b, transpose_b=False):
    """numpy's matmul: 1-D operands, batch broadcasting, promotion.
    `transpose_b` reads b's last two dims swapped (a @ b^T) without a copy.

    float32 and float64 products are one `matmul` node, which the daemon
    hands to a BLAS library; other dtypes are meta-ops (broadcast both to
    [..., n, k, m], multiply, sum over k)."""
    a, b = to_var(a), to_var(b)
    if transpose_b and b.ndim >= 2:
        d = dt.promote(a.dtype, b.dtype)
        if d in (dt.float32, dt.float64) and a.ndim >= 1:
            return _matmul_node(a, b, d, True)
        b = b.transpose(-1, -2)
    if a.ndim >= 1 and b.ndim >= 2:
        d = dt.promote(a.dtype, b.dtype)
        if d in (dt.float32, dt.float64):
            return _matmul_node(a, b, d, False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul does not take scalars; use *")
    a1, b1 = a.ndim == 1, b.ndim == 1
    if a1:
        a = reshape(a, 1, a.shape[0])
    if b1:
        b = reshape(b, b.shape[0], 1)
    n, k = a.shape[-2:]
    k2, m = b.shape[-2:]
    if k != k2:
        raise ValueError(f"matmul of {list(a.shape)} and {list(b.shape)}: inner dims "
                         f"{k} and {k2} differ")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    d = dt.promote(a.dtype, b.dtype)
    back = None
    if d.is_bool():
        d, back = dt.int32, dt.bool_
    a, b = cast(a, d), cast(b, d)
    nb = len(batch)
    full = batch + (n, k, m)
    A = broadcast_to(a, full, list(range(nb - (a.ndim - 2))) + [nb + 2])
    B = broadcast_to(b, full, list(range(nb - (b.ndim - 2))) + [nb])
    y = reduce(binary("mul", A, B), "add", [nb + 1])
    if a1 and b1:
        y = reshape(y, ())
    elif a1:
        y = reshape(y, batch + (m,))
    elif b1:
        y = reshape(y, batch + (n,))
    return cast(y, back) if back is not None else y
