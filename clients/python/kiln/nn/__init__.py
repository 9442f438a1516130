"""kiln.nn (jt.nn): layers, activations, losses, convolution and pooling,
with Jittor's names and signatures. Functions are in nn/functional.py
and nn/conv.py, Modules in nn/layers.py (and module.py for the base
class); the optimizers are reachable here too (jt.nn.SGD), as in Jittor.
"""
from ..module import Module, Sequential, ModuleList, ModuleDict, make_module  # noqa: F401
from ..reduction import matmul  # noqa: F401
from .functional import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from ..optim import SGD, Adam, AdamW, RMSprop, Optimizer  # noqa: F401

from ..var import Var as _Var
from . import functional as _F
for _name in ("relu", "softmax", "log_softmax", "gelu", "leaky_relu", "silu", "softplus"):
    if not hasattr(_Var, _name):
        setattr(_Var, _name, getattr(_F, _name))
