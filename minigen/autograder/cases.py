"""The exercises and their checks: what is run, on what, for how many points.

Read this to see exactly how you are graded. Each check calls your function (from
`pkg`, a namespace holding your minigen's modules) on inputs stored in
data/<exercise>.npz and compares what comes back with the reference implementation's
numbers, stored beside them when the assignment was built. No reference code is here.

Checks give partial credit where it teaches: the value, the gradient (against the
reference and against finite differences of your own function), float32 kept.
"""
from collections.abc import Callable
from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np

from .compare import gradients

MODULES = ("ops", "losses", "optim", "gradcheck")  # the minigen modules a probe may use, as pkg.<name>


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str      # the lecture concept
    sites: tuple    # the functions holding its solution, "module.qualname"
    enabled: bool = True


EXERCISES = (
    Exercise("gaussian_kl", "the KL divergence KL(N(mu, diag σ²) ‖ N(0, I)), closed form", ("losses.gaussian_kl",)),
    Exercise("reparameterize", "the reparameterization trick, z = mu + σ·eps", ("losses.reparameterize",)),
    Exercise("elbo", "the ELBO and the β-VAE loss", ("losses.elbo", "losses.beta_vae_loss")),
    Exercise("bce_with_logits", "binary cross-entropy with logits, numerically stable", ("ops.bce_with_logits",)),
    Exercise("discriminator_loss", "the GAN discriminator's loss", ("losses.discriminator_loss",)),
    Exercise("generator_loss_nonsaturating", "the non-saturating generator loss",
             ("losses.generator_loss_nonsaturating",)),
    Exercise("gradient_penalty", "WGAN-GP's gradient penalty", ("losses.gradient_penalty",)),
    Exercise("adam_step", "one step of Adam, with bias correction", ("optim.Adam.update",)),
    Exercise("conv2d_im2col", "conv2d forward via im2col and one matrix product",
             ("ops._im2col_windows", "ops._conv2d")),
    Exercise("numerical_grad", "a numerical gradient by central differences", ("gradcheck.numerical_grad",)),
)


@dataclass(frozen=True)
class Check:
    exercise: str
    name: str
    points: int
    what: str                 # one line: what is checked
    inputs: Callable          # rng -> {name: array}; run once, when the assignment is built
    probe: Callable           # (pkg, inputs) -> {name: array}; names starting with "_" are diagnostics
    rtol: float = 1e-6
    gradient: bool = False    # also demand autograd's gradient agree with finite differences
    hint: str = ""            # added to a failure that matches no known mistake

    @property
    def id(self):
        return f"{self.exercise}.{self.name}"


CHECKS = []


def check(exercise, name, points, what, inputs, **options):
    """Register the decorated probe as a check."""
    def register(probe):
        CHECKS.append(Check(exercise, name, points, what, inputs, probe, **options))
        return probe
    return register


def normal(rng, shape, dtype=np.float64, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


F32 = dict(rtol=1e-4)  # float32 checks: looser values, exact dtype
F32_HINT = "keep constants Python numbers (0.5, not np.float64(0.5)); np.exp(0.5) is a float64 too"


# --- gaussian_kl ------------------------------------------------------------------------

def kl_inputs(dtype):
    return lambda rng: {"mu": normal(rng, (5, 3), dtype), "logvar": normal(rng, (5, 3), dtype, 0.8),
                        "w": normal(rng, (5,), dtype)}


@check("gaussian_kl", "value", 5, "KL of 5 Gaussians in 3-d (float64)", kl_inputs(np.float64))
def kl_value(pkg, inp):
    return {"kl": pkg.losses.gaussian_kl(inp["mu"], inp["logvar"])}


@check("gaussian_kl", "gradient", 3, "gradient in mu and logvar", kl_inputs(np.float64), gradient=True)
def kl_gradient(pkg, inp):
    return gradients(pkg.losses.gaussian_kl, {"mu": inp["mu"], "logvar": inp["logvar"]}, inp["w"])


@check("gaussian_kl", "float32", 2, "float32 in, float32 out (value and gradient)", kl_inputs(np.float32),
       hint=F32_HINT, **F32)
def kl_float32(pkg, inp):
    return {**kl_value(pkg, inp), **kl_gradient(pkg, inp)}


# --- reparameterize -----------------------------------------------------------------------

def reparam_inputs(dtype, samples=()):
    return lambda rng: {"mu": normal(rng, (4, 3), dtype), "logvar": normal(rng, (4, 3), dtype),
                        "eps": normal(rng, samples + (4, 3), dtype), "w": normal(rng, samples + (4, 3), dtype)}


@check("reparameterize", "value", 4, "z for 4 examples in 3-d (float64)", reparam_inputs(np.float64))
def reparam_value(pkg, inp):
    return {"z": pkg.losses.reparameterize(inp["mu"], inp["logvar"], inp["eps"])}


@check("reparameterize", "samples", 1, "K = 5 samples per example: eps (5, 4, 3), mu (4, 3)",
       reparam_inputs(np.float64, (5,)), hint="let numpy broadcast mu and σ (N, D) against eps (K, N, D)")
def reparam_samples(pkg, inp):
    return reparam_value(pkg, inp)


@check("reparameterize", "gradient", 3, "gradient in mu and logvar (eps held fixed)", reparam_inputs(np.float64),
       gradient=True)
def reparam_gradient(pkg, inp):
    f = lambda mu, logvar: pkg.losses.reparameterize(mu, logvar, inp["eps"])
    return gradients(f, {"mu": inp["mu"], "logvar": inp["logvar"]}, inp["w"])


@check("reparameterize", "float32", 2, "float32 in, float32 out (value and gradient)", reparam_inputs(np.float32),
       hint=F32_HINT, **F32)
def reparam_float32(pkg, inp):
    return {**reparam_value(pkg, inp), **reparam_gradient(pkg, inp)}


# --- elbo -------------------------------------------------------------------------------------

def elbo_inputs(dtype):
    return lambda rng: {"log_likelihood": normal(rng, (6,), dtype, 50.0) - 100,
                        "kl": np.abs(normal(rng, (6,), dtype, 5.0)), "w": np.ones((), dtype)}


@check("elbo", "elbo", 3, "the ELBO of 6 examples from their log-likelihoods and KLs", elbo_inputs(np.float64))
def elbo_value(pkg, inp):
    return {"elbo": pkg.losses.elbo(inp["log_likelihood"], inp["kl"])}


@check("elbo", "beta_vae_loss", 3, "the β-VAE loss with β = 1 and β = 4", elbo_inputs(np.float64))
def beta_vae_value(pkg, inp):
    ll, kl = inp["log_likelihood"], inp["kl"]
    return {"loss_beta1": pkg.losses.beta_vae_loss(ll, kl, 1.0), "loss_beta4": pkg.losses.beta_vae_loss(ll, kl, 4.0)}


@check("elbo", "gradient", 2, "gradient of the β-VAE loss (β = 4) in log-likelihood and KL",
       elbo_inputs(np.float64), gradient=True)
def beta_vae_gradient(pkg, inp):
    f = lambda log_likelihood, kl: pkg.losses.beta_vae_loss(log_likelihood, kl, 4.0)
    return gradients(f, {"log_likelihood": inp["log_likelihood"], "kl": inp["kl"]}, inp["w"])


@check("elbo", "float32", 2, "float32 in, float32 out", elbo_inputs(np.float32), hint=F32_HINT, **F32)
def elbo_float32(pkg, inp):
    return {**elbo_value(pkg, inp), **beta_vae_value(pkg, inp), **beta_vae_gradient(pkg, inp)}


# --- bce_with_logits -------------------------------------------------------------------------

def bce_inputs(dtype, extreme=False):
    def make(rng):
        if extreme:
            logits = np.array([[1e4, -1e4, 100.0, -100.0], [30.0, -30.0, 1e4, -1e4]], dtype)
            targets = np.array([[1.0, 0.0, 0.3, 0.7], [0.0, 1.0, 0.0, 1.0]], dtype)
        else:
            logits, targets = normal(rng, (4, 5), dtype, 3.0), rng.uniform(size=(4, 5)).astype(dtype)
        return {"logits": logits, "targets": targets, "w": normal(rng, logits.shape, dtype)}
    return make


@check("bce_with_logits", "value", 3, "elementwise BCE for logits in about [-9, 9], soft targets",
       bce_inputs(np.float64))
def bce_value(pkg, inp):
    return {"bce": pkg.ops.bce_with_logits(inp["logits"], inp["targets"])}


@check("bce_with_logits", "large_logits", 3, "finite and right for logits of ±100 and ±1e4",
       bce_inputs(np.float64, extreme=True),
       hint="σ(l) rounds to exactly 0 or 1 for large |l|, and log(0) = -inf: write the loss with softplus "
            "(ops.softplus(x) = log(1 + e^x), stable) instead of log(sigmoid)")
def bce_large(pkg, inp):
    return bce_value(pkg, inp)


@check("bce_with_logits", "gradient", 2, "gradient in the logits and the targets", bce_inputs(np.float64),
       gradient=True)
def bce_gradient(pkg, inp):
    return gradients(pkg.ops.bce_with_logits, {"logits": inp["logits"], "targets": inp["targets"]}, inp["w"])


@check("bce_with_logits", "float32", 2, "float32 in, float32 out, logits up to ±1e4",
       bce_inputs(np.float32, extreme=True), hint=F32_HINT, **F32)
def bce_float32(pkg, inp):
    return {**bce_value(pkg, inp), **bce_gradient(pkg, inp)}


# --- discriminator_loss and generator_loss_nonsaturating --------------------------------------

def gan_inputs(dtype, extreme=False, rejected=False):
    def make(rng):
        real, fake = normal(rng, (5,), dtype, 3.0), normal(rng, (3, 1), dtype, 3.0)  # N != M, and (M, 1)
        if extreme:
            real, fake = np.array([1e4, -1e4, 50.0], dtype), np.array([[-1e4], [1e4]], dtype)
        if rejected:  # D confidently says "fake" to every fake: early training
            fake = np.full((4, 1), -20.0, dtype)
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
       "when D rejects every fake (logit -20), each logit's gradient is still about -1/M",
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
                           "autograd.grad inside the loss, on autograd.numpy values")
def gp_critic_gradient(pkg, inp):
    f = lambda w1, b1, w2: penalty(pkg, inp, w1=w1, b1=b1, w2=w2)
    return gradients(f, {k: inp[k] for k in ("w1", "b1", "w2")}, inp["w"])


@check("gradient_penalty", "float32", 2, "float32 in, float32 out", gp_inputs(np.float32), hint=F32_HINT, **F32)
def gp_float32(pkg, inp):
    return {**gp_value(pkg, inp), **gp_critic_gradient(pkg, inp)}


# --- adam_step -----------------------------------------------------------------------------

def adam_inputs(dtype):
    return lambda rng: {"w": normal(rng, (3, 4), dtype), "b": normal(rng, (4,), dtype),
                        "gw": normal(rng, (3, 3, 4), dtype), "gb": normal(rng, (3, 4), dtype, 1e-3)}


def adam_run(pkg, inp, steps, **hyper):
    """Adam on {"w", "b"} for `steps` steps with the stored gradients; the params and buffers after."""
    params = {"w": inp["w"].copy(), "b": inp["b"].copy()}
    opt = pkg.optim.Adam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8, **hyper)
    for t in range(steps):
        opt.step({"w": inp["gw"][t], "b": inp["gb"][t]})
    state = opt.state_dict()
    return {"b": params["b"], "w": params["w"], "m_b": state["m.0"], "m_w": state["m.1"],
            "v_b": state["v.0"], "v_w": state["v.1"]}


UPDATE_HINT = "update p, m and v in place (p -= ..., m *= ..., m += ...): the optimiser holds these very arrays"


@check("adam_step", "first_step", 3, "the parameters after one step (bias correction makes it about lr·sign(g))",
       adam_inputs(np.float64), hint=UPDATE_HINT)
def adam_first(pkg, inp):
    out = adam_run(pkg, inp, 1)
    return {"w": out["w"], "b": out["b"]}


@check("adam_step", "three_steps", 3, "the parameters after three steps", adam_inputs(np.float64), hint=UPDATE_HINT)
def adam_three(pkg, inp):
    out = adam_run(pkg, inp, 3)
    return {"w": out["w"], "b": out["b"]}


@check("adam_step", "moments", 2, "the moving averages m and v after three steps", adam_inputs(np.float64),
       hint=UPDATE_HINT)
def adam_moments(pkg, inp):
    out = adam_run(pkg, inp, 3)
    return {k: out[k] for k in ("m_w", "m_b", "v_w", "v_b")}


@check("adam_step", "adamw_float32", 2, "three steps of AdamW (decoupled weight decay) on float32 parameters",
       adam_inputs(np.float32), **F32)
def adam_w_float32(pkg, inp):
    return adam_run(pkg, inp, 3, weight_decay=0.1, decoupled=True)


# --- conv2d_im2col -------------------------------------------------------------------------

CONV_CASES = (  # (stride, padding) for x (2, 3, 6, 5) and w (4, 3, 3, 2)
    ((1, 1), (0, 0)), ((2, 2), (1, 1)), ((2, 1), (0, 2)))


def conv_inputs(dtype):
    def make(rng):
        x, w = normal(rng, (2, 3, 6, 5), dtype), normal(rng, (4, 3, 3, 2), dtype)
        return {"x": x, "w": w, "g": normal(rng, (2, 4, 3, 3), dtype)}
    return make


def out_hw(x, w, stride, padding):
    return tuple((x.shape[2 + i] + 2 * padding[i] - w.shape[2 + i]) // stride[i] + 1 for i in range(2))


@check("conv2d_im2col", "windows", 3, "_im2col_windows: the (N, C, Ho, Wo, kh, kw) windows, with stride and padding",
       conv_inputs(np.float64))
def conv_windows(pkg, inp):
    x, w = inp["x"], inp["w"]
    return {f"windows_{i}": np.array(pkg.ops._im2col_windows(x, w.shape[2:], s, p, out_hw(x, w, s, p)))
            for i, (s, p) in enumerate(CONV_CASES)}


@check("conv2d_im2col", "forward", 4, "conv2d(x, w) for three strides and paddings", conv_inputs(np.float64),
       hint="conv2d is a cross-correlation: y[n, o, i, j] = Σ_{c, a, b} xpad[n, c, i·s + a, j·s + b] w[o, c, a, b]")
def conv_forward(pkg, inp):
    # No bias: adding it is not the exercise, and a wrong layout would show up as a broadcasting error.
    return {f"y_{i}": pkg.ops.conv2d(inp["x"], inp["w"], None, s, p) for i, (s, p) in enumerate(CONV_CASES)}


@check("conv2d_im2col", "gradient", 1, "gradient in x and w (stride 2, padding 1) through the given VJPs",
       conv_inputs(np.float64), gradient=True)
def conv_gradient(pkg, inp):
    f = lambda x, w: pkg.ops.conv2d(x, w, None, stride=2, padding=1)
    return gradients(f, {"x": inp["x"], "w": inp["w"]}, inp["g"])


@check("conv2d_im2col", "float32", 2, "float32 in, float32 out", conv_inputs(np.float32), hint=F32_HINT, **F32)
def conv_float32(pkg, inp):
    return {**conv_forward(pkg, inp), **conv_gradient(pkg, inp)}


# --- numerical_grad ----------------------------------------------------------------------

def wiggly(x):
    """A smooth scalar function with cross terms, so every partial derivative differs."""
    x = np.asarray(x)
    return np.sum(np.sin(x) * x * x) + x.flat[0] * x.flat[-1] + np.prod(x.flat[:3])


def grad_inputs(dtype):
    return lambda rng: {"x": normal(rng, (3, 2)).astype(dtype)}


@check("numerical_grad", "value", 4, "the gradient of a smooth function at a (3, 2) array", grad_inputs(np.float64),
       rtol=1e-8, hint="one coordinate at a time: g[i] = (f(x + h e_i) - f(x - h e_i)) / 2h, with x[i] put back "
                       "after each pair of evaluations")
def ngrad_value(pkg, inp):
    return {"grad": pkg.gradcheck.numerical_grad(wiggly, inp["x"])}


@check("numerical_grad", "input_kept", 2, "x is left as it was, and the gradient has x's shape",
       grad_inputs(np.float64), rtol=1e-12, hint="restore x[i] after each pair of evaluations (or work on a copy)")
def ngrad_input(pkg, inp):
    x = inp["x"].copy()
    g = pkg.gradcheck.numerical_grad(wiggly, x)
    if np.shape(g) != x.shape:
        raise AssertionError(f"the gradient has shape {np.shape(g)}, x has {x.shape}: they must be the same")
    return {"x_after": x}


@check("numerical_grad", "uses_h", 2, "with h = 1e-3 (the step you are given) on the same function",
       grad_inputs(np.float64), rtol=1e-8, hint="difference with the step h that the caller passes")
def ngrad_h(pkg, inp):
    return {"grad": pkg.gradcheck.numerical_grad(wiggly, inp["x"], h=1e-3)}


@check("numerical_grad", "float32_input", 2, "a float32 x still gives an accurate gradient (work in float64)",
       grad_inputs(np.float32), rtol=1e-8,
       hint="convert x to float64 first: with h = 1e-5, float32's rounding (about 1e-7 of x) swamps f(x+h) - f(x-h)")
def ngrad_float32(pkg, inp):
    return ngrad_value(pkg, inp)


def checks_for(exercise):
    return [c for c in CHECKS if c.exercise == exercise]
