"""Weight initialisers: each is fn(rng, shape) -> float32 array.

Shapes follow the layers: Dense weights are (fan_in, fan_out); convolution
weights are (out_channels, in_channels, kh, kw), whose fans count the kernel too.
"""
import numpy as np


def fans(shape):
    """(fan_in, fan_out) of a Dense (in, out) or conv (O, C, kh, kw) weight."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = int(np.prod(shape[2:]))
    return shape[1] * receptive_field, shape[0] * receptive_field


def glorot_uniform(rng, shape):
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)): keeps activation and gradient
    variances alike across layers (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def he_normal(rng, shape):
    """N(0, 2 / fan_in): the variance a ReLU layer needs to keep its activations'
    scale, since ReLU zeroes half of them (He et al. 2015)."""
    fan_in, _ = fans(shape)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def dcgan_normal(rng, shape):
    """N(0, 0.02^2), the initialisation of every DCGAN weight (Radford et al. 2016)."""
    return (rng.standard_normal(shape) * 0.02).astype(np.float32)


def zeros(rng, shape):
    return np.zeros(shape, np.float32)
