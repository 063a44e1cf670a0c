"""What the lecture does with a trained generative model: interpolate, score, fill in.

Every function takes the model object and its params, so it serves each model
family that has encode/decode.
"""
import numpy as np

from minigen import losses
from minigen.data import batches, binarize
from minigen.metrics import iwae_nll


def lerp(z0, z1, steps):
    """Straight line from z0 to z1: (steps, latent)."""
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0, z1, steps):
    """Spherical interpolation (Shoemake 1985), as White (2016) suggests for Gaussian
    latents: a straight line between two typical points of N(0, I) passes through
    the low-norm middle that the prior rarely produces; the great circle does not."""
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # nearly parallel: the arc is a line
        return lerp(z0, z1, steps)
    t = np.linspace(0, 1, steps)[:, None]
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


def interpolate(model, params, x0, x1, steps=10, spherical=False):
    """Images along the path between the encodings (means) of two images x0, x1 (1, 28, 28)."""
    mu, _ = model.encode(params, np.stack([x0, x1]))
    path = (slerp if spherical else lerp)(mu[0], mu[1], steps)
    return model.decode_mean(params, path)


def latent_manifold(model, params, n=15):
    """For a 2-d latent: decode an n x n grid of z, spaced evenly in probability
    (the N(0, 1) quantiles of 1/(n+1) ... n/(n+1)) so each cell holds equal prior mass.
    Returns (n*n, 1, 28, 28), row-major with z2 decreasing down the rows."""
    from statistics import NormalDist
    if model.cfg.latent != 2:
        raise ValueError(f"latent_manifold needs a 2-d latent space, the model has {model.cfg.latent}")
    q = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0, 1, n + 2)[1:-1]], np.float32)
    z = np.stack(np.meshgrid(q, q[::-1]), axis=-1).reshape(-1, 2)
    return model.decode_mean(params, z)


# --- Anomaly detection -------------------------------------------------------------

def _check_images(fn, model, x):
    """Raise a ValueError unless x is a batch (N, *image_shape) of the model's images."""
    expected = tuple(model.cfg.image_shape)
    if np.ndim(x) != 1 + len(expected) or tuple(np.shape(x)[1:]) != expected:
        raise ValueError(f"{fn}: expected images of shape (N, {', '.join(map(str, expected))}), "
                         f"got {tuple(np.shape(x))}")


def anomaly_scores(model, params, x, rng, k=1, batch_size=500):
    """How surprising each image is to the model: an estimate of -log p(x), higher = more anomalous.

    k = 1:  -ELBO with one z ~ q(z|x) per image and the KL in closed form (VAE.elbo);
    k > 1:  -IWAE bound with k samples (Burda et al. 2016, metrics.iwae_nll), tighter,
            so closer to the likelihood the model really assigns (a worse encoder fit on
            unfamiliar images inflates -ELBO, which k > 1 partly removes).
    x: (N, 1, 28, 28), prepared as the model was trained (binarized for the Bernoulli VAE).
    Returns (N,) float32 scores in nats. Note that low density is not the same as novel:
    likelihood models can score simple out-of-class images as *more* typical
    (Nalisnick et al. 2019, "Do deep generative models know what they don't know?").
    """
    _check_images("anomaly_scores", model, x)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"anomaly_scores: k must be a positive integer (importance samples), got {k!r}")
    if k > 1:  # the bound is formed in float64 there; the scores need not be
        return iwae_nll(model, params, x, int(k), rng, batch_size=min(batch_size, 100)).astype(np.float32)
    eps = losses.sample_eps(rng, (len(x), model.cfg.latent))
    parts = [-model.elbo(params, xb, eb) for xb, eb in batches(None, x, eps, batch_size=batch_size, shuffle=False)]
    return np.concatenate(parts).astype(np.float32)


def reconstruction_scores(model, params, x, batch_size=500):
    """The reconstruction term alone, -log p(x | z = E_q[z|x]), at the encoder's mean: (N,) float32 nats.

    -ELBO without the KL and without sampling z: what an autoencoder's reconstruction
    error is to a VAE. It asks "can the decoder redraw this image?" and ignores how
    unusual the image's code is under the prior. x as in anomaly_scores.
    """
    _check_images("reconstruction_scores", model, x)
    parts = [-losses.bernoulli_log_likelihood(xb, model.decode(params, model.encode(params, xb)[0]))
             for (xb,) in batches(None, x, batch_size=batch_size, shuffle=False)]
    return np.concatenate(parts).astype(np.float32)


def mutate(rng, x, rate):
    """Ren et al. (2019)'s perturbation for the background model: each pixel, with probability
    `rate`, replaced by a uniform random intensity in [0, 1] (theirs: a uniform value in 0..255).

    A model trained on such images learns the population-level statistics (how much ink,
    how smooth) but not the semantics of the digits. x: (N, ...) in [0, 1] -> the same shape.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"mutate: rate must be in [0, 1], got {rate}")
    x = np.asarray(x, np.float32)
    return np.where(rng.random(x.shape) < rate, rng.random(x.shape, dtype=np.float32), x)


def likelihood_ratio_scores(model, params, background, background_params, x, rng, k=1):
    """Ren et al. (2019)'s likelihood ratio, as an anomaly score: -(log p_model(x) - log p_background(x)).

    The background model is the same kind of VAE trained on mutate()d images. Both models
    find simple images (little ink) likely, so the ratio cancels that shared term and keeps
    what the model knows about the digits it saw. Each log p is estimated as in
    anomaly_scores (the ELBO for k = 1, the IWAE bound for k > 1). Returns (N,) nats.
    """
    return (anomaly_scores(model, params, x, rng, k=k)
            - anomaly_scores(background, background_params, x, rng, k=k))


def typicality_scores(scores, reference_scores):
    """Nalisnick et al. (2019)'s typicality test with one image at a time: |s(x) - mean s(x_train)|.

    An image is anomalous when its -log p is far from the training images' average in
    either direction: too unlikely, but also too likely (a held-out 1, all background,
    lies below the typical set). scores: (N,) -log p estimates; reference_scores: (M,) of
    training images (ideally held out from training). Returns (N,) float32.
    """
    scores, reference = np.asarray(scores, np.float64), np.asarray(reference_scores, np.float64)
    if reference.ndim != 1 or len(reference) == 0:
        raise ValueError(f"typicality_scores: expected reference scores of shape (M,), M > 0, got {reference.shape}")
    return np.abs(scores - reference.mean()).astype(np.float32)


# --- Imputation of missing pixels ------------------------------------------------------

def bottom_half_mask(shape):
    """The top half observed, the bottom half missing: bool (N, C, H, W), True on rows < H // 2."""
    if len(shape) != 4:
        raise ValueError(f"bottom_half_mask: expected a shape (N, C, H, W), got {tuple(shape)}")
    mask = np.zeros(shape, bool)
    mask[:, :, :shape[2] // 2] = True
    return mask


def centre_square_mask(shape, size=14):
    """A size x size square in the image's centre missing, the rest observed: bool (N, C, H, W), True = observed."""
    if len(shape) != 4 or not 0 < size <= min(shape[2:]):
        raise ValueError(f"centre_square_mask: expected a shape (N, C, H, W) and 0 < size <= min(H, W), "
                         f"got {tuple(shape)} and size {size}")
    mask = np.ones(shape, bool)
    top, left = (shape[2] - size) // 2, (shape[3] - size) // 2
    mask[:, :, top:top + size, left:left + size] = False
    return mask


def random_pixel_mask(rng, shape, p_missing):
    """Each pixel missing independently with probability p_missing: bool `shape`, True = observed."""
    if not 0 <= p_missing <= 1:
        raise ValueError(f"random_pixel_mask: p_missing must be in [0, 1], got {p_missing}")
    return rng.random(shape) >= p_missing


def imputation_chain(model, params, x, mask, rng=None, sample=False, fill=0.5):
    """The iterates x_0, x_1, x_2, ... of filling in the pixels where mask is False, as a generator.

    x_0 holds `fill` (0.5, or e.g. the training mean image) on the missing pixels, then

        x_{t+1} = x on observed pixels,  a guess from the model at x_t on the missing ones.

    sample=False: the guess is decode_mean(encoder mean) — a deterministic fixed-point
    iteration, in the spirit of iterated conditional modes: each step moves the missing
    pixels to the model's best reconstruction given everything currently in the image.
    sample=True: z ~ q(z|x_t), then x_missing ~ p(x|z) (binary pixels; needs rng) — the
    Markov chain of Rezende, Mohamed & Wierstra (2014, missing-data imputation), whose
    stationary distribution approximates p(x_missing | x_observed) when q(z|x) is close
    to the true posterior. Observed pixels are copied from x at every step, never changed.
    x: (N, 1, 28, 28) in [0, 1]; mask: bool, x's shape, True on observed pixels.
    """
    _check_images("impute", model, x)
    mask = np.asarray(mask)
    if mask.shape != np.shape(x) or mask.dtype != bool:
        raise ValueError(f"impute: expected a bool mask (True = observed) of x's shape {tuple(np.shape(x))}, "
                         f"got {mask.dtype} of shape {mask.shape}")
    if sample and not isinstance(rng, np.random.Generator):
        raise ValueError("impute: sample=True draws z and pixels at random and needs rng, a numpy Generator")
    x = np.asarray(x, np.float32)
    try:
        fill = np.broadcast_to(np.asarray(fill, np.float32), x.shape)
    except ValueError:
        raise ValueError(f"impute: fill must be a number or broadcast to x's shape {x.shape} (e.g. a mean image "
                         f"(1, 28, 28)), got shape {np.shape(fill)}") from None

    def chain():
        current = np.where(mask, x, fill)
        while True:
            yield current
            mu, logvar = model.encode(params, current)
            if sample:
                z = losses.reparameterize(mu, logvar, losses.sample_eps(rng, mu.shape))
                guess = binarize(rng, model.decode_mean(params, z))
            else:
                guess = model.decode_mean(params, mu)
            current = np.where(mask, x, guess)

    return chain()  # a generator inside, so the checks above run now rather than at the first next()


def impute(model, params, x, mask, n_iter=10, rng=None, sample=False, fill=0.5):
    """x with its missing pixels (mask False) filled in by n_iter steps of imputation_chain.

    Returns (N, 1, 28, 28) float32 in [0, 1], equal to x wherever mask is True.
    n_iter = 0 returns the initial fill.
    """
    if not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"impute: n_iter must be a non-negative integer, got {n_iter!r}")
    steps = imputation_chain(model, params, x, mask, rng=rng, sample=sample, fill=fill)
    for _ in range(n_iter):
        next(steps)
    return next(steps)


# --- Class-conditional models: Bayes' rule and data augmentation ------------------------

def bayes_classify(model, params, x, log_prior, k, rng, batch_size=500):
    """The generative classifier: predict argmax_y  log p(x|y) + log p(y)  (Bayes' rule).

    p(y|x) = p(x|y) p(y) / p(x), and p(x) is the same for every y, so it drops out.
    The discriminative classifier learns p(y|x) directly; the generative one models
    how each class's images look (Ng & Jordan 2002 compare the two as data grow).
    model: has class_log_likelihoods(params, x, k, rng) -> (N, C), bounds on log p(x|y)
    (the CVAE: the ELBO for k = 1, the IWAE bound with k samples for k > 1).
    x: (N, 1, 28, 28); log_prior: (C,) log p(y), e.g. the log class frequencies of the
    labelled set. Returns the predicted labels (N,) int64.
    """
    log_prior = np.asarray(log_prior, np.float32)
    if log_prior.shape != (model.n_classes,) or np.isnan(log_prior).any():
        raise ValueError(f"bayes_classify: expected log_prior of shape ({model.n_classes},) without NaN, "
                         f"got shape {log_prior.shape}")
    scores = [model.class_log_likelihoods(params, xb, k, rng)
              for (xb,) in batches(None, x, batch_size=batch_size, shuffle=False)]
    return np.argmax(np.concatenate(scores) + log_prior, axis=1)


def conditional_augment(model, params, rng, x, y, factor, batch_size=5000):
    """A labelled set enlarged with class-conditional samples: `factor` new images per real one.

    Each label of y is repeated `factor` times and the model draws one image of that
    class for each (model.sample: z ~ N(0, I), the decoder's mean E[x|z,y]), so the class
    balance of (x, y) is kept. x: (n, 1, 28, 28), y: (n,) int ->
    (x_all (n*(1+factor), 1, 28, 28) float32, y_all (n*(1+factor),)), the real images first.
    """
    if not isinstance(factor, (int, np.integer)) or factor < 0:
        raise ValueError(f"conditional_augment: factor must be a non-negative integer, got {factor!r}")
    if np.shape(y) != (len(x),):
        raise ValueError(f"conditional_augment: expected labels of shape ({len(x)},), got {np.shape(y)}")
    labels = np.repeat(y, factor)
    fakes = [model.sample(params, rng, lb) for (lb,) in batches(None, labels, batch_size=batch_size, shuffle=False)]
    return np.concatenate([x, *fakes]).astype(np.float32), np.concatenate([y, labels])
