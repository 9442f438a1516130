"""misc.py: jt.misc -- the helpers Jittor keeps in jittor/misc.py, on the
meta-ops: cumulative sums and products, triangles and diagonals, gather
and scatter, sorting (argsort, sort, topk), norms, meshgrid, cross.

Cumulative ops and sorting use a window of the sorted dim per element
(a reindex onto [..., n, n] with an overflow condition, then a reduce):
exact and differentiable, at n^2 work per row, which suits the row
lengths these are used with (classes, sequence steps, boxes). Sorting is
stable: equal values keep their order. randperm draws on the client from
jt.seed's state, as a permutation of a large dataset would not suit the
n^2 form.
"""
import numpy as np

from . import dtypes as dt
from . import lowered, ops
from .meta import reindex, reindex_reduce
from .ops import norm_dim, to_var
from .var import Var


def _names(rank, skip=None, repl=None):
    return [repl if k == skip else f"i{k}" for k in range(rank)]


def _window(x, dim, fill, cond):
    """x reindexed to x.shape + [n]: element (..., i, ..., k) reads x at k
    in `dim`, or `fill` where cond(i_dim, k) holds."""
    r = x.ndim
    n = x.shape[dim]
    shape = list(x.shape) + [n]
    exprs = _names(r, dim, f"i{r}")
    conds = [cond(f"i{dim}", f"i{r}")] if cond is not None else None
    return reindex(x, shape, exprs, overflow_value=fill, overflow_conditions=conds)


def cumsum(x, dim=-1):
    x = to_var(x)
    if x.ndim == 0:
        return x
    dim = norm_dim(dim, x.ndim)
    if x.dtype.is_bool():
        x = ops.cast(x, dt.int32)
    return _window(x, dim, 0, lambda i, k: f"{k}>{i}").sum(x.ndim)


def cumprod(x, dim=-1):
    x = to_var(x)
    if x.ndim == 0:
        return x
    dim = norm_dim(dim, x.ndim)
    if x.dtype.is_bool():
        x = ops.cast(x, dt.int32)
    return _window(x, dim, 1, lambda i, k: f"{k}>{i}").prod(x.ndim)


def _tri(x, diagonal, lower):
    x = to_var(x)
    if x.ndim < 2:
        raise ValueError("tril/triu need at least 2 dims")
    r = x.ndim
    row = ops.index(x.shape, r - 2, dt.int64)
    col = ops.index(x.shape, r - 1, dt.int64)
    keep = (col - row <= diagonal) if lower else (col - row >= diagonal)
    return ops.where(keep, x, ops.zeros((), x.dtype))


def tril(x, diagonal=0):
    return _tri(x, diagonal, True)


def triu(x, diagonal=0):
    return _tri(x, diagonal, False)


def diag(x, diagonal=0):
    """A 1-D var as a square matrix with it on `diagonal`; a 2-D var's
    `diagonal` as a 1-D var."""
    x = to_var(x)
    d = int(diagonal)
    if x.ndim == 1:
        n = x.shape[0] + abs(d)
        # (i0, i1) reads x at i0 (d >= 0) or i1 (d < 0) where i1 - i0 == d.
        src = "i0" if d >= 0 else "i1"
        return reindex(x, [n, n], [src], overflow_conditions=[f"i1-i0!={d}"])
    if x.ndim == 2:
        h, w = x.shape
        n = max(0, min(h, w - d) if d >= 0 else min(h + d, w))
        return reindex(x, [n], ["i0" if d >= 0 else f"i0+{-d}", f"i0+{d}" if d >= 0 else "i0"])
    raise ValueError("diag takes a 1-D or 2-D var")


def diagonal(x, offset=0, dim1=0, dim2=1):
    x = to_var(x)
    if x.ndim == 2 and (dim1, dim2) == (0, 1):
        return diag(x, offset)
    perm = [k for k in range(x.ndim) if k not in (dim1 % x.ndim, dim2 % x.ndim)]
    x = x.permute(perm + [dim1 % x.ndim, dim2 % x.ndim])
    h, w = x.shape[-2:]
    d = int(offset)
    n = max(0, min(h, w - d) if d >= 0 else min(h + d, w))
    r = x.ndim
    exprs = [f"i{k}" for k in range(r - 2)]
    k = f"i{r - 2}"
    exprs += [k if d >= 0 else f"{k}+{-d}", f"{k}+{d}" if d >= 0 else k]
    return reindex(x, list(x.shape[:-2]) + [n], exprs)


def trace(x):
    return diag(x).sum()


def outer(a, b):
    a, b = to_var(a), to_var(b)
    return a.reshape(-1, 1) * b.reshape(1, -1)


def gather(x, dim, index):
    """torch.gather: out[i][j] = x[index[i][j]][j] (for dim 0)."""
    x, index = to_var(x), to_var(index)
    dim = norm_dim(dim, x.ndim)
    coords = ",".join(f"i{k}" for k in range(index.ndim))
    ref = f"@e0({coords})"
    exprs = [f"({ref}<0?{ref}+xshape{dim}:{ref})" if k == dim else f"i{k}"
             for k in range(x.ndim)]
    return reindex(x, index.shape, exprs, extras=[index])


def _index_arrays(index, dim):
    return tuple(index if k == dim else ops.index(index.shape, k, dt.int64)
                 for k in range(index.ndim))


def scatter(x, dim, index, src, reduce="void"):
    """torch.scatter: out = x with out[index[i][j]][j] = src[i][j] (dim 0);
    reduce "add" or "multiply" combines instead of replacing."""
    x, index = to_var(x), to_var(index)
    dim = norm_dim(dim, x.ndim)
    if ops.is_scalar(src):
        src = ops.full(index.shape, src, x.dtype)
    src = to_var(src)
    if tuple(src.shape) != tuple(index.shape):
        src = src[tuple(slice(0, s) for s in index.shape)]
    if reduce in ("void", None, "none"):
        out = Var._wrap(x._node)
        out[_index_arrays(index, dim)] = src
        return out
    coords = ",".join(f"i{k}" for k in range(index.ndim))
    exprs = [f"@e0({coords})" if k == dim else f"i{k}" for k in range(x.ndim)]
    op = {"add": "add", "sum": "add", "multiply": "multiply", "mul": "multiply"}.get(reduce)
    if op is None:
        raise ValueError(f"scatter reduce must be void, add or multiply, not {reduce!r}")
    part = reindex_reduce(ops.cast(src, x.dtype), op, x.shape, exprs, extras=[index])
    return x + part if op == "add" else x * part


def index_select(x, dim, index):
    x = to_var(x)
    dim = norm_dim(dim, x.ndim)
    return x[(slice(None),) * dim + (to_var(index),)]


def masked_fill(x, mask, value):
    x = to_var(x)
    return ops.where(mask, ops.const(value, (), x.dtype) if ops.is_scalar(value) else value, x)


def meshgrid(*xs, indexing="ij"):
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        xs = xs[0]
    xs = [to_var(x).reshape(-1) for x in xs]
    shape = [x.shape[0] for x in xs]
    out = [ops.broadcast_to(x, shape, [k for k in range(len(xs)) if k != j])
           for j, x in enumerate(xs)]
    if indexing == "xy" and len(xs) >= 2:  # numpy's default: the first two dims swapped
        out = [o.transpose(0, 1) for o in out]
    return out


def unbind(x, dim=0):
    x = to_var(x)
    dim = norm_dim(dim, x.ndim)
    return [x[(slice(None),) * dim + (k,)] for k in range(x.shape[dim])]


def cross(a, b, dim=-1):
    a, b = to_var(a), to_var(b)
    dim = norm_dim(dim, a.ndim)

    def c(v, k):
        return v[(slice(None),) * dim + (slice(k, k + 1),)]
    a0, a1, a2 = c(a, 0), c(a, 1), c(a, 2)
    b0, b1, b2 = c(b, 0), c(b, 1), c(b, 2)
    return lowered.concat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim)


def norm(x, p=2, dim=None, keepdims=False, keepdim=None, eps=0.0):
    """The p-norm over dim (every element when None); p may be inf."""
    x = to_var(x)
    x = ops.cast(x, dt.float_for(x.dtype))
    keepdims = keepdim if keepdim is not None else keepdims
    if p in ("fro", 2):
        r = (x * x).sum(dim, keepdims=keepdims)
        return (r + eps).sqrt() if eps else r.sqrt()
    if p == 1:
        return x.abs().sum(dim, keepdims=keepdims)
    if p == float("inf"):
        return x.abs().max(dim, keepdims=keepdims)
    return x.abs().pow(p).sum(dim, keepdims=keepdims).pow(1.0 / p)


def _ranks(x, dim, descending):
    """Each element's position in a stable sort along dim (int32)."""
    r = x.ndim
    w = _window(x, dim, 0, None)  # (..., i, ..., k) -> x[..., k, ...]
    me = ops.broadcast_to(x, w.shape, [r])
    before = (w > me) if descending else (w < me)
    k_idx = ops.index(w.shape, r, dt.int32)
    i_idx = ops.index(w.shape, dim, dt.int32)
    ties = (w == me) & (k_idx < i_idx)
    return ops.cast(before | ties, dt.int32).sum(r)


def argsort(x, dim=-1, descending=False):
    """Jittor's argsort: (indices as int32, sorted values), stable."""
    x = to_var(x)
    if x.ndim == 0:
        return ops.zeros((), dt.int32), x
    dim = norm_dim(dim, x.ndim)
    rank = _ranks(x, dim, descending)
    src = ops.index(x.shape, dim, dt.int32)
    exprs = _names(x.ndim, dim, "@e0(" + ",".join(f"i{k}" for k in range(x.ndim)) + ")")
    idx = reindex_reduce(src, "add", x.shape, exprs, extras=[rank])
    return idx, gather(x, dim, idx)


def sort(x, dim=-1, descending=False, stable=True):
    """(sorted values, indices), as torch.sort."""
    idx, val = argsort(x, dim, descending)
    return val, idx


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (or smallest) along dim."""
    x = to_var(x)
    dim = norm_dim(dim, x.ndim)
    idx, val = argsort(x, dim, descending=largest)
    sl = (slice(None),) * dim + (slice(0, k),)
    return val[sl], idx[sl]


def kthvalue(x, k, dim=-1, keepdim=False):
    x = to_var(x)
    dim = norm_dim(dim, x.ndim)
    idx, val = argsort(x, dim)
    sl = (slice(None),) * dim + (slice(k - 1, k),)
    v, i = val[sl], idx[sl]
    if not keepdim:
        v, i = v.squeeze(dim), i.squeeze(dim)
    return v, i


def randperm(n, dtype="int32"):
    seed, off = ops.RANDOM.seed, ops.RANDOM.offset
    ops.RANDOM.offset = (off + max(int(n), 1)) & ((1 << 64) - 1)
    perm = np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, off & 0xFFFFFFFF,
                                  off >> 32]).permutation(int(n))
    return ops.array(perm, dtype=dtype)


def random(shape, dtype="float32", type="uniform"):
    """Jittor's jt.random: uniform on [0, 1) or standard normal."""
    shape = ops.check_shape(shape)
    if type == "uniform":
        return ops.rand(*shape, dtype=dtype)
    if type == "normal":
        return ops.randn(*shape, dtype=dtype)
    raise ValueError(f"random type must be uniform or normal, not {type!r}")


def view_as(x, y):
    return to_var(x).reshape(y.shape)


def type_as(x, y):
    return to_var(x).astype(y.dtype)


def rot90(x, k=1, dims=(0, 1)):
    x = to_var(x)
    k %= 4
    a, b = dims
    if k == 1:
        return x.flip(b).transpose(a, b)
    if k == 2:
        return x.flip((a, b))
    if k == 3:
        return x.transpose(a, b).flip(b)
    return x


__all__ = ["cumsum", "cumprod", "tril", "triu", "diag", "diagonal", "trace", "outer", "gather",
           "scatter", "index_select", "masked_fill", "meshgrid", "unbind", "cross", "norm",
           "argsort", "sort", "topk", "kthvalue", "randperm", "random", "view_as", "type_as",
           "rot90"]

_METHODS = ["cumsum", "cumprod", "tril", "triu", "diag", "trace", "gather", "scatter",
            "index_select", "masked_fill", "unbind", "norm", "argsort", "sort", "topk",
            "view_as", "type_as", "kthvalue"]
for _n in _METHODS:
    if not hasattr(Var, _n):
        setattr(Var, _n, globals()[_n])
Var.masked_fill_ = lambda self, mask, value: self.assign(masked_fill(self, mask, value))  # noqa
Var.scatter_ = lambda self, dim, index, src, reduce="void": self.assign(  # noqa: E731
    scatter(self, dim, index, src, reduce))
