"""lowered.py: views and joins — the daemon's lowered ops and reindex graphs.

Transpose, basic slicing (ints, slices with steps and negative bounds,
None, Ellipsis), concat, pad and flip go to the daemon as its lowered wire
ops (PROTOCOL.md section 8, ops 112-116), which it turns into `reindex`
graphs itself. What has no wire op of its own -- advanced indexing with
index arrays, item assignment, repeat, roll -- is written here with
`reindex` (y[i] = x[f(i)], or an overflow value), `reindex_reduce`,
`where` and `index` nodes.

Index expressions are text in the protocol's grammar (PROTOCOL.md,
"Index expressions"): `i`k is the output coordinate k, `@e`k`(...)` reads
extra input k. Only numbers and names this module writes go into them.
"""
import numbers

import numpy as np

from . import dtypes as dt
from . import wire
from .ops import (array, binary, broadcast_shapes, broadcast_to, cast, check_shape, const,
                  index, is_scalar, make, norm_dim, reshape, to_var, where)
from .var import Var


def reindex(x, shape, exprs, overflow_value=0, conds=(), extras=()):
    """The reindex node: y of `shape`, y[i] = x[exprs(i)]."""
    shape = check_shape(shape)
    attrs = {"exprs": list(exprs)}
    if conds:
        attrs["conds"] = list(conds)
    if overflow_value is not None and overflow_value != 0:
        from .ops import _wire_value
        attrs["overflow_value"] = _wire_value(x.dtype, overflow_value)
    return make("reindex", x.dtype, shape, [x] + list(extras), **attrs)


# ---- transpose ---------------------------------------------------------------


def permute(x, *dims):
    if len(dims) == 1 and not isinstance(dims[0], numbers.Integral):
        dims = tuple(dims[0])
    x = to_var(x)
    if len(dims) == 0:
        dims = tuple(range(x.ndim - 1, -1, -1))
    dims = [norm_dim(d, x.ndim) for d in dims]
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute of a rank-{x.ndim} var needs a permutation of "
                         f"0..{x.ndim - 1}, not {dims}")
    if dims == list(range(x.ndim)):
        return x
    shape = [x.shape[d] for d in dims]
    return make("transpose", x.dtype, shape, [x], dims=dims)


def transpose(x, *dims):
    """Jittor's transpose: no dims reverses them, two dims swap, a full
    list permutes."""
    if len(dims) == 1 and not isinstance(dims[0], numbers.Integral):
        dims = tuple(dims[0])
    x = to_var(x)
    if len(dims) == 2:
        a, b = norm_dim(dims[0], x.ndim), norm_dim(dims[1], x.ndim)
        perm = list(range(x.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return permute(x, perm)
    return permute(x, *dims)


# ---- getitem -------------------------------------------------------------------


def _expand_index(idx, rank):
    if not isinstance(idx, tuple):
        idx = (idx,)
    used = sum(1 for i in idx if i is not None and i is not Ellipsis
               and not (_is_bool_index(i)))
    used += sum(_bool_rank(i) for i in idx if _is_bool_index(i))
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis")
    out = []
    for i in idx:
        if i is Ellipsis:
            out.extend([slice(None)] * (rank - used))
        else:
            out.append(i)
    if n_ell == 0:
        out.extend([slice(None)] * (rank - used))
    if used > rank:
        raise IndexError(f"too many indices for a rank-{rank} var")
    return out


def _is_bool_index(i):
    if isinstance(i, Var):
        return i.dtype.is_bool()
    if isinstance(i, (list, np.ndarray)) and not is_scalar(i):
        a = np.asarray(i)
        return a.dtype == np.bool_ and a.ndim > 0
    return False


def _bool_rank(i):
    return i.ndim if isinstance(i, Var) else np.asarray(i).ndim


def getitem(x, idx):
    x = to_var(x)
    items = _expand_index(idx, x.ndim)
    # Boolean masks become integer index arrays (their values are needed).
    flat = []
    for i in items:
        if _is_bool_index(i):
            mask = i.numpy() if isinstance(i, Var) else np.asarray(i)
            flat.extend(np.nonzero(mask))
        else:
            flat.append(i)
    items = flat
    if all(i is None or isinstance(i, slice) or _is_int(i) for i in items):
        return _basic_getitem(x, items)
    shape, exprs = [], []
    adv = []  # (input dim, expr slot, index Var)
    # numpy: index arrays (and, when there are any, ints) that sit next to
    # each other put their broadcast dims where the first one is; apart,
    # those dims go first.
    is_int = _is_int
    arrays = [p for p, i in enumerate(items)
              if i is not None and not isinstance(i, slice) and not is_int(i)]
    advpos = sorted(arrays + [p for p, i in enumerate(items) if is_int(i)]) if arrays else []
    front = bool(advpos) and advpos[-1] - advpos[0] + 1 != len(advpos)
    adv_pos = 0 if front else None
    k = 0  # input dim
    plain = True  # only whole dims taken and size-1 dims dropped: a reshape
    for pos, i in enumerate(items):
        if i is None:
            shape.append(1)
            continue
        n = x.shape[k]
        if adv_pos is None and advpos and pos == advpos[0]:
            adv_pos = len(shape)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            size = len(range(start, stop, step))
            o = len(shape)
            shape.append(size)
            exprs.append(f"{start}+i{o}*{step}" if step > 0 else f"{start}-i{o}*{-step}")
            plain = plain and size == n and (step == 1 or n <= 1)
        elif is_int(i):
            v = int(i)
            if not -n <= v < n:
                raise IndexError(f"index {v} is out of bounds for dim {k} of size {n}")
            exprs.append(str(v + n if v < 0 else v))
            plain = plain and n == 1
        else:
            iv = i if isinstance(i, Var) else array(np.asarray(i), dtype=dt.int64)
            if iv.dtype.is_float():
                raise IndexError("index arrays must hold integers")
            adv.append((k, len(exprs), iv))
            exprs.append(None)
        k += 1
    extras = []
    if adv:
        bshape = broadcast_shapes(*[iv.shape for _, _, iv in adv])
        if len(adv) > 8:
            raise IndexError("kiln takes at most 8 index arrays in one indexing")
        shape[adv_pos:adv_pos] = list(bshape)
        nb = len(bshape)
        # Output coordinates after the advanced block moved up by nb.
        for e in range(len(exprs)):
            if exprs[e] is not None:
                exprs[e] = _shift_names(exprs[e], adv_pos, nb)
        coords = ",".join(f"i{adv_pos + j}" for j in range(nb)) or "0"
        for j, (kdim, e, iv) in enumerate(adv):
            extras.append(broadcast_to(iv, bshape) if nb else reshape(iv, (1,)))
            ref = f"@e{j}({coords})"
            exprs[e] = f"({ref}<0?{ref}+xshape{kdim}:{ref})"
    if plain and not adv:
        return reshape(x, shape)
    return reindex(x, shape, exprs, extras=extras)


def _is_int(i):
    return isinstance(i, (numbers.Integral, np.integer)) and not isinstance(i, bool)


INT64_MIN = -(1 << 63)


def _basic_getitem(x, items):
    """Ints, slices and None: one `slice` node (none when every dim is
    taken whole) and a reshape that drops the int dims and adds the None
    ones."""
    starts, stops, steps, shape = [], [], [], []
    whole = True
    k = 0
    for i in items:
        if i is None:
            shape.append(1)
            continue
        n = x.shape[k]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            size = len(range(start, stop, step))
            if size == 0:
                start, stop, step = 0, 0, 1
            elif stop < 0:  # a backward walk down to element 0: stop "before 0"
                stop = INT64_MIN
            shape.append(size)
            whole = whole and size == n and (step == 1 or n <= 1)
        else:
            v = int(i)
            if not -n <= v < n:
                raise IndexError(f"index {v} is out of bounds for dim {k} of size {n}")
            start = v + n if v < 0 else v
            stop, step = start + 1, 1
            whole = whole and n == 1
        starts.append(start)
        stops.append(stop)
        steps.append(step)
        k += 1
    if not whole:
        sliced = [len(range(a, b if b != INT64_MIN else -1, c))
                  for a, b, c in zip(starts, stops, steps)]
        attrs = {"starts": starts, "stops": stops}
        if any(c != 1 for c in steps):
            attrs["steps"] = steps
        x = make("slice", x.dtype, sliced, [x], **attrs)
    return reshape(x, shape)


def _shift_names(expr, start, by):
    """Renumber output coordinates i<k> with k >= start by `by`."""
    if by == 0:
        return expr
    out, j = [], 0
    while j < len(expr):
        c = expr[j]
        if c == "i" and j + 1 < len(expr) and expr[j + 1].isdigit() and (
                j == 0 or not (expr[j - 1].isalnum() or expr[j - 1] == "_")):
            m = j + 1
            while m < len(expr) and expr[m].isdigit():
                m += 1
            k = int(expr[j + 1:m])
            out.append(f"i{k + by if k >= start else k}")
            j = m
        else:
            out.append(c)
            j += 1
    return "".join(out)


def numel(s):
    n = 1
    for v in s:
        n *= v
    return n


# ---- setitem -------------------------------------------------------------------


def setitem(x, idx, value):
    """The var x with x[idx] replaced by value (broadcast), as a new node.
    Works for every index getitem takes: the target positions are found
    by indexing a var of x's flat positions; a position named twice takes
    the last value written, as in numpy (reindex_reduce max over the
    source element numbers picks it)."""
    x = to_var(x)
    n = x.numel()
    pos = getitem(reshape(index((n,), 0, dt.int64), x.shape), idx)
    m = pos.numel()
    v = to_var(value) if not is_scalar(value) else const(value, (), x.dtype)
    v = reshape(broadcast_to(cast(v, x.dtype), pos.shape), (m,))
    pos = reshape(pos, (m,))
    src = index((m,), 0, dt.int64)
    # winner[p]: the last source element landing at p, or int64's minimum.
    winner = make("reindex_reduce", dt.int64, (n,), [src, pos], reduce_op=3,
                  exprs=["@e0(i0)"])
    got = reindex(v, (n,), ["@e0(i0)"], extras=[winner])
    flat = where(binary("ge", winner, 0), got, reshape(x, (n,)))
    return reshape(flat, x.shape)


# ---- joins ---------------------------------------------------------------------


def concat(xs, dim=0):
    xs = [to_var(x) for x in xs]
    if not xs:
        raise ValueError("concat needs at least one var")
    rank = xs[0].ndim
    if rank == 0:
        raise ValueError("concat of scalars: use stack")
    dim = norm_dim(dim, rank)
    d = xs[0].dtype
    for x in xs[1:]:
        d = dt.promote(d, x.dtype)
    for x in xs:
        if x.ndim != rank or any(x.shape[k] != xs[0].shape[k] for k in range(rank) if k != dim):
            raise ValueError("concat of " + ", ".join(str(list(v.shape)) for v in xs)
                             + f": shapes must match except in dim {dim}")
    xs = [cast(x, d) for x in xs if x.shape[dim] > 0] or [cast(xs[0], d)]
    if len(xs) == 1:
        return xs[0]
    shape = list(xs[0].shape)
    shape[dim] = 0
    for x in xs:
        shape[dim] += x.shape[dim]
    limit = wire.LIMITS["node_inputs"]
    while len(xs) > limit:  # a wide concat as a tree of wire concats
        xs = [xs[k] if len(xs[k:k + limit]) == 1 else _concat_node(xs[k:k + limit], dim)
              for k in range(0, len(xs), limit)]
    return _concat_node(xs, dim)


def _concat_node(xs, dim):
    shape = list(xs[0].shape)
    shape[dim] = 0
    for x in xs:
        shape[dim] += x.shape[dim]
    return make("concat", xs[0].dtype, shape, xs, dim=dim)


def stack(xs, dim=0):
    xs = [to_var(x) for x in xs]
    if not xs:
        raise ValueError("stack needs at least one var")
    dim = norm_dim(dim, xs[0].ndim + 1)
    for x in xs:
        if x.shape != xs[0].shape:
            raise ValueError("stack of " + ", ".join(str(list(v.shape)) for v in xs)
                             + ": shapes must be equal")
    shape = list(xs[0].shape)
    shape.insert(dim, 1)
    return concat([reshape(x, shape) for x in xs], dim)


def flip(x, dim=0):
    x = to_var(x)
    dims = [dim] if isinstance(dim, numbers.Integral) else list(dim)
    dims = sorted({norm_dim(d, x.ndim) for d in dims})
    dims = [d for d in dims if x.shape[d] > 1]
    if not dims:
        return x
    return make("flip", x.dtype, x.shape, [x], dims=dims)


def pad(x, pads, value=0):
    """x with `pads[2d]` elements of `value` before dim d and `pads[2d+1]`
    after (in dim order; a negative pad crops). One wire `pad` node."""
    x = to_var(x)
    pads = [int(p) for p in pads]
    if len(pads) != 2 * x.ndim:
        raise ValueError(f"pad of a rank-{x.ndim} var takes {2 * x.ndim} pads "
                         f"(before and after each dim), not {len(pads)}")
    shape = []
    for d in range(x.ndim):
        n = x.shape[d] + pads[2 * d] + pads[2 * d + 1]
        if n < 0:
            raise ValueError(f"pads {pads} crop dim {d} of size {x.shape[d]} below 0")
        shape.append(n)
    shape = check_shape(shape)
    if not any(pads):
        return x
    from .ops import _wire_value
    if x.dtype.is_int() and isinstance(value, float) and not float(value).is_integer():
        raise TypeError(f"pad value {value} does not fit {x.dtype}")
    attrs = {"pads": pads}
    if value != 0:
        attrs["value"] = _wire_value(x.dtype, value)
    return make("pad", x.dtype, shape, [x], **attrs)


def repeat(x, *reps):
    """torch's repeat (numpy's tile): the var tiled reps times per dim."""
    if len(reps) == 1 and not isinstance(reps[0], numbers.Integral):
        reps = tuple(reps[0])
    x = to_var(x)
    reps = [int(r) for r in reps]
    if len(reps) < x.ndim:
        raise ValueError("repeat needs a count for every dim")
    x = reshape(x, [1] * (len(reps) - x.ndim) + list(x.shape))
    shape = [s * r for s, r in zip(x.shape, reps)]
    return reindex(x, shape, [f"i{k}%xshape{k}" for k in range(x.ndim)])


def roll(x, shifts, dims=None):
    x = to_var(x)
    if dims is None:
        return reshape(roll(reshape(x, -1), shifts, 0), x.shape)
    if isinstance(shifts, numbers.Integral):
        shifts, dims = [shifts], [dims] if isinstance(dims, numbers.Integral) else dims
    dims = [norm_dim(d, x.ndim) for d in dims]
    exprs = [f"i{k}" for k in range(x.ndim)]
    for s, d in zip(shifts, dims):
        n = x.shape[d]
        if n:
            s = int(s) % n
            exprs[d] = f"(i{d}+{n - s})%{n}"
    return reindex(x, x.shape, exprs)


def split(x, split_size, dim=0):
    """torch's split: pieces of split_size (an int or a list of sizes)."""
    x = to_var(x)
    dim = norm_dim(dim, x.ndim)
    n = x.shape[dim]
    if isinstance(split_size, numbers.Integral):
        sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
    else:
        sizes = list(split_size)
    out, off = [], 0
    for s in sizes:
        idx = [slice(None)] * dim + [slice(off, off + s)]
        out.append(getitem(x, tuple(idx)))
        off += s
    return out


def chunk(x, chunks, dim=0):
    x = to_var(x)
    n = x.shape[norm_dim(dim, x.ndim)]
    return split(x, max(1, -(-n // chunks)), dim)


def squeeze(x, dim=None):
    x = to_var(x)
    if dim is None:
        return reshape(x, [s for s in x.shape if s != 1])
    dims = [dim] if isinstance(dim, numbers.Integral) else list(dim)
    dims = {norm_dim(d, x.ndim) for d in dims}
    return reshape(x, [s for k, s in enumerate(x.shape) if not (k in dims and s == 1)])


def unsqueeze(x, dim):
    x = to_var(x)
    dim = norm_dim(dim, x.ndim + 1)
    shape = list(x.shape)
    shape.insert(dim, 1)
    return reshape(x, shape)


def flatten(x, start_dim=0, end_dim=-1):
    x = to_var(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    a, b = norm_dim(start_dim, x.ndim), norm_dim(end_dim, x.ndim)
    if a > b:
        raise ValueError("flatten: start_dim is after end_dim")
    shape = list(x.shape[:a]) + [numel(x.shape[a:b + 1])] + list(x.shape[b + 1:])
    return reshape(x, shape)
