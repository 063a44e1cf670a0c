"""Conditional GAN (Mirza & Osindero 2014): G(z, y) and D(x, y), both told the class y.

Each network gets the one-hot label appended to its input (minigen.ops.append_condition; the
class ConditionalGAN, in minigen/models/conditional.py, says how).
Two architectures, `--set arch=mlp` (the default) or `--set arch=conv`:

    mlp   G: [z, onehot(y)] (100 + 10) -> Dense 256 ReLU -> Dense 784 Sigmoid -> (1, 28, 28)
          D: [flatten(x), onehot(y)] (784 + 10) -> Dense 256 LeakyReLU(0.2) -> Dense 1 (a logit)
    conv  G: [z, onehot(y)] (100 + 10) -> the DCGAN generator (minigen.models.dcgan) -> (1, 28, 28)
          D: x with onehot(y) as 10 constant planes, (1 + 10, 28, 28) -> the DCGAN discriminator

D's question becomes "is x a real image *of class y*?", so a G that draws a fine 3
when asked for a 7 loses; that is what makes the label steer the sample. The MLP nets
are the lecture's MLP GAN plus the label, twice as wide (`--set hidden=128` for the
lecture's width; the README's GAN section scores both widths, and says how often the
classifier reads each one's samples as the asked-for digit). The conv nets are DCGAN's
(Radford et al. 2016), `--set width=64` by default (32 is cheaper on a CPU); giving D
the label as constant planes lets every filter of its first convolution see the class at
every position, the usual way to condition a convolutional D.
Training is the GAN's alternating step (minigen.models.gan.make_gan_step) on
minibatches of (image, label), with DCGAN's Adam(2e-4, 0.5) unless --lr is given: D sees
the fakes with the real minibatch's labels, G's step draws labels uniformly.
"""
from dataclasses import dataclass

import numpy as onp

from minigen import nn
from minigen.models import gan as gan_family
from minigen.models.conditional import ConditionalGAN
from minigen.models.dcgan import dcgan_discriminator, dcgan_generator
from minigen.models.trainable import configure


def mlp_cgan(latent=100, hidden=256, image_shape=(1, 28, 28), n_classes=10):
    """The lecture's MLP GAN with the label appended to both networks' inputs (module docstring)."""
    pixels = int(onp.prod(image_shape))
    g = nn.Sequential(nn.Dense(hidden), nn.ReLU(), nn.Dense(pixels), nn.Sigmoid(), nn.Reshape(image_shape))
    d = nn.Sequential(nn.Dense(hidden), nn.LeakyReLU(0.2), nn.Dense(1))
    return ConditionalGAN(g, d, latent, image_shape, n_classes)


def conv_cgan(latent=100, width=64, image_shape=(1, 28, 28), n_classes=10):
    """DCGAN's nets with the label: G reads [z, onehot(y)], D the image plus label planes (module docstring)."""
    return ConditionalGAN(dcgan_generator(width, image_shape[0]), dcgan_discriminator(width), latent, image_shape,
                          n_classes, label_input="planes")


VARIANTS = {"cgan": "conditional GAN: the MLP GAN (256 wide; --set arch=conv: the DCGAN) with the label fed to "
                    "G and D, Adam(2e-4, 0.5)"}
ARCHITECTURES = {"mlp": "hidden", "conv": "width"}  # each architecture and the size option it reads


@dataclass(frozen=True)
class CGANConfig:
    latent: int = 100
    arch: str = "mlp"  # mlp (the lecture's MLP GAN) or conv (DCGAN's nets)
    hidden: int = 256  # arch=mlp: the width of each MLP's hidden layer
    width: int = 64  # arch=conv: DCGAN's w, the channels of G's last and D's first convolution
    ema: float = 0.0  # decay of the averaged generator (minigen.averaging), e.g. 0.999; 0: off
    smooth: float = 0.0  # one-sided label smoothing (gan_options.with_label_smoothing); 0: off
    gp: float = 0.0  # a gradient penalty's weight on D (gan_options.with_gradient_penalty); 0: the recipe's
    gp_every: int = 1  # critic steps per penalty: lazy regularisation (gan_options.with_gradient_penalty)
    reuse: bool = False  # G's step scores the fakes of D's step again (gan_options.with_reused_fakes)


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train cgan`."""
    cfg = configure(CGANConfig(), options)
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {cfg.arch!r}")
    for arch, size in ARCHITECTURES.items():  # a size for the other architecture would be silently ignored
        if arch != cfg.arch and size in options:
            raise ValueError(f"option {size} sizes arch={arch}, not arch={cfg.arch} (its size option: "
                             f"{ARCHITECTURES[cfg.arch]})")
    gan = mlp_cgan(cfg.latent, cfg.hidden) if cfg.arch == "mlp" else conv_cgan(cfg.latent, cfg.width)
    return gan_family.trainable(gan, gan_family.configured_recipe("gan", cfg), rng, lr, cfg.ema)
