"""Checks of the backward-pass exercises: dense_backward, batch_norm_backward, conv2d_backward,
logistic_backward, reparameterize_backward.

Each gradient you write is compared with the reference's on the same inputs (the
reference VJPs agree with autograd's generic derivative of the plain forward formula,
checked when the assignment is built). The "autograd" checks then differentiate the
library's layer with autograd, which calls YOUR function as the layer's VJP, and compare
that with finite differences of the forward pass: what you write is what trains the models.
"""
import numpy as np

from .cases import F32, F32_HINT, check, extremes, normal
from .compare import gradients

# --- dense_backward ----------------------------------------------------------------------------

def dense_inputs(dtype):
    """N = 5 examples, 4 features in, 3 out: every shape differs, so a swapped transpose shows."""
    return lambda rng: {"x": normal(rng, (5, 4), dtype), "W": normal(rng, (4, 3), dtype),
                        "b": normal(rng, (3,), dtype), "G": normal(rng, (5, 3), dtype)}


@check("dense_backward", "dx", 3, "dense_grad_x(G, W): dL/dx, shaped like x (5, 4)", dense_inputs(np.float64),
       hint="y[n, j] = Σ_i x[n, i] W[i, j] + b[j]: dL/dx[n, i] = Σ_j G[n, j] W[i, j], one matrix product")
def dense_dx(pkg, inp):
    return {"dx": pkg.backprop.dense_grad_x(inp["G"], inp["W"])}


@check("dense_backward", "dW", 3, "dense_grad_w(G, x): dL/dW, shaped like W (4, 3)", dense_inputs(np.float64),
       hint="dL/dW[i, j] = Σ_n x[n, i] G[n, j]: one matrix product that sums over the batch")
def dense_dw(pkg, inp):
    return {"dW": pkg.backprop.dense_grad_w(inp["G"], inp["x"])}


@check("dense_backward", "db", 2, "dense_grad_b(G): dL/db, shaped like b (3,)", dense_inputs(np.float64))
def dense_db(pkg, inp):
    return {"db": pkg.backprop.dense_grad_b(inp["G"])}


@check("dense_backward", "autograd", 1, "autograd's gradient of the dense layer (your VJPs) = finite differences",
       dense_inputs(np.float64), gradient=True, own_vjp=True)
def dense_autograd(pkg, inp):
    # Positional arguments: autograd traces a primitive's positional arguments only (keywords bypass its VJP).
    return gradients(lambda x, W, b: pkg.backprop.dense(x, W, b), {k: inp[k] for k in ("x", "W", "b")}, inp["G"])


@check("dense_backward", "float32", 1, "float32 in, float32 out", dense_inputs(np.float32), hint=F32_HINT, **F32)
def dense_float32(pkg, inp):
    return {**dense_dx(pkg, inp), **dense_dw(pkg, inp), **dense_db(pkg, inp)}


# --- batch_norm_backward -------------------------------------------------------------------------

def bn_inputs(dtype, x_shape=(6, 3)):
    def make(rng):
        c = x_shape[1]
        return {"x": normal(rng, x_shape, dtype, 2.0) + 1, "gamma": 1 + normal(rng, (c,), dtype, 0.5),
                "beta": normal(rng, (c,), dtype), "G": normal(rng, x_shape, dtype)}
    return make


def bn_backward(pkg, inp):
    """Your batch_norm_backward on the x_hat and 1/sigma the library computes from x (eps = 1e-5)."""
    x_hat, inv_std = pkg.backprop._normalise(inp["x"], 1e-5)
    dx, dgamma, dbeta = pkg.backprop.batch_norm_backward(inp["G"], x_hat, inv_std, inp["gamma"])
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


@check("batch_norm_backward", "dx", 4, "dL/dx for a batch of 6 examples with 3 features", bn_inputs(np.float64),
       hint="every x_j moves the batch's mean and variance, so dx has three terms: "
            "(γ/σ)·(G_j - mean_i G_i - x̂_j·mean_i(G_i x̂_i))")
def bn_dx(pkg, inp):
    return {"dx": bn_backward(pkg, inp)["dx"]}


@check("batch_norm_backward", "dgamma_dbeta", 2, "dL/dγ and dL/dβ, shaped (3,)", bn_inputs(np.float64))
def bn_dgamma_dbeta(pkg, inp):
    out = bn_backward(pkg, inp)
    return {"dgamma": out["dgamma"], "dbeta": out["dbeta"]}


@check("batch_norm_backward", "images", 2, "all three for images (3, 2, 3, 4): statistics per channel",
       bn_inputs(np.float64, (3, 2, 3, 4)),
       hint="for images a channel's statistics run over N, H and W (_channel_axes(x) = (0, 2, 3)), "
            "m = N·H·W values; use _per_channel to broadcast a (C,) vector against x")
def bn_images(pkg, inp):
    return bn_backward(pkg, inp)


@check("batch_norm_backward", "autograd", 1, "autograd's gradient of batch_norm_train (your VJP) = finite differences",
       bn_inputs(np.float64), gradient=True, own_vjp=True)
def bn_autograd(pkg, inp):
    f = lambda x, gamma, beta: pkg.backprop.batch_norm_train(x, gamma, beta)  # positional, as for dense
    return gradients(f, {k: inp[k] for k in ("x", "gamma", "beta")}, inp["G"])


@check("batch_norm_backward", "float32", 1, "float32 in, float32 out", bn_inputs(np.float32), hint=F32_HINT, **F32)
def bn_float32(pkg, inp):
    return bn_backward(pkg, inp)


# --- conv2d_backward (col2im) ----------------------------------------------------------------------

CONV_CASES = (((1, 1), (0, 0)), ((2, 2), (1, 1)), ((2, 1), (0, 2)))  # (stride, padding), as for conv2d_im2col


def out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def col2im_inputs(dtype):
    """x (2, 3, 6, 5) and w (4, 3, 3, 2) as in conv2d_im2col; one upstream gradient g per (stride, padding)."""
    def make(rng):
        inp = {"x": normal(rng, (2, 3, 6, 5), dtype), "w": normal(rng, (4, 3, 3, 2), dtype),
               "b": normal(rng, (3,), dtype)}
        for i, (s, p) in enumerate(CONV_CASES):
            hw = tuple(out_size(inp["x"].shape[2 + a], inp["w"].shape[2 + a], s[a], p[a]) for a in range(2))
            inp[f"g{i}"] = normal(rng, (2, 4) + hw, dtype)
        return inp
    return make


def col2im(pkg, inp, cases):
    return {f"dx_{i}": pkg.ops._conv_transpose2d(inp[f"g{i}"], inp["w"], *CONV_CASES[i], inp["x"].shape[2:])
            for i in cases}


@check("conv2d_backward", "stride1", 3, "dL/dx of conv2d, stride 1, no padding", col2im_inputs(np.float64),
       hint="dx[n, c, i·s + a - p, j·s + b - p] += Σ_o g[n, o, i, j]·w[o, c, a, b], summed over every output pixel "
            "(i, j) and kernel offset (a, b): overlapping patches add up")
def col2im_stride1(pkg, inp):
    return col2im(pkg, inp, [0])


@check("conv2d_backward", "stride_padding", 3, "dL/dx of conv2d with strides (2, 2), (2, 1) and paddings",
       col2im_inputs(np.float64),
       hint="output pixel (i, j) came from the window at (i·s - p, j·s - p) of x: place each patch there, and "
            "drop what falls into the padding")
def col2im_strided(pkg, inp):
    return col2im(pkg, inp, [1, 2])


@check("conv2d_backward", "transpose_layer", 1, "the same function is DCGAN's layer: conv_transpose2d with a bias, "
       "stride 2, padding 1, output_padding 1", col2im_inputs(np.float64))
def col2im_layer(pkg, inp):
    y = inp["g1"]  # (2, 4, 3, 3) in the role of the layer's input: 4 channels in, 3 out, (6, 5) pixels out
    return {"y": pkg.ops.conv_transpose2d(y, inp["w"], inp["b"], stride=2, padding=1, output_padding=1)}


@check("conv2d_backward", "autograd", 2, "autograd's gradient of conv2d in x (your col2im) = finite differences",
       col2im_inputs(np.float64), gradient=True, own_vjp=True, needs=("conv2d_im2col",))
def col2im_autograd(pkg, inp):
    s, p = CONV_CASES[1]
    return gradients(lambda x: pkg.ops.conv2d(x, inp["w"], None, s, p), {"x": inp["x"]}, inp["g1"])


@check("conv2d_backward", "float32", 1, "float32 in, float32 out", col2im_inputs(np.float32), hint=F32_HINT, **F32)
def col2im_float32(pkg, inp):
    return col2im(pkg, inp, [0, 1])


# --- logistic_backward ------------------------------------------------------------------------------

def logistic_inputs(dtype, extreme=False):
    def make(rng):
        x = extremes(rng, (3, 4), dtype) if extreme else normal(rng, (3, 4), dtype, 3.0)
        return {"x": x, "targets": rng.uniform(size=(3, 4)).astype(dtype), "g": normal(rng, (3, 4), dtype)}
    return make


UNSTABLE_HINT = ("e^x overflows for x > 709 (88 in float32) and e^x / (1 + e^x) becomes inf / inf: use ops.sigmoid, "
                 "which never exponentiates a large positive number")


@check("logistic_backward", "softplus", 3, "softplus_grad(g, x) for x in about [-9, 9]", logistic_inputs(np.float64))
def softplus_vjp(pkg, inp):
    return {"dx": pkg.ops.softplus_grad(inp["g"], inp["x"])}


@check("logistic_backward", "softplus_large", 1, "finite and right for x from ±30 to ±1e4",
       logistic_inputs(np.float64, extreme=True), hint=UNSTABLE_HINT)
def softplus_vjp_large(pkg, inp):
    return softplus_vjp(pkg, inp)


@check("logistic_backward", "bce", 3, "bce_grad_logits and bce_grad_targets for soft targets",
       logistic_inputs(np.float64))
def bce_vjps(pkg, inp):
    x, t, g = inp["x"], inp["targets"], inp["g"]
    return {"dlogits": pkg.ops.bce_grad_logits(g, x, t), "dtargets": pkg.ops.bce_grad_targets(g, x)}


@check("logistic_backward", "bce_large", 1, "bce_grad_logits finite and right for logits from ±30 to ±1e4",
       logistic_inputs(np.float64, extreme=True), hint=UNSTABLE_HINT)
def bce_vjp_large(pkg, inp):
    return {"dlogits": pkg.ops.bce_grad_logits(inp["g"], inp["x"], inp["targets"])}


@check("logistic_backward", "autograd", 1, "autograd's gradient of softplus (your VJP) = finite differences",
       logistic_inputs(np.float64), gradient=True, own_vjp=True)
def softplus_autograd(pkg, inp):
    return gradients(lambda x: pkg.ops.softplus(x), {"x": inp["x"]}, inp["g"])  # positional, as for dense


@check("logistic_backward", "float32", 1, "float32 in, float32 out, up to ±1e4",
       logistic_inputs(np.float32, extreme=True), hint=F32_HINT, **F32)
def logistic_float32(pkg, inp):
    return {**softplus_vjp(pkg, inp), **bce_vjps(pkg, inp)}


# --- reparameterize_backward ------------------------------------------------------------------------

def reparam_vjp_inputs(dtype, samples=()):
    return lambda rng: {"mu": normal(rng, (4, 3), dtype), "logvar": normal(rng, (4, 3), dtype),
                        "eps": normal(rng, samples + (4, 3), dtype), "G": normal(rng, samples + (4, 3), dtype)}


def reparam_vjps(pkg, inp):
    dmu, dlogvar, deps = pkg.losses.reparameterize_backward(inp["G"], inp["logvar"], inp["eps"])
    return {"dmu": dmu, "dlogvar": dlogvar, "deps": deps}


@check("reparameterize_backward", "dmu", 2, "dL/dmu for 4 examples in 3-d", reparam_vjp_inputs(np.float64))
def reparam_dmu(pkg, inp):
    return {"dmu": reparam_vjps(pkg, inp)["dmu"]}


@check("reparameterize_backward", "dlogvar", 4, "dL/dlogvar: through σ = e^(½ logvar)", reparam_vjp_inputs(np.float64),
       hint="z depends on logvar through σ·eps, and dσ/dlogvar = ½σ: dlogvar = G·eps·½σ")
def reparam_dlogvar(pkg, inp):
    return {"dlogvar": reparam_vjps(pkg, inp)["dlogvar"]}


@check("reparameterize_backward", "deps", 1, "dL/deps", reparam_vjp_inputs(np.float64))
def reparam_deps(pkg, inp):
    return {"deps": reparam_vjps(pkg, inp)["deps"]}


@check("reparameterize_backward", "samples", 1, "K = 5 samples: G and eps (5, 4, 3), logvar (4, 3)",
       reparam_vjp_inputs(np.float64, (5,)),
       hint="let numpy broadcast logvar (N, D) against G and eps (K, N, D); return arrays shaped like G")
def reparam_vjp_samples(pkg, inp):
    return reparam_vjps(pkg, inp)


@check("reparameterize_backward", "autograd", 1, "autograd's gradient of K samples z (your VJP) = finite differences",
       reparam_vjp_inputs(np.float64, (5,)), gradient=True, own_vjp=True, needs=("reparameterize",))
def reparam_autograd(pkg, inp):
    f = lambda mu, logvar: pkg.losses.reparameterize(mu, logvar, inp["eps"])
    return gradients(f, {"mu": inp["mu"], "logvar": inp["logvar"]}, inp["G"])


@check("reparameterize_backward", "float32", 1, "float32 in, float32 out", reparam_vjp_inputs(np.float32),
       hint=F32_HINT, **F32)
def reparam_vjp_float32(pkg, inp):
    return reparam_vjps(pkg, inp)
