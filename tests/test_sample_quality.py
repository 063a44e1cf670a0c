"""The Fréchet distance and the Inception-Score analogue against their closed forms."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigen import metrics


def gaussian(rng, n, mean, cov):
    """n points whose sample mean and sample covariance are exactly `mean` and `cov`."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # now the sample covariance is I
    return mean + z @ np.linalg.cholesky(cov).T


@given(st.integers(0, 2**16))
def test_frechet_distance_of_diagonal_gaussians_matches_the_formula(seed):
    """For diagonal covariances the distance is ‖μa − μb‖² + Σ (σa − σb)² (σ the standard deviations)."""
    rng = np.random.default_rng(seed)
    d = 3
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    var_a, var_b = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    a, b = gaussian(rng, 500, mu_a, np.diag(var_a)), gaussian(rng, 300, mu_b, np.diag(var_b))
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_frechet_distance_is_zero_for_one_set_and_symmetric_and_rotation_invariant(rng):
    a = gaussian(rng, 2000, np.zeros(4), np.diag([1, 2, 3, 4.0]))
    b = gaussian(rng, 2000, np.ones(4), np.eye(4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a), rel=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert metrics.frechet_distance(a @ q, b @ q) == pytest.approx(metrics.frechet_distance(a, b), rel=1e-9)


def test_inception_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert metrics.inception_score(confident) == pytest.approx(10, rel=1e-6)
    assert metrics.inception_score(np.eye(10)[np.zeros(1000, int)]) == pytest.approx(1, rel=1e-6)
    assert metrics.inception_score(np.full((50, 10), 0.1)) == pytest.approx(1, rel=1e-6)


def test_missing_classifier_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="python demos/classifier_mnist.py --out"):
        metrics.mnist_classifier(tmp_path / "classifier.npz")
