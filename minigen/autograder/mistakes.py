"""Known wrong answers, so that a failing check can name the mistake. Never shipped.

Each entry is a plausible student error, written as a replacement for one exercise
function. When the assignment is built, every check of the exercise is run once with
the replacement patched in; what it returns is stored beside the reference values.
A student whose numbers reproduce a wrong variant's is told its hint. The code here
is near the solution, so it stays with the instructor, like the solutions.
"""
from collections.abc import Callable
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp
from autograd import grad
from autograd.tracer import getval


@dataclass(frozen=True)
class Mistake:
    exercise: str
    site: str        # the function it replaces, "module.qualname"
    name: str
    hint: str        # what the student is told
    make: Callable   # the reference function -> the wrong one


MISTAKES = []


def mistake(exercise, site, name, hint):
    def register(make):
        MISTAKES.append(Mistake(exercise, site, name, hint, make))
        return make
    return register


def softplus(x):
    from minigen import ops
    return ops.softplus(x)


# --- VAE ---------------------------------------------------------------------------------

@mistake("gaussian_kl", "losses.gaussian_kl", "no_half", "the KL is ½ Σ_d (...): the ½ is missing")
def _(ref):
    return lambda mu, logvar: 2 * ref(mu, logvar)


@mistake("gaussian_kl", "losses.gaussian_kl", "logvar_sign",
         "the last term is -logvar (KL = ½ Σ (mu² + σ² - 1 - log σ²)): its sign is flipped")
def _(ref):
    return lambda mu, logvar: ref(mu, logvar) + np.sum(logvar, axis=-1)


@mistake("gaussian_kl", "losses.gaussian_kl", "sigma_not_variance",
         "σ² = e^logvar, the variance; e^(½ logvar) is σ, the standard deviation")
def _(ref):
    return lambda mu, logvar: ref(mu, logvar) + 0.5 * np.sum(np.exp(0.5 * logvar) - np.exp(logvar), axis=-1)


@mistake("gaussian_kl", "losses.gaussian_kl", "no_minus_one", "the '- 1' inside the sum is missing")
def _(ref):
    return lambda mu, logvar: ref(mu, logvar) + 0.5 * mu.shape[-1]


@mistake("gaussian_kl", "losses.gaussian_kl", "mean_over_latents",
         "sum over the latent dimensions (axis=-1), do not average them")
def _(ref):
    return lambda mu, logvar: ref(mu, logvar) / mu.shape[-1]


@mistake("gaussian_kl", "losses.gaussian_kl", "batch_sum",
         "return one KL per example, shape (N,): sum over axis=-1 only")
def _(ref):
    return lambda mu, logvar: np.sum(ref(mu, logvar))


@mistake("reparameterize", "losses.reparameterize", "variance_not_std",
         "σ = e^(½ logvar) is the standard deviation; e^logvar is the variance σ²")
def _(ref):
    return lambda mu, logvar, eps: mu + np.exp(logvar) * eps


@mistake("reparameterize", "losses.reparameterize", "logvar_as_std",
         "logvar is log σ², not σ: scale eps by e^(½ logvar)")
def _(ref):
    return lambda mu, logvar, eps: mu + logvar * eps


@mistake("reparameterize", "losses.reparameterize", "minus", "z = mu + σ·eps: the sign of the noise term is flipped")
def _(ref):
    return lambda mu, logvar, eps: ref(mu, logvar, -eps)


@mistake("reparameterize", "losses.reparameterize", "stop_gradient",
         "the gradient cannot flow through a sample that autograd cannot see: build z from mu and logvar "
         "with autograd.numpy (no getval, no plain numpy), so z stays a function of them")
def _(ref):
    return lambda mu, logvar, eps: mu + getval(np.exp(0.5 * logvar)) * eps


@mistake("elbo", "losses.elbo", "plus_kl", "ELBO = log p(x|z) - KL: the KL is subtracted")
def _(ref):
    return lambda log_likelihood, kl: log_likelihood + kl


@mistake("elbo", "losses.beta_vae_loss", "elbo_not_loss",
         "this is the ELBO (to maximise); the loss is its negative, -log p(x|z) + β KL, to minimise")
def _(ref):
    return lambda log_likelihood, kl, beta=1.0: -ref(log_likelihood, kl, beta)


@mistake("elbo", "losses.beta_vae_loss", "sum_not_mean", "average over the batch (np.mean), do not sum")
def _(ref):
    return lambda log_likelihood, kl, beta=1.0: log_likelihood.shape[0] * ref(log_likelihood, kl, beta)


@mistake("elbo", "losses.beta_vae_loss", "beta_on_likelihood", "β multiplies the KL term, not the log-likelihood")
def _(ref):
    return lambda log_likelihood, kl, beta=1.0: np.mean(kl - float(beta) * log_likelihood)


@mistake("elbo", "losses.beta_vae_loss", "per_example", "the loss is one number: the mean over the batch")
def _(ref):
    return lambda log_likelihood, kl, beta=1.0: float(beta) * kl - log_likelihood


# --- BCE and GAN losses --------------------------------------------------------------------

@mistake("bce_with_logits", "ops.bce_with_logits", "target_sign", "BCE = softplus(l) - t·l: the sign of t·l is flipped")
def _(ref):
    return lambda logits, targets: softplus(logits) + targets * logits


@mistake("bce_with_logits", "ops.bce_with_logits", "positive_class_only",
         "the (1 - t)·(-log(1 - σ(l))) term is missing: BCE has a term for each of the two classes")
def _(ref):
    return lambda logits, targets: targets * softplus(-logits)


@mistake("bce_with_logits", "ops.bce_with_logits", "reduced",
         "return the elementwise loss (same shape as the inputs): no mean or sum")
def _(ref):
    return lambda logits, targets: np.mean(ref(logits, targets))


@mistake("discriminator_loss", "losses.discriminator_loss", "labels_swapped",
         "real examples have label 1 (-log D(x) = softplus(-l_real)), fakes label 0 (softplus(l_fake)): swapped")
def _(ref):
    return lambda real_logits, fake_logits: ref(-real_logits, -fake_logits)


@mistake("discriminator_loss", "losses.discriminator_loss", "sign",
         "L_D = -E[log D(x)] - E[log(1 - D(G(z)))] is minimised; this is its negative")
def _(ref):
    return lambda real_logits, fake_logits: -ref(real_logits, fake_logits)


@mistake("discriminator_loss", "losses.discriminator_loss", "one_mean",
         "average the real and the fake terms each over its own batch: E_x[...] + E_z[...], not one mean "
         "over both")
def _(ref):
    return lambda real_logits, fake_logits: np.mean(np.concatenate(
        [np.ravel(softplus(-real_logits)), np.ravel(softplus(fake_logits))]))


@mistake("discriminator_loss", "losses.discriminator_loss", "sums", "E[...] is a mean over the batch, not a sum")
def _(ref):
    return lambda real_logits, fake_logits: np.sum(softplus(-real_logits)) + np.sum(softplus(fake_logits))


@mistake("generator_loss_nonsaturating", "losses.generator_loss_nonsaturating", "minimax",
         "this is the minimax loss E[log(1 - D(G(z)))], whose gradient vanishes when D rejects the fakes; "
         "the non-saturating loss is -E[log D(G(z))] = E[softplus(-l)]")
def _(ref):
    return lambda fake_logits: -np.mean(softplus(fake_logits))


@mistake("generator_loss_nonsaturating", "losses.generator_loss_nonsaturating", "sign",
         "L_G = -E[log D(G(z))] is minimised; this is its negative")
def _(ref):
    return lambda fake_logits: -ref(fake_logits)


@mistake("generator_loss_nonsaturating", "losses.generator_loss_nonsaturating", "sum",
         "E[...] is a mean over the batch, not a sum")
def _(ref):
    return lambda fake_logits: np.sum(softplus(-fake_logits))


# --- WGAN-GP --------------------------------------------------------------------------------

def _penalty(critic, params, real, fake, eps, weight, interpolate=None, norms=None, shape=None, stop=False):
    """The penalty with one part replaced, for the variants below."""
    eps = np.reshape(eps, (real.shape[0],) + (1,) * (real.ndim - 1)) if np.ndim(eps) == 1 else eps
    x_hat = interpolate(eps, real, fake) if interpolate else eps * real + (1 - eps) * fake
    slopes = grad(lambda x: np.sum(critic(params, x)))(x_hat)
    slopes = getval(slopes) if stop else slopes
    if norms is None:
        norms = lambda s: np.sqrt(np.sum(np.reshape(s * s, (real.shape[0], -1)), axis=1) + 1e-12)
    gap = shape(norms(slopes)) if shape else norms(slopes) - 1
    return float(weight) * np.mean(gap * gap)


def _gp_variant(name, hint, **change):
    mistake("gradient_penalty", "losses.gradient_penalty", name, hint)(
        lambda ref: lambda critic, params, real, fake, eps, weight=10.0:
        _penalty(critic, params, real, fake, eps, weight, **change))


_gp_variant("norm_to_zero", "the penalty is (‖∇D(x̂)‖ - 1)²: it pulls the norm towards 1, not towards 0",
            shape=lambda n: n)
_gp_variant("squared_norm", "take the square root: ‖∇D(x̂)‖ is the Euclidean norm, not its square",
            norms=lambda s: np.sum(np.reshape(s * s, (s.shape[0], -1)), axis=1))
_gp_variant("swapped_interpolation", "x̂ = ε·real + (1 - ε)·fake: real and fake (or ε and 1 - ε) are swapped",
            interpolate=lambda e, r, f: e * f + (1 - e) * r)
_gp_variant("batch_norm_of_gradient", "take one gradient norm per example, not one for the whole batch",
            norms=lambda s: np.sqrt(np.sum(s * s) + 1e-12) * np.ones(s.shape[0]))
_gp_variant("last_axis_norm", "the norm runs over all of an example's axes (reshape to (N, -1)), not only the last",
            norms=lambda s: np.sqrt(np.sum(s * s, axis=-1) + 1e-12))
_gp_variant("stop_gradient", "the gradient in the critic's parameters flows through ∇D(x̂): no getval or plain "
                             "numpy on the slopes", stop=True)


@mistake("gradient_penalty", "losses.gradient_penalty", "no_weight", "multiply by the weight λ")
def _(ref):
    return lambda critic, params, real, fake, eps, weight=10.0: ref(critic, params, real, fake, eps, 1.0)


@mistake("gradient_penalty", "losses.gradient_penalty", "negative",
         "a sign error: the penalty is λ·E[(‖∇D(x̂)‖ - 1)²] ≥ 0, added to the critic's loss")
def _(ref):
    return lambda critic, params, real, fake, eps, weight=10.0: -ref(critic, params, real, fake, eps, weight)


# --- Adam --------------------------------------------------------------------------------

def _adam(bias_correction=True, in_place=True, state_in_place=True, sqrt=True, swapped=False):
    def update(self, p, g, m, v):
        b1, b2 = self.betas[::-1] if swapped else self.betas
        if self.weight_decay and self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        m_new, v_new = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        if state_in_place:
            m[...], v[...] = m_new, v_new
        c1, c2 = (1 - b1 ** self.t, 1 - b2 ** self.t) if bias_correction else (1, 1)
        step = (m_new / c1) / ((np.sqrt(v_new / c2) if sqrt else v_new / c2) + self.eps)
        if in_place:
            p -= self.lr * step
        else:
            p = p - self.lr * step  # noqa: F841 (the mistake: rebinding the name leaves the array alone)
    return lambda ref: update


for _name, _hint, _kw in (
        ("no_bias_correction", "divide m by 1 - β1^t and v by 1 - β2^t (bias correction): both start at 0, so "
                               "early averages are too small", dict(bias_correction=False)),
        ("not_in_place", "the parameters did not change: update p in place (p -= ...), rebinding the name "
                         "leaves the optimiser's array as it was", dict(in_place=False)),
        ("state_not_kept", "m and v must be updated in place (m *= β1; m += ...): they are the optimiser's "
                           "memory from one step to the next", dict(state_in_place=False)),
        ("no_sqrt", "divide by √v̂ + eps, the square root of the second moment", dict(sqrt=False)),
        ("betas_swapped", "β1 (0.9) is for m, the mean of g; β2 (0.999) for v, the mean of g²", dict(swapped=True))):
    mistake("adam_step", "optim.Adam.update", _name, _hint)(_adam(**_kw))


# --- conv2d via im2col ---------------------------------------------------------------------

@mistake("conv2d_im2col", "ops._conv2d", "flipped_kernel",
         "the kernel is flipped: deep learning's conv2d is a cross-correlation, w[o, c, a, b] multiplies "
         "xpad[n, c, i·s + a, j·s + b] with no flip")
def _(ref):
    return lambda x, w, stride, padding: ref(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), stride, padding)


@mistake("conv2d_im2col", "ops._im2col_windows", "no_padding", "pad the input by `padding` zeros on each side first")
def _(ref):
    return lambda x, kernel, stride, padding, out_hw: ref(x, kernel, stride, (0, 0), out_hw)


@mistake("conv2d_im2col", "ops._im2col_windows", "no_stride",
         "window (i, j) starts at (i·stride, j·stride): the stride was not applied")
def _(ref):
    return lambda x, kernel, stride, padding, out_hw: ref(x, kernel, (1, 1), padding, out_hw)


# --- numerical_grad ------------------------------------------------------------------------

def _differences(f, x, h, forward=False, denominator=2.0, step=None, keep_dtype=False):
    x = onp.array(x, dtype=None if keep_dtype else onp.float64)
    g = onp.zeros_like(x)
    h = step or h
    for i in onp.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        up = float(f(x))
        x[i] = saved if forward else saved - h
        down = float(f(x))
        x[i] = saved
        g[i] = (up - down) / ((1.0 if forward else denominator) * h)
    return g


for _name, _hint, _kw in (
        ("forward_difference", "use the centred difference (f(x + h) - f(x - h)) / 2h: the one-sided "
                               "(f(x + h) - f(x)) / h is only first-order accurate", dict(forward=True)),
        ("half_step", "the centred difference divides by 2h, the distance between x - h and x + h",
         dict(denominator=1.0)),
        ("fixed_step", "use the step h the caller passes (here 1e-3)", dict(step=1e-5)),
        ("float32_kept", "work in float64: with h = 1e-5, float32 rounding swamps f(x + h) - f(x - h)",
         dict(keep_dtype=True))):
    mistake("numerical_grad", "gradcheck.numerical_grad", _name, _hint)(
        lambda ref, kw=_kw: lambda f, x, h=1e-5: _differences(f, x, h, **kw))


def mistakes_for(exercise):
    return [m for m in MISTAKES if m.exercise == exercise]
