"""flags.py: jt.flags, jt.flag_scope and jt.no_grad.

Jittor scripts set flags (``jt.flags.use_cuda = 1``) and expect them to
be accepted. The flags kiln acts on:

- auto_convert_64_to_32 (default 1): jt.array narrows 64-bit numpy data
  (int64, float64) to 32 bits, as Jittor does; an explicit dtype wins.
- lazy_execution (default 1): 0 submits and waits after every op, which
  makes a failing op raise at its own line (slow; for debugging).
- use_cuda (default 0): 1 asks the daemon to run steps on its CUDA device
  (SUBMIT `device`); a daemon without one runs them on the CPU. jt.has_cuda
  says whether it has one.
- allow_tf32 (default 0): 1 lets the device's matmuls and convolutions use
  TF32 tensor cores (SUBMIT `tf32`): faster, about 3 significant digits.
- no_grad: set by jt.no_grad(); vars made while it is set are read
  through a stop_grad node by what is made outside it (autograd.py).

Any other name is stored and read back, so scripts that set flags kiln
does not know keep running.
"""
import contextlib
import functools


class Flags:
    def __init__(self):
        object.__setattr__(self, "_values", {
            "use_cuda": 0, "auto_convert_64_to_32": 1, "lazy_execution": 1,
            "no_grad": 0, "log_silent": 0, "use_device": 0, "allow_tf32": 0,
        })

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"jt.flags has no flag {name!r}") from None

    def __setattr__(self, name, value):
        self._values[name] = value

    def __repr__(self):
        return "jt.flags(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


flags = Flags()


class flag_scope(contextlib.ContextDecorator):
    """Set flags for a `with` block (or a decorated function), then restore."""

    def __init__(self, **kw):
        self.kw = kw
        self.saved = []

    def __enter__(self):
        saved = {k: getattr(flags, k, None) for k in self.kw}
        self.saved.append(saved)
        for k, v in self.kw.items():
            setattr(flags, k, v)
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.pop().items():
            setattr(flags, k, v)
        return False


class no_grad(flag_scope):
    """Jittor's no_grad: a context manager and a decorator. No gradient
    flows back into what is computed inside it (see autograd.py)."""

    def __init__(self, func=None):
        super().__init__(no_grad=1)
        if func is not None:  # used as @jt.no_grad without parentheses
            functools.update_wrapper(self, func)
            self._func = func
        else:
            self._func = None

    def __call__(self, *args, **kw):
        if self._func is not None:
            with self:
                return self._func(*args, **kw)
        return super().__call__(*args)


class enable_grad(flag_scope):
    def __init__(self):
        super().__init__(no_grad=0)
