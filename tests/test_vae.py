"""The VAE model: gradients, the IWAE bound against the ELBO, the applications."""
import time

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from minigen import apps
from minigen.data import binarize, load_mnist_sample
from minigen.metrics import iwae_nll
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam, leaves
from minigen.train import train_epochs


def tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [tree_map(fn, v) for v in tree]
    return fn(tree)


def tree_dot(a, b):
    return sum(float(np.sum(x * y)) for x, y in zip(leaves(a), leaves(b)))


@pytest.fixture(scope="module")
def digits():
    x, _ = load_mnist_sample("test")
    return x


@pytest.mark.parametrize("conv", [False, True])
def test_loss_gradient_matches_a_directional_finite_difference(conv, digits):
    """d/dh loss(params + h v) at h = 0 equals <grad, v>, in float64, for a random direction v."""
    model = VAE(VAEConfig(latent=3, hidden=16, conv=conv))
    rng = np.random.default_rng(0)
    # Zero biases put every background pixel's pre-activation exactly on ReLU's kink
    # (a blank patch times any weight is 0): jitter all params off it.
    params = tree_map(lambda p: p.astype(np.float64) + 0.05 * rng.standard_normal(p.shape), model.init(rng))
    x = binarize(rng, digits[:4]).astype(np.float64)
    eps = rng.standard_normal((4, 3))
    v = tree_map(lambda p: rng.standard_normal(p.shape), params)
    # A unit-norm direction: a step of h moves each of the many ReLU pre-activations
    # so little that (almost) none crosses its kink, where the derivative jumps.
    norm = np.sqrt(tree_dot(v, v))
    v = tree_map(lambda d: d / norm, v)
    h = 1e-5
    shifted = lambda s: model.loss(tree_map(lambda pv: pv[0] + s * h * pv[1], zip_trees(params, v)), x, eps)
    numeric = (shifted(1) - shifted(-1)) / (2 * h)
    analytic = tree_dot(grad(model.loss)(params, x, eps), v)
    assert abs(numeric - analytic) / (abs(numeric) + abs(analytic)) < 1e-7


def zip_trees(a, b):
    if isinstance(a, dict):
        return {k: zip_trees(a[k], b[k]) for k in a}
    if isinstance(a, list):
        return [zip_trees(x, y) for x, y in zip(a, b)]
    return (a, b)


@pytest.mark.parametrize("conv", [False, True])
def test_a_train_step_keeps_float32_and_lowers_the_loss(conv, digits):
    model = VAE(VAEConfig(latent=4, hidden=32, conv=conv))
    rng = np.random.default_rng(0)
    params = model.init(rng)
    opt = Adam(params, lr=1e-3)
    history = train_epochs(make_train_step(model, params, opt, rng), (digits[:256],), 3, rng, 64)
    assert history[-1]["loss"] < history[0]["loss"]
    for array in leaves(params) + leaves(opt.state):
        assert array.dtype == np.float32
    g = grad(model.loss)(params, digits[:2], rng.standard_normal((2, 4), dtype=np.float32))
    assert all(a.dtype == np.float32 for a in leaves(g))


def test_iwae_bound_is_above_the_elbo_and_k1_matches_it_in_expectation(digits):
    model = VAE(VAEConfig(latent=5, hidden=32))
    rng = np.random.default_rng(1)
    params = model.init(rng)
    x = binarize(rng, digits[:20])
    many = 2000
    eps = rng.standard_normal((many, 20, 5), dtype=np.float32)
    log_w = model.iwae_log_weights(params, x, eps).astype(np.float64)  # (K, N)
    elbo = np.mean([model.elbo(params, x, eps[k]) for k in range(200)], axis=0)
    # E[log w] is the ELBO; its MC error over 2000 draws is a few hundredths of a nat here.
    se = log_w.std(axis=0) / np.sqrt(many)
    assert np.all(np.abs(log_w.mean(axis=0) - elbo) < 5 * se + 0.5)
    from minigen.losses import iwae_bound
    assert np.all(iwae_bound(log_w) >= log_w.mean(axis=0))
    nll = iwae_nll(model, params, x, k=100, rng=rng, batch_size=7, max_samples_per_pass=70)  # odd chunks
    assert nll.shape == (20,) and np.all(nll <= -elbo + 5 * se + 0.5)


def test_sampling_reconstruction_and_interpolation(digits):
    model = VAE(VAEConfig(latent=2, hidden=16))
    rng = np.random.default_rng(2)
    params = model.init(rng)
    samples = model.sample(params, rng, 5)
    assert samples.shape == (5, 1, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    assert model.reconstruct(params, digits[:3]).shape == (3, 1, 28, 28)
    for spherical in (False, True):
        strip = apps.interpolate(model, params, digits[0], digits[1], 6, spherical=spherical)
        ends = model.decode_mean(params, model.encode(params, digits[:2])[0])
        np.testing.assert_allclose(strip[[0, -1]], ends, atol=1e-5)
    assert apps.latent_manifold(model, params, 4).shape == (16, 1, 28, 28)
    with pytest.raises(ValueError, match="needs a 2-d latent space, the model has 3"):
        apps.latent_manifold(VAE(VAEConfig(latent=3)), None)


def test_slerp_stays_on_the_sphere_and_lerp_on_the_line():
    z0, z1 = np.array([3.0, 0.0], np.float32), np.array([0.0, 3.0], np.float32)
    arc = apps.slerp(z0, z1, 7)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 3.0, rtol=1e-6)
    line = apps.lerp(z0, z1, 3)
    np.testing.assert_allclose(line[1], [1.5, 1.5])
    np.testing.assert_allclose(apps.slerp(z0, z0, 3), np.stack([z0] * 3))


def test_binarize_draws_bernoulli_pixels():
    x = np.full((200, 1, 28, 28), 0.3, np.float32)
    b = binarize(np.random.default_rng(0), x)
    assert set(np.unique(b)) == {0.0, 1.0} and b.dtype == np.float32
    assert abs(b.mean() - 0.3) < 0.005


def test_vae_refuses_images_of_the_wrong_shape():
    model = VAE(VAEConfig(conv=True))
    params = model.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"Conv2d.*expected input of shape \(N, 1, H, W\), got \(2, 3, 28, 28\)"):
        model.encode(params, np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="Dense"):
        VAE().encode(VAE().init(np.random.default_rng(0)), np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="expected x and logits of the same shape"):
        from minigen.losses import bernoulli_log_likelihood
        bernoulli_log_likelihood(np.zeros((2, 784), np.float32), anp.zeros((2, 1, 28, 28), np.float32))


def test_train_epochs_stops_within_its_time_budget(rng):
    calls = []

    def slow_step(batch):
        calls.append(len(batch[0]))
        time.sleep(0.01)
        return {"loss": 0.0}

    history = train_epochs(slow_step, (np.zeros((40, 1), np.float32),), 100, rng, batch_size=10, max_seconds=0.25)
    assert 1 <= len(history) <= 6  # each epoch takes >= 0.04 s: the budget allows about 6, never all 100
    assert sum(h["seconds"] for h in history) < 0.3  # the budget, give or take the last epoch's jitter
