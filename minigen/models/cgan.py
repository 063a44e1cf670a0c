"""Conditional GAN (Mirza & Osindero 2014): G(z, y) and D(x, y), both told the class y.

Each network gets the one-hot label appended to its input (minigen.ops.append_condition):

    G: [z, onehot(y)] (100 + 10) -> Dense 256 ReLU -> Dense 784 Sigmoid -> (1, 28, 28)
    D: [flatten(x), onehot(y)] (784 + 10) -> Dense 256 LeakyReLU(0.2) -> Dense 1 (a logit)

D's question becomes "is x a real image *of class y*?", so a G that draws a fine 3
when asked for a 7 loses; that is what makes the label steer the sample. These are
the lecture's MLP GAN nets plus the label, twice as wide (`--set hidden=128` for the
lecture's width; the README's GAN section scores both widths, and says how often the
classifier reads each one's samples as the asked-for digit).
Training is the GAN's alternating step (minigen.models.gan.make_gan_step) on
minibatches of (image, label): D sees the fakes with the real minibatch's labels, G's
step draws labels uniformly.
"""
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp

from minigen import nn
from minigen.models import gan as gan_family
from minigen.models.gan import GAN
from minigen.models.trainable import configure
from minigen.ops import append_condition, one_hot


class ConditionalGAN(GAN):
    """A GAN whose generator and discriminator both read the label y: (N,) ints in [0, n_classes).

    generator: a Layer from (latent + n_classes,) to data_shape; discriminator: a Layer
    from the flattened example plus the label, (prod(data_shape) + n_classes,), to one score.
    """

    def __init__(self, generator, discriminator, latent, data_shape, n_classes=10, pack=1):
        if int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"a conditional GAN needs n_classes >= 2, got {n_classes!r}")
        super().__init__(generator, discriminator, latent, data_shape, pack=pack, n_classes=n_classes)

    def sample_labels(self, rng, n):
        """Classes for G's step: uniform over the n_classes."""
        return rng.integers(self.n_classes, size=n)

    def generate(self, g_params, z, y=None, train=False, state=None):
        """G(z, y): (N, latent), (N,) -> (N, *data_shape). state: as GAN.generate's."""
        return super().generate(g_params, append_condition(z, one_hot(y, self.n_classes, onp.shape(z)[0])),
                                train=train, state=state)

    def d_input(self, x, y=None):
        """[flatten(x), onehot(y)], packed: (N, *data_shape) -> (N/pack, pack·(D + n_classes))."""
        n = onp.shape(x)[0]
        return self.pack(append_condition(np.reshape(x, (n, -1)), one_hot(y, self.n_classes, n)))

    def sample(self, params, rng, n, y=None, state=None):
        """n fakes; by default the classes in turn, 0, 1, ..., so a 10-column grid has one digit per column."""
        return super().sample(params, rng, n, onp.arange(n) % self.n_classes if y is None else y, state)


def mlp_cgan(latent=100, hidden=256, image_shape=(1, 28, 28), n_classes=10):
    """The lecture's MLP GAN with the label appended to both networks' inputs (module docstring)."""
    pixels = int(onp.prod(image_shape))
    g = nn.Sequential(nn.Dense(hidden), nn.ReLU(), nn.Dense(pixels), nn.Sigmoid(), nn.Reshape(image_shape))
    d = nn.Sequential(nn.Dense(hidden), nn.LeakyReLU(0.2), nn.Dense(1))
    return ConditionalGAN(g, d, latent, image_shape, n_classes)


VARIANTS = {"cgan": "conditional GAN: the MLP GAN (256 wide) with the label fed to G and D, Adam(2e-4, 0.5)"}


@dataclass(frozen=True)
class CGANConfig:
    latent: int = 100
    hidden: int = 256
    ema: float = 0.0  # decay of the averaged generator (minigen.averaging), e.g. 0.999; 0: off


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train cgan`."""
    cfg = configure(CGANConfig(), options)
    return gan_family.trainable(mlp_cgan(cfg.latent, cfg.hidden), gan_family.RECIPES["gan"], rng, lr, cfg.ema)
