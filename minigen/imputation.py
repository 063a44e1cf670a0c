"""Missing pixels, done by the book: Metropolis-within-Gibbs on a VAE, and the nearest-neighbour baseline.

apps.imputation_chain's stochastic chain (Rezende et al. 2014) alternates
z ~ q(z | x̂) and x_mis ~ p(x_mis | z). It would sample the model's p(x_mis | x_obs)
only if the encoder were the exact posterior; it is not, least of all on the
half-invented images the chain feeds it, so that chain (a "pseudo-Gibbs" sampler)
converges to something else, or drifts. Mattei & Frellsen (2018, "Leveraging the
exact likelihood of deep latent variable models", NeurIPS, Algorithm 1) keep the
encoder, but only as the *proposal* of a Metropolis-Hastings step, which makes the
chain's stationary distribution exactly the model's p(z, x_mis | x_obs):

    x̂ = (x_obs, x_mis) the current completion, z the current code;
    propose z̃ ~ q(z | x̂), accept it with probability min(1, ρ),

        ρ = p(x̂ | z̃) p(z̃) q(z | x̂)  /  ( p(x̂ | z) p(z) q(z̃ | x̂) ),

    then draw x_mis ~ p(x_mis | z) and repeat.

ρ is a ratio of two importance weights p(x̂, z) / q(z | x̂), the quantity of the IWAE.
With a factorised decoder, E[x_mis | x_obs] is estimated by averaging E[x_mis | z_t]
(the decoder's mean) over the chain — a Rao-Blackwellised mean, less noisy than
averaging the binary draws.

Any q that covers the posterior makes the chain exact; how fast it mixes depends on q.
The VAE's encoder, trained on complete images, is a poor guess on a half-invented x̂.
`proposal` swaps it for the partial encoder q(z | x_obs) (models.partial_vae), which reads
the observed pixels only: z̃ then no longer depends on the current state (an independence
sampler, Tierney 1994), and ρ is the formula above with q(· | x_obs) in place of q(· | x̂).
That step still targets p(z | x_obs, x_mis), which a full binary x_mis pins down tightly;
collapsed=True targets p(z | x_obs) instead, x_mis integrated out: ρ with p(x_obs | ·) in place
of p(x̂ | ·), then x_mis ~ p(x_mis | z) as before — exact too (a collapsed sampler, Liu 1994),
and valid only for a proposal blind to x_mis.
"""
from typing import NamedTuple

import numpy as np

from minigen import losses, ops
from minigen.models.partial_vae import observed_log_likelihood


def _check(fn, model, x, mask):
    """x as (N, *image_shape) float32 and mask as a bool array of its shape, or a ValueError."""
    expected = tuple(model.cfg.image_shape)
    if np.ndim(x) != 1 + len(expected) or tuple(np.shape(x)[1:]) != expected:
        raise ValueError(f"{fn}: expected images of shape (N, {', '.join(map(str, expected))}), got {np.shape(x)}")
    mask = np.asarray(mask)
    if mask.shape != np.shape(x) or mask.dtype != bool:
        raise ValueError(f"{fn}: expected a bool mask (True = observed) of x's shape {np.shape(x)}, "
                         f"got {mask.dtype} of shape {mask.shape}")
    return np.asarray(x, np.float32), mask


def log_weight(x_hat, z, logits, mu, logvar, counted):
    """log p(x̂_counted | z) + log p(z) - log q(z), per image (N,): p(x̂|z) Bernoulli with `logits`
    (N, *image) over the pixels where `counted` (bool, x̂'s shape) is True — all of them in the
    Gibbs step, the observed ones when collapsed — p(z) = N(0, I), q = N(mu, diag e^logvar).
    Grey-level x̂ gives the expected log-likelihood over binarizations, E_b log p(b | z)."""
    return (observed_log_likelihood(x_hat, logits, counted) + losses.standard_normal_log_density(z)
            - losses.diag_gaussian_log_density(z, mu, logvar))


def encoder_proposal(model, params):
    """Mattei & Frellsen (2018)'s proposal: the VAE's encoder on the current completion, q(z | x̂).
    A proposal maps (x̂ (N, *image), mask) to the (mu, logvar) of a Gaussian over z, (N, latent) each."""
    return lambda x_hat, mask: model.encode(params, x_hat)


def observed_proposal(encoder, encoder_params):
    """The partial encoder's q(z | x_obs) (models.partial_vae.PartialEncoder): blind to the missing pixels."""
    return lambda x_hat, mask: encoder.encode(encoder_params, x_hat, mask)


def _counted(mask, proposal, collapsed):
    """The pixels whose likelihood enters ρ: all, or with collapsed=True the observed ones."""
    if collapsed and proposal is None:
        raise ValueError("collapsed=True needs a proposal blind to the missing pixels (observed_proposal); "
                         "the VAE's encoder reads them")
    return mask if collapsed else np.ones_like(mask)


def log_acceptance(model, params, x_hat, mask, z_old, z_new, proposal=None, collapsed=False):
    """log ρ of the Metropolis-within-Gibbs step (module docstring) for moving from z_old to z_new: (N,).
    proposal: see encoder_proposal (the default) and observed_proposal; collapsed: see the module docstring."""
    counted = _counted(mask, proposal, collapsed)
    mu, logvar = (proposal or encoder_proposal(model, params))(x_hat, mask)
    return (log_weight(x_hat, z_new, model.decode(params, z_new), mu, logvar, counted)
            - log_weight(x_hat, z_old, model.decode(params, z_old), mu, logvar, counted))


class ChainState(NamedTuple):
    x_hat: np.ndarray  # (N, *image) the completion: x where observed, a binary draw of p(x|z) elsewhere
    z: np.ndarray  # (N, latent) the current code
    mean: np.ndarray  # (N, *image) E[x | z] = sigmoid(logits of z), the decoder's mean at z
    accepted: np.ndarray  # (N,) bool, whether this step's proposal was accepted (all True at t = 0)


def metropolis_within_gibbs(model, params, x, mask, rng, fill=0.5, proposal=None, collapsed=False):
    """The states t = 0, 1, 2, ... of Mattei & Frellsen's sampler (module docstring), as a generator.

    t = 0: x̂ holds `fill` on the missing pixels, z ~ q(z | x̂) is taken as it is, x_mis ~ p(x|z).
    x: (N, *image) in [0, 1]; mask: bool of x's shape, True on observed pixels; rng: a numpy
    Generator; proposal: encoder_proposal(model, params) (the default) or observed_proposal;
    collapsed: see the module docstring. Observed pixels are never changed. Yields ChainState.
    """
    x, mask = _check("metropolis_within_gibbs", model, x, mask)
    counted = _counted(mask, proposal, collapsed)
    propose = proposal or encoder_proposal(model, params)
    x_hat = np.where(mask, x, np.float32(fill))
    n, per_image = len(x), (-1,) + (1,) * (x.ndim - 1)

    def draw(logits):  # x_mis ~ p(x | z), observed pixels copied
        mean = ops.sigmoid(logits)
        return np.where(mask, x, (rng.random(x.shape, dtype=np.float32) < mean).astype(np.float32)), mean

    def chain(x_hat):
        mu, logvar = propose(x_hat, mask)
        z = losses.reparameterize(mu, logvar, losses.sample_eps(rng, mu.shape))
        logits = model.decode(params, z)
        x_hat, mean = draw(logits)
        yield ChainState(x_hat, z, mean, np.ones(n, bool))
        while True:
            mu, logvar = propose(x_hat, mask)
            z_new = losses.reparameterize(mu, logvar, losses.sample_eps(rng, mu.shape))
            logits_new = model.decode(params, z_new)
            log_rho = (log_weight(x_hat, z_new, logits_new, mu, logvar, counted)
                       - log_weight(x_hat, z, logits, mu, logvar, counted))
            accept = np.log(rng.random(n)) < log_rho  # u < min(1, ρ)
            z = np.where(accept[:, None], z_new, z)
            logits = np.where(accept.reshape(per_image), logits_new, logits)
            x_hat, mean = draw(logits)
            yield ChainState(x_hat, z, mean, accept)

    return chain(x_hat)  # a generator inside, so the checks above run now


class Imputation(NamedTuple):
    mean: np.ndarray  # (N, *image) x on observed pixels, the chain's average of E[x_mis | z_t] elsewhere
    draws: np.ndarray  # (keep, N, *image) single completions E[x | z_t] at `keep` evenly spaced steps
    acceptance: float  # the share of accepted proposals after burn-in


def mwg_impute(model, params, x, mask, rng, n_iter=200, burn_in=50, keep=4, fill=0.5, proposal=None,
               collapsed=False):
    """Estimate E[x_mis | x_obs] by n_iter Metropolis-within-Gibbs steps, averaging after burn_in.

    Returns Imputation(mean, draws, acceptance); see metropolis_within_gibbs for the arguments.
    """
    if not 0 <= burn_in < n_iter:
        raise ValueError(f"mwg_impute: expected 0 <= burn_in < n_iter, got burn_in {burn_in}, n_iter {n_iter}")
    chain = metropolis_within_gibbs(model, params, x, mask, rng, fill=fill, proposal=proposal, collapsed=collapsed)
    keep_at = set(np.linspace(burn_in, n_iter, keep, dtype=int).tolist()) if keep else set()
    total, accepted, draws = 0.0, 0.0, []
    for t in range(n_iter + 1):
        state = next(chain)
        if t > burn_in or t == n_iter == burn_in:
            total, accepted = total + state.mean, accepted + state.accepted.mean()
        if t in keep_at:
            draws.append(np.where(mask, x, state.mean))
    mean = np.where(mask, x, total / (n_iter - burn_in)).astype(np.float32)
    return Imputation(mean, np.asarray(draws, np.float32), float(accepted / (n_iter - burn_in)))


def knn_impute(x_train, x, mask, k=10, batch_size=250):
    """The baseline without a model: each missing pixel is the average of that pixel over the k
    training images closest to x in squared distance on x's observed pixels only.

    x_train: (M, ...) complete images; x: (N, ...) of the same image shape; mask: bool of x's
    shape, True = observed (may differ per image). Returns (N, ...) float32, x where observed.
    """
    x, mask = np.asarray(x, np.float32), np.asarray(mask)
    if mask.shape != x.shape or mask.dtype != bool or x.shape[1:] != np.shape(x_train)[1:]:
        raise ValueError(f"knn_impute: expected x_train (M, *s), x (N, *s) and a bool mask of x's shape, got "
                         f"{np.shape(x_train)}, {x.shape} and {mask.dtype} {mask.shape}")
    if not 0 < k <= len(x_train):
        raise ValueError(f"knn_impute: k must be in 1..{len(x_train)}, got {k}")
    train = np.asarray(x_train, np.float32).reshape(len(x_train), -1)  # (M, D)
    out = np.empty_like(x)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].reshape(-1, train.shape[1])  # (n, D)
        m = mask[start:start + batch_size].reshape(xb.shape).astype(np.float32)
        # Σ_obs (x - t)² = Σ m x² - 2 (m x)·t + m·t², each a matrix product over all training images
        dist = (m * xb * xb).sum(1, keepdims=True) - 2 * (m * xb) @ train.T + m @ (train * train).T  # (n, M)
        nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]  # (n, k)
        guess = train[nearest].mean(axis=1)  # (n, D)
        out[start:start + len(xb)] = np.where(m > 0, xb, guess).reshape(xb.shape[:1] + x.shape[1:])
    return out


class ImportanceImputation(NamedTuple):
    mean: np.ndarray  # (N, *image) x on observed pixels, Σ_k w_k E[x_mis | z_k] elsewhere
    draws: np.ndarray  # (keep, N, *image) completions E[x | z_k], z_k resampled by weight (SIR)
    ess: np.ndarray  # (N,) effective sample size 1 / Σ_k w_k² of each image's normalised weights, in 1..K


def importance_impute(model, params, x, mask, rng, k=100, fill=0.5, batch_size=None, proposal=None, keep=0):
    """E[x_mis | x_obs] by self-normalised importance sampling, the single imputation of
    Mattei & Frellsen (2019, "MIWAE", ICML, section 3):

        z_1..z_K ~ q(z | x̂_0),  w_k ∝ p(x_obs | z_k) p(z_k) / q(z_k | x̂_0),
        E[x_mis | x_obs] ≈ Σ_k w_k E[x_mis | z_k],

    x̂_0 = x with `fill` on the missing pixels; only the observed pixels enter p(x_obs | z),
    so the weights target the model's own posterior p(z | x_obs). No chain, no burn-in: an
    independent check of what Metropolis-within-Gibbs estimates. Its precision is the ESS
    (Kong 1992): K weights worth about 1 / Σ w_k² independent draws of the posterior.
    proposal: q's (mu, logvar) from (x̂_0, mask), see encoder_proposal (default) and
    observed_proposal. keep: completions to resample per image, for pictures. batch_size: images
    per batch, by default as many as make 20,000 decodes (K · n), about 60 MB of logits.
    Shapes as in metropolis_within_gibbs; returns ImportanceImputation.
    """
    x, mask = _check("importance_impute", model, x, mask)
    propose = proposal or encoder_proposal(model, params)
    batch_size = batch_size or max(1, 20000 // k)
    mean, draws, ess = np.empty_like(x), np.empty((keep, *x.shape), np.float32), np.empty(len(x))
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        xb, mb = x[part], mask[part]
        mu, logvar = propose(np.where(mb, xb, np.float32(fill)), mb)
        z = losses.reparameterize(mu[None], logvar[None], losses.sample_eps(rng, (k, *mu.shape)))  # (K, n, latent)
        logits = model.decode(params, z.reshape(k * len(xb), -1)).reshape(k, *xb.shape)  # (K, n, *image)
        log_w = (observed_log_likelihood(xb, logits, mb) + losses.standard_normal_log_density(z)
                 - losses.diag_gaussian_log_density(z, mu[None], logvar[None]))  # (K, n)
        w = np.exp(log_w - log_w.max(axis=0))
        w = w / w.sum(axis=0)  # (K, n), self-normalised
        ess[part] = 1 / np.sum(w * w, axis=0)
        images = ops.sigmoid(logits)  # (K, n, *image): E[x | z_k]
        mean[part] = np.where(mb, xb, np.sum(w.reshape(*w.shape, *(1,) * (x.ndim - 1)) * images, axis=0))
        # resampling: index k with probability w_k, by inverting each image's cumulative weights
        picks = (w.cumsum(axis=0)[None] < rng.random((keep, 1, len(xb)))).sum(axis=1).clip(max=k - 1)  # (keep, n)
        draws[:, part] = np.where(mb, xb, images[picks, np.arange(len(xb))])
    return ImportanceImputation(mean, draws, ess)
