"""The conditional GAN's model (Mirza & Osindero 2014): a GAN whose G and D both read the class y.

Its own module, below the architectures that use it: the conditional DCGAN and MLP GAN of
minigen.models.cgan, and the self-conditioned GAN of minigen.models.selfcond, which the DCGAN
becomes with `--set clusters=K`.
"""
import autograd.numpy as np
import numpy as onp

from minigen.models.gan import GAN
from minigen.ops import append_condition, one_hot

LABEL_INPUTS = ("features", "planes")  # how D is told the label: see ConditionalGAN


class ConditionalGAN(GAN):
    """A GAN whose generator and discriminator both read the label y: (N,) ints in [0, n_classes).

    generator: a Layer from (latent + n_classes,) to data_shape. discriminator: a Layer from
    what d_input makes, by label_input:
        "features"  [flatten(x), onehot(y)]: (prod(data_shape) + n_classes,), for an MLP;
        "planes"    x with onehot(y) as n_classes constant planes: (C + n_classes, H, W), for a
                    convolutional D (data_shape (C, H, W)). In training and scoring the planes
                    are not built: D's first convolution adds one map per label instead
                    (critic_inputs, ops.conv2d_label_planes), the same numbers for ~1/(1 + n_classes)
                    of that layer's work.
    """

    def __init__(self, generator, discriminator, latent, data_shape, n_classes=10, pack=1, label_input="features"):
        if int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"a conditional GAN needs n_classes >= 2, got {n_classes!r}")
        if label_input not in LABEL_INPUTS:
            raise ValueError(f"label_input must be one of {', '.join(LABEL_INPUTS)}, got {label_input!r}")
        if label_input == "planes" and len(data_shape) != 3:
            raise ValueError(f"label_input='planes' needs images (C, H, W), got data_shape {tuple(data_shape)}")
        self.label_input = label_input
        super().__init__(generator, discriminator, latent, data_shape, pack=pack, n_classes=n_classes)

    def sample_labels(self, rng, n):
        """Classes for G's step: uniform over the n_classes."""
        return rng.integers(self.n_classes, size=n)

    def generate(self, g_params, z, y=None, train=False, state=None):
        """G(z, y): (N, latent), (N,) -> (N, *data_shape). state: as GAN.generate's."""
        return super().generate(g_params, append_condition(z, one_hot(y, self.n_classes, onp.shape(z)[0])),
                                train=train, state=state)

    def d_input(self, x, y=None):
        """x with its labels, packed: "features": (N, *data_shape) -> (N/pack, pack·(D + n_classes));
        "planes": (N, C, H, W) -> (N/pack, pack·(C + n_classes), H, W)."""
        n = onp.shape(x)[0]
        if self.label_input == "features":
            x = np.reshape(x, (n, -1))  # (N, D)
        return self.pack(append_condition(x, one_hot(y, self.n_classes, n)))

    def critic_inputs(self, x, y=None):
        """(d_in, condition) for GAN.critic. "planes", unpacked: (x (N, C, H, W), onehot(y) (N, n_classes)),
        the planes left to D's first convolution; otherwise (d_input(x, y), None). (PacGAN's packing
        interleaves each image's planes with the next image's channels: those are built.)"""
        if self.label_input == "planes" and self.pack_size == 1:
            return x, one_hot(y, self.n_classes, onp.shape(x)[0])
        return self.d_input(x, y), None

    def sample(self, params, rng, n, y=None, state=None):
        """n fakes; by default the classes in turn, 0, 1, ..., so a 10-column grid has one digit per column."""
        return super().sample(params, rng, n, onp.arange(n) % self.n_classes if y is None else y, state)
