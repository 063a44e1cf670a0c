"""VAE applications: anomaly scores and their AUROC, imputation of missing pixels, the two demos."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_vae import log_mean_exp_bound, numpy_log_weights

from minigen import apps
from minigen.data import binarize, load_mnist_sample
from minigen.metrics import auroc, average_ranks, missing_pixel_bce, missing_pixel_mse
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam
from minigen.train import train_epochs


def pairwise_auroc(scores, labels):
    """The definition, pair by pair: P(anomaly scores above normal), ties counting one half."""
    pos, neg = scores[labels], scores[~labels]
    return np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))


@pytest.fixture(scope="module")
def digits():
    x, _ = load_mnist_sample("test")
    return x[:300]


@pytest.fixture(scope="module")
def trained(digits):
    """A small VAE after 4 epochs on the 3,000 packaged training digits (about two seconds)."""
    x, _ = load_mnist_sample("train")
    rng = np.random.default_rng(0)
    model = VAE(VAEConfig(latent=8, hidden=128))
    params = model.init(rng)
    train_epochs(make_train_step(model, params, Adam(params, lr=2e-3), rng), (x,), 4, rng, 64)
    return model, params


# --- AUROC ------------------------------------------------------------------------

labelled_scores = st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=40).filter(
    lambda rows: 0 < sum(b for _, b in rows) < len(rows))


@given(labelled_scores, st.sampled_from([0.5, 1.0, 1e3]))
def test_auroc_equals_the_pairwise_count(rows, scale):
    scores = np.array([s for s, _ in rows], np.float32) * np.float32(scale)  # small integers: many ties
    labels = np.array([b for _, b in rows])
    assert auroc(scores, labels) == pytest.approx(pairwise_auroc(scores, labels), abs=1e-12)
    assert auroc(-scores, labels) == pytest.approx(1 - auroc(scores, labels), abs=1e-12)
    assert auroc(scores, labels.astype(int)) == auroc(scores, labels)  # 0/1 labels as well as bools


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=30))
def test_average_ranks_count_smaller_values_and_share_ties(values):
    a = np.array(values)
    expected = [(a < v).sum() + ((a == v).sum() + 1) / 2 for v in a]
    np.testing.assert_array_equal(average_ranks(a), expected)


def test_auroc_at_the_extremes():
    labels = np.array([False] * 5 + [True] * 3)
    scores = np.arange(8.0)
    assert auroc(scores, labels) == 1.0  # every anomaly above every normal example
    assert auroc(-scores, labels) == 0.0  # reversed
    assert auroc(np.ones(8), labels) == 0.5  # all tied
    assert auroc(np.array([0.0, 2.0, 1.0, 3.0]), np.array([False, False, True, True])) == 0.75


def test_auroc_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs both classes, got 0 anomalies and 3 normal"):
        auroc(np.arange(3.0), np.zeros(3, bool))
    with pytest.raises(ValueError, match="needs both classes, got 2 anomalies and 0 normal"):
        auroc(np.arange(2.0), np.ones(2, bool))
    with pytest.raises(ValueError, match=r"same shape \(N,\), got \(3,\) and \(4,\)"):
        auroc(np.arange(3.0), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="bool or 0/1"):
        auroc(np.arange(3.0), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="finite"):
        auroc(np.array([0.0, np.nan]), np.array([False, True]))


# --- Anomaly scores ---------------------------------------------------------------------

def test_anomaly_scores_k1_is_minus_the_elbo_with_the_same_noise(trained, digits):
    model, params = trained
    x = binarize(np.random.default_rng(1), digits[:50])
    scores = apps.anomaly_scores(model, params, x, np.random.default_rng(5), k=1, batch_size=7)  # odd batches
    assert scores.shape == (50,) and scores.dtype == np.float32
    eps = np.random.default_rng(5).standard_normal((50, model.cfg.latent), dtype=np.float32)
    np.testing.assert_allclose(scores, -model.elbo(params, x, eps), rtol=1e-5)


def test_anomaly_scores_k_gt_1_is_minus_the_iwae_bound_and_lower_on_average(trained, digits):
    """Against -log (1/k Σ w) with the log weights assembled in numpy (test_vae.numpy_log_weights) from
    the same noise: 50 images fit one pass, so the k=20 draws are one (20, 50, latent) float32 array."""
    model, params = trained
    x = binarize(np.random.default_rng(1), digits[:50])
    scores = apps.anomaly_scores(model, params, x, np.random.default_rng(5), k=20)
    assert scores.shape == (50,) and scores.dtype == np.float32
    eps = np.random.default_rng(5).standard_normal((20, 50, model.cfg.latent), dtype=np.float32)
    expected = -log_mean_exp_bound(numpy_log_weights(model, params, x, eps.astype(np.float64)))
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    # The IWAE bound is tighter: on average it sits below -ELBO (by far more than the noise of 50 images).
    assert scores.mean() < apps.anomaly_scores(model, params, x, np.random.default_rng(6), k=1).mean()


def test_anomaly_scores_tell_digits_from_noise(trained, digits):
    model, params = trained
    rng = np.random.default_rng(2)
    x = np.concatenate([binarize(rng, digits[:100]), binarize(rng, np.full((100, 1, 28, 28), 0.2, np.float32))])
    scores = apps.anomaly_scores(model, params, x, rng)
    assert auroc(scores, np.arange(200) >= 100) > 0.99


def test_anomaly_scores_refuse_bad_input(trained, digits):
    model, params = trained
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\), got \(5, 784\)"):
        apps.anomaly_scores(model, params, digits[:5].reshape(5, -1), np.random.default_rng(0))
    for k in (0, 2.5):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            apps.anomaly_scores(model, params, digits[:5], np.random.default_rng(0), k=k)


# --- Imputation --------------------------------------------------------------------------

def test_masks():
    mask = apps.bottom_half_mask((2, 1, 28, 28))
    assert mask.dtype == bool and mask[:, :, :14].all() and not mask[:, :, 14:].any()
    random = apps.random_pixel_mask(np.random.default_rng(0), (100, 1, 28, 28), 0.3)
    assert random.dtype == bool and abs((~random).mean() - 0.3) < 0.01
    with pytest.raises(ValueError, match=r"p_missing must be in \[0, 1\], got 1.5"):
        apps.random_pixel_mask(np.random.default_rng(0), (1, 1, 2, 2), 1.5)


@pytest.mark.parametrize("sample", [False, True])
def test_impute_keeps_observed_pixels_and_stays_in_the_unit_interval(trained, digits, sample):
    model, params = trained
    x = digits[:20]
    mask = apps.random_pixel_mask(np.random.default_rng(3), x.shape, 0.5)
    filled = apps.impute(model, params, x, mask, n_iter=3, rng=np.random.default_rng(4), sample=sample)
    assert filled.shape == x.shape and filled.dtype == np.float32
    np.testing.assert_array_equal(filled[mask], x[mask])
    assert filled.min() >= 0 and filled.max() <= 1
    assert not np.allclose(filled[~mask], 0.5)  # the missing pixels did move from the fill
    if sample:
        assert set(np.unique(filled[~mask])) <= {0.0, 1.0}  # pixels drawn from p(x|z)


def test_impute_with_nothing_missing_returns_the_input_and_n_iter_0_the_fill(trained, digits):
    model, params = trained
    x = digits[:5]
    np.testing.assert_array_equal(apps.impute(model, params, x, np.ones(x.shape, bool), n_iter=2), x)
    mask = apps.bottom_half_mask(x.shape)
    start = apps.impute(model, params, x, mask, n_iter=0, fill=0.25)
    assert np.all(start[:, :, 14:] == 0.25) and np.array_equal(start[:, :, :14], x[:, :, :14])


def test_impute_fills_the_bottom_half_better_than_the_initial_guess(trained, digits):
    model, params = trained
    mask = apps.bottom_half_mask(digits.shape)
    chain = apps.imputation_chain(model, params, digits, mask, fill=0.5)
    errors = [missing_pixel_mse(digits, next(chain), mask) for _ in range(6)]
    # 0.5 everywhere misses by about 0.2 per pixel; even this small model guesses far better.
    assert errors[0] > 0.15 and errors[1] < 0.8 * errors[0] and errors[5] < 0.8 * errors[0]
    assert missing_pixel_bce(digits, apps.impute(model, params, digits, mask, 5), mask) < np.log(2)


def test_impute_refuses_bad_masks_and_arguments(trained, digits):
    model, params = trained
    x = digits[:4]
    with pytest.raises(ValueError, match=r"bool mask \(True = observed\) of x's shape \(4, 1, 28, 28\), "
                                         r"got bool of shape \(4, 28, 28\)"):
        apps.impute(model, params, x, np.ones((4, 28, 28), bool))
    with pytest.raises(ValueError, match="got float32 of shape"):
        apps.impute(model, params, x, np.ones(x.shape, np.float32))
    with pytest.raises(ValueError, match="needs rng"):
        apps.impute(model, params, x, apps.bottom_half_mask(x.shape), sample=True)
    with pytest.raises(ValueError, match="fill must be a number or broadcast"):
        apps.impute(model, params, x, apps.bottom_half_mask(x.shape), fill=np.zeros((28, 27), np.float32))
    with pytest.raises(ValueError, match="n_iter must be a non-negative integer"):
        apps.impute(model, params, x, apps.bottom_half_mask(x.shape), n_iter=-1)
    with pytest.raises(ValueError, match="expected images of shape"):
        apps.impute(model, params, x[:, 0], apps.bottom_half_mask(x.shape)[:, 0])


def test_missing_pixel_errors_by_hand():
    truth = np.array([[1.0, 0.0, 1.0, 0.0]])
    guess = np.array([[1.0, 0.5, 0.5, 0.0]])
    mask = np.array([[True, False, False, True]])
    assert missing_pixel_mse(truth, guess, mask) == 0.25
    assert missing_pixel_bce(truth, guess, mask) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="nothing imputed"):
        missing_pixel_mse(truth, guess, np.ones_like(mask))
