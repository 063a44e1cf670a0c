"""The VAE model: gradients, the IWAE bound against the ELBO, the applications."""
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
    x_all = np.broadcast_to(x[None], (many, *x.shape)).reshape(many * 20, *x.shape[1:])
    elbos = model.elbo(params, x_all, eps.reshape(many * 20, 5)).astype(np.float64).reshape(many, 20)
    elbo = elbos.mean(axis=0)
    # E[log w] is the ELBO. With the same z in both, log p(x|z) cancels in log w - ELBO sample by sample,
    # leaving log p(z) - log q(z|x) + KL, of mean 0 and a small spread: 5 standard errors, no slack.
    gap = log_w - elbos
    se = gap.std(axis=0) / np.sqrt(many)
    assert np.all(np.abs(gap.mean(axis=0)) < 5 * se) and se.max() < 0.05
    from minigen.losses import iwae_bound
    assert np.all(iwae_bound(log_w) >= log_w.mean(axis=0))
    nll = iwae_nll(model, params, x, k=100, rng=rng, batch_size=7, max_samples_per_pass=70)  # odd chunks
    se_elbo = elbos.std(axis=0) / np.sqrt(many)
    assert nll.shape == (20,) and np.all(nll <= -elbo + 5 * se_elbo)  # (no slack: the bound is tighter by nats)


# --- The IWAE bound as a training objective (k > 1) ----------------------------------------------

def tiny_iwae(seed=0):
    """A tanh IWAE (smooth everywhere, so finite differences need no kink margin), float64 params."""
    model = VAE(VAEConfig(latent=3, hidden=8, activation="tanh", k=5))
    rng = np.random.default_rng(seed)
    params = tree_map(lambda p: p.astype(np.float64) + 0.1 * rng.standard_normal(p.shape), model.init(rng))
    return model, params, rng


def loss_with_entry(model, params, x, eps, path, index, value):
    """model.loss with the one entry params[path][index] set to value (params itself untouched)."""
    p = tree_map(lambda a: a, params)  # fresh containers, shared leaves
    changed = p[path[0]][path[1]][path[2]].copy()
    changed[index] = value
    p[path[0]][path[1]][path[2]] = changed
    return model.loss(p, x, eps)


def test_iwae_loss_gradient_matches_central_differences(digits):
    """grad of VAE.loss with eps (k=5, N, latent): before commit 0bfb8dd this raised autograd's
    "Can't handle extra leading dims" (the VJP of np.broadcast_to cannot add the k axis)."""
    model, params, rng = tiny_iwae()
    x = binarize(rng, digits[:3]).astype(np.float64)
    eps = rng.standard_normal(model.noise_shape(3))
    assert eps.shape == (5, 3, 3)
    analytic = grad(model.loss)(params, x, eps)
    h = 1e-5
    for path in (("encoder", 1, "W"), ("encoder", 3, "b"), ("decoder", 0, "W"), ("decoder", 2, "b")):
        base = params[path[0]][path[1]][path[2]]
        for index in [tuple(rng.integers(0, n) for n in base.shape) for _ in range(3)]:
            up, down = (loss_with_entry(model, params, x, eps, path, index, base[index] + s) for s in (h, -h))
            numeric = (up - down) / (2 * h)
            got = analytic[path[0]][path[1]][path[2]][index]
            assert abs(numeric - got) <= 1e-7 * max(1e-8, abs(numeric) + abs(got)) + 1e-10, (path, index)


def numpy_log_weights(model, params, x, eps):
    """log w = log p(x|z) + log N(z; 0, I) - log N(z; mu, e^logvar) for eps (K, N, latent), in float64
    numpy from the encoder's and decoder's outputs alone: an independent reference, (K, N)."""
    k, n, latent = eps.shape
    mu, logvar = (np.asarray(a, np.float64) for a in model.encode(params, x))
    z = mu + np.exp(logvar / 2) * eps  # (K, N, latent)
    logits = np.asarray(model.decode(params, z.reshape(k * n, latent).astype(x.dtype)), np.float64)
    logits = logits.reshape(k, n, -1)
    flat = np.asarray(x, np.float64).reshape(1, n, -1)
    log_px_z = np.sum(flat * logits - np.logaddexp(0, logits), axis=2)  # log σ(l)^x (1-σ(l))^(1-x)
    log_pz = np.sum(-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi), axis=2)
    log_qz = np.sum(-0.5 * eps ** 2 - 0.5 * logvar - 0.5 * np.log(2 * np.pi), axis=2)  # (z - mu)/σ = eps
    return log_px_z + log_pz - log_qz


def log_mean_exp_bound(log_w):
    """log (1/K Σ_k e^(log w_k)) per column of a (K, N) array, written out with plain numpy."""
    top = log_w.max(axis=0)
    return top + np.log(np.exp(log_w - top).mean(axis=0))


def test_iwae_loss_is_minus_the_mean_log_mean_exp_of_independent_log_weights(digits):
    """The k=5 loss against log w = log p(x|z) + log N(z; 0, I) - log N(z; mu, σ²) assembled here in
    numpy from the networks' outputs (only the encoder and decoder forward passes are shared)."""
    model, params, rng = tiny_iwae(1)
    x = binarize(rng, digits[:4]).astype(np.float64)
    eps = rng.standard_normal((5, 4, 3))
    log_w = numpy_log_weights(model, params, x, eps)
    expected = -np.mean(log_mean_exp_bound(log_w))
    assert model.loss(params, x, eps) == pytest.approx(expected, rel=1e-12)
    assert expected < -np.mean(log_w)  # (Jensen: tighter than the average -log w, the k=1 objective)


def test_minigen_train_iwae_runs_from_the_shell(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "iwae"
    result = subprocess.run([sys.executable, "-m", "minigen", "train", "iwae", "--sample", "--epochs", "1",
                             "--set", "hidden=16", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and (out / "metrics.jsonl").is_file()


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
    """On a counting clock (no wall time: timing belongs in benchmarks/): each step takes 1 unit, an
    epoch of 4 steps 4 units. Budget 10: epochs 1 and 2 end at 8; a third would end at 12, so none starts."""
    ticks = []

    def step(batch):
        ticks.append(1)
        return {"loss": 0.0}

    history = train_epochs(step, (np.zeros((40, 1), np.float32),), 100, rng, batch_size=10, max_seconds=10,
                           clock=lambda: float(len(ticks)))
    assert len(history) == 2 and len(ticks) == 8


def test_a_train_step_logs_the_elbo_terms_that_make_its_loss(digits):
    """recon and kl are logged (minigen check reads kl to spot posterior collapse) and sum to the
    beta-weighted loss; the IWAE bound has no separate KL, so it logs neither."""
    for beta in (1.0, 4.0):
        model, rng = VAE(VAEConfig(beta=beta)), np.random.default_rng(0)
        params = model.init(rng)
        logged = make_train_step(model, params, Adam(params), rng)((digits[:32],))
        assert logged["kl"] > 0 and logged["recon"] > 0
        assert logged["loss"] == pytest.approx(logged["recon"] + beta * logged["kl"], rel=1e-5)
    model = VAE(VAEConfig(k=5))
    params = model.init(rng)
    assert set(make_train_step(model, params, Adam(params), rng)((digits[:32],))) == {"loss", "grad_norm"}
