"""The torch twin of benchmarks/gan_quality.py trains step for step like minigen: from the same
weights, images and z, the same losses, and the same averaged generator (weights and the batch-norm
statistics measured for them). If the twin drifted, the benchmark would compare two recipes."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gan_quality  # noqa: E402


@pytest.mark.parametrize("norm, reuse, clusters", [("none", False, 0), ("batch", False, 0), ("none", True, 0),
                                                   ("none", True, 3)])  # demo before reuse, paper, unclustered, demo
def test_twin_takes_the_same_steps_and_averages_alike(norm, reuse, clusters):
    # decay 0.5 rather than 0.999: an average that started from the wrong weights shows at once
    x = np.random.default_rng(4).random((48, 1, 28, 28), dtype=np.float32)
    race = dict(seed=0, width=8, norm=norm, lr=1e-3, ema=0.5, reuse=reuse, clusters=clusters)
    gan, arrays, (ours, our_generate) = gan_quality.contender("minigen", x, **race)
    _, their_arrays, (theirs, their_generate) = gan_quality.contender("torch", x, **race)
    assert len(arrays) == (2 if clusters else 1)
    for a, b in zip(arrays, their_arrays):
        np.testing.assert_array_equal(a, b)  # the same images, and the same clusters, for both
    for start in (0, 16):
        batch = [a[start:start + 16] for a in arrays]
        np.testing.assert_allclose(ours(*batch), theirs(*batch), rtol=1e-5)
    sample_rng = np.random.default_rng(7)
    z, y = gan.sample_latent(sample_rng, 32), gan.sample_labels(sample_rng, 32)
    if clusters:  # G is asked for every cluster, and its output depends on which
        assert set(y) == set(range(clusters))
        assert not np.allclose(our_generate(z, y), our_generate(z, (y + 1) % clusters))
    np.testing.assert_allclose(our_generate(z, y), their_generate(z, y), atol=1e-5)


def test_scoring_draws_clusters_by_their_shares():
    # a self-conditioned GAN's samples mix the clusters as the training images do: score() must ask
    # G for clusters by gan.sample_labels (the shares), not leave them out or fix one
    x = np.random.default_rng(4).random((48, 1, 28, 28), dtype=np.float32)
    gan, _, _ = gan_quality.contender("minigen", x, 0, 8, "none", 1e-3, 0.5, True, 3)
    asked = []

    def generate(z, y):
        asked.append(y)
        return np.zeros((len(z), 1, 28, 28), np.float32)

    gan_quality.score(gan, generate, x[:40], n=40, chunk=16)
    first_seed = np.concatenate(asked[:3])  # 40 samples in chunks of 16, 16, 8
    assert len(first_seed) == 40
    np.testing.assert_array_equal(first_seed, gan.sample_labels(_after_z(gan, 0, 40), 40))


def _after_z(gan, seed, n):
    """The Generator of seed `seed` after z for n samples was drawn from it."""
    rng = np.random.default_rng(seed)
    gan.sample_latent(rng, n)
    return rng


def test_checkpoints_fall_every_interval_and_at_the_end():
    assert gan_quality.checkpoint_seconds(15, 3) == [180, 360, 540, 720, 900]
    assert gan_quality.checkpoint_seconds(0.5, 0.2) == [12, 24, 30]


def test_the_norm_choices_are_the_dcgan_critics():
    # the script names them before numpy loads (it pins BLAS threads first), so check they match the model's
    from minigen.models.dcgan import CRITIC_NORMS
    assert set(gan_quality.CRITIC_NORMS) == set(CRITIC_NORMS)
