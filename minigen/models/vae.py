"""The variational autoencoder (Kingma & Welling 2014), and β-VAE (Higgins et al. 2017).

    encoder:  x -> (mu, logvar) of q(z|x) = N(mu, diag e^logvar)
    sample:   z = mu + e^(logvar/2) * eps,  eps ~ N(0, I)     (reparameterization)
    decoder:  z -> logits of p(x|z) = Bernoulli(sigmoid(logits)) per pixel
    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))  <=  log p(x)
    loss    = mean over the batch of -E_q[log p(x|z)] + beta * KL     (beta = 1: the VAE)

With k > 1 the same networks train on the importance-weighted bound instead
(the IWAE, Burda et al. 2016): loss = -mean log (1/k Σ_j p(x, z_j) / q(z_j|x)).

The MLP default is 784-400-20 with ReLU, the model of pytorch/examples' VAE,
so results can be compared with it (benchmarks/twins.py holds its torch twin).
"""
import math
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minigen import losses, nn, ops
from minigen.autodiff import value_and_grad
from minigen.data import binarize
from minigen.models.trainable import Trainable, apply_gradients, check_finite, configure
from minigen.optim import Adam


@dataclass(frozen=True)
class VAEConfig:
    latent: int = 20
    hidden: int | tuple = 400  # one hidden layer's width, or a tuple of widths for a deeper MLP
    activation: str = "relu"  # "tanh" (Burda et al. 2016: 200-200 tanh, 50 latent), "softplus" (M1)
    conv: bool = False  # a convolutional encoder/decoder instead of the MLP
    beta: float = 1.0
    k: int = 1  # importance samples in the training objective: 1 is the ELBO, k > 1 the IWAE bound
    image_shape: tuple = (1, 28, 28)


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}


def hidden_layers(cfg):
    """Dense + activation for each hidden width in cfg.hidden."""
    widths = (cfg.hidden,) if isinstance(cfg.hidden, int) else tuple(cfg.hidden)
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {cfg.activation!r}")
    return [layer for width in widths for layer in (nn.Dense(width), ACTIVATIONS[cfg.activation]())]


def mlp_encoder(cfg):
    """x (N, 1, 28, 28) -> (N, 2*latent): mu and logvar side by side."""
    return nn.Sequential(nn.Flatten(), *hidden_layers(cfg), nn.Dense(2 * cfg.latent))


def mlp_decoder(cfg):
    """z (N, latent) -> logits (N, 1, 28, 28)."""
    return nn.Sequential(*hidden_layers(cfg), nn.Dense(int(onp.prod(cfg.image_shape))),
                         nn.Reshape(cfg.image_shape))


def conv_encoder(cfg):
    """x (N, 1, 28, 28) -> 32 x 14 x 14 -> 64 x 7 x 7 -> (N, 2*latent)."""
    return nn.Sequential(nn.Conv2d(32, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 4, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Dense(2 * cfg.latent))


def conv_decoder(cfg):
    """z (N, latent) -> 64 x 7 x 7 -> 32 x 14 x 14 -> logits (N, 1, 28, 28)."""
    return nn.Sequential(nn.Dense(64 * 7 * 7), nn.ReLU(), nn.Reshape((64, 7, 7)),
                         nn.ConvTranspose2d(32, 4, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(cfg.image_shape[0], 4, stride=2, padding=1))


class VAE:
    """The two networks and the formulas that join them. params = {"encoder": ..., "decoder": ...}."""

    def __init__(self, cfg=VAEConfig()):
        if int(cfg.k) != cfg.k or cfg.k < 1:
            raise ValueError(f"VAEConfig.k (importance samples) must be a positive integer, got {cfg.k!r}")
        if not (math.isfinite(cfg.beta) and cfg.beta >= 0):
            raise ValueError(f"VAEConfig.beta (the KL weight) must be a finite number >= 0, got {cfg.beta!r}")
        if int(cfg.latent) != cfg.latent or cfg.latent < 1:
            raise ValueError(f"VAEConfig.latent must be a positive integer, got {cfg.latent!r}")
        if cfg.k > 1 and cfg.beta != 1:
            # The IWAE bound has no KL term to weight: β would have nothing to act on.
            raise ValueError(f"beta={cfg.beta} with k={cfg.k}: the IWAE bound has no separate KL term; use k=1")
        self.cfg = cfg
        self.encoder = conv_encoder(cfg) if cfg.conv else mlp_encoder(cfg)
        self.decoder = conv_decoder(cfg) if cfg.conv else mlp_decoder(cfg)

    def init(self, rng):
        _, enc = self.encoder.init(rng, self.cfg.image_shape)
        _, dec = self.decoder.init(rng, (self.cfg.latent,))
        return {"encoder": enc, "decoder": dec}

    def encode(self, params, x):
        """x: (N, 1, 28, 28) -> mu, logvar: (N, latent) each."""
        h = self.encoder.apply(params["encoder"], x)
        return h[:, :self.cfg.latent], h[:, self.cfg.latent:]

    def decode(self, params, z):
        """z: (N, latent) -> logits of p(x|z): (N, 1, 28, 28)."""
        return self.decoder.apply(params["decoder"], z)

    def elbo_terms(self, params, x, eps):
        """One-sample estimates, per example: log p(x|z) and KL(q(z|x) || p(z)), each (N,)."""
        mu, logvar = self.encode(params, x)
        z = losses.reparameterize(mu, logvar, eps)
        return losses.bernoulli_log_likelihood(x, self.decode(params, z)), losses.gaussian_kl(mu, logvar)

    def elbo(self, params, x, eps):
        """ELBO per example (N,), a lower bound on log p(x) in nats."""
        return losses.elbo(*self.elbo_terms(params, x, eps))

    def noise_shape(self, n):
        """The shape of eps for one training step on n examples: (n, latent), or (k, n, latent) for the IWAE."""
        return (n, self.cfg.latent) if self.cfg.k == 1 else (self.cfg.k, n, self.cfg.latent)

    def loss(self, params, x, eps, seen=None):
        """The β-VAE objective, mean of -log p(x|z) + beta * KL; with eps (k, N, latent), -mean IWAE bound.

        seen: an optional dict that receives the batch means of the two terms, "recon" (-log p(x|z))
        and "kl", as floats outside the autograd trace: the training log shows them, so a KL
        falling to 0 (posterior collapse, Bowman et al. 2016) can be seen (`minigen check`).
        """
        if onp.ndim(eps) == 3:
            return -np.mean(losses.iwae_bound(self.iwae_log_weights(params, x, eps)))
        log_px_z, kl = self.elbo_terms(params, x, eps)
        if seen is not None:
            seen["recon"], seen["kl"] = -float(onp.mean(getval(log_px_z))), float(onp.mean(getval(kl)))
        return losses.beta_vae_loss(log_px_z, kl, beta=self.cfg.beta)

    def iwae_log_weights(self, params, x, eps):
        """log p(x, z_k) - log q(z_k|x) for K samples: eps (K, N, latent) -> (K, N)."""
        mu, logvar = self.encode(params, x)
        k, n = eps.shape[:2]
        z = losses.reparameterize(mu[None], logvar[None], eps)  # (K, N, latent)
        logits = self.decode(params, np.reshape(z, (k * n, -1)))
        x_k = onp.broadcast_to(x[None], (k, *x.shape)).reshape(k * n, *x.shape[1:])
        log_px_z = np.reshape(losses.bernoulli_log_likelihood(x_k, logits), (k, n))
        # mu[None] broadcasts against z by arithmetic, which autograd differentiates
        # (its VJP of np.broadcast_to cannot add leading axes, so that would not train).
        log_pz = losses.standard_normal_log_density(z)  # (K, N)
        log_qz = losses.diag_gaussian_log_density(z, mu[None], logvar[None])  # (K, N)
        return log_px_z + log_pz - log_qz

    def decode_mean(self, params, z):
        """E[x|z] = sigmoid(logits): the image the decoder draws for z, (N, 1, 28, 28) in [0, 1]."""
        return ops.sigmoid(self.decode(params, z))

    def sample(self, params, rng, n):
        """n images (n, 1, 28, 28): z ~ N(0, I) = p(z), then the decoder's mean (a slice at a time: nn.in_chunks)."""
        return nn.in_chunks(lambda z: self.decode_mean(params, z),
                            rng.standard_normal((n, self.cfg.latent), dtype=onp.float32))

    def reconstruct(self, params, x):
        """The decoder's mean at the encoder's mean: (N, 1, 28, 28) in [0, 1]."""
        return self.decode_mean(params, self.encode(params, x)[0])


def make_train_step(model, params, opt, rng, binarized=True):
    """step(batch) -> {"loss", "recon", "kl", "grad_norm"}: draw eps (and binarize), value_and_grad,
    a guarded opt.step. recon and kl: the ELBO's terms (not for the IWAE bound, which has no separate KL).

    batch = (x,) for the VAE; any arrays after x (e.g. the labels of a conditional
    model) are passed on to model.loss between x and eps: loss(params, x, *rest, eps).
    """
    loss_and_grad = value_and_grad(model.loss)

    def step(batch):
        x = binarize(rng, batch[0]) if binarized else batch[0]
        eps = rng.standard_normal(model.noise_shape(len(x)), dtype=onp.float32)
        seen = {}
        value, grads = loss_and_grad(params, x, *batch[1:], eps, seen=seen)
        loss = check_finite("loss", value)  # the NaN guard: nothing non-finite reaches the weights
        return {"loss": loss, **seen, "grad_norm": apply_gradients(opt, grads, type(model).__name__)}

    return step


# --- For `minigen train` -------------------------------------------------------------------

VARIANTS = {
    "vae": "MLP VAE 784-400-20, ReLU (Kingma & Welling 2014); --set beta=4 makes it a beta-VAE",
    "conv-vae": "convolutional VAE: 2 stride-2 convs down, 2 transposed convs up",
    "iwae": "importance-weighted autoencoder (Burda et al. 2016): the MLP VAE trained on the k-sample "
            "bound, --set k=5 (default) or k=50",
}


def trainable(cfg=VAEConfig(), rng=None, lr=1e-3):
    """A VAE, its Adam and its train step, for minigen.train's loop (`minigen train vae`)."""
    model = VAE(cfg)
    params = model.init(rng)
    opt = Adam(params, lr=lr)
    return Trainable(params={"vae": params}, optimizers={"vae": opt},
                     step=make_train_step(model, params, opt, rng),
                     sample=lambda sample_rng, n: model.sample(params, sample_rng, n),
                     remedies="lower --lr; for a beta-VAE, a smaller beta", likelihood=(model, params))


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train NAME --set key=value ...` (name in VARIANTS)."""
    cfg = configure(VAEConfig(conv=name == "conv-vae", k=5 if name == "iwae" else 1), options)
    return trainable(cfg, rng, 1e-3 if lr is None else lr)
