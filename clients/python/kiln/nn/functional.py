"""nn/functional.py: activations, softmax, losses, dropout, normalisation.

Everything is composed from the meta-ops (element-wise ops, reduce,
reindex, where) with Jittor's signatures and results, so the daemon can
fuse it and differentiate it with its own backward rules. Softmax and the
cross-entropy losses subtract the row maximum first (the usual stable
form); the maximum is wrapped in stop_grad, which leaves the value and
the gradient unchanged (softmax does not depend on the shift) and keeps
the backward pass free of the max's tie rule.
"""
import numbers

from .. import dtypes as dt
from .. import ops
from ..functions import _float, gelu, leaky_relu, relu, sigmoid, tanh  # noqa: F401
from ..reduction import matmul
from ..var import Var


def _stop(v):
    return v.detach()


# ---- activations ----------------------------------------------------------------


def relu6(x):
    return ops.binary("minimum", ops.binary("maximum", x, 0), 6)


def elu(x, alpha=1.0):
    x = _float(x)
    return ops.where(x > 0, x, (x.minimum(0).exp() - 1.0) * alpha)


def selu(x):
    a, s = 1.6732632423543772, 1.0507009873554805
    return elu(x, a) * s


def celu(x, alpha=1.0):
    x = _float(x)
    return x.maximum(0) + ((x / alpha).minimum(0).exp() - 1.0).minimum(0) * alpha


def softplus(x, beta=1.0, threshold=20.0):
    x = _float(x)
    bx = x * beta
    soft = (bx.minimum(threshold).exp() + 1.0).log() / beta
    return ops.where(bx > threshold, x, soft)


def softsign(x):
    x = _float(x)
    return x / (x.abs() + 1.0)


def silu(x):
    x = _float(x)
    return x * x.sigmoid()


swish = silu


def mish(x):
    return _float(x) * softplus(x).tanh()


def hardtanh(x, min_val=-1.0, max_val=1.0):
    return _float(x).clamp(min_val, max_val)


def hardsigmoid(x):
    return (_float(x) / 6.0 + 0.5).clamp(0.0, 1.0)


def hardswish(x):
    x = _float(x)
    return x * hardsigmoid(x)


def log_sigmoid(x):
    x = _float(x)
    return -softplus(-x)


logsigmoid = log_sigmoid


def prelu(x, weight):
    x = _float(x)
    if weight.numel() > 1:
        shape = [1] * x.ndim
        shape[1] = weight.numel()
        weight = weight.reshape(shape)
    return x.maximum(0) + weight * x.minimum(0)


def softmax(x, dim=None, log=False):
    """Jittor's softmax: over `dim`, or over every element when None."""
    x = _float(x)
    if dim is None:
        m = _stop(x.max())
        z = x - m
        e = z.exp()
        s = e.sum()
    else:
        m = _stop(x.max(dim, keepdims=True))
        z = x - m
        e = z.exp()
        s = e.sum(dim, keepdims=True)
    if log:
        return z - s.log()
    return e / s


def log_softmax(x, dim=None):
    return softmax(x, dim, log=True)


def logsumexp(x, dim=None, keepdims=False):
    x = _float(x)
    dims = dim if dim is not None else list(range(x.ndim))
    m = _stop(x.max(dims, keepdims=True))
    r = (x - m).exp().sum(dims, keepdims=True).log() + m
    if not keepdims:
        r = r.reshape([s for k, s in enumerate(r.shape)
                       if k not in ([dims] if isinstance(dims, numbers.Integral)
                                    else [d % x.ndim for d in dims])])
    return r


# ---- linear algebra -------------------------------------------------------------


def matmul_transpose(a, b):
    """a @ b^T over the last dims (Jittor's nn.matmul_transpose)."""
    return matmul(a, b, transpose_b=True) if b.ndim >= 2 else matmul(a, b)


def bmm(a, b):
    return matmul(a, b)


def bmm_transpose(a, b):
    return matmul(a, b, transpose_b=True)


def linear(x, weight, bias=None):
    """x @ weight^T + bias (weight is [out, in], as in Linear)."""
    y = matmul_transpose(x, weight)
    return y + bias if bias is not None else y


def one_hot(x, num_classes=-1):
    """Integer labels as one-hot int32 rows (num_classes -1: max + 1)."""
    x = ops.to_var(x)
    if num_classes == -1:
        num_classes = int(x.max().item()) + 1
    shape = tuple(x.shape) + (num_classes,)
    idx = ops.index(shape, x.ndim, dt.int32)
    lab = ops.broadcast_to(ops.cast(x, dt.int32), shape, [x.ndim])
    return ops.cast(idx == lab, dt.int32)


# ---- losses -----------------------------------------------------------------------


def _reduce(loss, reduction, count=None):
    if reduction in ("mean", True, "elementwise_mean"):
        return loss.mean() if count is None else loss.sum() / count
    if reduction == "sum":
        return loss.sum()
    if reduction in ("none", None, False):
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def _legacy(reduction, size_average, reduce_=None):
    if reduce_ is False:
        return "none"
    if size_average is False:
        return "sum"
    return reduction


def _class_last(output):
    """[N, C, d...] logits as [N*d..., C] (classes in the last dim)."""
    if output.ndim > 2:
        c = output.shape[1]
        perm = [0] + list(range(2, output.ndim)) + [1]
        output = output.permute(perm).reshape(-1, c)
    return output


def _pick(x, target):
    """x[n, target[n]] for [N, C] x: a sum against a one-hot mask."""
    n, c = x.shape
    cls = ops.index((n, c), 1, dt.int32)
    t = ops.broadcast_to(ops.cast(target.reshape(-1), dt.int32), (n, c), [1])
    return ops.where(cls == t, x, 0.0).sum(1)


def cross_entropy_loss(output, target, weight=None, ignore_index=None, reduction="mean"):
    """Jittor's cross_entropy_loss: logits [N, C] (or [N, C, d...]) and
    integer class targets [N] (or [N, d...]); or, for a float target of
    the logits' shape, class probabilities. weight: per-class weights;
    ignore_index: a target value that counts for nothing."""
    output = _float(output)
    target = ops.to_var(target)
    if target.dtype.is_float() and tuple(target.shape) == tuple(output.shape):
        logp = log_softmax(output, 1)
        loss = -(logp * target)
        if weight is not None:
            shape = [1] * output.ndim
            shape[1] = output.shape[1]
            loss = loss * ops.to_var(weight).reshape(shape)
        loss = loss.sum(1)
        return _reduce(loss, reduction)
    output = _class_last(output)
    target = target.reshape(-1)
    logp = log_softmax(output, 1)
    loss = -_pick(logp, target)
    w = None
    if weight is not None:
        w = _pick(ops.broadcast_to(ops.to_var(weight).float32(), output.shape, [0]), target)
    if ignore_index is not None:
        keep = (target != ignore_index).float32()
        w = keep if w is None else w * keep
    if w is not None:
        loss = loss * w
        if reduction == "mean":
            return loss.sum() / w.sum().maximum(1e-12 if weight is not None else 1.0)
    return _reduce(loss, reduction)


def nll_loss(output, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities [N, C] (PyTorch's)."""
    output = _class_last(_float(output))
    target = ops.to_var(target).reshape(-1)
    loss = -_pick(output, target)
    w = (target != ignore_index).float32()
    if weight is not None:
        w = w * _pick(ops.broadcast_to(ops.to_var(weight).float32(), output.shape, [0]),
                      target)
    loss = loss * w
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss, reduction)


def mse_loss(output, target, reduction="mean", size_average=None):
    return _reduce((_float(output) - target).sqr(), _legacy(reduction, size_average))


def l1_loss(output, target, reduction="mean", size_average=None):
    return _reduce((_float(output) - target).abs(), _legacy(reduction, size_average))


def smooth_l1_loss(output, target, reduction="mean", beta=1.0):
    d = (_float(output) - target).abs()
    loss = ops.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction)


def bce_loss(output, target, weight=None, size_average=True, reduction="mean"):
    """Binary cross entropy of probabilities (logs clamped at -100, as
    PyTorch does)."""
    output = _float(output)
    loss = -(target * output.log().maximum(-100.0)
             + (1.0 - target) * (1.0 - output).log().maximum(-100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy(reduction, size_average))


binary_cross_entropy = bce_loss


def binary_cross_entropy_with_logits(output, target, weight=None, pos_weight=None,
                                     size_average=True, reduction="mean"):
    """BCE of sigmoid(output), in the stable form
    (1 - t) x + (1 + (pw - 1) t) softplus(-x)."""
    x = _float(output)
    sp = softplus(-x)
    if pos_weight is not None:
        lw = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * x + lw * sp
    else:
        loss = (1.0 - target) * x + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, _legacy(reduction, size_average))


def kl_div(input, target, reduction="mean", log_target=False):
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = ops.where(target > 0, target * (target.maximum(1e-38).log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


# ---- dropout and normalisation ------------------------------------------------------


def dropout(x, p=0.5, is_train=False):
    """Zero each element with probability p and scale the rest by
    1/(1-p), when is_train; else x unchanged (Jittor's)."""
    if not is_train or p == 0:
        return x
    if p >= 1:
        return x * 0.0
    x = _float(x)
    keep = ops.rand_like(x) >= p
    return ops.where(keep, x * (1.0 / (1.0 - p)), 0.0)


def _channel_shape(x, c):
    shape = [1] * x.ndim
    shape[1] = c
    return shape


def batch_norm(x, running_mean, running_var, weight=1, bias=0, training=False,
               momentum=0.1, eps=1e-05):
    """Jittor's functional batch_norm over dim 1 ([N, C] or [N, C, ...]).
    In training it normalises with the batch statistics and moves the
    running ones toward them (in place: running_mean and running_var are
    Vars that get new values; the variance is the biased batch variance,
    as Jittor keeps it)."""
    x = _float(x)
    c = x.shape[1]
    dims = [0] + list(range(2, x.ndim))
    shape = _channel_shape(x, c)
    if training:
        xmean = x.mean(dims, keepdims=True)
        x2mean = (x * x).mean(dims, keepdims=True)
        xvar = (x2mean - xmean * xmean).maximum(0.0)
        if running_mean is not None:
            running_mean.update(running_mean + (xmean.reshape(-1) - running_mean) * momentum)
            running_var.update(running_var + (xvar.reshape(-1) - running_var) * momentum)
    else:
        xmean = running_mean.reshape(shape)
        xvar = running_var.reshape(shape)
    w = weight.reshape(shape) if isinstance(weight, Var) else weight
    b = bias.reshape(shape) if isinstance(bias, Var) else bias
    norm = (x - xmean) * (xvar + eps).rsqrt()
    return norm * w + b


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-05):
    x = _float(x)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    dims = list(range(x.ndim - len(normalized_shape), x.ndim))
    m = x.mean(dims, keepdims=True)
    v = ((x - m) * (x - m)).mean(dims, keepdims=True)
    y = (x - m) * (v + eps).rsqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def normalize(x, p=2, dim=1, eps=1e-12):
    x = _float(x)
    n = x.abs().pow(p).sum(dim, keepdims=True).pow(1.0 / p)
    return x / n.maximum(eps)


def embedding(x, weight):
    """Rows of weight picked by the integer ids in x."""
    x = ops.to_var(x)
    return weight[x]


def cosine_similarity(a, b, dim=1, eps=1e-8):
    a, b = _float(a), _float(b)
    num = (a * b).sum(dim)
    den = ((a * a).sum(dim) * (b * b).sum(dim)).maximum(eps * eps).sqrt()
    return num / den


def pairwise_distance(a, b, p=2.0, eps=1e-6, keepdim=False):
    d = (_float(a) - b + eps).abs().pow(p).sum(-1, keepdims=keepdim)
    return d.pow(1.0 / p)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("numbers", "dt", "ops", "Var")]
