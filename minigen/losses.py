"""VAE losses: KL divergences, log-likelihoods, the ELBO and the IWAE bound; then the GAN half
(discriminator, minimax and non-saturating generator, WGAN, WGAN-GP's penalty, hinge).

One short function per formula, named after the math, so a loss reads as on the slide:

    z    = reparameterize(mu, logvar, sample_eps(rng, mu.shape))
    loss = beta_vae_loss(bernoulli_log_likelihood(x, decoder(z)), gaussian_kl(mu, logvar))

Conventions:
  - Per-example values. Every log-density, log-likelihood and KL returns shape (N,),
    one number per example in nats, so a batch mean (the loss), a sum (a bound on a
    data set) or an anomaly score (one per image) is one step away.
  - `logvar` is log σ² (the encoder's output is unconstrained; σ² = e^logvar > 0).
  - Latent-space functions (KL, densities of z) sum over the last axis, (N, D) -> (N,);
    data-space likelihoods sum over every axis but the first, (N, ...) -> (N,).
  - float32 in -> float32 out, values and gradients. Under numpy 2's promotion rules a
    float32 array combined with a numpy float64/int64 *scalar* becomes float64, so the
    constants here are Python ints and floats (which adapt to the array's dtype).
    autograd's VJPs of np.mean, np.var, np.std, np.max and np.min return float64; importing
    minigen.ops mends them (minigen.autograd_patches), so they are safe here.
  - Randomness comes from an explicit numpy Generator: `eps` is passed in.
"""
import math

import autograd.numpy as np
import numpy as onp
from autograd import grad
from autograd.extend import defvjp_argnums, primitive
from autograd.numpy.numpy_vjps import unbroadcast
from autograd.tracer import getval

from minigen import ops  # its import also mends the float32 VJPs of np.mean, var, std, max, min

LOG_2PI = math.log(2 * math.pi)  # a Python float, so it never promotes float32


# --- Shape checks: errors raised where the bad value enters ---------------------

def _check_same_shape(fn, **arrays):
    """Raise a ValueError naming every shape unless all arrays have the same shape."""
    shapes = {name: tuple(onp.shape(a)) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{fn}: expected {' and '.join(shapes)} of the same shape, got "
                         + ", ".join(f"{name} {shape}" for name, shape in shapes.items()))


def _broadcasts_to(shape, target):
    try:
        return onp.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def _sum_features(a):
    """(N, ...) -> (N,): sum over every axis but the batch axis."""
    if onp.ndim(a) < 1:
        raise ValueError(f"expected a batch of shape (N, ...), got a scalar of shape {onp.shape(a)}")
    return np.sum(np.reshape(a, (onp.shape(a)[0], -1)), axis=1)


def _log_normal(x, mean, logvar):
    """Elementwise log N(x; mean, e^logvar) = -½ [(x - mean)² e^-logvar + logvar + log 2π]."""
    diff = x - mean
    # diff * diff rather than diff ** 2: no exponent constant to carry a dtype into the VJP.
    return -0.5 * (diff * diff * np.exp(-logvar) + logvar + LOG_2PI)


# --- KL divergences --------------------------------------------------------------

def gaussian_kl(mu, logvar):
    """KL(N(mu, diag e^logvar) || N(0, I)), closed form (Kingma & Welling 2014, app. B).

    mu, logvar: (N, D) -> (N,):  ½ Σ_d (mu² + e^logvar - 1 - logvar).
    """
    _check_same_shape("gaussian_kl", mu=mu, logvar=logvar)
    # BEGIN SOLUTION
    # expm1(lv) - lv instead of exp(lv) - 1 - lv: exact near lv = 0, where the two
    # nearly cancel, and never below zero after rounding, so KL >= 0 holds exactly.
    return 0.5 * np.sum(mu * mu + np.expm1(logvar) - logvar, axis=-1)
    # END SOLUTION


def gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p):
    """KL(q || p) between diagonal Gaussians q = N(mu_q, e^logvar_q), p = N(mu_p, e^logvar_p).

    All four: (N, D) -> (N,):
        ½ Σ_d [ e^(logvar_q - logvar_p) + (mu_q - mu_p)² e^-logvar_p - 1 - (logvar_q - logvar_p) ].
    With mu_p = 0, logvar_p = 0 it is gaussian_kl. Used where the prior is learned (CVAE).
    """
    _check_same_shape("gaussian_kl_between", mu_q=mu_q, logvar_q=logvar_q, mu_p=mu_p, logvar_p=logvar_p)
    # BEGIN SOLUTION
    log_ratio = logvar_q - logvar_p  # log(σ_q² / σ_p²), formed once so its expm1 stays exact near 0
    diff = mu_q - mu_p
    return 0.5 * np.sum(np.expm1(log_ratio) - log_ratio + diff * diff * np.exp(-logvar_p), axis=-1)
    # END SOLUTION


# --- Log-likelihoods and log-densities ------------------------------------------

def bernoulli_log_likelihood(x, logits):
    """log p(x | logits) of independent Bernoullis, summed per example.

    x: (N, ...) in [0, 1] (binary pixels, or intensities as soft targets);
    logits: same shape -> (N,):  Σ x log σ(l) + (1 - x) log(1 - σ(l)).
    Computed as -bce_with_logits (softplus(l) - x l), finite for |logits| up to 1e4
    and beyond: the sigmoid is never formed, so log(0) never is either.
    """
    _check_same_shape("bernoulli_log_likelihood", x=x, logits=logits)
    seen = getval(x)
    if isinstance(seen, onp.ndarray) and seen.size and (seen.min() < 0 or seen.max() > 1):  # one pass over x
        raise ValueError(f"bernoulli_log_likelihood: x must lie in [0, 1] (pixel intensities or bits), got values "
                         f"in [{seen.min():g}, {seen.max():g}]; were the images divided by 255?")
    return -_sum_features(ops.bce_with_logits(logits, x))


def gaussian_log_likelihood(x, mean, logvar):
    """log N(x; mean, diag e^logvar), summed per example.

    x, mean: (N, ...); logvar: broadcastable to x — the same shape, per feature
    (e.g. (D,) for x of (N, D)), or a scalar (a fixed decoder variance) -> (N,):
        Σ -½ [(x - mean)² / σ² + log σ² + log 2π].
    """
    _check_same_shape("gaussian_log_likelihood", x=x, mean=mean)
    if not _broadcasts_to(onp.shape(logvar), onp.shape(x)):
        raise ValueError(f"gaussian_log_likelihood: logvar of shape {tuple(onp.shape(logvar))} does not "
                         f"broadcast to the shape of x {tuple(onp.shape(x))}")
    if isinstance(logvar, (int, float)):  # a Python number: give it x's dtype (np.exp(0.5) is float64)
        logvar = onp.asarray(logvar, dtype=onp.result_type(getval(x), getval(mean)))
    return _sum_features(_log_normal(x, mean, logvar))


def standard_normal_log_density(z):
    """log p(z) for the prior p = N(0, I). z: (N, D) -> (N,):  -½ Σ_d (z² + log 2π)."""
    return -0.5 * np.sum(z * z + LOG_2PI, axis=-1)


def diag_gaussian_log_density(z, mu, logvar):
    """log q(z | x) for q = N(mu, diag e^logvar). z: (..., N, D); mu, logvar: (N, D) or
    shapes that broadcast to z's, e.g. (1, N, D) against K samples (K, N, D) -> (..., N).

    With standard_normal_log_density it gives the importance weights
    log p(x, z) - log q(z | x) of the IWAE bound.
    """
    shapes = {name: tuple(onp.shape(a)) for name, a in (("z", z), ("mu", mu), ("logvar", logvar))}
    if shapes["mu"] != shapes["logvar"] or not _broadcasts_to(shapes["mu"], shapes["z"]):
        raise ValueError("diag_gaussian_log_density: expected mu and logvar of one shape that broadcasts to z's, "
                         "got " + ", ".join(f"{name} {shape}" for name, shape in shapes.items()))
    return np.sum(_log_normal(z, mu, logvar), axis=-1)


# --- Sampling ----------------------------------------------------------------------

def sample_eps(rng, shape):
    """Standard normal noise, float32, from an explicit numpy.random.Generator."""
    if not isinstance(rng, onp.random.Generator):
        raise TypeError(f"sample_eps: expected a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng.standard_normal(shape, dtype=onp.float32)  # float32 directly: no float64 eps to leak


@primitive
def reparameterize(mu, logvar, eps):
    """z = mu + σ·eps with σ = e^(½ logvar): a sample of N(mu, diag σ²) (Kingma & Welling 2014).

    The randomness is all in eps (from sample_eps), so z is a differentiable function
    of mu and logvar and the gradient of E_q[f(z)] is the mean of gradients of f(z).
    mu, logvar: (N, D) or (1, N, D); eps: their shape or a stack of them, e.g. (K, N, D)
    for K samples per example -> the shape of eps. Pass float32 eps to keep float32.
    One autograd primitive: its gradient is written by hand, in reparameterize_backward.
    """
    _check_same_shape("reparameterize", mu=mu, logvar=logvar)
    if not _broadcasts_to(onp.shape(mu), onp.shape(eps)):
        raise ValueError(f"reparameterize: mu of shape {tuple(onp.shape(mu))} does not broadcast to "
                         f"eps of shape {tuple(onp.shape(eps))}")
    # BEGIN SOLUTION
    return mu + np.exp(0.5 * logvar) * eps
    # END SOLUTION


def reparameterize_backward(G, logvar, eps):
    """The reparameterization gradient: the VJP of z = mu + e^(½ logvar)·eps.

    G = dL/dz and eps: the shape of z, e.g. (K, N, D); logvar: (N, D), broadcastable
    to it. Returns (dmu, dlogvar, deps), each shaped like z: the gradient reaches mu
    and logvar through the sample, which is the point of the trick. (The caller sums
    dmu and dlogvar over the sample axes that mu and logvar were broadcast along.)
    Written with autograd.numpy, so that autograd can differentiate it again.
    """
    # BEGIN SOLUTION
    sigma_g = np.exp(0.5 * logvar) * G  # dz/deps = σ
    return G, 0.5 * sigma_g * eps, sigma_g  # dz/dmu = 1, dz/dlogvar = ½ σ eps
    # END SOLUTION


def _reparameterize_vjp(argnums, z, args, kwargs):
    def vjp(G):
        grads = reparameterize_backward(G, args[1], args[2])  # each shaped like z
        # Summed over the axes each argument was broadcast along (the K samples of mu and logvar).
        return tuple(unbroadcast(grads[i], np.metadata(args[i])) for i in argnums)
    return vjp


defvjp_argnums(reparameterize, _reparameterize_vjp)


# --- Objectives ----------------------------------------------------------------------

def elbo(log_likelihood, kl):
    """Evidence lower bound per example, (N,), (N,) -> (N,):

        ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x),

    with log_likelihood a one-sample (or averaged) estimate of the first term.
    """
    # Equal shapes, not broadcasting: (N,) - (N, 1) would silently make an (N, N) matrix.
    _check_same_shape("elbo", log_likelihood=log_likelihood, kl=kl)
    # BEGIN SOLUTION
    return log_likelihood - kl
    # END SOLUTION


def beta_vae_loss(log_likelihood, kl, beta=1.0):
    """The β-VAE objective (Higgins et al. 2017), a scalar to minimise:

        mean over the batch of  -log p(x|z) + β KL(q(z|x) || p(z)).

    beta = 1 is the negative ELBO; beta > 1 trades reconstruction for a more
    factorised latent code. log_likelihood, kl: (N,) each.
    """
    _check_same_shape("beta_vae_loss", log_likelihood=log_likelihood, kl=kl)
    # BEGIN SOLUTION
    # float(beta): a numpy float64 beta (from a config or a schedule) would promote float32.
    return np.mean(float(beta) * kl - log_likelihood)
    # END SOLUTION


def log_mean_exp(a, axis=0):
    """log (1/K Σ_k e^(a_k)) along `axis` (K entries), without overflow or underflow.

    Shifted by the max m:  m + log Σ_k e^(a_k - m) - log K. The shift cancels exactly,
    so it is taken outside the autograd trace (getval) and carries no gradient.
    """
    shift = onp.max(getval(a), axis=axis, keepdims=True)
    # All -inf (every weight zero): shift by 0 instead, so the answer is -inf, not nan.
    shift = onp.where(onp.isfinite(shift), shift, 0).astype(shift.dtype)
    count = onp.size(getval(a)) // onp.size(shift)
    return np.log(np.sum(np.exp(a - shift), axis=axis)) + onp.squeeze(shift, axis=axis) - math.log(count)


def iwae_bound(log_weights):
    """Importance-weighted bound (Burda et al. 2016), per example.

    log_weights: (K, N), log w_k = log p(x, z_k) - log q(z_k | x) with z_k ~ q(z | x)
    -> (N,):  log (1/K Σ_k w_k)  <=  log p(x).
    K = 1 is the ELBO; the bound rises with K and reaches log p(x) as K -> ∞.
    """
    if onp.ndim(log_weights) < 1:
        raise ValueError(f"iwae_bound: expected log_weights of shape (K, N), got {onp.shape(log_weights)}")
    if onp.shape(log_weights)[0] == 0:
        raise ValueError(f"iwae_bound: K = 0 importance samples (log_weights of shape {onp.shape(log_weights)}); "
                         f"the bound needs K >= 1")
    return log_mean_exp(log_weights, axis=0)


# =====================================================================================
# GAN half: adversarial losses (Goodfellow et al. 2014; Arjovsky et al. 2017;
# Gulrajani et al. 2017; Lim & Ye 2017). D's outputs are *logits* l, D(x) = σ(l), so
# every log D is written with softplus: -log σ(l) = softplus(-l), -log(1 - σ(l)) =
# softplus(l). Finite for |l| up to 1e4 and beyond; σ(l) itself is never formed.
# Scores are one number per example: shape (N,) or (N, 1). Each loss is a float32 scalar.
# =====================================================================================

def _check_scores(fn, **scores):
    """Raise a ValueError unless every array is a non-empty (N,) or (N, 1) batch of scores."""
    for name, s in scores.items():
        shape = tuple(onp.shape(s))
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] == 0:
            raise ValueError(f"{fn}: expected {name} of shape (N,) or (N, 1), one score per example, got {shape}")


def discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss, binary cross-entropy with real = 1 and fake = 0:

        L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]
            =  E[softplus(-real_logits)] + E[softplus(fake_logits)].

    real_logits: (N,) or (N, 1) on data; fake_logits: (M,) or (M, 1) on G(z).
    """
    _check_scores("discriminator_loss", real_logits=real_logits, fake_logits=fake_logits)
    # BEGIN SOLUTION
    return np.mean(ops.softplus(-real_logits)) + np.mean(ops.softplus(fake_logits))
    # END SOLUTION


def discriminator_loss_smoothed(real_logits, fake_logits, real_label=0.9):
    """discriminator_loss with one-sided label smoothing (Salimans et al. 2016, §3.4): real
    examples get the target real_label < 1, fakes keep 0,

        L_D = E[real_label · softplus(-real_logits) + (1 - real_label) · softplus(real_logits)]
            + E[softplus(fake_logits)].

    The best D becomes real_label · p/(p + q), never certain of a real digit, so its logits
    stay finite and G's gradient does not vanish when D wins. Only the reals are smoothed: a
    positive target for fakes would reward G for samples where the data has none (their §3.4).
    """
    _check_scores("discriminator_loss_smoothed", real_logits=real_logits, fake_logits=fake_logits)
    if not 0 < real_label <= 1:
        raise ValueError(f"discriminator_loss_smoothed: real_label must be in (0, 1], got {real_label}")
    real = real_label * ops.softplus(-real_logits) + (1 - real_label) * ops.softplus(real_logits)
    return np.mean(real) + np.mean(ops.softplus(fake_logits))


def generator_loss_minimax(fake_logits):
    """The generator's side of the minimax game, E_z[log(1 - D(G(z)))] = -E[softplus(l)].

    It *saturates*: its derivative in each logit is -σ(l)/M, which vanishes when D
    confidently rejects the fakes (l -> -inf), i.e. early in training. fake_logits: (M,) or (M, 1).
    """
    _check_scores("generator_loss_minimax", fake_logits=fake_logits)
    # BEGIN SOLUTION
    return -np.mean(ops.softplus(fake_logits))
    # END SOLUTION


def generator_loss_nonsaturating(fake_logits):
    """The generator loss used in practice (Goodfellow et al. 2014, §3):

        L_G = -E_z[log D(G(z))] = E[softplus(-l)].

    Same fixed point as the minimax loss, but its derivative -(1 - σ(l))/M tends to
    -1/M, not 0, as D(G(z)) -> 0, so a losing generator still learns. fake_logits: (M,) or (M, 1).
    """
    _check_scores("generator_loss_nonsaturating", fake_logits=fake_logits)
    # BEGIN SOLUTION
    return np.mean(ops.softplus(-fake_logits))
    # END SOLUTION


def wgan_critic_loss(real_scores, fake_scores):
    """The WGAN critic's loss (Arjovsky et al. 2017), minus its estimate of the
    earth mover's distance:  E_z[D(G(z))] - E_x[D(x)].

    Scores are unbounded critic values, not logits. real: (N,) or (N, 1); fake: (M,) or (M, 1).
    The critic must be kept (roughly) 1-Lipschitz: weight clipping or gradient_penalty.
    """
    _check_scores("wgan_critic_loss", real_scores=real_scores, fake_scores=fake_scores)
    return np.mean(fake_scores) - np.mean(real_scores)


def wgan_generator_loss(fake_scores):
    """The WGAN generator's loss, -E_z[D(G(z))]. fake_scores: (M,) or (M, 1)."""
    _check_scores("wgan_generator_loss", fake_scores=fake_scores)
    return -np.mean(fake_scores)


def gradient_penalty(critic, params, real, fake, eps, weight=10.0):
    """WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3):

        λ E[(‖∇_x̂ D(x̂)‖₂ - 1)²],   x̂ = ε·real + (1 - ε)·fake,  ε ~ U[0, 1] per example.

    critic(params, x) -> (N,) or (N, 1) scores; real, fake: (N, ...) float32;
    eps: one ε per example, shape (N,) or (N, 1, ..., 1) with as many axes as real (e.g.
    (N, 1, 1, 1) for images); weight: λ (10 in the paper). Other shapes are refused: an
    (N, 1) against images (N, 1, 28, 28) would broadcast over the rows of each image when
    N = 28, giving each row its own ε.
    The inner gradient is taken with autograd.grad *inside* the loss, so the critic's
    gradient of this penalty is a gradient of a gradient (double backprop). Each score
    depends only on its own example (no batch norm in the critic, as the paper says),
    so the gradient of the summed scores gives every example's ∇_x̂ D(x̂) at once.
    """
    _check_same_shape("gradient_penalty", real=real, fake=fake)
    n, per_example = onp.shape(real)[0], (onp.shape(real)[0],) + (1,) * (onp.ndim(real) - 1)
    if tuple(onp.shape(eps)) not in ((n,), per_example):
        raise ValueError(f"gradient_penalty: expected eps of shape ({n},) or {per_example}, one ε per "
                         f"example of the batch {tuple(onp.shape(real))}, got {tuple(onp.shape(eps))}")
    eps = np.reshape(eps, per_example)  # (N, 1, ..., 1): broadcasts over each example's features only
    # BEGIN SOLUTION
    x_hat = eps * real + (1 - eps) * fake
    slopes = grad(lambda x: np.sum(critic(params, x)))(x_hat)
    # The tiny constant keeps the square root differentiable where a gradient is exactly 0.
    norms = np.sqrt(np.sum(np.reshape(slopes * slopes, (onp.shape(real)[0], -1)), axis=1) + 1e-12)
    gap = norms - 1  # gap * gap, not ** 2: the VJP of ** carries a float64 exponent
    return float(weight) * np.mean(gap * gap)
    # END SOLUTION


def hinge_discriminator_loss(real_scores, fake_scores):
    """The hinge loss of geometric GAN / SN-GAN (Lim & Ye 2017; Miyato et al. 2018):

        L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))].

    Only examples on the wrong side of the margin push D. real: (N,) or (N, 1); fake: (M,) or (M, 1).
    """
    _check_scores("hinge_discriminator_loss", real_scores=real_scores, fake_scores=fake_scores)
    return np.mean(ops.relu(1 - real_scores)) + np.mean(ops.relu(1 + fake_scores))


def hinge_generator_loss(fake_scores):
    """The hinge GAN's generator loss, -E_z[D(G(z))] (the same as WGAN's). fake_scores: (M,) or (M, 1)."""
    _check_scores("hinge_generator_loss", fake_scores=fake_scores)
    return wgan_generator_loss(fake_scores)
