"""meta.py: the meta-operators with Jittor's signatures.

    jt.reindex(x, shape, indexes, overflow_value=0, overflow_conditions=[], extras=[])
    jt.reindex_reduce(x, reduce_op, shape, indexes, overflow_conditions=[], extras=[])
    jt.broadcast(x, shape, dims=[])      jt.reduce(x, op, dims, keepdims=False)
    jt.index(shape, dim, dtype="int32")

Index expressions are strings as in Jittor ("i0-1", "@e0(i0)",
"xshape1-1-i1"). They are checked here against the protocol's grammar and
names before anything is sent (`check_expr`), so a typo raises ValueError
at the line that wrote it; the daemon parses them again into its own AST.
"""
import numbers

from . import wire
from .graph import REDUCE_OPS
from .lowered import reindex as _reindex
from .ops import array, broadcast_to, check_shape, index, make, to_var
from .reduction import reduce
from .var import Var

__all__ = ["reindex", "reindex_reduce", "broadcast", "broadcast_var", "reduce", "index",
           "check_expr"]

_OPS2 = ("||", "&&", "==", "!=", "<=", ">=")
_OPS1 = "<>+-*/%!?:(),"


def _tokens(text):
    j = 0
    out = []
    while j < len(text):
        c = text[j]
        if c in " \t\n":
            j += 1
        elif text[j:j + 2] in _OPS2:
            out.append((text[j:j + 2], j))
            j += 2
        elif c in _OPS1:
            out.append((c, j))
            j += 1
        elif c.isdigit():
            m = j
            while m < len(text) and text[m].isdigit():
                m += 1
            out.append(("INT", j, int(text[j:m])))
            j = m
        elif c.isalpha() or c == "_" or c == "@":
            m = j + 1
            while m < len(text) and (text[m].isalnum() or text[m] == "_"):
                m += 1
            out.append(("NAME", j, text[j:m]))
            j = m
        else:
            raise ValueError(f"unexpected character {c!r} at byte {j}")
    out.append(("END", len(text)))
    return out


class _Parser:
    def __init__(self, text, scope):
        self.t = _tokens(text)
        self.k = 0
        self.scope = scope  # loop_rank, xrank, yrank, extra_ranks

    def peek(self):
        return self.t[self.k][0]

    def take(self, what=None):
        tok = self.t[self.k]
        if what is not None and tok[0] != what:
            raise ValueError(f"expected {what!r} at byte {tok[1]}")
        self.k += 1
        return tok

    def expr(self):
        self.binary(0)
        if self.peek() == "?":
            self.take()
            self.expr()
            self.take(":")
            self.expr()

    LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"),
              ("*", "/", "%"))

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        self.binary(level + 1)
        while self.peek() in self.LEVELS[level]:
            self.take()
            self.binary(level + 1)

    def unary(self):
        if self.peek() in ("-", "+", "!"):
            self.take()
            return self.unary()
        return self.primary()

    def primary(self):
        tok = self.take()
        kind = tok[0]
        if kind == "INT":
            if tok[2] > (1 << 62):
                raise ValueError(f"literal {tok[2]} at byte {tok[1]} is over 2**62")
            return
        if kind == "(":
            self.expr()
            self.take(")")
            return
        if kind != "NAME":
            raise ValueError(f"unexpected {kind!r} at byte {tok[1]}")
        name = tok[2]
        if name in ("min", "max"):
            self.take("(")
            self.expr()
            self.take(",")
            self.expr()
            self.take(")")
            return
        if name.startswith("@e"):
            k = name[2:]
            if not k.isdigit() or int(k) >= len(self.scope[3]):
                raise ValueError(f"{name} at byte {tok[1]} names no extra input "
                                 f"(there are {len(self.scope[3])})")
            self.take("(")
            n = 1
            self.expr()
            while self.peek() == ",":
                self.take()
                self.expr()
                n += 1
            self.take(")")
            if n != self.scope[3][int(k)]:
                raise ValueError(f"{name} at byte {tok[1]} takes {self.scope[3][int(k)]} "
                                 f"coordinates, not {n}")
            return
        self.name(name, tok[1])

    def name(self, name, at):
        loop, xr, yr, _ = self.scope
        if name in ("XDIM", "YDIM"):
            return
        for prefix, rank in (("xstride", xr), ("ystride", yr), ("xshape", xr),
                             ("yshape", yr), ("i", loop)):
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                if int(name[len(prefix):]) >= rank:
                    raise ValueError(f"{name} at byte {at} is outside the {rank} dims it "
                                     "can name")
                return
        raise ValueError(f"unknown name {name!r} at byte {at}")


def check_expr(text, loop_rank, xrank, yrank, extra_ranks=(), what="index expression"):
    """Raise ValueError unless `text` is a valid index expression."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if len(text.encode()) > wire.LIMITS["expr_bytes"]:
        raise ValueError(f"{what} {text!r} is longer than {wire.LIMITS['expr_bytes']} bytes")
    try:
        p = _Parser(text, (loop_rank, xrank, yrank, tuple(extra_ranks)))
        p.expr()
        p.take("END")
    except ValueError as e:
        raise ValueError(f"{what} {text!r}: {e}") from None


def _extras(extras):
    out = []
    for e in extras or ():
        e = to_var(e)
        if e.dtype.is_float():
            raise TypeError(f"extra inputs hold integers or bools, not {e.dtype}")
        out.append(e)
    if len(out) > 8:
        raise ValueError("a reindex takes at most 8 extra inputs")
    return out


def reindex(x, shape, indexes, overflow_value=0, overflow_conditions=None, extras=None):
    """y of `shape` with y[i] = x[indexes(i)], or overflow_value where an
    index leaves x or an overflow condition holds."""
    x = to_var(x)
    if isinstance(shape, Var):
        shape = shape.shape
    shape = check_shape(shape)
    indexes = list(indexes)
    conds = list(overflow_conditions or ())
    ex = _extras(extras)
    if len(indexes) != x.ndim:
        raise ValueError(f"reindex of a rank-{x.ndim} var needs {x.ndim} indexes, "
                         f"not {len(indexes)}")
    if len(conds) > wire.LIMITS["conds"]:
        raise ValueError(f"at most {wire.LIMITS['conds']} overflow conditions")
    ranks = [e.ndim for e in ex]
    for k, e in enumerate(indexes):
        check_expr(e, len(shape), x.ndim, len(shape), ranks, f"indexes[{k}]")
    for k, c in enumerate(conds):
        check_expr(c, len(shape), x.ndim, len(shape), ranks, f"overflow_conditions[{k}]")
    return _reindex(x, shape, indexes, overflow_value, conds, ex)


def reindex_var(x, indexes, overflow_value=0, overflow_conditions=None):
    """Jittor's reindex_var: gather with index vars, one per dim of x."""
    indexes = [to_var(i) for i in indexes]
    shape = indexes[0].shape
    exprs = [f"@e{k}(" + ",".join(f"i{j}" for j in range(len(shape))) + ")"
             for k in range(len(indexes))]
    return reindex(x, shape, exprs, overflow_value, overflow_conditions,
                   [broadcast_to(i, shape) for i in indexes])


_RR = {"add": "add", "sum": "add", "multiply": "mul", "mul": "mul", "prod": "mul",
       "maximum": "max", "max": "max", "minimum": "min", "min": "min"}


def reindex_reduce(x, reduce_op, shape, indexes, overflow_conditions=None, extras=None):
    """y of `shape` from the op's identity, with y[indexes(i)] op= x[i]
    for every element i of x; elements landing outside y, or whose
    condition holds, are dropped."""
    x = to_var(x)
    op = _RR.get(reduce_op)
    if op is None:
        raise ValueError(f"reindex_reduce takes add, multiply, maximum or minimum, "
                         f"not {reduce_op!r}")
    if x.dtype.is_bool():
        raise TypeError("reindex_reduce does not take bool vars; cast first")
    shape = check_shape(shape)
    indexes = list(indexes)
    conds = list(overflow_conditions or ())
    ex = _extras(extras)
    if len(indexes) != len(shape):
        raise ValueError(f"reindex_reduce to a rank-{len(shape)} shape needs {len(shape)} "
                         f"indexes, not {len(indexes)}")
    ranks = [e.ndim for e in ex]
    for k, e in enumerate(indexes):
        check_expr(e, x.ndim, x.ndim, len(shape), ranks, f"indexes[{k}]")
    for k, c in enumerate(conds):
        check_expr(c, x.ndim, x.ndim, len(shape), ranks, f"overflow_conditions[{k}]")
    attrs = {"reduce_op": REDUCE_OPS[op], "exprs": indexes}
    if conds:
        attrs["conds"] = conds
    return make("reindex_reduce", x.dtype, shape, [x] + ex, **attrs)


def broadcast(x, shape, dims=None):
    """Jittor's broadcast: x stretched to `shape` (or to a var's shape);
    `dims` names the new dims (default: numpy's right alignment)."""
    x = to_var(x) if not isinstance(x, numbers.Number) else array(x)
    if isinstance(shape, Var):
        shape = shape.shape
    return broadcast_to(x, shape, list(dims) if dims else None)


def broadcast_var(x, y):
    return broadcast(x, y.shape)
