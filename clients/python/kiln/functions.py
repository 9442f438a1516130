"""functions.py: element-wise functions, as jt.<name>(x) and x.<name>().

The wire's unary and binary ops are exposed under Jittor's names; a few
more (log2, expm1, clamp, isnan, ...) are short compositions of them.
Integer and bool inputs of float functions are converted first (float32,
or float64 for int64), as Jittor does.
"""
import math

from . import dtypes as dt
from .ops import binary, cast, to_var, unary, where
from .var import Var

_UNARY = ("abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid",
          "erf", "floor", "ceil", "round", "sign", "neg", "logical_not", "bitwise_not")
_BINARY = ("add", "sub", "mul", "div", "floor_div", "mod", "pow", "maximum", "minimum",
           "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
           "bitwise_xor")
_ALIASES = {"subtract": "sub", "multiply": "mul", "divide": "div", "floor_divide": "floor_div",
            "equal": "eq", "not_equal": "ne", "less": "lt", "less_equal": "le",
            "greater": "gt", "greater_equal": "ge", "left_shift": "shl", "right_shift": "shr"}

__all__ = []


def _u(op):
    def f(x):
        return unary(op, x)
    f.__name__ = op
    return f


def _b(op):
    def f(a, b):
        return binary(op, a, b)
    f.__name__ = op
    return f


for _op in _UNARY:
    globals()[_op] = _u(_op)
    __all__.append(_op)
for _op in _BINARY + ("eq", "ne", "lt", "le", "gt", "ge", "shl", "shr"):
    globals()[_op] = _b(_op)
    __all__.append(_op)
for _alias, _op in _ALIASES.items():
    globals()[_alias] = globals()[_op]
    __all__.append(_alias)
negative = globals()["neg"]
invert = globals()["bitwise_not"]
true_divide = globals()["div"]


def _float(x):
    x = to_var(x)
    return cast(x, dt.float_for(x.dtype))


def relu(x):
    return binary("maximum", x, 0)


def leaky_relu(x, scale=0.01):
    x = to_var(x)
    return where(binary("gt", x, 0), x, binary("mul", x, scale))


def sqr(x):
    return binary("mul", x, x)


def square(x):
    return sqr(x)


def reciprocal(x):
    return binary("div", 1.0, _float(x))


def log2(x):
    return binary("mul", unary("log", x), 1.0 / math.log(2.0))


def log10(x):
    return binary("mul", unary("log", x), 1.0 / math.log(10.0))


def log1p(x):
    return unary("log", binary("add", _float(x), 1.0))


def expm1(x):
    return binary("sub", unary("exp", x), 1.0)


def exp2(x):
    return binary("pow", 2.0, _float(x))


def sinh(x):
    e = unary("exp", x)
    return binary("mul", binary("sub", e, binary("div", 1.0, e)), 0.5)


def cosh(x):
    e = unary("exp", x)
    return binary("mul", binary("add", e, binary("div", 1.0, e)), 0.5)


def trunc(x):
    x = to_var(x)
    if not x.dtype.is_float():
        return x
    return where(binary("lt", x, 0), unary("ceil", x), unary("floor", x))


def isnan(x):
    return binary("ne", x, x)  # false for every int


def isinf(x):
    x = to_var(x)
    if not x.dtype.is_float():
        return binary("ne", x, x)  # all false
    return binary("eq", unary("abs", x), float("inf"))


def isfinite(x):
    x = to_var(x)
    if not x.dtype.is_float():
        return binary("eq", x, x)
    return binary("lt", unary("abs", x), float("inf"))


def clamp(x, min_v=None, max_v=None):
    """x limited to [min_v, max_v] (either may be None)."""
    if min_v is not None:
        x = binary("maximum", x, min_v)
    if max_v is not None:
        x = binary("minimum", x, max_v)
    return to_var(x)


clip = clamp


def safe_log(x, eps=1e-12):
    return unary("log", binary("maximum", _float(x), eps))


def gelu(x):
    x = _float(x)
    return binary("mul", binary("mul", x, 0.5),
                  binary("add", unary("erf", binary("mul", x, 1.0 / math.sqrt(2.0))), 1.0))


_ERFINV_LO = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_HI = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
              -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def erfinv(x):
    """The inverse of erf on (-1, 1) (M. Giles' polynomial approximation,
    about 1e-7 relative error; +-inf at +-1, NaN outside)."""
    x = _float(x)
    w = unary("neg", unary("log", binary("mul", binary("sub", 1.0, x), binary("add", 1.0, x))))
    a = binary("sub", w, 2.5)
    pa = _ERFINV_LO[0]
    for c in _ERFINV_LO[1:]:
        pa = binary("add", binary("mul", a, pa), c)
    b = binary("sub", unary("sqrt", w), 3.0)
    pb = _ERFINV_HI[0]
    for c in _ERFINV_HI[1:]:
        pb = binary("add", binary("mul", b, pb), c)
    p = where(binary("lt", w, 5.0), pa, pb)
    y = binary("mul", p, x)
    y = where(binary("eq", unary("abs", x), 1.0), binary("mul", x, float("inf")), y)
    return y


erf_inv_approx = erfinv


__all__ += ["erfinv", "negative", "invert", "true_divide", "relu", "leaky_relu", "sqr", "square",
            "reciprocal", "log2", "log10", "log1p", "expm1", "exp2", "sinh", "cosh", "trunc",
            "isnan", "isinf", "isfinite", "clamp", "clip", "safe_log", "gelu"]

# Methods of Var under the same names (x.exp(), x.clamp(0, 1), ...).
for _name in __all__:
    if not hasattr(Var, _name) or _name in ("abs", "round"):
        setattr(Var, _name, globals()[_name])
Var.__round__ = lambda self, n=None: unary("round", self)  # noqa: E731
