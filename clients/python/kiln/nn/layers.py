"""nn/layers.py: the layer Modules, with Jittor's constructors and
initialisation (Linear and Conv2d weights from init.invariant_uniform,
biases uniform in +-1/sqrt(fan_in)); attribute names (weight, bias,
running_mean, running_var) match Jittor's and PyTorch's, so state dicts
load across them.
"""
import math
import numbers

from .. import init
from ..module import Module, Sequential, ModuleList, ModuleDict, make_module  # noqa: F401
from . import conv as C
from . import functional as F


class Identity(Module):
    def __init__(self, *a, **k):
        pass

    def execute(self, x):
        return x


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        self.in_features = in_features
        self.out_features = out_features
        self.weight = init.invariant_uniform((out_features, in_features), "float32")
        bound = 1.0 / math.sqrt(in_features)
        self.bias = init.uniform((out_features,), "float32", -bound, bound) if bias else None

    def execute(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True):
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = C._pair(kernel_size)
        self.stride = C._pair(stride)
        self.padding = C._pair(padding)
        self.dilation = C._pair(dilation)
        self.groups = groups
        kh, kw = self.kernel_size
        self.weight = init.invariant_uniform([out_channels, in_channels // groups, kh, kw],
                                             "float32")
        if bias:
            fan = (in_channels // groups) * kh * kw
            bound = 1.0 / math.sqrt(fan)
            self.bias = init.uniform([out_channels], "float32", -bound, bound)
        else:
            self.bias = None

    def execute(self, x):
        return C.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


Conv = Conv2d


class Conv1d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = int(kernel_size), stride
        self.padding, self.dilation, self.groups = padding, dilation, groups
        self.weight = init.invariant_uniform([out_channels, in_channels // groups,
                                              self.kernel_size], "float32")
        if bias:
            bound = 1.0 / math.sqrt((in_channels // groups) * self.kernel_size)
            self.bias = init.uniform([out_channels], "float32", -bound, bound)
        else:
            self.bias = None

    def execute(self, x):
        return C.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = C._pair(kernel_size)
        self.stride, self.padding = C._pair(stride), C._pair(padding)
        self.output_padding, self.dilation = C._pair(output_padding), C._pair(dilation)
        self.groups = groups
        kh, kw = self.kernel_size
        self.weight = init.invariant_uniform([in_channels, out_channels // groups, kh, kw],
                                             "float32", "fan_out")
        if bias:
            bound = 1.0 / math.sqrt((out_channels // groups) * kh * kw)
            self.bias = init.uniform([out_channels], "float32", -bound, bound)
        else:
            self.bias = None

    def execute(self, x):
        return C.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


ConvTranspose = ConvTranspose2d


class _Pool(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=None, return_indices=None,
                 ceil_mode=False, count_include_pad=True, op="maximum"):
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation or 1
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.op = op

    def execute(self, x):
        if self.op in ("maximum", "max"):
            return C.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                ceil_mode=self.ceil_mode)
        return C.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class Pool(_Pool):
    """Jittor's nn.Pool(kernel_size, stride, padding, ..., op)."""


class MaxPool2d(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=None, return_indices=False,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode,
                         op="maximum")


class AvgPool2d(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, None, None, ceil_mode,
                         count_include_pad, op="mean")


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        self.output_size = output_size

    def execute(self, x):
        return C.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveMaxPool2d(Module):
    def __init__(self, output_size, return_indices=False):
        self.output_size = output_size

    def execute(self, x):
        return C.adaptive_max_pool2d(x, self.output_size)


class BatchNorm(Module):
    """Batch normalisation over dim 1 of [N, C] or [N, C, ...] (Jittor's
    BatchNorm, BatchNorm1d and BatchNorm2d are this one class)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, is_train=True,
                 sync=True):
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.is_train = is_train
        self.sync = sync
        self.weight = init.constant((num_features,), "float32", 1.0) if affine else 1.0
        self.bias = init.constant((num_features,), "float32", 0.0) if affine else 0.0
        self.running_mean = init.constant((num_features,), "float32", 0.0).stop_grad()
        self.running_var = init.constant((num_features,), "float32", 1.0).stop_grad()

    def execute(self, x):
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm({self.num_features}) got {x.shape[1]} channels")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.is_train, self.momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


BatchNorm1d = BatchNorm
BatchNorm2d = BatchNorm
BatchNorm3d = BatchNorm


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight = init.constant(self.normalized_shape, "float32", 1.0) \
            if elementwise_affine else None
        self.bias = init.constant(self.normalized_shape, "float32", 0.0) \
            if elementwise_affine and bias else None

    def execute(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-05, affine=True, is_train=True):
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = init.constant((num_channels,), "float32", 1.0) if affine else None
        self.bias = init.constant((num_channels,), "float32", 0.0) if affine else None

    def execute(self, x):
        N = x.shape[0]
        g = x.reshape(N, self.num_groups, -1)
        g = F.layer_norm(g, g.shape[-1], eps=self.eps).reshape(x.shape)
        shape = [1] * x.ndim
        shape[1] = self.num_channels
        if self.weight is not None:
            g = g * self.weight.reshape(shape) + self.bias.reshape(shape)
        return g


class InstanceNorm2d(Module):
    def __init__(self, num_features, eps=1e-05, momentum=0.1, affine=True, is_train=True,
                 sync=True):
        self.num_features, self.eps = num_features, eps
        self.weight = init.constant((num_features,), "float32", 1.0) if affine else None
        self.bias = init.constant((num_features,), "float32", 0.0) if affine else None

    def execute(self, x):
        m = x.mean([2, 3], keepdims=True)
        v = ((x - m) * (x - m)).mean([2, 3], keepdims=True)
        y = (x - m) * (v + self.eps).rsqrt()
        if self.weight is not None:
            y = y * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return y


class Dropout(Module):
    """Jittor's Dropout: active only in training (is_train, set by
    Module.train(); False when made, as in Jittor)."""

    def __init__(self, p=0.5, is_train=False):
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], not {p}")
        self.p = p
        self.is_train = is_train

    def execute(self, x):
        return F.dropout(x, self.p, self.is_train)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def execute(self, x):
        return x.flatten(self.start_dim, self.end_dim)


class Unflatten(Module):
    def __init__(self, dim, unflattened_size):
        self.dim, self.size = dim, tuple(unflattened_size)

    def execute(self, x):
        d = self.dim % x.ndim
        return x.reshape(list(x.shape[:d]) + list(self.size) + list(x.shape[d + 1:]))


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype="float32"):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        w = init.gauss([num_embeddings, embedding_dim], dtype)
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = w

    def execute(self, x):
        return F.embedding(x, self.weight)


def _act(name, fn, *names):
    class Act(Module):
        def __init__(self, *args, **kw):
            self.args = args
            self.kw = {k: v for k, v in kw.items() if k != "inplace"}
            for n, v in zip(names, args):
                setattr(self, n, v)

        def execute(self, x):
            return fn(x, *self.args, **self.kw)

        def extra_repr(self):
            return ", ".join(repr(a) for a in self.args)
    Act.__name__ = Act.__qualname__ = name
    return Act


ReLU = _act("ReLU", F.relu)
Relu = ReLU
ReLU6 = _act("ReLU6", F.relu6)
LeakyReLU = _act("LeakyReLU", F.leaky_relu, "scale")
Leaky_relu = LeakyReLU
Sigmoid = _act("Sigmoid", F.sigmoid)
Tanh = _act("Tanh", F.tanh)
GELU = _act("GELU", F.gelu)
ELU = _act("ELU", F.elu, "alpha")
SELU = _act("SELU", F.selu)
CELU = _act("CELU", F.celu, "alpha")
SiLU = _act("SiLU", F.silu)
Swish = SiLU
Mish = _act("Mish", F.mish)
Softplus = _act("Softplus", F.softplus, "beta", "threshold")
Softsign = _act("Softsign", F.softsign)
Hardtanh = _act("Hardtanh", F.hardtanh)
Hardsigmoid = _act("Hardsigmoid", F.hardsigmoid)
Hardswish = _act("Hardswish", F.hardswish)
LogSigmoid = _act("LogSigmoid", F.log_sigmoid)
Softmax = _act("Softmax", F.softmax, "dim")
LogSoftmax = _act("LogSoftmax", F.log_softmax, "dim")


class PReLU(Module):
    def __init__(self, num_parameters=1, init_=0.25):
        self.num_parameters = num_parameters
        self.weight = init.constant((num_parameters,), "float32", init_)

    def execute(self, x):
        return F.prelu(x, self.weight)


class ZeroPad2d(Module):
    def __init__(self, padding):
        self.padding = C._pair(padding, 4) if not isinstance(padding, numbers.Integral) \
            else (padding,) * 4

    def execute(self, x):
        return C.pad(x, self.padding)


class ConstantPad2d(ZeroPad2d):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def execute(self, x):
        return C.pad(x, self.padding, value=self.value)


class ReplicationPad2d(ZeroPad2d):
    def execute(self, x):
        return C.pad(x, self.padding, "replicate")


class ReflectionPad2d(ZeroPad2d):
    def execute(self, x):
        return C.pad(x, self.padding, "reflect")


class Upsample(Module):
    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=False):
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def execute(self, x):
        return C.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)


# ---- losses as modules --------------------------------------------------------------


class CrossEntropyLoss(Module):
    def __init__(self, weight=None, ignore_index=None, reduction="mean"):
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def execute(self, output, target):
        return F.cross_entropy_loss(output, target, self.weight, self.ignore_index,
                                    self.reduction)


class NLLLoss(Module):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def execute(self, output, target):
        return F.nll_loss(output, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        self.reduction = reduction

    def execute(self, output, target):
        return F.mse_loss(output, target, self.reduction)


class L1Loss(MSELoss):
    def execute(self, output, target):
        return F.l1_loss(output, target, self.reduction)


class SmoothL1Loss(MSELoss):
    def execute(self, output, target):
        return F.smooth_l1_loss(output, target, self.reduction)


class BCELoss(Module):
    def __init__(self, weight=None, size_average=True, reduction="mean"):
        self.weight, self.size_average, self.reduction = weight, size_average, reduction

    def execute(self, output, target):
        return F.bce_loss(output, target, self.weight, self.size_average, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, weight=None, size_average=True, pos_weight=None, reduction="mean"):
        self.weight, self.size_average = weight, size_average
        self.pos_weight, self.reduction = pos_weight, reduction

    def execute(self, output, target):
        return F.binary_cross_entropy_with_logits(output, target, self.weight, self.pos_weight,
                                                  self.size_average, self.reduction)


class KLDivLoss(Module):
    def __init__(self, reduction="mean", log_target=False):
        self.reduction, self.log_target = reduction, log_target

    def execute(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)

