"""Layers as pairs of pure functions, composed by Sequential.

A layer is two functions (the stax convention):

    init(rng, input_shape) -> (output_shape, params)
    apply(params, x, *, train=False, rng=None, state=None) -> y

`input_shape` is the shape of ONE example, without the batch axis: (784,) or
(1, 28, 28). `params` is a plain dict of float32 arrays ({} for layers with
none), so `autograd.grad` differentiates it and `np.savez` stores it.

Two layers need more than params:
  - Dropout draws its mask from `rng` (a numpy Generator) in train mode;
  - BatchNorm keeps running statistics for eval mode. They are not parameters
    (nothing should differentiate or optimise them), so they live in `state`, a
    nested dict that the caller owns and BatchNorm updates in train mode.

    >>> G = Sequential(Dense(128), ReLU(), Dense(784), Sigmoid())
    >>> out_shape, params = G.init(np.random.default_rng(0), (100,))
    >>> out_shape
    (784,)
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minigen import init as initializers
from minigen import ops


@dataclass(frozen=True)
class Layer:
    """A named (init, apply) pair. `name` is what error messages show; `spec` = (kind, settings)
    says what the layer is in data, for tools that rebuild it elsewhere (minigen.interop)."""
    name: str
    init: Callable
    apply: Callable = field(repr=False)
    spec: tuple = field(default=(), repr=False)

    def __call__(self, params, x, **kwargs):
        return self.apply(params, x, **kwargs)


class NonFiniteInputError(ValueError):
    """A layer's input holds NaN or Inf (in training: an activation that diverged)."""


def _positive_int(name, what, value):
    """value, if a positive int (a size, a stride); else a ValueError naming the layer and setting."""
    if isinstance(value, bool) or not isinstance(value, (int, onp.integer)) or value < 1:
        raise ValueError(f"{name}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _sizes(name, what, value, minimum=1):
    """(a, b) from an int or a pair of ints, each >= minimum (kernel sizes and strides 1, padding 0)."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, onp.integer)) or v < minimum
                             for v in pair):
        raise ValueError(f"{name}: {what} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return tuple(int(v) for v in pair)


def _shape_error(layer, expected, x):
    return ValueError(f"{layer}: expected input of shape (N, {', '.join(map(str, expected))}), "
                      f"got {tuple(onp.shape(x))}")


def _check_features(layer, x, expected):
    """Raise a ValueError naming the layer unless x is (N, *expected)."""
    if tuple(onp.shape(x)[1:]) != tuple(expected):
        raise _shape_error(layer, expected, x)


# --- Layers with parameters -------------------------------------------------

def Dense(out_features, w_init=initializers.glorot_uniform, b_init=initializers.zeros):
    """y = x @ W + b. x: (N, in) -> (N, out); W: (in, out), b: (out,)."""
    name = f"Dense({out_features})"
    _positive_int(name, "out_features", out_features)

    def init(rng, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{name}: expects flat inputs (features,), got {input_shape}; add Flatten() before it")
        shape = (input_shape[0], out_features)
        return (out_features,), {"W": w_init(rng, shape), "b": b_init(rng, (out_features,))}

    def apply(params, x, checked=False, **_):
        check_input(x, name, checked)
        if onp.ndim(x) != 2 or onp.shape(x)[1] != params["W"].shape[0]:
            raise _shape_error(name, (params["W"].shape[0],), x)
        return ops.dense(x, params["W"], params["b"])  # one primitive, its VJP written by hand

    return Layer(name, init, apply, ("Dense", {"out_features": out_features}))


def Conv2d(out_channels, kernel_size, stride=1, padding=0,
           w_init=initializers.glorot_uniform, b_init=initializers.zeros):
    """Convolution. x: (N, C, H, W) -> (N, out_channels, Ho, Wo); w: (O, C, k, k).
    apply(..., condition=y1): one-hot labels (N, K) read as K constant planes after x's C - K channels."""
    name = f"Conv2d({out_channels}, kernel_size={kernel_size}, stride={stride}, padding={padding})"
    _positive_int(name, "out_channels", out_channels)
    k, s, p = _sizes(name, "kernel_size", kernel_size), _sizes(name, "stride", stride), \
        _sizes(name, "padding", padding, 0)

    def init(rng, input_shape):
        c, h, w = _image_shape(name, input_shape)
        out_hw = [ops.conv_output_size(*a) for a in zip((h, w), k, s, p)]
        if min(out_hw) < 1:
            raise ValueError(f"{name}: kernel does not fit input {input_shape}")
        params = {"w": w_init(rng, (out_channels, c, *k)), "b": b_init(rng, (out_channels,))}
        return (out_channels, *out_hw), params

    def apply(params, x, checked=False, condition=None, **_):
        check_input(x, name, checked)
        planes = 0 if condition is None else onp.shape(condition)[-1]  # label planes after x's channels
        if onp.ndim(x) != 4 or onp.shape(x)[1] + planes != params["w"].shape[1]:
            raise _shape_error(name, (params["w"].shape[1] - planes, "H", "W"), x)
        if planes:  # a conditional D's labels, as class maps (ops.conv2d_label_planes)
            return ops.conv2d_label_planes(x, condition, params["w"], params["b"], s, p)
        return ops.conv2d(x, params["w"], params["b"], s, p)

    return Layer(name, init, apply, ("Conv2d", {"stride": s, "padding": p}))


def ConvTranspose2d(out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                    w_init=initializers.glorot_uniform, b_init=initializers.zeros):
    """Transposed convolution (upsampling). x: (N, C, H, W) -> (N, out_channels, Ho, Wo);
    w: (C, O, k, k) as in torch; Ho = (H - 1)*stride - 2*padding + k + output_padding."""
    name = f"ConvTranspose2d({out_channels}, kernel_size={kernel_size}, stride={stride}, padding={padding})"
    _positive_int(name, "out_channels", out_channels)
    k, s, p = _sizes(name, "kernel_size", kernel_size), _sizes(name, "stride", stride), \
        _sizes(name, "padding", padding, 0)
    op = _sizes(name, "output_padding", output_padding, 0)

    def init(rng, input_shape):
        c, h, w = _image_shape(name, input_shape)
        out_hw = [ops.conv_transpose_output_size(*a) for a in zip((h, w), k, s, p, op)]
        # Glorot's fan-in and fan-out of a transposed conv are swapped, so init as (O, C) and transpose.
        w = w_init(rng, (out_channels, c, *k)).transpose(1, 0, 2, 3).copy()
        return (out_channels, *out_hw), {"w": w, "b": b_init(rng, (out_channels,))}

    def apply(params, x, checked=False, **_):
        check_input(x, name, checked)
        if onp.ndim(x) != 4 or onp.shape(x)[1] != params["w"].shape[0]:
            raise _shape_error(name, (params["w"].shape[0], "H", "W"), x)
        return ops.conv_transpose2d(x, params["w"], params["b"], s, p, op)

    return Layer(name, init, apply, ("ConvTranspose2d", {"stride": s, "padding": p, "output_padding": op}))


SPECTRAL_WEIGHTS = {"Dense": "W", "Conv2d": "w", "ConvTranspose2d": "w"}  # the weight SpectralNorm divides


def SpectralNorm(layer, warmup=10):
    """Spectral normalisation (Miyato et al. 2018): `layer` (Dense, Conv2d or ConvTranspose2d)
    with its weight W divided by σ(W), W's largest singular value, so that a dense layer is
    1-Lipschitz and a critic built of such layers cannot sharpen without bound. A
    convolution's kernel (O, C, kh, kw) is taken as the matrix (O, C·kh·kw), as in the paper;
    that bounds the convolution itself only up to a factor (its windows overlap).

    σ by power iteration: u = Wv/|Wv|, v = Wᵀu/|Wᵀu|, σ = uᵀWv (the paper's Algorithm 1 takes
    the same two half-steps from u; this order, from v, is torch's, which the tests match).
    u and v live in `state`, like batch norm's running statistics; each train-mode call takes
    one iteration from the last v, enough because W moves little between steps (a first call
    takes `warmup` iterations from a fixed start). In eval mode the stored u and v are used
    unchanged. The gradient flows through W in σ = uᵀWv with u and v held constant: then
    ∂σ/∂W = u vᵀ, the derivative of the largest singular value.
    params: the wrapped layer's, unchanged (the normalised weight is computed, not stored).
    """
    kind = layer.spec[0] if layer.spec else None
    if kind not in SPECTRAL_WEIGHTS:
        raise ValueError(f"SpectralNorm wraps a layer with a weight matrix ({', '.join(SPECTRAL_WEIGHTS)}), "
                         f"got {layer.name}")
    key, name = SPECTRAL_WEIGHTS[kind], f"SpectralNorm({layer.name})"

    def apply(params, x, *, train=False, state=None, **kwargs):
        w = params[key]
        matrix = onp.reshape(getval(w), (onp.shape(w)[0], -1))  # plain numbers: u and v are not differentiated
        if state is None or "v" not in state:
            u, v = power_iteration(matrix, onp.ones(matrix.shape[1], matrix.dtype), warmup)
        elif train:
            u, v = power_iteration(matrix, state["v"], 1)
        else:
            u, v = state["u"], state["v"]
        if state is not None:
            state["u"], state["v"] = u, v
        sigma = np.dot(u, np.dot(np.reshape(w, matrix.shape), v))
        return layer.apply({**params, key: w / sigma}, x, train=train, **kwargs)

    return Layer(name, layer.init, apply, ("SpectralNorm", {"layer": layer, "warmup": warmup}))


def power_iteration(matrix, v, iterations):
    """(u, v): estimates of the top left and right singular vectors of matrix (m, n), refined from v (n,)."""
    for _ in range(iterations):
        u = _unit(matrix @ v)
        v = _unit(matrix.T @ u)
    return u, v


def _unit(a):
    """a / |a|; the floor on |a| guards the division for an all-zero weight."""
    return a / max(onp.linalg.norm(a), 1e-12)


def _image_shape(name, input_shape):
    if len(input_shape) != 3:
        raise ValueError(f"{name}: expects image inputs (C, H, W), got {input_shape}; add Reshape() before it")
    return input_shape


def BatchNorm(momentum=0.1, eps=1e-5):
    """Batch normalisation (Ioffe & Szegedy 2015) over (N, C) or (N, C, H, W) inputs.

    train=True: normalise by the batch's mean and (biased) variance per channel and
    update state's running mean and unbiased variance, as torch does.
    train=False: normalise by the running statistics (0 and 1 before any training).
    params: gamma, beta of shape (C,).
    """
    name = f"BatchNorm(momentum={momentum}, eps={eps})"

    def init(rng, input_shape):
        c = input_shape[0]
        return tuple(input_shape), {"gamma": onp.ones(c, onp.float32), "beta": onp.zeros(c, onp.float32)}

    def apply(params, x, *, train=False, state=None, checked=False, **_):
        check_input(x, name, checked)
        c = params["gamma"].shape[0]
        if onp.ndim(x) not in (2, 4) or onp.shape(x)[1] != c:
            raise _shape_error(name, (c,) if onp.ndim(x) == 2 else (c, "H", "W"), x)
        bshape = (1, c) + (1,) * (onp.ndim(x) - 2)
        if train and onp.size(x) // c < 2:  # one value per channel: variance 0, output 0 (torch raises too)
            raise ValueError(f"{name}: train mode needs more than one value per channel to estimate a "
                             f"variance, got input of shape {tuple(onp.shape(x))}; use a batch of 2 or more")
        if train:
            # Measured once, as plain numbers: the running averages, the forward and the backward pass read them.
            stats = ops.batch_statistics(getval(x), eps)
            if state is not None:
                _update_running_stats(state, stats.mean, stats.var, x.size // c, momentum)
            return ops.batch_norm_train(x, params["gamma"], params["beta"], eps, stats=stats)  # VJP by hand
        mean = (state or {}).get("mean", onp.zeros(c, onp.float32)).reshape(bshape)
        var = (state or {}).get("var", onp.ones(c, onp.float32)).reshape(bshape)
        x_hat = (x - mean) / np.sqrt(var + eps)
        return x_hat * np.reshape(params["gamma"], bshape) + np.reshape(params["beta"], bshape)

    return Layer(name, init, apply, ("BatchNorm", {"momentum": momentum, "eps": eps}))


def _update_running_stats(state, mean, var, count, momentum):
    """Exponential moving averages; the variance made unbiased (n / (n-1)) as in torch.

    A state that counts its batches (state["batches"], an int) keeps plain means over them
    instead, as torch's momentum=None does: how minigen.averaging recomputes the statistics
    that belong to other weights (an averaged generator's) from a few train-mode passes.
    """
    mean, var = mean.ravel(), var.ravel() * (count / max(count - 1, 1))
    if "batches" in state:
        state["batches"] += 1
        momentum = 1 / state["batches"]  # the k-th batch moves the mean of k - 1 batches by 1/k of the gap
    old_mean = state.get("mean", onp.zeros_like(mean))
    old_var = state.get("var", onp.ones_like(var))
    state["mean"] = ((1 - momentum) * old_mean + momentum * mean).astype(onp.float32)
    state["var"] = ((1 - momentum) * old_var + momentum * var).astype(onp.float32)


def LayerNorm(eps=1e-5):
    """Layer normalisation (Ba, Kiros & Hinton 2016): each example normalised by its own mean and
    (biased) variance over all its features, (C,) or (C, H, W), then a learned gain and bias per
    channel, as in the WGAN-GP critic of Gulrajani et al. 2017 (whose penalty forbids batch norm).
    No batch statistics, so train and eval mode agree and examples never mix.
    x: (N, C) or (N, C, H, W) -> the same shape; params: gamma, beta of shape (C,).
    """
    name = f"LayerNorm(eps={eps})"

    def init(rng, input_shape):
        c = input_shape[0]
        return tuple(input_shape), {"gamma": onp.ones(c, onp.float32), "beta": onp.zeros(c, onp.float32)}

    def apply(params, x, **_):
        c = params["gamma"].shape[0]
        if onp.ndim(x) not in (2, 4) or onp.shape(x)[1] != c:
            raise _shape_error(name, (c,) if onp.ndim(x) == 2 else (c, "H", "W"), x)
        axes = tuple(range(1, onp.ndim(x)))  # every feature of one example
        bshape = (1, c) + (1,) * (onp.ndim(x) - 2)
        mean = np.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        x_hat = centred / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
        return x_hat * np.reshape(params["gamma"], bshape) + np.reshape(params["beta"], bshape)

    return Layer(name, init, apply, ("LayerNorm", {"eps": eps}))


def Dropout(rate):
    """Zero each input with probability `rate` in train mode, scaling the rest by
    1/(1-rate) so the expected activation is unchanged; the identity in eval mode."""
    if not 0 <= rate < 1:
        raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
    name = f"Dropout({rate})"

    def apply(params, x, *, train=False, rng=None, **_):
        if not train or rate == 0:
            return x
        if rng is None:
            raise ValueError(f"{name}: train mode needs rng=numpy.random.Generator to draw the mask")
        keep = rng.random(onp.shape(x)) >= rate
        return x * (keep.astype(onp.float32) / (1 - rate))

    return Layer(name, lambda rng, input_shape: (tuple(input_shape), {}), apply, ("Dropout", {"rate": rate}))


# --- Layers without parameters -------------------------------------------------

def elementwise(fn, name, spec=()):
    """A parameter-free layer that applies fn to every entry (shape unchanged)."""
    return Layer(name, lambda rng, input_shape: (tuple(input_shape), {}),
                 lambda params, x, **_: fn(x), spec)


def ReLU():
    return elementwise(ops.relu, "ReLU()", ("ReLU", {}))


def LeakyReLU(negative_slope=0.2):
    return elementwise(lambda x: ops.leaky_relu(x, negative_slope), f"LeakyReLU({negative_slope})",
                       ("LeakyReLU", {"negative_slope": negative_slope}))


def Sigmoid():
    return elementwise(ops.sigmoid, "Sigmoid()", ("Sigmoid", {}))


def Tanh():
    return elementwise(np.tanh, "Tanh()", ("Tanh", {}))


def Softplus():
    """log(1 + e^x): Kingma et al. (2014)'s nonlinearity in M1 and M2; smooth, so gradient checks need no kink slack."""
    return elementwise(ops.softplus, "Softplus()", ("Softplus", {}))


def Reshape(shape):
    """(N, *input_shape) -> (N, *shape); the number of features must match."""
    shape = tuple(shape)
    name = f"Reshape({shape})"

    def init(rng, input_shape):
        if int(onp.prod(input_shape)) != int(onp.prod(shape)):
            raise ValueError(f"{name}: cannot reshape {tuple(input_shape)} ({int(onp.prod(input_shape))} "
                             f"features) to {shape} ({int(onp.prod(shape))} features)")
        return shape, {}

    def apply(params, x, **_):
        if onp.size(x) != onp.shape(x)[0] * int(onp.prod(shape)):
            raise ValueError(f"{name}: expected {int(onp.prod(shape))} features per example, "
                             f"got input of shape {tuple(onp.shape(x))}")
        return np.reshape(x, (onp.shape(x)[0],) + shape)

    return Layer(name, init, apply, ("Reshape", {"shape": shape}))


def Flatten():
    """(N, C, H, W) -> (N, C*H*W)."""
    return Layer("Flatten()",
                 lambda rng, input_shape: ((int(onp.prod(input_shape)),), {}),
                 lambda params, x, **_: np.reshape(x, (onp.shape(x)[0], -1)), ("Flatten", {}))


# --- Composition ---------------------------------------------------------------

def Sequential(*layers):
    """Apply layers one after another. params and state are lists, one entry per layer.
    apply(..., condition=y1): labels for the first layer, a Conv2d, to read as planes (Conv2d).

    Checks what enters: a float32 array of the shape given at init, with no NaN/Inf.
    A wrong shape deeper in the stack is reported with the layer's position.
    """
    if not all(isinstance(layer, Layer) for layer in layers):
        raise TypeError("Sequential takes layers such as Dense(128) or ReLU(); did you forget the ()?")
    name = "Sequential(" + ", ".join(layer.name for layer in layers) + ")"
    first = layers[0] if layers else None
    if first is not None and first.spec[:1] == ("SpectralNorm",):
        first = first.spec[1]["layer"]
    reads_planes = first is not None and first.spec[:1] == ("Conv2d",)  # it may be given condition= (Conv2d)

    def init(rng, input_shape):
        shape, params = tuple(input_shape), []
        for layer in layers:
            shape, p = layer.init(rng, shape)
            params.append(p)
        return shape, params

    def apply(params, x, *, train=False, rng=None, state=None, checked=False, condition=None, **_):
        if len(params) != len(layers):
            raise ValueError(f"{name}: got params for {len(params)} layers, expected {len(layers)}")
        check_input(x, "Sequential", checked)
        if condition is not None and not reads_planes:
            raise ValueError(f"{name}: labels as planes (condition=) need a first layer Conv2d, got "
                             f"{layers[0].name if layers else 'no layer'}")
        for i, (layer, p) in enumerate(zip(layers, params)):
            sub_state = None if state is None else state.setdefault(str(i), {})
            extra = {"condition": condition} if i == 0 and condition is not None else {}  # the input's planes
            try:  # checked=True: the input was checked above, the layers need not check it again
                x = layer.apply(p, x, train=train, rng=rng, state=sub_state, checked=True, **extra)
            except ValueError as err:
                if str(err).startswith("layer "):
                    raise
                kind = NonFiniteInputError if isinstance(err, NonFiniteInputError) else ValueError
                raise kind(f"layer {i} of {len(layers)}: {err}") from None
        return x

    return Layer(name, init, apply, ("Sequential", {"layers": layers}))


EVAL_CHUNK = 500  # examples per pass when a network maps many in eval mode (in_chunks)


def in_chunks(fn, *arrays, size=None):
    """fn(*arrays) computed on `size` (default EVAL_CHUNK) examples at a time, the outputs joined
    along axis 0 (an entry of `arrays` may be None, passed on as None).

    A network in eval mode maps each example on its own (batch norm uses its running
    statistics), so slicing the batch changes no output, only the memory: a transposed
    convolution's columns for 10,000 samples of the DCGAN's generator at once take ~1 GB.
    Not for train mode, where batch statistics mix the examples.
    """
    n, size = len(arrays[0]), size or EVAL_CHUNK
    if n <= size:
        return fn(*arrays)
    return onp.concatenate([fn(*(a if a is None else a[i:i + size] for a in arrays)) for i in range(0, n, size)])


def check_input(x, where="input", checked=False):
    """Raise a clear error unless x is a finite floating-point array: the one input check of every layer
    with parameters and of Sequential, which checks its input once and tells its layers (checked=True)."""
    if checked:
        return
    value = getval(x)
    if not isinstance(value, onp.ndarray):
        raise TypeError(f"{where}: expected a numpy float32 array, got {type(value).__name__}")
    if value.dtype != onp.float32:
        if not onp.issubdtype(value.dtype, onp.floating):
            raise TypeError(f"{where}: expected float32 input, got {value.dtype} "
                            f"(scale images to [0, 1] as float32 first)")
        if value.dtype != onp.float64:  # float64 is allowed: gradient checks run in it
            raise TypeError(f"{where}: expected float32 input, got {value.dtype}")
    if not onp.isfinite(value).all():
        bad = onp.argwhere(~onp.isfinite(value))[0]
        raise NonFiniteInputError(f"{where}: input contains NaN or Inf (first at index "
                                  f"{tuple(int(i) for i in bad)})")
