"""nn/conv.py: convolution, pooling, padding and resizing from meta-ops.

Convolution is Jittor's construction: `reindex` lays the input out as
windows [N, G, O/G, C/G, oh, ow, kh, kw] (padding is the overflow value
0), the weight is broadcast to the same shape, and a `reduce` add over
(C/G, kh, kw) sums the products; the daemon fuses the three into one
kernel, and differentiates them with the reindex/broadcast rules.
Pooling is a reindex to windows [N, C, oh, ow, kh, kw] and a reduce
(max with -inf as the overflow value, or add and a divisor); adaptive
pooling uses the largest window with an overflow condition for the
smaller ones. Sizes follow PyTorch's formulas (ceil_mode,
count_include_pad and divisor_override included).
"""
import math
import numbers

import numpy as np

from .. import dtypes as dt
from .. import lowered, ops
from ..meta import reindex
from ..functions import _float


def _pair(v, n=2):
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise ValueError(f"expected {n} values, got {list(v)}")
    return v


def _out_size(n, k, s, p, d, ceil_mode=False):
    eff = d * (k - 1) + 1
    if ceil_mode:
        o = -(-(n + 2 * p - eff) // s) + 1
        if (o - 1) * s >= n + p:  # the last window must start inside
            o -= 1
    else:
        o = (n + 2 * p - eff) // s + 1
    if o <= 0:
        raise ValueError(f"input size {n} with kernel {k}, stride {s}, padding {p}, "
                         f"dilation {d} gives an empty output")
    return o


def _batched(x, rank):
    """x with a batch dim when it came without one (rank - 1 dims)."""
    x = ops.to_var(x)
    if x.ndim == rank - 1:
        return x.unsqueeze(0), True
    if x.ndim != rank:
        raise ValueError(f"expected a rank-{rank} input, got shape {list(x.shape)}")
    return x, False


def _relay(op, x, weight, bias, shape, stride, padding, dilation, groups, unb):
    """One relay node (conv2d or conv2d_bwd_data) of `shape` [N, O, oh, ow],
    plus the bias per output channel; the batch dim dropped again if x
    came without one."""
    w = weight if weight.dtype == x.dtype else weight.astype(x.dtype)
    y = ops.make(op, x.dtype, shape, [x, w], stride=list(stride), padding=list(padding),
                 dilation=list(dilation), groups=groups)
    if bias is not None:
        y = y + ops.to_var(bias).reshape(1, shape[1], 1, 1)
    return y[0] if unb else y


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Jittor's nn.conv2d: x [N, C, H, W], weight [O, C/groups, kh, kw]."""
    x, unb = _batched(_float(x), 4)
    weight = ops.to_var(weight)
    N, C, H, W = x.shape
    O, CpG, kh, kw = weight.shape
    G = int(groups)
    if C % G or O % G or C // G != CpG:
        raise ValueError(f"conv2d: input channels {C}, weight {list(weight.shape)} and "
                         f"groups {G} do not fit")
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    oh = _out_size(H, kh, sh, ph, dh)
    ow = _out_size(W, kw, sw, pw, dw)
    OpG = O // G
    if x.dtype in (dt.float32, dt.float64):
        # One conv2d node: the daemon runs it (and its gradients) in oneDNN.
        return _relay("conv2d", x, weight, bias, (N, O, oh, ow), (sh, sw), (ph, pw), (dh, dw),
                      G, unb)
    shape = [N, G, OpG, CpG, oh, ow, kh, kw]
    xx = reindex(x, shape, ["i0", f"i1*{CpG}+i3" if G > 1 else "i3",
                            f"i4*{sh}-{ph}+i6*{dh}", f"i5*{sw}-{pw}+i7*{dw}"])
    w = weight.reshape(G, OpG, CpG, kh, kw)
    if w.dtype != xx.dtype:
        w = w.astype(xx.dtype)
    ww = ops.broadcast_to(w, shape, [0, 4, 5])
    y = (xx * ww).sum([3, 6, 7]).reshape(N, O, oh, ow)
    if bias is not None:
        y = y + ops.to_var(bias).reshape(1, O, 1, 1)
    return y[0] if unb else y


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, unb = _batched(x, 3)
    y = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, _pair(stride, 1)[0]),
               (0, _pair(padding, 1)[0]), (1, _pair(dilation, 1)[0]), groups)
    y = y.squeeze(2)
    return y[0] if unb else y


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The gradient of conv2d with respect to its input: weight is
    [C_in, C_out/groups, kh, kw], as in PyTorch. Each input element is
    scattered through the kernel with a reindex_reduce add."""
    x, unb = _batched(_float(x), 4)
    weight = ops.to_var(weight)
    N, C, H, W = x.shape
    Ci, OpG, kh, kw = weight.shape
    G = int(groups)
    if Ci != C or C % G:
        raise ValueError(f"conv_transpose2d: input channels {C} and weight "
                         f"{list(weight.shape)} do not fit (groups {G})")
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    oph, opw = _pair(output_padding)
    oh = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    CpG = C // G
    O = OpG * G
    if x.dtype in (dt.float32, dt.float64) and oph < sh and opw < sw:
        # The input gradient of the conv2d that maps [N, O, oh, ow] to x:
        # one conv2d_bwd_data relay node (oneDNN).
        return _relay("conv2d_bwd_data", x, weight, bias, (N, O, oh, ow), (sh, sw), (ph, pw),
                      (dh, dw), G, unb)
    shape = [N, G, CpG, OpG, H, W, kh, kw]
    xx = ops.broadcast_to(x.reshape(N, G, CpG, H, W), shape, [3, 6, 7])
    ww = ops.broadcast_to(weight.reshape(G, CpG, OpG, kh, kw).astype(xx.dtype), shape, [0, 4, 5])
    prod = (xx * ww).sum(2)  # [N, G, OpG, H, W, kh, kw]
    y = prod.reindex_reduce("add", [N, G, OpG, oh, ow],
                            ["i0", "i1", "i2", f"i3*{sh}-{ph}+i5*{dh}", f"i4*{sw}-{pw}+i6*{dw}"])
    y = y.reshape(N, O, oh, ow)
    if bias is not None:
        y = y + ops.to_var(bias).reshape(1, O, 1, 1)
    return y[0] if unb else y


# ---- pooling -------------------------------------------------------------------------


def _lowest(d):
    if d.is_float():
        return float("-inf")
    if d.is_bool():
        return False
    return int(np.iinfo(d.np).min)


def _windows(x, k, s, p, d, ceil_mode, fill):
    N, C, H, W = x.shape
    oh = _out_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    ow = _out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    xx = reindex(x, [N, C, oh, ow, k[0], k[1]],
                 ["i0", "i1", f"i2*{s[0]}-{p[0]}+i4*{d[0]}", f"i3*{s[1]}-{p[1]}+i5*{d[1]}"],
                 overflow_value=fill)
    return xx, oh, ow


def _tiles(x, k, s, p, d):
    """Windows that tile x exactly (stride = kernel, no padding or
    dilation, sizes divisible): x reshaped to [N, C, oh, kh, ow, kw], so
    the pooling is a plain reduce over dims 3 and 5 and its gradient an
    element-wise broadcast, with no gather or scatter. None otherwise."""
    N, C, H, W = x.shape
    if (s != k or p != (0, 0) or d != (1, 1) or H % k[0] or W % k[1]):
        return None
    return x.reshape(N, C, H // k[0], k[0], W // k[1], k[1])


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
               ceil_mode=False):
    x, unb = _batched(x, 4)
    k = _pair(kernel_size)
    s = _pair(stride) if stride is not None else k
    p, d = _pair(padding), _pair(dilation)
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise ValueError("pad should be at most half of the kernel size")
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True) is not supported by kiln")
    t = _tiles(x, k, s, p, d)
    if t is not None:
        y = t.max([3, 5])
        return y[0] if unb else y
    xx, _, _ = _windows(x, k, s, p, d, ceil_mode, _lowest(x.dtype))
    y = xx.max([4, 5])
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True) is not supported by kiln")
    return y[0] if unb else y


def _avg_divisor(n, o, k, s, p, count_include_pad):
    out = np.empty(o, np.int64)
    for i in range(o):
        start = i * s - p
        end = min(start + k, n + p)
        size = end - start
        start, end = max(start, 0), min(end, n)
        out[i] = size if count_include_pad else end - start
    return out


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x, unb = _batched(_float(x), 4)
    k = _pair(kernel_size)
    s = _pair(stride) if stride is not None else k
    p = _pair(padding)
    t = _tiles(x, k, s, p, (1, 1))
    if t is not None:
        y = t.mean([3, 5]) if not divisor_override else t.sum([3, 5]) / float(divisor_override)
        return y[0] if unb else y
    xx, oh, ow = _windows(x, k, s, p, (1, 1), ceil_mode, 0)
    y = xx.sum([4, 5])
    H, W = x.shape[2:]
    if divisor_override:
        y = y / float(divisor_override)
    else:
        dh = _avg_divisor(H, oh, k[0], s[0], p[0], count_include_pad)
        dw = _avg_divisor(W, ow, k[1], s[1], p[1], count_include_pad)
        div = np.outer(dh, dw)
        if (div == k[0] * k[1]).all():
            y = y / float(k[0] * k[1])
        else:
            y = y / ops.array(div.astype(x.dtype.np), dtype=x.dtype)
    return y[0] if unb else y


def pool(x, kernel_size, op="maximum", padding=0, stride=None, ceil_mode=False,
         count_include_pad=True):
    """Jittor's nn.pool: op "maximum"/"max" or "mean"/"avg"."""
    if op in ("maximum", "max"):
        return max_pool2d(x, kernel_size, stride, padding, ceil_mode=ceil_mode)
    if op in ("mean", "avg", "average"):
        return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    if op in ("minimum", "min"):
        return -max_pool2d(-x, kernel_size, stride, padding, ceil_mode=ceil_mode)
    raise ValueError(f"pool op must be maximum, minimum or mean, not {op!r}")


def _adaptive(x, output_size, how):
    x, unb = _batched(x, 4)
    N, C, H, W = x.shape
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size, output_size)
    oh, ow = [n if o is None else int(o) for n, o in zip((H, W), output_size)]
    if H % oh == 0 and W % ow == 0:
        k = (H // oh, W // ow)
        y = (max_pool2d(x, k) if how == "max" else avg_pool2d(x, k))
        return y[0] if unb else y
    kh = max(-(-((i + 1) * H) // oh) - (i * H) // oh for i in range(oh))
    kw = max(-(-((j + 1) * W) // ow) - (j * W) // ow for j in range(ow))
    fill = _lowest(x.dtype) if how == "max" else 0
    if how != "max":
        x = _float(x)
    xx = reindex(x, [N, C, oh, ow, kh, kw],
                 ["i0", "i1", f"(i2*{H})/{oh}+i4", f"(i3*{W})/{ow}+i5"],
                 overflow_value=fill,
                 overflow_conditions=[f"i4>=((i2+1)*{H}+{oh - 1})/{oh}-(i2*{H})/{oh}",
                                      f"i5>=((i3+1)*{W}+{ow - 1})/{ow}-(i3*{W})/{ow}"])
    if how == "max":
        y = xx.max([4, 5])
    else:
        ch = np.array([-(-((i + 1) * H) // oh) - (i * H) // oh for i in range(oh)])
        cw = np.array([-(-((j + 1) * W) // ow) - (j * W) // ow for j in range(ow)])
        y = xx.sum([4, 5]) / ops.array(np.outer(ch, cw).astype(x.dtype.np), dtype=x.dtype)
    return y[0] if unb else y


def adaptive_avg_pool2d(x, output_size):
    return _adaptive(x, output_size, "avg")


def adaptive_max_pool2d(x, output_size):
    return _adaptive(x, output_size, "max")


# ---- padding and resizing --------------------------------------------------------------


def pad(x, padding, mode="constant", value=0):
    """PyTorch's and Jittor's pad: `padding` lists (before, after) pairs
    from the last dim backwards. mode constant (the daemon's pad op),
    replicate, reflect or circular (reindex)."""
    x = ops.to_var(x)
    padding = [int(p) for p in padding]
    if len(padding) % 2 or len(padding) > 2 * x.ndim:
        raise ValueError(f"pad of a rank-{x.ndim} var takes pairs for at most {x.ndim} "
                         f"dims, not {padding}")
    pads = [0] * (2 * x.ndim)
    for j in range(len(padding) // 2):
        d = x.ndim - 1 - j
        pads[2 * d], pads[2 * d + 1] = padding[2 * j], padding[2 * j + 1]
    if mode == "constant":
        return lowered.pad(x, pads, value)
    shape, exprs = [], []
    for d in range(x.ndim):
        n, b, a = x.shape[d], pads[2 * d], pads[2 * d + 1]
        if b < 0 or a < 0:
            raise ValueError(f"{mode} padding takes no negative pads")
        shape.append(n + b + a)
        j = f"(i{d}-{b})"
        if b == 0 and a == 0:
            exprs.append(f"i{d}")
        elif mode == "replicate":
            exprs.append(f"min(max({j},0),{n - 1})")
        elif mode == "reflect":
            if b >= n or a >= n:
                raise ValueError(f"reflect padding of dim {d} (size {n}) must be below {n}")
            r = f"max({j},-{j})"  # |j|, then folded back at the far end
            exprs.append(f"{n - 1}-max({n - 1}-{r},{r}-{n - 1})")
        elif mode == "circular":
            exprs.append(f"(({j})%{n}+{n})%{n}")
        else:
            raise ValueError(f"pad mode must be constant, replicate, reflect or circular, "
                             f"not {mode!r}")
    return reindex(x, shape, exprs)


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=False):
    """Resize the last two dims of [N, C, H, W]: nearest (PyTorch's
    floor(dst * in / out)) or bilinear (align_corners either way)."""
    x, unb = _batched(x, 4)
    N, C, H, W = x.shape
    if size is not None:
        oh, ow = _pair(size)
    else:
        sf = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
        oh, ow = int(math.floor(H * sf[0])), int(math.floor(W * sf[1]))
    if mode == "nearest":
        y = reindex(x, [N, C, oh, ow], ["i0", "i1", f"(i2*{H})/{oh}", f"(i3*{W})/{ow}"])
        return y[0] if unb else y
    if mode not in ("bilinear", "linear"):
        raise ValueError(f"interpolate mode must be nearest or bilinear, not {mode!r}")
    x = _float(x)

    def axis(n, o):
        if align_corners:
            src = np.arange(o) * ((n - 1) / (o - 1) if o > 1 else 0.0)
        else:
            src = np.maximum((np.arange(o) + 0.5) * (n / o) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int32), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (src - i0).astype(x.dtype.np)

    h0, h1, lh = axis(H, oh)
    w0, w1, lw = axis(W, ow)
    ih0, ih1 = ops.array(h0, dtype=dt.int32), ops.array(h1, dtype=dt.int32)
    iw0, iw1 = ops.array(w0, dtype=dt.int32), ops.array(w1, dtype=dt.int32)

    def gather(hi, wi):
        return reindex(x, [N, C, oh, ow], ["i0", "i1", "@e0(i2)", "@e1(i3)"], extras=[hi, wi])

    lh = ops.array(lh, dtype=x.dtype).reshape(1, 1, oh, 1)
    lw = ops.array(lw, dtype=x.dtype).reshape(1, 1, 1, ow)
    top = gather(ih0, iw0) * (1.0 - lw) + gather(ih0, iw1) * lw
    bot = gather(ih1, iw0) * (1.0 - lw) + gather(ih1, iw1) * lw
    y = top * (1.0 - lh) + bot * lh
    return y[0] if unb else y


def upsample(x, size=None, scale_factor=None, mode="nearest", align_corners=False):
    return interpolate(x, size, scale_factor, mode, align_corners)


resize = interpolate


__all__ = ["conv2d", "conv1d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "pool",
           "adaptive_avg_pool2d", "adaptive_max_pool2d", "pad", "interpolate", "upsample",
           "resize"]
