"""ops.py: making vars — sources, casts, broadcasting and element-wise ops.

Every op infers its result's dtype and shape here, before anything is
sent, so a mistake (shapes that do not broadcast, a bitwise op on floats)
raises at the line that made it. The wire's element-wise ops take inputs
of one dtype and one shape, so this module inserts the `cast` and
`broadcast_to` nodes that promotion (dtype.py) and numpy broadcasting
need. Python scalars become `const` nodes of the operation's dtype.
"""
import numbers

import numpy as np

from . import dtypes as dt
from . import graph, wire
from .flags import flags
from .var import Var
from . import autograd

MAX_RANK = wire.LIMITS["rank"]
CHUNK_BYTES = 32 << 20  # jt.array data above this is uploaded in pieces


# ---- shapes ----------------------------------------------------------------


def check_shape(shape):
    """A shape as a tuple of ints, checked against the protocol's limits."""
    if isinstance(shape, Var):
        shape = shape.numpy().tolist()
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"a shape is a sequence of ints, not {shape!r}") from None
    if len(shape) > MAX_RANK:
        raise ValueError(f"shape {list(shape)} has {len(shape)} dims; kiln allows {MAX_RANK}")
    n = 1
    for s in shape:
        if s < 0:
            raise ValueError(f"shape {list(shape)} has a negative size")
        n *= s
    if n > wire.LIMITS["elements"]:
        raise ValueError(f"shape {list(shape)} has {n} elements, over the limit of 2**40")
    return shape


def shape_args(args):
    """jt.zeros(2, 3), jt.zeros((2, 3)) and jt.zeros([2, 3]) alike."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return check_shape(args[0])
    return check_shape(args)


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def broadcast_shapes(*shapes):
    rank = max(len(s) for s in shapes)
    out = []
    for k in range(rank, 0, -1):
        size = 1
        for s in shapes:
            if len(s) >= k:
                d = s[-k]
                if d != 1:
                    if size != 1 and size != d:
                        raise ValueError("shapes " + ", ".join(str(list(x)) for x in shapes)
                                         + " do not broadcast")
                    size = d
        out.append(size)
    return tuple(out)


def norm_dim(d, rank, what="dim"):
    d = int(d)
    if not -rank <= d < max(rank, 1) or (rank == 0 and d not in (0, -1)):
        raise IndexError(f"{what} {d} is out of range for a rank-{rank} var")
    return d + rank if d < 0 else d


# ---- making nodes ------------------------------------------------------------


def make(op, dtype, shape, inputs=(), nbytes=0, raw=False, **attrs):
    """A Var for a new node; inputs are Vars. Inputs made under
    jt.no_grad() are read through their stop_grad twin unless `raw`."""
    rt = graph.runtime()
    if inputs and rt.any_nograd and not raw:
        inputs = autograd.no_grad_inputs(inputs)
    ins = []
    for v in inputs:
        n = v._node
        if n.rt is not rt:
            raise RuntimeError("this var belongs to a kiln session that has ended")
        ins.append(n)
    node = rt.add(op, dtype, tuple(shape), tuple(ins), attrs, nbytes)
    if flags.no_grad:
        node.nograd = True
        rt.any_nograd = True
    out = Var._wrap(node)
    if not flags.lazy_execution:
        rt.fetch([node])
    return out


def _wire_value(d, v):
    if d.kind == dt.FLOAT:
        return float(v)
    if d.kind == dt.BOOL:
        return bool(v)
    v = int(v)
    if not dt.int_fits(d, v):
        raise OverflowError(f"Python integer {v} is out of bounds for {d}")
    return v


def const(value, shape=(), dtype=None):
    if dtype is None:
        dtype = dt.get(type(value) if not isinstance(value, np.generic) else value.dtype)
    d = dt.get(dtype)
    return make("const", d, check_shape(shape), value=_wire_value(d, value))


def _upload(arr, d):
    data = np.ascontiguousarray(arr, dtype=d.np.newbyteorder("<")).tobytes()
    return make("array", d, arr.shape, nbytes=len(data), data=data)


def array(data, dtype=None):
    """jt.array: a Var holding `data` (a Var, numpy array, list or scalar).
    Without a dtype, 64-bit numpy data becomes 32-bit while
    jt.flags.auto_convert_64_to_32 is set (the default), as in Jittor."""
    if isinstance(data, Var):
        return data.clone() if dtype is None else data.astype(dtype)
    if dtype is not None:
        d = dt.get(dtype)
        arr = np.asarray(data)
        if arr.dtype == object:
            raise TypeError("jt.array takes numbers, not objects")
        arr = arr.astype(d.np, copy=False)
    else:
        arr = np.asarray(data)
        if arr.dtype == object:
            raise TypeError("jt.array takes numbers, not objects")
        d = dt.from_numpy(arr.dtype, flags.auto_convert_64_to_32)
    shape = check_shape(arr.shape)
    nbytes = arr.size * d.itemsize
    chunk = min(CHUNK_BYTES, graph.runtime().chunk_bytes)
    if nbytes <= chunk:
        return _upload(arr, d)
    # Larger than one upload: flat pieces, joined on the daemon.
    flat = arr.reshape(-1)
    step = max(1, chunk // d.itemsize)
    from . import lowered
    parts = [_upload(flat[k:k + step], d) for k in range(0, flat.size, step)]
    return reshape(lowered.concat(parts, 0), shape)


def cast(x, dtype):
    d = dt.get(dtype)
    if x.dtype == d:
        return x
    return make("cast", d, x.shape, [x])


def reshape(x, *shape):
    if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
        shape = shape[0]
    if isinstance(shape, Var):
        shape = shape.numpy().tolist()
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1:
        raise ValueError("reshape can infer only one dim (-1)")
    n = x.numel()
    if -1 in shape:
        rest = numel([s for s in shape if s != -1])
        if rest == 0 or n % rest:
            raise ValueError(f"cannot reshape {list(x.shape)} into {shape}")
        shape[shape.index(-1)] = n // rest
    shape = check_shape(shape)
    if numel(shape) != n:
        raise ValueError(f"cannot reshape {list(x.shape)} ({n} elements) into {list(shape)}")
    if shape == x.shape:
        return x
    return make("reshape", x.dtype, shape, [x])


def broadcast_to(x, shape, dims=None):
    """x stretched to `shape`. Without `dims`, numpy's rule (align right);
    with `dims`, Jittor's: they name the new output dims."""
    shape = check_shape(shape)
    if dims is None or len(dims) == 0:
        if len(shape) < x.ndim:
            raise ValueError(f"cannot broadcast {list(x.shape)} to the lower rank {list(shape)}")
        dims = list(range(len(shape) - x.ndim))
    else:
        dims = sorted(norm_dim(d, len(shape), "broadcast dim") for d in dims)
    if len(dims) != len(shape) - x.ndim or len(set(dims)) != len(dims):
        raise ValueError(f"broadcast of {list(x.shape)} to {list(shape)} needs "
                         f"{len(shape) - x.ndim} new dims, not {dims}")
    k = 0
    for d in range(len(shape)):
        if d in dims:
            continue
        if x.shape[k] not in (1, shape[d]):
            raise ValueError(f"cannot broadcast {list(x.shape)} to {list(shape)}")
        k += 1
    if shape == x.shape:
        return x
    return make("broadcast_to", x.dtype, shape, [x], dims=dims)


# ---- element-wise ------------------------------------------------------------


def is_scalar(v):
    return isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, Var)


def to_var(v):
    return v if isinstance(v, Var) else array(v)


FLOAT_UNARY = ("exp", "log", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "erf")


def unary(op, x):
    x = to_var(x)
    d = x.dtype
    if op in FLOAT_UNARY:
        x = cast(x, dt.float_for(d))
    elif op in ("floor", "ceil", "round"):
        if not d.is_float():
            return x
    elif op in ("abs", "sign"):
        if d.is_bool():
            return x
    elif op == "neg":
        if d.is_bool():
            raise TypeError("negating a bool var is not supported; use logical_not")
    elif op == "bitwise_not":
        if d.is_float():
            raise TypeError(f"bitwise_not does not take {d}")
    elif op == "logical_not":
        return make(op, dt.bool_, x.shape, [x])
    return make(op, x.dtype, x.shape, [x])


ARITH = ("add", "sub", "mul", "floor_div", "mod", "pow", "maximum", "minimum")
COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")
LOGICAL = ("logical_and", "logical_or", "logical_xor")
BITWISE = ("bitwise_and", "bitwise_or", "bitwise_xor")
SHIFT = ("shl", "shr")
_BOOL_ARITH = {"add": "logical_or", "maximum": "logical_or", "mul": "logical_and",
               "minimum": "logical_and"}


def _common(a, b):
    """Both operands as Vars of one dtype (promoted) and one shape."""
    if is_scalar(a) and is_scalar(b):
        a = array(a)
    if is_scalar(b):
        d = dt.promote_scalar(a.dtype, b)
        a = cast(a, d)
        return a, const(b, a.shape, d), d
    if is_scalar(a):
        d = dt.promote_scalar(b.dtype, a)
        b = cast(b, d)
        return const(a, b.shape, d), b, d
    a, b = to_var(a), to_var(b)
    d = dt.promote(a.dtype, b.dtype)
    shape = broadcast_shapes(a.shape, b.shape)
    return broadcast_to(cast(a, d), shape), broadcast_to(cast(b, d), shape), d


def binary(op, a, b):
    if op in LOGICAL:
        a, b = to_var(a) if not is_scalar(a) else a, to_var(b) if not is_scalar(b) else b
        a = cast(a, dt.bool_) if isinstance(a, Var) else bool(a)
        b = cast(b, dt.bool_) if isinstance(b, Var) else bool(b)
        a, b, _ = _common(a, b)
        return make(op, dt.bool_, a.shape, [a, b])
    a, b, d = _common(a, b)
    if op == "div":
        f = dt.float_for(d)
        a, b, d = cast(a, f), cast(b, f), f
    elif op in ARITH and d.is_bool():
        if op == "sub":
            raise TypeError("subtracting bool vars is not supported; use logical_xor")
        if op in _BOOL_ARITH:
            op = _BOOL_ARITH[op]
            return make(op, dt.bool_, a.shape, [a, b])
        a, b, d = cast(a, dt.int8), cast(b, dt.int8), dt.int8
    elif op in BITWISE and d.is_float():
        raise TypeError(f"{op} does not take {d}")
    elif op in SHIFT and not d.is_int():
        raise TypeError(f"{op} needs integers, not {d}")
    out = dt.bool_ if op in COMPARE else d
    return make(op, out, a.shape, [a, b])


def where(cond, a=None, b=None):
    """where(cond, a, b): a where cond is true, else b, broadcast. With
    only `cond`, the indices of its true elements (needs its values)."""
    if a is None and b is None:
        return nonzero(cond)
    cond = to_var(cond)
    if is_scalar(a) and is_scalar(b):
        a = array(a)
    a, b, d = _common(a, b)
    shape = broadcast_shapes(cond.shape, a.shape)
    return make("where", d, shape, [broadcast_to(cond, shape), broadcast_to(a, shape),
                                    broadcast_to(b, shape)])


def nonzero(cond):
    """Jittor's where(cond): a tuple of int32 index vars, one per dim."""
    idx = np.nonzero(to_var(cond).numpy())
    return tuple(array(i.astype(np.int32)) for i in idx)


# ---- sources -----------------------------------------------------------------


def _dtype_of_value(v, dtype):
    if dtype is not None:
        return dt.get(dtype)
    if isinstance(v, np.generic):
        return dt.from_numpy(v.dtype, flags.auto_convert_64_to_32)
    return dt.get(type(v) if isinstance(v, (bool, int, float)) else float)


def _shape_dtype(args, dtype):
    """jt.zeros(2, 3), jt.zeros((2, 3)) and Jittor's jt.zeros((2, 3), "int32")."""
    if (len(args) == 2 and not isinstance(args[0], numbers.Integral)
            and not isinstance(args[1], numbers.Integral)):
        return shape_args(args[:1]), dt.get(args[1])
    return shape_args(args), dt.get(dtype)


def zeros(*shape, dtype="float32"):
    shape, d = _shape_dtype(shape, dtype)
    return const(0, shape, d)


def ones(*shape, dtype="float32"):
    shape, d = _shape_dtype(shape, dtype)
    return const(1, shape, d)


def full(shape, val, dtype=None):
    return const(val, check_shape(shape), _dtype_of_value(val, dtype))


def zeros_like(x, dtype=None):
    return const(0, x.shape, dt.get(dtype) if dtype else x.dtype)


def ones_like(x, dtype=None):
    return const(1, x.shape, dt.get(dtype) if dtype else x.dtype)


def full_like(x, val, dtype=None):
    return const(val, x.shape, dt.get(dtype) if dtype else x.dtype)


def index(shape, dim, dtype="int32"):
    """jt.index: each element's coordinate along `dim`. With dim None, a
    list with one such var per dim."""
    shape = check_shape(shape)
    if dim is None:
        return [index(shape, k, dtype) for k in range(len(shape))]
    d = dt.get(dtype)
    if d not in (dt.int32, dt.int64):
        raise TypeError(f"index vars are int32 or int64, not {d}")
    return make("index", d, shape, dim=norm_dim(dim, len(shape)))


class _Random:
    """The seed and the counter position of jt.rand/jt.randn: element j of
    a random node is Philox(seed, offset + j), so each call continues the
    stream and jt.seed(s) makes every later number reproducible."""

    def __init__(self):
        self.seed = int.from_bytes(np.random.default_rng().bytes(8), "little")
        self.offset = 0


RANDOM = _Random()


def seed(s):
    RANDOM.seed = int(s) & ((1 << 64) - 1)
    RANDOM.offset = 0


def _random(shape, dist, dtype):
    d = dt.get(dtype)
    if not d.is_float():
        raise TypeError(f"random numbers are float32 or float64, not {d}")
    off = RANDOM.offset
    RANDOM.offset = (off + max(numel(shape), 1)) & ((1 << 64) - 1)
    return make("random", d, shape, dist=dist, seed=RANDOM.seed, offset=off)


def rand(*shape, dtype="float32"):
    shape, d = _shape_dtype(shape, dtype)
    return _random(shape, 1, d)


def randn(*shape, dtype="float32"):
    shape, d = _shape_dtype(shape, dtype)
    return _random(shape, 2, d)


def rand_like(x, dtype=None):
    return _random(x.shape, 1, dtype or (x.dtype if x.dtype.is_float() else dt.float32))


def randn_like(x, dtype=None):
    return _random(x.shape, 2, dtype or (x.dtype if x.dtype.is_float() else dt.float32))


def randint(low, high=None, shape=(1,), dtype="int32"):
    if high is None:
        low, high = 0, low
    shape = check_shape(shape)
    u = _random(shape, 1, dt.float64)
    r = binary("add", unary("floor", binary("mul", u, float(high - low))), float(low))
    return cast(r, dt.get(dtype))


def randint_like(x, low, high=None):
    return randint(low, high, x.shape, x.dtype)


def arange(start=0, end=None, step=1, dtype=None):
    if end is None:
        start, end = 0, start
    if isinstance(start, Var):
        start = start.item()
    if isinstance(end, Var):
        end = end.item()
    if step == 0:
        raise ValueError("arange step must not be 0")
    n = max(0, int(np.ceil((end - start) / step)))
    ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    d = dt.get(dtype) if dtype is not None else (dt.int32 if ints else dt.float32)
    if d.is_int() and ints:
        i = index((n,), 0, dt.int64 if d == dt.int64 else dt.int32)
        return cast(binary("add", binary("mul", i, step), start), d)
    i = cast(index((n,), 0, dt.int64), dt.float64)
    return cast(binary("add", binary("mul", i, float(step)), float(start)), d)


def linspace(start, end, steps, dtype="float32"):
    steps = int(steps)
    i = cast(index((steps,), 0, dt.int64), dt.float64)
    if steps > 1:
        v = binary("add", binary("mul", i, (end - start) / (steps - 1)), float(start))
        v = where(binary("eq", i, float(steps - 1)), float(end), v)
    else:
        v = binary("add", binary("mul", i, 0.0), float(start))
    return cast(v, dt.get(dtype))


def eye(n, m=None, dtype="float32"):
    m = n if m is None else m
    shape = check_shape((n, m))
    return cast(binary("eq", index(shape, 0), index(shape, 1)), dt.get(dtype))
