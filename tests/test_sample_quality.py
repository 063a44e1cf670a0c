"""The Fréchet distance and the Inception-Score analogue against their closed forms."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigen import metrics
from minigen.data import load_mnist_sample


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


def random_covariance(rng, d):
    """A random symmetric positive-definite d x d matrix with eigenvalues in [0.3, 3] and random axes."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * rng.uniform(0.3, 3, d)) @ q.T


def reference_frechet(mu_a, cov_a, mu_b, cov_b):
    """Float64 reference, written here: Tr((Σa Σb)^½) = Σ √λ over the eigenvalues λ of √Σa Σb √Σa,
    with √Σa from Σa's eigen-decomposition. Rounding leaves the zero eigenvalues of a rank-deficient
    covariance (fewer examples than features) slightly negative: they are taken as 0."""
    values, vectors = np.linalg.eigh(cov_a)
    root_a = vectors @ np.diag(np.sqrt(np.maximum(values, 0))) @ vectors.T
    cross = np.sum(np.sqrt(np.maximum(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0)))
    return np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross


@given(st.integers(0, 2**16), st.integers(2, 5))
def test_frechet_distance_of_non_commuting_covariances_matches_an_eigen_decomposition(seed, d):
    """Σa Σb ≠ Σb Σa, so Tr(√Σa √Σb) (right only when they commute) would be off; the reference is not."""
    rng = np.random.default_rng(seed)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    cov_a, cov_b = random_covariance(rng, d), random_covariance(rng, d)
    a, b = gaussian(rng, 400, mu_a, cov_a), gaussian(rng, 300, mu_b, cov_b)
    expected = reference_frechet(mu_a, cov_a, mu_b, cov_b)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert not np.allclose(cov_a @ cov_b, cov_b @ cov_a, atol=1e-3)


def test_frechet_distance_of_two_non_commuting_2x2_covariances_has_a_closed_form():
    """For 2 x 2 M with non-negative eigenvalues, Tr(√M) = √(Tr M + 2 √det M) (both √λ summed and squared),
    with M = Σa Σb. Here Σa = diag(9, 1/4) and Σb has axes at 45°: they do not commute, and the commuting
    shortcut Tr(√Σa √Σb) = 4.375 is 0.38 below the truth, Tr((Σa Σb)^½) = 4.760."""
    cov_a = np.diag([9.0, 0.25])
    cov_b = np.array([[2.125, 1.875], [1.875, 2.125]])  # eigenvalues 4 and 1/4 along (1, 1) and (1, -1)
    assert not np.allclose(cov_a @ cov_b, cov_b @ cov_a)
    m = cov_a @ cov_b
    cross = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expected = np.trace(cov_a) + np.trace(cov_b) - 2 * cross + 1.0  # means (0, 0) and (1, 0)
    values, vectors = np.linalg.eigh(cov_b)
    shortcut = np.trace(np.sqrt(cov_a) @ (vectors * np.sqrt(values)) @ vectors.T)
    assert cross - shortcut > 0.3
    rng = np.random.default_rng(0)
    a, b = gaussian(rng, 500, np.zeros(2), cov_a), gaussian(rng, 500, np.array([1.0, 0.0]), cov_b)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert metrics.frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)


def test_inception_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert metrics.inception_score(confident) == pytest.approx(10, rel=1e-6)
    assert metrics.inception_score(np.eye(10)[np.zeros(1000, int)]) == pytest.approx(1, rel=1e-6)
    assert metrics.inception_score(np.full((50, 10), 0.1)) == pytest.approx(1, rel=1e-6)


def test_missing_classifier_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="python demos/classifier_mnist.py --out"):
        metrics.mnist_classifier(tmp_path / "classifier.npz")


def test_lit_background_counts_samples_lighting_a_pixel_real_images_almost_never_light():
    """Pixel (0, 0) is lit in 1 of 200 real images (0.5 % < 1 %: background); pixel (0, 1) in 2 % (not);
    pixel (1, 1) in all. Samples: one lights (0, 0) faintly (0.5, not > 0.5), one brightly."""
    from minigen.metrics import lit_background
    reals = np.zeros((200, 1, 2, 2), np.float32)
    reals[:, 0, 1, 1] = 1
    reals[0, 0, 0, 0] = 0.9
    reals[:4, 0, 0, 1] = 0.8
    samples = np.zeros((4, 1, 2, 2), np.float32)
    samples[0, 0, 0, 0] = 0.5   # not above the threshold
    samples[1, 0, 0, 0] = 0.7   # a background pixel lit
    samples[2, 0, 0, 1] = 1.0   # lit where 2 % of the digits are: not background
    samples[3, 0, 1, 1] = 1.0   # where every digit is lit
    assert lit_background(samples, reals) == 0.25
    assert lit_background(samples, reals, rare=0.03) == 0.5  # now (0, 1) counts as background too
    assert lit_background(reals, reals) == 0.005  # the one real image that lights (0, 0)
    with pytest.raises(ValueError, match="one image shape"):
        lit_background(samples, reals[:, :, :1])


def test_eval_scores_reports_each_seed_and_their_mean_and_sample_sd():
    """Three seeds draw three sets of samples; the mean and sd are those of the per-seed figures."""
    from minigen.metrics import eval_scores
    from minigen.models.trainable import Trainable
    x, y = load_mnist_sample("test")
    pool = load_mnist_sample("train")[0]

    def sample(rng, n):  # a "model" that draws real training digits, some with a stuck corner pixel
        images = pool[rng.choice(len(pool), n, replace=False)].copy()
        images[rng.random(n) < 0.3, 0, 0, 0] = 1.0
        return images

    t = Trainable(params={}, optimizers={}, step=None, sample=sample)
    scores = eval_scores(t, x[:300], y[:300])
    seeds = scores["per_seed"]
    assert [s["seed"] for s in seeds] == [0, 1, 2] and len({s["fid"] for s in seeds}) == 3
    for key in ("fid", "is", "lit_background"):
        values = [s[key] for s in seeds]
        assert scores[key] == pytest.approx(np.mean(values), rel=1e-12)
        assert scores[key + "_sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-12) and scores[key + "_sd"] > 0
    assert scores["lit_background"] > metrics.lit_background(pool, x[:300]) + 0.1  # the stuck corner shows


def test_a_tiny_gan_run_with_a_stuck_pixel_is_caught_by_the_lit_background_check():
    """The issue's stuck pixel, made on purpose in a tiny run: the lecture's MLP GAN trained 30 steps on
    the packaged digits, its output layer's biases then set so that every pixel is dark but the corner
    (0, 0), which real digits never light. eval_scores (what `minigen eval` and the demos report) must
    count every sample as lit; with the corner dark too, none."""
    from minigen.metrics import eval_scores
    from minigen.models.gan import build
    x, y = load_mnist_sample("train")
    run = build("gan", {}, np.random.default_rng(0))
    for start in range(0, 30 * 64, 64):
        run.step((x[start:start + 64],))
    output_bias = run.params["generator"][2]["b"]  # Dense 784 before the sigmoid: one bias per pixel
    output_bias[...] = -30.0  # sigmoid(-30 + W h) ~ 0 for this run's small hidden activations
    output_bias[0] = 30.0  # pixel (0, 0): stuck on
    x_test, y_test = x[-300:], y[-300:]
    stuck = eval_scores(run, x_test, y_test)
    output_bias[0] = -30.0
    clean = eval_scores(run, x_test, y_test)
    assert [s["lit_background"] for s in stuck["per_seed"]] == [1.0, 1.0, 1.0]
    assert [s["lit_background"] for s in clean["per_seed"]] == [0.0, 0.0, 0.0]
