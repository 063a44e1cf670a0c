"""Checks of the GAN exercises: bce_with_logits, discriminator_loss, generator_loss_nonsaturating,
gradient_penalty."""
import autograd.numpy as anp
import numpy as np

from .cases import F32, F32_HINT, check, extremes, normal
from .compare import gradients

# --- bce_with_logits -------------------------------------------------------------------------

def bce_inputs(dtype, extreme=False):
    def make(rng):
        if extreme:  # huge logits at seeded places, and some exact 0/1 targets
            logits = extremes(rng, (3, 4), dtype)
            targets = rng.uniform(size=(3, 4))
            targets[np.unravel_index(rng.permutation(12)[:4], (3, 4))] = (0.0, 1.0, 0.0, 1.0)
            targets = targets.astype(dtype)
        else:
            logits, targets = normal(rng, (4, 5), dtype, 3.0), rng.uniform(size=(4, 5)).astype(dtype)
        return {"logits": logits, "targets": targets, "w": normal(rng, logits.shape, dtype)}
    return make


@check("bce_with_logits", "value", 3, "elementwise BCE for logits in about [-9, 9], soft targets",
       bce_inputs(np.float64))
def bce_value(pkg, inp):
    return {"bce": pkg.ops.bce_with_logits(inp["logits"], inp["targets"])}


@check("bce_with_logits", "large_logits", 3, "finite and right for logits from ±30 to ±1e4",
       bce_inputs(np.float64, extreme=True),
       hint="σ(l) rounds to exactly 0 or 1 for large |l|, and log(0) = -inf: write the loss with softplus "
            "(ops.softplus(x) = log(1 + e^x), stable) instead of log(sigmoid)")
def bce_large(pkg, inp):
    return bce_value(pkg, inp)


@check("bce_with_logits", "gradient", 2, "gradient in the logits and the targets, through the library's VJPs",
       bce_inputs(np.float64), gradient=True, given_vjp=True, needs=("logistic_backward",))
def bce_gradient(pkg, inp):
    f = lambda logits, targets: pkg.ops.bce_with_logits(logits, targets)  # positional: keywords bypass the VJP
    return gradients(f, {"logits": inp["logits"], "targets": inp["targets"]}, inp["w"])


@check("bce_with_logits", "float32", 2, "float32 in, float32 out, logits up to ±1e4",
       bce_inputs(np.float32, extreme=True), hint=F32_HINT, **F32)
def bce_float32(pkg, inp):
    return bce_value(pkg, inp)


# --- discriminator_loss and generator_loss_nonsaturating --------------------------------------

def gan_inputs(dtype, extreme=False, rejected=False):
    def make(rng):
        real, fake = normal(rng, (5,), dtype, 3.0), normal(rng, (3, 1), dtype, 3.0)  # N != M, and (M, 1)
        if extreme:  # D very sure, right and wrong, at seeded places
            real, fake = extremes(rng, (3,), dtype, count=3), extremes(rng, (2, 1), dtype, count=2)
        if rejected:  # D confidently says "fake" to every fake: early training
            fake = -rng.uniform(15.0, 30.0, size=(4, 1)).astype(dtype)
        return {"real": real, "fake": fake, "w": np.ones((), dtype)}
    return make


STABLE_HINT = ("-log σ(l) = softplus(-l) and -log(1 - σ(l)) = softplus(l): use ops.softplus on the logits, "
               "never log(sigmoid(l))")


@check("discriminator_loss", "value", 4, "L_D on 5 real and 3 fake logits (float64)", gan_inputs(np.float64))
def d_value(pkg, inp):
    return {"loss": pkg.losses.discriminator_loss(inp["real"], inp["fake"])}


@check("discriminator_loss", "large_logits", 2, "finite and right for logits of ±1e4",
       gan_inputs(np.float64, extreme=True), hint=STABLE_HINT)
def d_large(pkg, inp):
    return d_value(pkg, inp)


@check("discriminator_loss", "gradient", 2, "gradient in the real and the fake logits", gan_inputs(np.float64),
       gradient=True)
def d_gradient(pkg, inp):
    return gradients(pkg.losses.discriminator_loss, {"real_logits": inp["real"], "fake_logits": inp["fake"]},
                     inp["w"])


@check("discriminator_loss", "float32", 2, "float32 in, float32 out", gan_inputs(np.float32), hint=F32_HINT, **F32)
def d_float32(pkg, inp):
    return {**d_value(pkg, inp), **d_gradient(pkg, inp)}


@check("generator_loss_nonsaturating", "value", 4, "L_G on 3 fake logits (float64)", gan_inputs(np.float64))
def g_value(pkg, inp):
    return {"loss": pkg.losses.generator_loss_nonsaturating(inp["fake"])}


@check("generator_loss_nonsaturating", "not_saturating", 2,
       "when D rejects every fake (logits -15 to -30), each logit's gradient is still about -1/M",
       gan_inputs(np.float64, rejected=True), gradient=True)
def g_not_saturating(pkg, inp):
    return gradients(pkg.losses.generator_loss_nonsaturating, {"fake_logits": inp["fake"]}, inp["w"])


@check("generator_loss_nonsaturating", "large_logits", 2, "finite and right for logits of ±1e4",
       gan_inputs(np.float64, extreme=True), hint=STABLE_HINT)
def g_large(pkg, inp):
    return g_value(pkg, inp)


@check("generator_loss_nonsaturating", "float32", 2, "float32 in, float32 out", gan_inputs(np.float32),
       hint=F32_HINT, **F32)
def g_float32(pkg, inp):
    return {**g_value(pkg, inp), **g_not_saturating(pkg, inp)}


# --- gradient_penalty -----------------------------------------------------------------------

def critic(params, x):
    """A small tanh MLP critic, (N, ...) -> (N, 1): smooth, so its input gradient is too."""
    h = anp.tanh(anp.dot(anp.reshape(x, (x.shape[0], -1)), params["w1"]) + params["b1"])
    return anp.dot(h, params["w2"])


def gp_inputs(dtype, example_shape=(3,)):
    def make(rng):
        d = int(np.prod(example_shape))
        return {"real": normal(rng, (5,) + example_shape, dtype), "fake": normal(rng, (5,) + example_shape, dtype),
                "eps": rng.uniform(size=5).astype(dtype), "w1": normal(rng, (d, 6), dtype, 0.8),
                "b1": normal(rng, (6,), dtype, 0.1), "w2": normal(rng, (6, 1), dtype, 0.8), "w": np.ones((), dtype)}
    return make


def penalty(pkg, inp, **params):
    params = params or {k: inp[k] for k in ("w1", "b1", "w2")}
    return pkg.losses.gradient_penalty(critic, params, inp["real"], inp["fake"], inp["eps"], weight=10.0)


@check("gradient_penalty", "value", 4, "λ = 10, 5 examples in 3-d, one ε each (float64)", gp_inputs(np.float64))
def gp_value(pkg, inp):
    return {"penalty": penalty(pkg, inp)}


@check("gradient_penalty", "images", 1, "examples of shape (1, 4, 4): one gradient norm per example",
       gp_inputs(np.float64, (1, 4, 4)), hint="‖∇D(x̂)‖ is the norm of each example's whole gradient (all axes "
                                              "but the first), one number per example")
def gp_images(pkg, inp):
    return gp_value(pkg, inp)


@check("gradient_penalty", "critic_gradient", 3,
       "gradient of the penalty in the critic's parameters (a gradient of a gradient)", gp_inputs(np.float64),
       gradient=True, hint="the critic learns from this penalty only through ∇D(x̂): take that gradient with "
                           "autograd.grad inside the loss, on autograd.numpy values", hint_on=("value", "gradient"))
def gp_critic_gradient(pkg, inp):
    f = lambda w1, b1, w2: penalty(pkg, inp, w1=w1, b1=b1, w2=w2)
    return gradients(f, {k: inp[k] for k in ("w1", "b1", "w2")}, inp["w"])


@check("gradient_penalty", "float32", 2, "float32 in, float32 out", gp_inputs(np.float32), hint=F32_HINT, **F32)
def gp_float32(pkg, inp):
    return {**gp_value(pkg, inp), **gp_critic_gradient(pkg, inp)}


