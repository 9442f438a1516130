"""dtype.py: kiln's element types and how they combine.

A dtype is a str subclass ("float32"), so it prints, hashes and compares
like Jittor's (``v.dtype == "float32"``, ``v.dtype == jt.float32``), and
calling one casts: ``jt.float32(x)``. Wire numbers are PROTOCOL.md's.

Promotion of two arrays follows the protocol (numpy's result_type; int8
with uint8 gives int32, as kiln has no int16): `promote`. A Python scalar
never widens an array's dtype within its kind (int8 array + 1 is int8,
float32 array * 0.5 is float32). Across kinds kiln does what Jittor does
rather than numpy: a float scalar with an integer or bool array gives
float32 (float64 for an int64 array), an int scalar with a bool array
gives int32; `promote_scalar`. True division and float functions of
integers use the same float (`float_for`).
"""
import numpy as np

BOOL, INT, UINT, FLOAT = 0, 1, 2, 3


class dtype(str):
    """A kiln dtype: a string name with its wire number and numpy type."""

    def __new__(cls, name, code, np_type, kind, digits):
        self = super().__new__(cls, name)
        self.code = code
        self.np = np.dtype(np_type)
        self.kind = kind
        self.digits = digits
        self.itemsize = self.np.itemsize
        return self

    def __call__(self, x):
        """Cast `x` (a Var, or anything jt.array takes) to this dtype."""
        from .var import Var
        from . import ops
        if isinstance(x, Var):
            return x.astype(self)
        return ops.array(x, dtype=self)

    def is_float(self):
        return self.kind == FLOAT

    def is_int(self):
        return self.kind in (INT, UINT)

    def is_bool(self):
        return self.kind == BOOL

    def __reduce__(self):
        return (get, (str(self),))

    def __repr__(self):
        return str.__str__(self)

    __hash__ = str.__hash__

    def __eq__(self, other):
        if other is None:
            return False
        if isinstance(other, str):
            return str.__eq__(self, other)
        try:
            return str.__eq__(self, get(other))
        except TypeError:
            return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r


bool_ = dtype("bool", 1, np.bool_, BOOL, 1)
int8 = dtype("int8", 2, np.int8, INT, 7)
uint8 = dtype("uint8", 3, np.uint8, UINT, 8)
int32 = dtype("int32", 4, np.int32, INT, 31)
int64 = dtype("int64", 5, np.int64, INT, 63)
float32 = dtype("float32", 6, np.float32, FLOAT, 24)
float64 = dtype("float64", 7, np.float64, FLOAT, 53)

ALL = (bool_, int8, uint8, int32, int64, float32, float64)
BY_NAME = {str(d): d for d in ALL}
BY_CODE = {d.code: d for d in ALL}
BY_NP = {d.np: d for d in ALL}
# Names Jittor and numpy users write for the same types.
ALIASES = {"float": float32, "double": float64, "int": int32, "long": int64,
           "bool_": bool_, "half": None, "float16": None, "bfloat16": None}
# numpy types kiln lacks, and what jt.array makes of them.
NP_FALLBACK = {np.dtype(np.int16): int32, np.dtype(np.uint16): int32,
               np.dtype(np.uint32): int64, np.dtype(np.float16): float32}


def get(x):
    """The kiln dtype for a name, a dtype, a numpy dtype or type, or a
    Python type (float -> float32, int -> int32, bool -> bool). Raises
    TypeError for anything kiln cannot hold."""
    if isinstance(x, dtype):
        return x
    if isinstance(x, str):
        d = BY_NAME.get(x)
        if d is None:
            if x in ALIASES:
                d = ALIASES[x]
                if d is None:
                    raise TypeError(f"dtype {x} is not supported by kiln yet")
            else:
                raise TypeError(f"unknown dtype {x!r}")
        return d
    if x is float:
        return float32
    if x is int:
        return int32
    if x is bool:
        return bool_
    if hasattr(x, "dtype") and not isinstance(x, type):
        return get(x.dtype)
    try:
        npd = np.dtype(x)
    except TypeError:
        raise TypeError(f"not a dtype: {x!r}") from None
    d = BY_NP.get(npd)
    if d is None:
        raise TypeError(f"dtype {npd} is not supported by kiln (it has bool, int8, uint8, "
                        "int32, int64, float32, float64)")
    return d


def from_numpy(npd, convert_64_to_32):
    """The dtype jt.array gives a numpy array of dtype `npd`."""
    npd = np.dtype(npd)
    d = BY_NP.get(npd) or NP_FALLBACK.get(npd)
    if d is None:
        raise TypeError(f"numpy dtype {npd} is not supported by kiln")
    if convert_64_to_32:
        d = {int64: int32, float64: float32}.get(d, d)
    return d


def _smallest(kind, min_size, digits):
    best = None
    for t in ALL:
        if t.kind != kind or t.itemsize < min_size or t.digits < digits:
            continue
        if best is None or t.itemsize < best.itemsize:
            best = t
    return best


def promote(a, b):
    """The dtype of `a op b` for two arrays (ir_dtype_promote)."""
    a, b = get(a), get(b)
    if a == b:
        return a
    if a.kind > b.kind:
        a, b = b, a
    if a.kind == BOOL:
        return b
    if a.kind == b.kind:
        return a if a.itemsize >= b.itemsize else b
    if b.kind == FLOAT:
        return _smallest(FLOAT, b.itemsize, a.digits) or float64
    need = a.digits if a.digits > b.digits else b.digits + 1
    return _smallest(INT, 0, need) or float64


def scalar_kind(v):
    if isinstance(v, (bool, np.bool_)):
        return BOOL
    if isinstance(v, (int, np.integer)):
        return INT
    if isinstance(v, (float, np.floating)):
        return FLOAT
    raise TypeError(f"not a scalar: {type(v).__name__}")


def float_for(d):
    """The float an integer or bool dtype becomes in true division and
    float functions: float64 for int64, float32 otherwise."""
    d = get(d)
    if d.kind == FLOAT:
        return d
    return float64 if d == int64 else float32


def promote_scalar(d, v):
    """The dtype of `array op scalar` for an array of dtype `d`."""
    d = get(d)
    k = scalar_kind(v)
    if k == BOOL or k <= d.kind or (k == INT and d.kind == UINT):
        return d
    if k == INT:  # with a bool array
        return int32
    return float_for(d)


def int_fits(d, v):
    """Whether the integer v is exactly representable in dtype d."""
    d = get(d)
    v = int(v)
    if d.kind == BOOL:
        return v in (0, 1)
    if d.kind == FLOAT:
        return float(d.np.type(v)) == v
    info = np.iinfo(d.np)
    return info.min <= v <= info.max
