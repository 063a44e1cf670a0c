"""The conditional VAE: shapes and dtypes, that the label conditions, gradients, Bayes' rule, the demo."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from autograd import grad
from autograd.misc import flatten

from minigen import apps
from minigen.data import binarize, load_mnist_sample
from minigen.gradcheck import check_grad
from minigen.losses import iwae_bound
from minigen.models.cvae import CVAE
from minigen.models.vae import VAEConfig, make_train_step
from minigen.optim import Adam, leaves
from minigen.train import train_epochs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))
import cvae_mnist  # noqa: E402  (the demo script, imported for its main and helpers)


@pytest.fixture(scope="module")
def sample():
    return load_mnist_sample("train")


def small(conv=False, **kw):
    model = CVAE(VAEConfig(latent=3, hidden=16, conv=conv, **kw))
    return model, model.init(np.random.default_rng(0))


@pytest.mark.parametrize("conv", [False, True])
def test_shapes_and_float32_of_values_and_gradients(conv, sample):
    model, params = small(conv)
    x, y = sample[0][:5], sample[1][:5]
    rng = np.random.default_rng(1)
    eps = rng.standard_normal((5, 3), dtype=np.float32)
    mu, logvar = model.encode(params, x, y)
    assert mu.shape == logvar.shape == (5, 3) and mu.dtype == np.float32
    logits = model.decode(params, mu, y)
    assert logits.shape == (5, 1, 28, 28) and logits.dtype == np.float32
    assert model.elbo(params, x, y, eps).shape == (5,) and model.elbo(params, x, y, eps).dtype == np.float32
    assert model.loss(params, x, y, eps).dtype == np.float32
    assert model.iwae_log_weights(params, x, y, rng.standard_normal((4, 5, 3), dtype=np.float32)).shape == (4, 5)
    images = model.sample(params, rng, np.arange(10))
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.float32 and 0 <= images.min() <= images.max() <= 1
    ll = model.class_log_likelihoods(params, x, 3, rng)
    assert ll.shape == (5, 10) and ll.dtype == np.float32 and np.isfinite(ll).all()
    assert all(g.dtype == np.float32 for g in leaves(grad(model.loss)(params, x, y, eps)))


@pytest.mark.parametrize("conv", [False, True])
def test_elbo_loss_and_log_weights_match_the_formulas_written_in_numpy(conv, sample):
    """From the networks' outputs alone (encode, decode), in float64: ELBO = log p(x|z,y) - KL, the
    loss its negative mean, and log w = log p(x|z,y) + log N(z; 0, I) - log q(z|x,y) for K samples."""
    model, params = small(conv)
    x, y = binarize(np.random.default_rng(2), sample[0][:5]), sample[1][:5]
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((4, 5, 3), dtype=np.float32)
    mu, logvar = (np.asarray(a, np.float64) for a in model.encode(params, x, y))
    z = mu + np.exp(logvar / 2) * eps.astype(np.float64)  # (K, N, latent)
    logits = np.asarray(model.decode(params, z.reshape(20, 3).astype(np.float32), np.tile(y, 4)), np.float64)
    flat = x.reshape(1, 5, -1).astype(np.float64)
    log_px_z = np.sum(flat * logits.reshape(4, 5, -1) - np.logaddexp(0, logits.reshape(4, 5, -1)), axis=2)
    kl = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1)
    np.testing.assert_allclose(model.elbo(params, x, y, eps[0]), log_px_z[0] - kl, rtol=1e-5)
    assert model.loss(params, x, y, eps[0]) == pytest.approx(-np.mean(log_px_z[0] - kl), rel=1e-5)
    log_pz = np.sum(-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi), axis=2)
    log_qz = np.sum(-0.5 * eps.astype(np.float64) ** 2 - 0.5 * logvar - 0.5 * np.log(2 * np.pi), axis=2)
    np.testing.assert_allclose(model.iwae_log_weights(params, x, y, eps), log_px_z + log_pz - log_qz, rtol=1e-5)


@pytest.mark.parametrize("conv", [False, True])
def test_the_label_conditions_both_networks(conv, sample):
    model, params = small(conv)
    x = np.repeat(sample[0][:1], 10, axis=0)
    z = np.repeat(np.random.default_rng(1).standard_normal((1, 3), dtype=np.float32), 10, axis=0)
    digits = np.arange(10)
    images = model.decode_mean(params, z, digits)  # one z, ten labels
    mu, _ = model.encode(params, x, digits)  # one image, ten labels
    for a in range(10):
        for b in range(a):
            assert np.abs(images[a] - images[b]).max() > 1e-4
            assert np.abs(mu[a] - mu[b]).max() > 1e-4
    # Same label: the same output (the difference above is the label's doing).
    # Equal up to rounding: BLAS may sum the two rows of one batch in different orders.
    np.testing.assert_allclose(model.decode(params, z[:2], [3, 3])[0], model.decode(params, z[:2], [3, 3])[1],
                               rtol=1e-5, atol=1e-7)


def test_iwae_weights_stack_samples_with_the_right_labels(sample):
    """Row k of the K-sample weights equals the weights of sample k alone, with mixed labels."""
    model, params = small()
    x, y = binarize(np.random.default_rng(0), sample[0][:6]), sample[1][:6]
    eps = np.random.default_rng(2).standard_normal((4, 6, 3), dtype=np.float32)
    stacked = model.iwae_log_weights(params, x, y, eps)
    for k in range(4):
        np.testing.assert_allclose(stacked[k], model.iwae_log_weights(params, x, y, eps[k:k + 1])[0], rtol=1e-5)


def test_class_log_likelihoods_with_k1_is_the_elbo_of_each_class(sample):
    model, params = small()
    x = sample[0][:7]
    ll = model.class_log_likelihoods(params, x, 1, np.random.default_rng(5))
    eps = np.random.default_rng(5).standard_normal((1, 7, 3), dtype=np.float32)[0]  # the same draw
    for c in range(10):
        np.testing.assert_allclose(ll[:, c], model.elbo(params, x, np.full(7, c), eps), rtol=1e-6)
    # k > 1 is the IWAE bound of the same weights.
    ll5 = model.class_log_likelihoods(params, x, 5, np.random.default_rng(6))
    eps5 = np.random.default_rng(6).standard_normal((5, 7, 3), dtype=np.float32)
    np.testing.assert_allclose(ll5[:, 4], iwae_bound(model.iwae_log_weights(params, x, np.full(7, 4), eps5)),
                               rtol=1e-6)


class FixedLikelihoods:
    """A stand-in model whose class log-likelihoods are given numbers."""
    n_classes = 3

    def __init__(self, table):
        self.table = np.asarray(table, np.float32)

    def class_log_likelihoods(self, params, x, k, rng):
        return self.table[np.asarray(x, int)]  # x holds row indices here


def test_bayes_classify_takes_the_largest_likelihood_plus_prior():
    model = FixedLikelihoods([[0.0, -1.0, -5.0],  # likelihood favours 0 by 1 nat
                              [-3.0, -2.0, -2.5],
                              [-9.0, -9.0, 0.0]])
    x, rng = np.arange(3), np.random.default_rng(0)
    np.testing.assert_array_equal(apps.bayes_classify(model, None, x, np.zeros(3), 1, rng), [0, 1, 2])
    # A prior 2 nats in favour of class 1 overturns the 1-nat likelihood gap of row 0, not row 2's 9 nats.
    prior = np.log(np.array([0.1, 0.1 * np.e ** 2, 0.5]))
    np.testing.assert_array_equal(apps.bayes_classify(model, None, x, prior, 1, rng, batch_size=2), [1, 1, 2])
    with pytest.raises(ValueError, match=r"log_prior of shape \(3,\)"):
        apps.bayes_classify(model, None, x, np.zeros(10), 1, rng)


def float64(tree):
    if isinstance(tree, dict):
        return {k: float64(v) for k, v in tree.items()}
    return [float64(v) for v in tree] if isinstance(tree, list) else tree.astype(np.float64)


def test_loss_gradient_matches_finite_differences_in_float64():
    """Every parameter of a tiny CVAE on 4x4 images; tanh, so no kinks to blur the differences."""
    model = CVAE(VAEConfig(latent=2, hidden=5, activation="tanh", image_shape=(1, 4, 4)))
    rng = np.random.default_rng(0)
    # flatten's unflatten restores each array's dtype, so flatten a float64 copy of the tree.
    flat, unflatten = flatten(float64(model.init(rng)))
    flat = flat + 0.1 * rng.standard_normal(flat.shape)
    assert unflatten(flat)["decoder"][0]["W"].dtype == np.float64
    x = (rng.random((6, 1, 4, 4)) < 0.5).astype(np.float64)
    y, eps = np.array([0, 1, 2, 7, 8, 9]), rng.standard_normal((6, 2))
    assert check_grad(lambda p: model.loss(unflatten(p), x, y, eps), flat) < 1e-7


def test_labels_of_the_wrong_shape_or_range_are_refused(sample):
    model, params = small()
    x, z = sample[0][:4], np.zeros((4, 3), np.float32)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(4,\).*got shape \(3,\)"):
        model.encode(params, x, np.arange(3))
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(4,\).*got shape \(4, 10\)"):
        model.decode(params, z, np.eye(10, dtype=np.float32)[:4])  # one-hot rows: pass the integers instead
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got values in \[0, 10\]"):
        model.elbo(params, x, np.array([0, 1, 2, 10]), z)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got values in \[-1, 2\]"):
        model.sample(params, rng, np.array([-1, 2]))
    with pytest.raises(ValueError, match="integer labels"):
        model.sample(params, rng, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(N,\), got shape \(\)"):
        model.sample(params, rng, 3)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\), got \(4, 784\)"):
        model.encode(params, x.reshape(4, -1), np.arange(4))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        model.class_log_likelihoods(params, x, 0, rng)


def test_training_with_labelled_batches_learns_a_bayes_classifier(sample):
    """make_train_step passes the labels on; after 3 epochs on 3,000 images, Bayes' rule beats chance."""
    x, y = sample
    model = CVAE(VAEConfig(latent=8, hidden=128))
    rng = np.random.default_rng(0)
    params = model.init(rng)
    history = train_epochs(make_train_step(model, params, Adam(params), rng), (x, y), 3, rng, 100)
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(p.dtype == np.float32 for p in leaves(params))
    x_test, y_test = load_mnist_sample("test")
    pred = apps.bayes_classify(model, params, x_test[:300], np.full(10, -np.log(10)), 1, rng)
    assert pred.dtype.kind == "i" and np.mean(pred == y_test[:300]) > 0.4  # chance is 0.1


def test_conditional_augment_keeps_real_images_and_class_balance(sample):
    model, params = small()
    x, y = sample[0][:6], sample[1][:6]
    x_all, y_all = apps.conditional_augment(model, params, np.random.default_rng(0), x, y, 3, batch_size=4)
    assert x_all.shape == (24, 1, 28, 28) and x_all.dtype == np.float32
    np.testing.assert_array_equal(x_all[:6], x)
    np.testing.assert_array_equal(np.bincount(y_all, minlength=10), 4 * np.bincount(y, minlength=10))
    with pytest.raises(ValueError, match="factor must be a non-negative integer"):
        apps.conditional_augment(model, params, np.random.default_rng(0), x, y, 1.5)


def test_balanced_subset(sample):
    y = sample[1]
    idx = cvae_mnist.balanced_subset(np.random.default_rng(0), y, 100)
    assert len(set(idx)) == 100 and np.all(np.bincount(y[idx]) == 10)
    assert len(cvae_mnist.balanced_subset(np.random.default_rng(0), y, 10**6)) == len(y)
    with pytest.raises(ValueError, match="multiple of 10"):
        cvae_mnist.balanced_subset(np.random.default_rng(0), y, 105)


def test_demo_smoke_run_writes_the_picture_and_metrics(tmp_path, monkeypatch):
    import matplotlib.image

    predicted, real_classify = [], apps.bayes_classify
    monkeypatch.setattr(apps, "bayes_classify", lambda *a, **kw: predicted.append(real_classify(*a, **kw))
                        or predicted[-1])
    metrics = cvae_mnist.main(["--sample", "--epochs", "0.05", "--labels", "100", "--test-n", "50",
                               "--hidden", "32", "--out", str(tmp_path)])
    picture = matplotlib.image.imread(tmp_path / "cvae_samples.png")
    assert picture.shape[:2] == (10 * 29 + 1, 10 * 29 + 1)  # ten rows (digits) of ten samples
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["bayes_vs_discriminative"][0]["n"] == 100
    y_test = load_mnist_sample("test")[1][:50]  # --sample --test-n 50: the packaged sample's first 50
    accuracy = saved["bayes_vs_discriminative"][0]["cvae_bayes_accuracy"]
    assert accuracy == np.mean(predicted[0] == y_test)  # the share of Bayes-rule predictions counted here
    assert saved == json.loads(json.dumps(metrics))
