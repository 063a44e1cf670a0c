"""The torch twin of benchmarks/gan_quality.py trains step for step like minigen: from the same
weights, images and z, the same losses, and the same averaged generator (weights and the batch-norm
statistics measured for them). If the twin drifted, the benchmark would compare two recipes."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gan_quality  # noqa: E402


@pytest.mark.parametrize("norm, reuse", [("none", False), ("batch", False), ("none", True)])  # demo, paper, reuse
def test_twin_takes_the_same_steps_and_averages_alike(norm, reuse):
    # decay 0.5 rather than 0.999: an average that started from the wrong weights shows at once
    gan, (ours, our_generate) = gan_quality.contender("minigen", 0, 8, norm, lr=1e-3, ema=0.5, reuse=reuse)
    _, (theirs, their_generate) = gan_quality.contender("torch", 0, 8, norm, lr=1e-3, ema=0.5, reuse=reuse)
    rng = np.random.default_rng(5)
    for _ in range(2):
        real = rng.random((16, 1, 28, 28), dtype=np.float32)
        np.testing.assert_allclose(ours(real), theirs(real), rtol=1e-5)
    z = gan.sample_latent(np.random.default_rng(7), 32)
    np.testing.assert_allclose(our_generate(z), their_generate(z), atol=1e-5)


def test_checkpoints_fall_every_interval_and_at_the_end():
    assert gan_quality.checkpoint_seconds(15, 3) == [180, 360, 540, 720, 900]
    assert gan_quality.checkpoint_seconds(0.5, 0.2) == [12, 24, 30]


def test_the_norm_choices_are_the_dcgan_critics():
    # the script names them before numpy loads (it pins BLAS threads first), so check they match the model's
    from minigen.models.dcgan import CRITIC_NORMS
    assert set(gan_quality.CRITIC_NORMS) == set(CRITIC_NORMS)
