"""DCGAN (Radford, Metz & Chintala 2016), sized for 28 x 28 MNIST.

The paper's rules, kept: strided convolutions instead of pooling, transposed
convolutions to upsample, batch norm in both networks (not on D's input layer
nor G's output), ReLU in G and LeakyReLU(0.2) in D, weights drawn from
N(0, 0.02), Adam(2e-4, beta1 = 0.5). One change: G ends in a sigmoid, since
minigen's images lie in [0, 1] (the paper's tanh fits data scaled to [-1, 1]).

    G: z (100) -> Dense 2w*7*7, BN, ReLU -> (2w, 7, 7)
               -> ConvT w, 4x4 stride 2, BN, ReLU -> (w, 14, 14)
               -> ConvT 1, 4x4 stride 2, sigmoid  -> (1, 28, 28)
    D: (1, 28, 28) -> Conv w, 4x4 stride 2, LeakyReLU -> (w, 14, 14)
                   -> Conv 2w, 4x4 stride 2, BN, LeakyReLU -> (2w, 7, 7)
                   -> Dense 1 (a logit)
With w = 64 these are the layer sizes that benchmarks/conv_speed.py times.

D's batch norm can be swapped (`--set norm=layer|none|batch`): a critic trained with
WGAN-GP's gradient penalty must not use batch norm (Gulrajani et al. 2017, §4), and
`--set loss=wgan-gp` refuses it; they use layer norm instead, as `norm=layer` does.
"""
from dataclasses import dataclass

from minigen import nn
from minigen.init import dcgan_normal
from minigen.models import gan as gan_family
from minigen.models.gan import GAN
from minigen.models.selfcond import SelfConditionedGAN
from minigen.models.trainable import configure

CRITIC_NORMS = {"batch": nn.BatchNorm, "layer": nn.LayerNorm, "none": None}


def dcgan_generator(width=64, channels=1):
    """G's stack (module docstring): its input (latent,) -> (channels, 28, 28) in [0, 1].
    The input size is read at init, so the conditional GAN (minigen.models.cgan) feeds it [z, onehot(y)]."""
    w = width
    return nn.Sequential(
        nn.Dense(2 * w * 7 * 7, w_init=dcgan_normal), nn.BatchNorm(), nn.ReLU(), nn.Reshape((2 * w, 7, 7)),
        nn.ConvTranspose2d(w, 4, stride=2, padding=1, w_init=dcgan_normal), nn.BatchNorm(), nn.ReLU(),
        nn.ConvTranspose2d(channels, 4, stride=2, padding=1, w_init=dcgan_normal), nn.Sigmoid())


def dcgan_discriminator(width=64, critic_norm="batch", convs=2, spectral=False):
    """D's stack (module docstring): (C, 28, 28) -> (1,), a logit. The channels C are read at init:
    1 for an image, 1 + 10 when the conditional GAN appends the label as constant planes.

    critic_norm: D's normalisation after its second convolution, "batch" (the paper's),
    "layer" or "none" (for WGAN-GP, whose penalty is on each example's own gradient,
    which batch statistics would mix).
    convs: 2 (the paper's stack) or 3, a third convolution (2w channels, 3x3, stride 1) at 7 x 7
    before the logit: a deeper judge of stroke shape, for twice D's multiply-adds (a GAN step at
    w = 32 takes ~1.4x as long; it scored worse in 15 minutes: README, the sweep table).
    spectral: every convolution and the logit's Dense under nn.SpectralNorm (Miyato et al. 2018,
    who normalise every layer of the critic, as here).
    """
    if critic_norm not in CRITIC_NORMS:
        raise ValueError(f"critic_norm must be one of {', '.join(CRITIC_NORMS)}, got {critic_norm!r}")
    w = width
    if convs not in (2, 3):
        raise ValueError(f"convs must be 2 or 3 (D's convolutions), got {convs!r}")
    norm = lambda: [CRITIC_NORMS[critic_norm]()] if CRITIC_NORMS[critic_norm] else []
    weighted = nn.SpectralNorm if spectral else (lambda layer: layer)
    conv = lambda channels, k, stride: weighted(nn.Conv2d(channels, k, stride=stride, padding=1, w_init=dcgan_normal))
    third = [conv(2 * w, 3, 1), *norm(), nn.LeakyReLU(0.2)] if convs == 3 else []
    return nn.Sequential(
        conv(w, 4, 2), nn.LeakyReLU(0.2),
        conv(2 * w, 4, 2), *norm(), nn.LeakyReLU(0.2),
        *third, nn.Flatten(), weighted(nn.Dense(1, w_init=dcgan_normal)))


def dcgan(latent=100, width=64, image_shape=(1, 28, 28), critic_norm="batch", d_convs=2, spectral=False,
          clusters=0):
    """The DCGAN generator and discriminator as a GAN (see the module docstring and dcgan_discriminator).
    clusters >= 2: as a SelfConditionedGAN over that many k-means clusters of its training images,
    G reading [z, onehot(c)] and D the image with onehot(c) as constant planes (minigen.models.selfcond)."""
    g, d = dcgan_generator(width, image_shape[0]), dcgan_discriminator(width, critic_norm, d_convs, spectral)
    if not clusters:
        return GAN(g, d, latent, image_shape)
    if int(clusters) != clusters or clusters < 2:
        raise ValueError(f"clusters must be 0 (off) or an int >= 2, got {clusters!r}")
    return SelfConditionedGAN(g, d, latent, image_shape, int(clusters))


VARIANTS = {"dcgan": "DCGAN (conv, batch norm, N(0, 0.02) init), non-saturating loss, Adam(2e-4, 0.5)"}


@dataclass(frozen=True)
class DCGANConfig:
    latent: int = 100
    width: int = 64
    norm: str = "batch"  # D's normalisation: batch, layer or none
    loss: str = "gan"  # a recipe of minigen.models.gan.RECIPES, e.g. wgan-gp (then norm=layer or none)
    ema: float = 0.0  # decay of the averaged generator (minigen.averaging), e.g. 0.999; 0: off
    smooth: float = 0.0  # one-sided label smoothing (gan_options.with_label_smoothing); 0: off
    gp: float = 0.0  # a gradient penalty's weight on D (gan_options.with_gradient_penalty); 0: the recipe's
    gp_every: int = 1  # critic steps per penalty: lazy regularisation (gan_options.with_gradient_penalty)
    clip: float = 0.0  # loss=wgan: the clipping bound (gan_options.with_weight_clipping); 0: the recipe's
    d_convs: int = 2  # D's convolutions: 2 (the paper's) or 3 (dcgan_discriminator)
    beta1: float = 0.5  # Adam's β1 (gan_options.with_adam_beta1), Radford et al.'s 0.5; 0: no momentum
    sn: bool = False  # spectral normalisation of D's layers (nn.SpectralNorm, Miyato et al. 2018)
    reuse: bool = False  # G's step scores the fakes of D's step again (gan_options.with_reused_fakes)
    clusters: int = 0  # >= 2: both nets told the image's k-means cluster (models.selfcond); 0: unconditional


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train dcgan`."""
    cfg = configure(DCGANConfig(), options)
    if cfg.loss not in gan_family.RECIPES:
        raise ValueError(f"loss must be one of {', '.join(gan_family.RECIPES)}, got {cfg.loss!r}")
    gan = dcgan(cfg.latent, cfg.width, critic_norm=cfg.norm, d_convs=cfg.d_convs, spectral=cfg.sn,
                clusters=cfg.clusters)
    return gan_family.trainable(gan, gan_family.configured_recipe(cfg.loss, cfg), rng, lr, cfg.ema)
