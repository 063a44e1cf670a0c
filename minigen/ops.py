"""Autograd primitives that numpy lacks: convolutions and stable logistic functions.

Three convolution primitives close over each other's gradients:

    conv2d(x, w)                  y[n,o,i,j] = sum_{c,a,b} xpad[n,c,i*s+a,j*s+b] w[o,c,a,b]
    conv_transpose2d(y, w)        the adjoint of conv2d in x (what torch calls it)
    conv2d_grad_weight(x, g)      the adjoint of conv2d in w

Each is bilinear, so each VJP is one of the three again: the gradient of a
convolution w.r.t. its input is a transposed convolution and vice versa. Because
the VJPs are built from differentiable primitives, gradients of gradients work —
WGAN-GP's penalty differentiates through the backward pass of its critic.
Inside, each is one matrix product on im2col's column matrix; minigen.im2col
explains its layout, chosen so that none of the three products copies its operands.

All of them keep the dtype they are given: float32 in, float32 out.

Importing this module (as every other module of minigen does) also changes autograd
for the whole process (minigen.autograd_patches): the VJPs of np.mean, np.var, np.std, np.max, np.min, np.amax
and np.amin are replaced by the same formulas that return float32 gradients for
float32 inputs, where autograd's return float64 under numpy 2. Values are the same;
code of your own that autograd differentiates in the same process is affected too.
"""
import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, defvjp_argnums, primitive
from autograd.numpy.numpy_vjps import unbroadcast_f
from autograd.tracer import getval, isbox
from numpy.lib.stride_tricks import sliding_window_view

from minigen import autograd_patches  # noqa: F401 (installs float32 VJPs of mean, var, std, max, min)
from minigen.backprop import batch_norm_train, batch_statistics, dense  # noqa: F401 (the layers' primitives, ops.dense etc.)
from minigen.im2col import batch_first, channel_rows, col2im, columns, pad_batch_last


def _pair(v, name):
    """An int or a pair of ints -> a pair (for height and width)."""
    pair = (v, v) if isinstance(v, (int, onp.integer)) else tuple(v)
    if len(pair) != 2 or any(int(p) != p or p < 0 for p in pair):
        raise ValueError(f"{name} must be a non-negative int or a pair of them, got {v!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(size, kernel, stride, padding):
    """Spatial output size of conv2d along one axis (the usual floor formula)."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, output_padding):
    """Spatial output size of conv_transpose2d along one axis."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def _check_4d(name, arr, what):
    if onp.ndim(arr) != 4:
        raise ValueError(f"{name}: expected {what} as a 4-d array, got shape {onp.shape(arr)}")


def _im2col_windows(x, kernel, stride, padding, out_hw):
    """Sliding windows of the padded input, a strided *view* (no copy yet).

    x: (N, C, H, W) -> (N, C, Ho, Wo, kh, kw), window (i, j) starting at (i*s, j*s).
    """
    # BEGIN SOLUTION
    (ph, pw), (sh, sw) = padding, stride
    if ph or pw:
        x = onp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]
    return windows[:, :, : out_hw[0], : out_hw[1]]
    # END SOLUTION


def _im2col(x, kernel, stride, padding, out_hw):
    """x: (N, C, H, W) -> cols (C*kh*kw, Ho*Wo*N), column (i, j, n) the window under output pixel (i, j).

    The layout is minigen.im2col's (its docstring says why): pad into a batch-last copy,
    take the windows of that, copy them into columns.
    """
    windows = _im2col_windows(pad_batch_last(x, padding), kernel, stride, (0, 0), out_hw)  # (N, C, Ho, Wo, kh, kw)
    return columns(windows)


@primitive
def _conv2d(x, w, stride, padding):
    """x: (N, C, H, W), w: (O, C, kh, kw) -> (N, O, Ho, Wo), with one GEMM."""
    kh, kw = w.shape[2:]
    out_hw = (conv_output_size(x.shape[2], kh, stride[0], padding[0]),
              conv_output_size(x.shape[3], kw, stride[1], padding[1]))
    # BEGIN SOLUTION
    cols = _im2col(x, (kh, kw), stride, padding, out_hw)  # (C*kh*kw, Ho*Wo*N)
    y = onp.matmul(w.reshape(len(w), -1), cols)  # (O, Ho*Wo*N)
    return batch_first(y, x.shape[0], out_hw)
    # END SOLUTION


@primitive
def _conv_transpose2d(y, w, stride, padding, out_hw):
    """y: (N, Cin, H, W), w: (Cin, Cout, kh, kw) -> (N, Cout, *out_hw): col2im.

    Every input pixel spreads w[ci] over a kh x kw patch of the output; patches of
    neighbouring pixels overlap and add. One GEMM makes all patches, col2im adds them.
    """
    cols = onp.matmul(w.reshape(len(w), -1).T, channel_rows(y))  # (Cout*kh*kw, H*W*N)
    return col2im(cols, (y.shape[0], w.shape[1], *out_hw), w.shape[2:], stride, padding, y.shape[2:])


@primitive
def _conv2d_grad_weight(x, g, kernel, stride, padding):
    """dL/dw of conv2d: x (N, C, H, W), g = dL/dy (N, O, Ho, Wo) -> (O, C, kh, kw)."""
    return _grad_weight_from_cols(_im2col(x, kernel, stride, padding, g.shape[2:]), g, kernel)


def _grad_weight_from_cols(cols, g, kernel):
    """cols = im2col of conv2d's input x (C*kh*kw, Ho*Wo*N), g = dL/dy (N, O, Ho, Wo) -> dL/dw (O, C, kh, kw)."""
    return onp.matmul(channel_rows(g), cols.T).reshape(g.shape[1], -1, *kernel)


# The VJPs. Each primitive is bilinear in its two array arguments, so the VJP for
# one argument is a primitive applied to the other argument and the cotangent.
defvjp(
    _conv2d,
    lambda ans, x, w, stride, padding: lambda g: _conv_transpose2d(g, w, stride, padding, x.shape[2:]),
    lambda ans, x, w, stride, padding: lambda g: _conv2d_grad_weight(x, g, w.shape[2:], stride, padding),
)


def _conv_transpose2d_vjp(argnums, ans, args, kwargs):
    """Both gradients of a transposed convolution read the columns of im2col(g):
    dL/dy = conv2d(g, w) multiplies them by w, dL/dw = conv2d_grad_weight(g, y) by y.
    When both are wanted (a generator's layer) and no gradient of this gradient is being
    traced, the columns are built once, not twice; otherwise each is its primitive."""
    y, w, stride, padding, _ = args
    grads = {0: lambda g: _conv2d(g, w, stride, padding),
             1: lambda g: _conv2d_grad_weight(g, y, w.shape[2:], stride, padding)}

    def vjp(g):
        if tuple(argnums) != (0, 1) or any(isbox(a) for a in (g, y, w)):
            return tuple(grads[i](g) for i in argnums)
        cols = _im2col(g, w.shape[2:], stride, padding, y.shape[2:])  # (Cout*kh*kw, H*W*N)
        dy = batch_first(onp.matmul(w.reshape(len(w), -1), cols), len(y), y.shape[2:])  # as _conv2d(g, w)
        return dy, _grad_weight_from_cols(cols, y, w.shape[2:])

    return vjp


defvjp_argnums(_conv_transpose2d, _conv_transpose2d_vjp)

defvjp(
    _conv2d_grad_weight,
    lambda ans, x, g, kernel, stride, padding: lambda v: _conv_transpose2d(g, v, stride, padding, x.shape[2:]),
    lambda ans, x, g, kernel, stride, padding: lambda v: _conv2d(x, v, stride, padding),
)


def _add_channel_bias(out, b, n_channels, name):
    if b is None:
        return out
    if onp.shape(b) != (n_channels,):
        raise ValueError(f"{name}: expected bias of shape ({n_channels},), got {onp.shape(b)}")
    return out + np.reshape(b, (1, n_channels, 1, 1))


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-d convolution (cross-correlation), the same numbers as torch's conv2d.

    x: (N, C, H, W); w: (O, C, kh, kw); b: (O,) or None
    -> (N, O, Ho, Wo) with Ho = (H + 2*padding - kh) // stride + 1 (likewise Wo).
    """
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    _check_4d("conv2d", x, "input (N, C, H, W)")
    _check_4d("conv2d", w, "weight (O, C, kh, kw)")
    if onp.shape(x)[1] != onp.shape(w)[1]:
        raise ValueError(f"conv2d: weight {onp.shape(w)} expects {onp.shape(w)[1]} input channels, "
                         f"input {onp.shape(x)} has {onp.shape(x)[1]}")
    for size, k, s, p in zip(onp.shape(x)[2:], onp.shape(w)[2:], stride, padding):
        if min(s, k) < 1 or size + 2 * p < k:
            raise ValueError(f"conv2d: kernel {onp.shape(w)[2:]} with stride {stride} does not fit "
                             f"input {onp.shape(x)[2:]} padded by {padding}")
    return _add_channel_bias(_conv2d(x, w, stride, padding), b, onp.shape(w)[0], "conv2d")


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0):
    """Transposed convolution, the same numbers as torch's conv_transpose2d.

    x: (N, Cin, H, W); w: (Cin, Cout, kh, kw); b: (Cout,) or None
    -> (N, Cout, Ho, Wo) with Ho = (H - 1)*stride - 2*padding + kh + output_padding.
    It is the gradient of conv2d w.r.t. its input: <conv2d(u, w), x> = <u, conv_transpose2d(x, w)>.
    """
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    output_padding = _pair(output_padding, "output_padding")
    _check_4d("conv_transpose2d", x, "input (N, Cin, H, W)")
    _check_4d("conv_transpose2d", w, "weight (Cin, Cout, kh, kw)")
    if onp.shape(x)[1] != onp.shape(w)[0]:
        raise ValueError(f"conv_transpose2d: weight {onp.shape(w)} expects {onp.shape(w)[0]} input "
                         f"channels, input {onp.shape(x)} has {onp.shape(x)[1]}")
    if any(op >= s for op, s in zip(output_padding, stride)):
        # torch's rule: output_padding only picks among outputs that map to the same input size.
        raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than stride {stride}")
    out_hw = tuple(conv_transpose_output_size(*args) for args in
                   zip(onp.shape(x)[2:], onp.shape(w)[2:], stride, padding, output_padding))
    if min(out_hw) < 1 or min(stride) < 1:
        raise ValueError(f"conv_transpose2d: output size {out_hw} is empty for input {onp.shape(x)[2:]}, "
                         f"kernel {onp.shape(w)[2:]}, stride {stride}, padding {padding}")
    return _add_channel_bias(_conv_transpose2d(x, w, stride, padding, out_hw), b, onp.shape(w)[1],
                             "conv_transpose2d")


def conv2d_label_planes(x, y1, w, b=None, stride=1, padding=0):
    """conv2d(append_condition(x, y1), w, b, stride, padding), without building the label planes.

    x: (N, C, H, W) images; y1: (N, K) one-hot labels, standing for K constant planes after x's
    channels; w: (O, C + K, kh, kw); b: (O,) or None -> (N, O, Ho, Wo).
    A filter slid over a plane of ones makes the same map in every image, so what the planes of
    label k add is one map, class_maps[k]: the convolution of label k's planes alone, taken once
    for the K labels instead of once per image. For MNIST's self-conditioned DCGAN (N = 64, C = 1,
    K = 10) that leaves D's first convolution one channel's work in place of eleven. The numbers are
    those of the planes, up to float rounding; the planes' zero padding is kept in the maps' borders.
    """
    n, c, k = onp.shape(x)[0], onp.shape(x)[1], onp.shape(y1)[-1]
    if onp.shape(y1) != (n, k) or onp.ndim(x) != 4 or onp.shape(w)[1] != c + k:
        raise ValueError(f"conv2d_label_planes: expected images (N, C, H, W), one-hot labels (N, K) and a weight "
                         f"(O, C + K, kh, kw); got {onp.shape(x)}, {onp.shape(y1)} and {onp.shape(w)}")
    eye = onp.eye(k, dtype=onp.result_type(getval(w)))
    every_label = eye[:, :, None, None] * onp.ones((1, 1, *onp.shape(x)[2:]), eye.dtype)  # (K, K, H, W)
    class_maps = conv2d(every_label, w[:, c:], None, stride, padding)  # (K, O, Ho, Wo)
    # Pick image n's map by a product with its one-hot row, taken in the batch-last memory order
    # conv2d's outputs have (minigen.im2col), so that the sum below keeps it and no layer after copies.
    maps_by_label = np.reshape(np.transpose(class_maps, (1, 2, 3, 0)), (-1, k))  # (O·Ho·Wo, K)
    picked = np.reshape(np.dot(maps_by_label, np.transpose(y1)), (*onp.shape(class_maps)[1:], n))
    return conv2d(x, w[:, :c], b, stride, padding) + np.transpose(picked, (3, 0, 1, 2))


# --- Stable logistic functions --------------------------------------------------
# log(1 + e^x) overflows for x > 88 in float32 and log(sigmoid(x)) underflows to
# log(0) for x < -104; the forms below are exact rearrangements that never do.

@primitive
def sigmoid(x):
    """1 / (1 + e^-x), written so that e^(...) never overflows and both tails keep
    their relative precision: with e = e^-|x| in (0, 1], it is 1 / (1 + e) for x >= 0
    and e / (1 + e) below (that is e^x / (1 + e^x)).

    The numerator, 1 or e, is max(e, [x >= 0]), the larger of e and the 0/1 mask: one exp
    in all, and no np.where, which over a mask that flips at random costs more than the
    rest of this function (benchmarks/README.md). The same bits as choosing with it.
    """
    e = onp.exp(-onp.abs(x))
    return onp.maximum(e, onp.greater_equal(x, 0).astype(e.dtype)) / (1 + e)


@primitive
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): finite for any finite x."""
    return onp.maximum(x, 0) + onp.log1p(onp.exp(-onp.abs(x)))


def softplus_grad(g, x):
    """The VJP of softplus: g = dL/dsoftplus(x) -> dL/dx, both shaped like x.

    d/dx log(1 + e^x) = e^x / (1 + e^x) = sigmoid(x); use the stable sigmoid above.
    """
    # BEGIN SOLUTION
    return g * sigmoid(x)
    # END SOLUTION


defvjp(sigmoid, lambda ans, x: lambda g: g * ans * (1 - ans))
defvjp(softplus, lambda ans, x: lambda g: softplus_grad(g, x))


def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x)."""
    # BEGIN SOLUTION
    return -softplus(-x)
    # END SOLUTION


@primitive
def bce_with_logits(logits, targets):
    """Elementwise binary cross-entropy -[t log s(l) + (1 - t) log(1 - s(l))], s = sigmoid.

    Written with the stable softplus above (use log s(l) = -softplus(-l) and
    log(1 - s(l)) = -softplus(l), then simplify), it is finite for logits of any
    size; targets may be any values in [0, 1], not only {0, 1}. Same shape as the
    inputs (no reduction).

    One primitive with its own VJP (below): d/dl [softplus(l) - t l] = s(l) - t,
    and d/dt = -l. One backward node instead of the four of softplus, the
    product and the difference.
    """
    if onp.shape(logits) != onp.shape(targets):  # broadcasting would silently pair the wrong entries
        raise ValueError(f"bce_with_logits: logits {onp.shape(logits)} and targets {onp.shape(targets)} "
                         f"must have the same shape")
    # BEGIN SOLUTION
    return softplus(logits) - targets * logits
    # END SOLUTION


def bce_grad_logits(g, logits, targets):
    """The VJP of bce_with_logits in the logits: g = dL/dbce (shaped like logits) -> dL/dlogits.

    d/dl [softplus(l) - t l] = sigmoid(l) - t: the prediction minus the target.
    """
    # BEGIN SOLUTION
    return g * (sigmoid(logits) - targets)
    # END SOLUTION


def bce_grad_targets(g, logits):
    """The VJP of bce_with_logits in the targets: g -> dL/dtargets = g d/dt [softplus(l) - t l]."""
    # BEGIN SOLUTION
    return -g * logits
    # END SOLUTION


defvjp(bce_with_logits,  # unbroadcast_f sums over the axes along which an argument was broadcast
       lambda ans, logits, targets: unbroadcast_f(logits, lambda g: bce_grad_logits(g, logits, targets)),
       lambda ans, logits, targets: unbroadcast_f(targets, lambda g: bce_grad_targets(g, logits)))


@primitive
def relu(x):
    """max(x, 0). Its own primitive: autograd's VJP of np.maximum returns float64."""
    return onp.maximum(x, 0)


# The mask is a constant, so this VJP is linear in g and can be differentiated again.
defvjp(relu, lambda ans, x: lambda g: g * (ans > 0))


@primitive
def leaky_relu(x, negative_slope=0.2):
    """x for x > 0, negative_slope * x otherwise: for a slope up to 1 the larger of the two
    (above it, the smaller). A primitive because autograd's own VJPs of np.where and
    np.maximum return float64 for a Python float slope; and no np.where here, which over a
    mask that flips at random is over ten times slower than a maximum (benchmarks/README.md)."""
    return (onp.maximum if negative_slope <= 1 else onp.minimum)(x, negative_slope * x)


def _leaky_relu_slope(x, negative_slope=0.2):
    """d leaky_relu(x) / dx: 1 where x > 0, negative_slope elsewhere; shaped and laid out like x.

    A constant as far as autograd can see (the slope jumps, it has no derivative), so the VJP
    g * _leaky_relu_slope(x) is linear in g, and WGAN-GP's double backprop differentiates it.
    Built as max(mask, slope) over the float mask, then one product with g: four passes, where
    the two masked products g * (x > 0) + (slope g) * (x <= 0) took six, and a demo-width DCGAN
    step 13 % longer on an Intel Xeon (benchmarks/README.md). The same numbers, to the bit.
    """
    x = getval(x)
    above = (x > 0).astype(x.dtype)  # 1 or 0, in x's memory order
    if 0 <= negative_slope <= 1:
        return onp.maximum(above, negative_slope, out=above)  # max(1, slope) = 1, max(0, slope) = slope
    return above + (1 - above) * negative_slope  # any other slope: 1 + 0 or 0 + slope, each exact


defvjp(leaky_relu, lambda ans, x, negative_slope=0.2: lambda g: g * _leaky_relu_slope(x, negative_slope))


def log_softmax(logits, axis=-1):
    """logits - logsumexp(logits), shifted by the (constant) max for stability.

    The shift cancels in the result, so it carries no gradient of its own.
    """
    shift = onp.max(getval(logits), axis=axis, keepdims=True)
    shifted = logits - shift
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))



def one_hot(labels, n_classes=10, n=None):
    """Integer labels (N,) -> float32 indicator rows (N, n_classes), the y fed to conditional models.

    n: how many examples the labels go with, if known; then labels must have shape (n,).
    Missing labels, floats (one-hot rows passed where integers belong), values outside
    [0, n_classes) and a wrong count are each refused with an error naming what was expected.
    """
    if labels is None:
        raise ValueError(f"a conditional model needs labels y, (N,) ints in [0, {n_classes})")
    if n is not None and onp.shape(labels) != (n,):
        raise ValueError(f"expected integer labels of shape ({n},), one per image, got shape {onp.shape(labels)}")
    labels = onp.asarray(labels)
    if labels.ndim != 1 or not onp.issubdtype(labels.dtype, onp.integer):
        raise ValueError(f"one_hot expects integer labels of shape (N,), got {labels.dtype} of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values in [{labels.min()}, {labels.max()}]")
    return onp.eye(n_classes, dtype=onp.float32)[labels]


def append_condition(x, y1):
    """Tell a network the class: one-hot labels y1 (N, K) joined to its input x along axis 1.

    x (N, D) -> (N, D + K). Images x (N, C, H, W) -> (N, C + K, H, W): the label
    becomes K constant planes, so that every convolution filter sees it everywhere.
    """
    n = onp.shape(x)[0]
    if onp.shape(y1) != (n, onp.shape(y1)[-1]):
        raise ValueError(f"append_condition: expected one-hot labels (N={n}, K), got shape {onp.shape(y1)}")
    if onp.ndim(x) > 2:
        y1 = onp.broadcast_to(onp.reshape(y1, (*onp.shape(y1), *(1,) * (onp.ndim(x) - 2))),
                              (*onp.shape(y1), *onp.shape(x)[2:]))
    return np.concatenate([x, y1.astype(onp.float32)], axis=1)
