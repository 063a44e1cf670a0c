"""An encoder of the observed pixels only, q(z | x_obs, mask): the inference network of a partial VAE.

A VAE's encoder q(z | x) was trained on complete images. Shown an image whose missing
half is invented, it proposes codes that the observed half rejects (the README measures
how few of them Metropolis-within-Gibbs accepts, and the importance samples' ESS).
Because the decoder factorises over pixels, p(x_obs | z) = Π_{j observed} p(x_j | z), and

    log p(x_obs) >= E_q[log p(x_obs | z) + log p(z) - log q(z | x_obs)]

for any q — the bound the partial VAE (Ma et al. 2019, "EDDI", ICML) and MIWAE (Mattei &
Frellsen 2019, ICML; its K-sample importance-weighted form) train on. Here the decoder is a
trained VAE's and stays fixed; only q learns. The bound is then tightest where q equals that
model's own posterior p(z | x_obs), which is what an imputation has to sample.

The network sees the mask (as in VAEAC, Ivanov et al. 2019, ICLR): input = (x · mask, mask)
as two channels, so a missing pixel (0, 0) differs from an observed black one (0, 1).
It is amortised over the masks it was trained on (make_train_step's draw_masks), not all masks.
"""
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp

from minigen import losses, nn, ops
from minigen.autodiff import value_and_grad
from minigen.data import binarize
from minigen.models.trainable import apply_gradients, check_finite
from minigen.models.vae import hidden_layers


@dataclass(frozen=True)
class PartialConfig:
    latent: int = 20  # the VAE's latent size
    hidden: int | tuple = 400
    activation: str = "relu"
    k: int = 1  # importance samples in the bound: 1 is the ELBO, k > 1 MIWAE's bound
    image_shape: tuple = (1, 28, 28)


def observed_log_likelihood(x, logits, mask):
    """log p(x_obs | z) = Σ over observed pixels of x log σ(l) + (1 - x) log(1 - σ(l)).

    x, logits: (..., N, *image); mask: bool (N, *image), True = observed, broadcast over the
    leading axes (K samples of z per image) -> (..., N). Missing pixels contribute nothing,
    whatever x holds there.
    """
    per_pixel = ops.bce_with_logits(logits, onp.broadcast_to(x, onp.shape(logits)))  # x is data: never traced
    axes = tuple(range(-(onp.ndim(mask) - 1), 0))  # the image axes
    return -np.sum(per_pixel * mask, axis=axes)


class PartialEncoder:
    """q(z | x_obs, mask) = N(mu, diag e^logvar) by an MLP on the two channels (x · mask, mask)."""

    def __init__(self, cfg=PartialConfig()):
        if int(cfg.k) != cfg.k or cfg.k < 1:
            raise ValueError(f"PartialConfig.k (importance samples) must be a positive integer, got {cfg.k!r}")
        self.cfg = cfg
        self.net = nn.Sequential(nn.Flatten(), *hidden_layers(cfg), nn.Dense(2 * cfg.latent))

    def init(self, rng):
        return self.net.init(rng, (2 * self.cfg.image_shape[0], *self.cfg.image_shape[1:]))[1]

    def encode(self, params, x, mask):
        """x: (N, C, H, W) in [0, 1], anything on missing pixels; mask: bool, x's shape
        -> mu, logvar: (N, latent) each."""
        if onp.shape(mask) != onp.shape(x) or onp.asarray(mask).dtype != bool:
            raise ValueError(f"PartialEncoder.encode: expected a bool mask of x's shape {onp.shape(x)}, got "
                             f"{onp.asarray(mask).dtype} of shape {onp.shape(mask)}")
        m = onp.asarray(mask, onp.float32)
        h = self.net.apply(params, np.concatenate([x * m, m], axis=1))  # (N, 2C, H, W) -> (N, 2 latent)
        return h[:, :self.cfg.latent], h[:, self.cfg.latent:]

    def log_weights(self, params, decode, x, mask, eps):
        """log p(x_obs | z_k) + log p(z_k) - log q(z_k | x_obs) for z_k = mu + σ eps_k:
        eps (K, N, latent) -> (K, N). decode: z (M, latent) -> logits (M, *image)."""
        mu, logvar = self.encode(params, x, mask)
        k, n = eps.shape[:2]
        z = losses.reparameterize(mu[None], logvar[None], eps)  # (K, N, latent)
        logits = np.reshape(decode(np.reshape(z, (k * n, -1))), (k, *onp.shape(x)))  # (K, N, *image)
        return (observed_log_likelihood(x, logits, mask) + losses.standard_normal_log_density(z)
                - losses.diag_gaussian_log_density(z, mu[None], logvar[None]))

    def loss(self, params, decode, x, mask, eps):
        """-mean over the batch of log (1/K Σ_k w_k) <= log p(x_obs) (K = 1: the ELBO of x_obs), to minimise."""
        return -np.mean(losses.iwae_bound(self.log_weights(params, decode, x, mask, eps)))


def make_train_step(encoder, params, opt, rng, decode, draw_masks):
    """step(batch) -> {"loss", "grad_norm"}: binarize x, draw a mask per image, then value_and_grad
    of the bound in the encoder's params only — `decode` (a trained VAE's decoder,
    z -> logits) is a constant of the loss, so it does not change.

    draw_masks: (rng, shape) -> bool mask of that shape, True = observed; the masks the encoder
    learns to handle (the demo mixes bottom half, centre square and random pixels).
    """
    loss_and_grad = value_and_grad(encoder.loss)

    def step(batch):
        x = binarize(rng, batch[0])
        mask = draw_masks(rng, x.shape)
        eps = rng.standard_normal((encoder.cfg.k, len(x), encoder.cfg.latent), dtype=onp.float32)
        value, grads = loss_and_grad(params, decode, x, mask, eps)
        loss = check_finite("loss", value)  # the NaN guard, as for every model
        return {"loss": loss, "grad_norm": apply_gradients(opt, grads, "partial encoder")}

    return step
