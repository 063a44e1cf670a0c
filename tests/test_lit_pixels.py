"""benchmarks/lit_pixels.py: its torch twin trains in step with minigen, and its lit-pixel count.

The benchmark's conclusion (lit background pixels are the recipe's, not a minigen bug)
rests on the twin replaying minigen's minibatches and noise exactly; a conditional
GAN's twin also checks minigen's conditioning path ([x, onehot(y)]) against torch.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lit_pixels  # noqa: E402

from minigen.models.cgan import mlp_cgan  # noqa: E402
from minigen.models.gan import mlp_gan  # noqa: E402


@pytest.mark.parametrize("make", [mlp_gan, mlp_cgan], ids=["gan", "cgan"])
def test_the_torch_twin_follows_minigen_step_for_step(make):
    gan = make(latent=8, hidden=16)
    params, step, rng, twin, torch_rng = lit_pixels.twins(gan, seed=0)
    data = np.random.default_rng(1)
    x = (data.random((96, 1, 28, 28)) ** 4).astype(np.float32)  # mostly dark, as digits are
    y = data.integers(10, size=96) if gan.n_classes else None
    for _ in range(2):  # two epochs of three minibatches: six D and six G steps, Adam's moments included
        lit_pixels.train_epoch_both(step, rng, twin, torch_rng, gan, x, y, batch_size=32)
    assert lit_pixels.weights_apart(params, twin) < 1e-5


def test_lit_background_fraction_counts_samples_with_any_lit_background_pixel():
    reals = np.zeros((200, 1, 4, 4), np.float32)
    reals[:, 0, 1:3, 1:3] = 1.0  # the centre is the digit; the 12 border pixels are background
    reals[0, 0, 0, 0] = 1.0  # lit in 0.5 % of reals: still background
    reals[:4, 0, 3, 3] = 1.0  # lit in 2 %: not background
    samples = np.zeros((4, 1, 4, 4), np.float32)
    samples[0, 0, 0, 0] = 0.9  # lit background
    samples[1, 0, 3, 3] = 0.9  # lit, but not background
    samples[2, 0, 1, 1] = 0.9  # the digit's own pixel
    samples[3, 0, 0, 1] = 0.5  # not above the threshold
    fraction, per_pixel = lit_pixels.lit_background_fraction(samples, reals)
    assert fraction == 0.25
    assert per_pixel[0, 0] == 0.25 and per_pixel.sum() == 0.25
    assert lit_pixels.most_lit(per_pixel) == "(0,0) 0.25"
