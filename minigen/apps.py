"""What the lecture does with a trained generative model: interpolate, score, fill in.

Every function takes the model object and its params, so it serves each model
family that has encode/decode.
"""
import numpy as np


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
