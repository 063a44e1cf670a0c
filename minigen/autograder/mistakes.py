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
from autograd import grad
from autograd.tracer import getval


@dataclass(frozen=True)
class Mistake:
    exercise: str
    site: str        # the function it replaces, "module.qualname"
    name: str
    hint: str        # what the student is told
    make: Callable   # the reference function -> the wrong one
    accepted: bool = False  # not a mistake: another published form of the right answer (hint: what it is)


MISTAKES = []


def mistake(exercise, site, name, hint, accepted=False):
    if any(m.exercise == exercise and m.name == name for m in MISTAKES):  # their outputs are stored by name
        raise ValueError(f"exercise {exercise} already has a mistake named {name!r}")

    def register(make):
        MISTAKES.append(Mistake(exercise, site, name, hint, make, accepted))
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
_gp_variant("at_fakes", "the critic's gradient is taken at x̂ = ε·real + (1 - ε)·fake, points between the real and the "
                        "fake examples, not at the fakes themselves", interpolate=lambda e, r, f: f)
_gp_variant("at_reals", "the critic's gradient is taken at x̂ = ε·real + (1 - ε)·fake, points between the real and the "
                        "fake examples, not at the real ones", interpolate=lambda e, r, f: r)
_gp_variant("one_eps_per_batch", "draw one ε per example (eps has shape (N,)): with a single ε for the whole "
                                 "batch every x̂ lies at the same fraction of the way",
            interpolate=lambda e, r, f: np.ravel(e)[0] * r + (1 - np.ravel(e)[0]) * f)
_gp_variant("stop_gradient", "the gradient in the critic's parameters flows through ∇D(x̂): no getval or plain "
                             "numpy on the slopes", stop=True)


@mistake("gradient_penalty", "losses.gradient_penalty", "no_weight", "multiply by the weight λ")
def _(ref):
    return lambda critic, params, real, fake, eps, weight=10.0: ref(critic, params, real, fake, eps, 1.0)


@mistake("gradient_penalty", "losses.gradient_penalty", "negative",
         "a sign error: the penalty is λ·E[(‖∇D(x̂)‖ - 1)²] ≥ 0, added to the critic's loss")
def _(ref):
    return lambda critic, params, real, fake, eps, weight=10.0: -ref(critic, params, real, fake, eps, weight)


def mistakes_for(exercise):
    return [m for m in MISTAKES if m.exercise == exercise]


from minigen.autograder import mistakes_backprop, mistakes_optim  # noqa: E402,F401 (register the others)
