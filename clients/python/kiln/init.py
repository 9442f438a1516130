"""init.py: jt.init, parameter initialisers with Jittor's signatures.

Two forms, as in Jittor: functions that make a Var from a shape
(`init.uniform(shape, dtype, low, high)`, `init.gauss(shape, dtype, mean,
std)`, `init.invariant_uniform(shape, dtype, mode)`...) and in-place
versions that refill an existing Var (`init.uniform_(var, low, high)`,
`init.kaiming_normal_(var)`...). Random numbers come from the daemon's
counter-based generator (jt.seed makes them repeatable).

Fans follow Jittor and PyTorch: for a shape [out, in, k...], fan_in is
in * prod(k) and fan_out out * prod(k).
"""
import math

from . import dtypes as dt
from . import ops


def calculate_fan(shape, mode="fan_in"):
    shape = list(shape)
    if len(shape) < 2:
        fan = shape[0] if shape else 1
        return fan
    rf = 1
    for s in shape[2:]:
        rf *= s
    if mode == "fan_in":
        return shape[1] * rf
    if mode == "fan_out":
        return shape[0] * rf
    raise ValueError(f"mode must be fan_in or fan_out, not {mode!r}")


def _fans(shape):
    return calculate_fan(shape, "fan_in"), calculate_fan(shape, "fan_out")


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


# ---- making Vars --------------------------------------------------------------


def constant(shape, dtype="float32", value=0.0):
    return ops.full(shape, value, dtype)


def zero(shape, dtype="float32"):
    return constant(shape, dtype, 0.0)


def one(shape, dtype="float32"):
    return constant(shape, dtype, 1.0)


def uniform(shape, dtype="float32", low=0.0, high=1.0):
    d = dt.get(dtype)
    r = ops.rand(*ops.check_shape(shape), dtype=d if d.is_float() else dt.float32)
    return ops.cast(r * (high - low) + low, d)


def gauss(shape, dtype="float32", mean=0.0, std=1.0):
    d = dt.get(dtype)
    r = ops.randn(*ops.check_shape(shape), dtype=d if d.is_float() else dt.float32)
    return ops.cast(r * std + mean, d)


normal = gauss


def invariant_uniform(shape, dtype="float32", mode="fan_in"):
    bound = math.sqrt(1.0 / calculate_fan(shape, mode))
    return uniform(shape, dtype, -bound, bound)


def relu_invariant_gauss(shape, dtype="float32", mode="fan_in"):
    return gauss(shape, dtype, 0.0, math.sqrt(2.0 / calculate_fan(shape, mode)))


def relu_invariant_uniform(shape, dtype="float32", mode="fan_in"):
    bound = math.sqrt(6.0 / calculate_fan(shape, mode))
    return uniform(shape, dtype, -bound, bound)


def xavier_uniform(shape, dtype="float32", gain=1.0):
    fi, fo = _fans(shape)
    bound = gain * math.sqrt(6.0 / (fi + fo))
    return uniform(shape, dtype, -bound, bound)


def xavier_gauss(shape, dtype="float32", gain=1.0):
    fi, fo = _fans(shape)
    return gauss(shape, dtype, 0.0, gain * math.sqrt(2.0 / (fi + fo)))


def eye(shape, dtype="float32"):
    if isinstance(shape, int):
        shape = (shape, shape)
    return ops.eye(shape[0], shape[1], dtype)


def trunc_normal(shape, dtype="float32", mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Normal values redrawn... approximated, as PyTorch does, by the
    inverse-CDF method on a uniform draw restricted to [a, b]."""
    from .functions import erf_inv_approx
    lo = 0.5 * (1 + math.erf((a - mean) / (std * math.sqrt(2))))
    hi = 0.5 * (1 + math.erf((b - mean) / (std * math.sqrt(2))))
    u = uniform(shape, "float64", 2 * lo - 1, 2 * hi - 1)
    v = erf_inv_approx(u) * (std * math.sqrt(2)) + mean
    return ops.cast(v.clamp(a, b), dt.get(dtype))


# ---- in place -------------------------------------------------------------------


def _fill(var, new):
    var.update(new)
    return var


def constant_(var, value=0.0):
    return _fill(var, constant(var.shape, var.dtype, value))


def zero_(var):
    return constant_(var, 0.0)


def one_(var):
    return constant_(var, 1.0)


def uniform_(var, low=0.0, high=1.0):
    return _fill(var, uniform(var.shape, var.dtype, low, high))


def gauss_(var, mean=0.0, std=1.0):
    return _fill(var, gauss(var.shape, var.dtype, mean, std))


normal_ = gauss_


def xavier_uniform_(var, gain=1.0):
    return _fill(var, xavier_uniform(var.shape, var.dtype, gain))


def xavier_gauss_(var, gain=1.0):
    return _fill(var, xavier_gauss(var.shape, var.dtype, gain))


xavier_normal_ = xavier_gauss_


def kaiming_uniform_(var, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / calculate_fan(var.shape, mode))
    return uniform_(var, -bound, bound)


def kaiming_normal_(var, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    gain = calculate_gain(nonlinearity, a)
    return gauss_(var, 0.0, gain / math.sqrt(calculate_fan(var.shape, mode)))


def relu_invariant_gauss_(var, mode="fan_in"):
    return _fill(var, relu_invariant_gauss(var.shape, var.dtype, mode))


def invariant_uniform_(var, mode="fan_in"):
    return _fill(var, invariant_uniform(var.shape, var.dtype, mode))


def trunc_normal_(var, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return _fill(var, trunc_normal(var.shape, var.dtype, mean, std, a, b))


def eye_(var):
    return _fill(var, eye(var.shape, var.dtype))


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("math", "dt", "ops")]
