"""The M2 model (Kingma et al. 2014): its bounds against slow references, gradients, a train step, the demo."""
import json

import numpy as np
import pytest
from autograd import grad

from minigen import losses, ops
from minigen.checkpoint import load_params
from minigen.data import binarize, load_mnist_sample
from minigen.gradcheck import numerical_grad
from minigen.models.m2 import (
    M2,
    M2Config,
    categorical_entropy,
    classification_loss,
    labelled_bound,
    semi_supervised_objective,
    unlabelled_bound,
)
from minigen.models.semisupervised import labelled_subset, make_train_step
from minigen.optim import SGD, Adam, leaves

SMALL = M2Config(latent=3, hidden=16)


@pytest.fixture(scope="module")
def data():
    x, y = load_mnist_sample("test")
    return binarize(np.random.default_rng(0), x[:12]), y[:12]


@pytest.fixture(scope="module")
def small():
    model = M2(SMALL)
    return model, model.init(np.random.default_rng(0))


def noise(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def test_every_loss_is_per_example_float32(small, data, rng):
    model, params = small
    x, y = data
    n, c, d = len(x), SMALL.n_classes, SMALL.latent
    neg_L = model.neg_L(params, x, y, noise(rng, n, d))
    every_eps = noise(rng, c, n, d)
    every = model.neg_L_every_label(params, x, every_eps)
    log_qy = model.log_qy(params, x)
    per_example = {"neg_L": neg_L, "every_label": every, "neg_U": model.neg_U(params, x, noise(rng, c, n, d)),
                   "log_qy": log_qy, "entropy": categorical_entropy(log_qy),
                   "classification": classification_loss(log_qy, y),
                   "labelled_bound": labelled_bound(neg_L, np.log(0.1), neg_L * 0),  # a numpy float64 log p(y)
                   "unlabelled_bound": unlabelled_bound(log_qy, every)}
    shapes = {"every_label": (n, c), "log_qy": (n, c)}
    for name, value in per_example.items():
        assert value.shape == shapes.get(name, (n,)), name
        assert value.dtype == np.float32, name
    objective = model.loss(params, x[:4], y[:4], x[4:], noise(rng, 4, d), noise(rng, c, n - 4, d), 100, 900)
    assert objective.shape == () and objective.dtype == np.float32
    # The values, against the formulas written here in float64 from log q(y|x) and -L(x, y):
    lq, ev = log_qy.astype(np.float64), every.astype(np.float64)
    q = np.exp(lq)
    entropy = -np.sum(q * lq, axis=1)
    np.testing.assert_allclose(per_example["entropy"], entropy, rtol=1e-5)
    assert np.all(entropy > 0.1)  # an untrained classifier is unsure: not a degenerate case
    np.testing.assert_allclose(per_example["classification"], -lq[np.arange(n), y], rtol=1e-6)
    np.testing.assert_allclose(per_example["labelled_bound"], neg_L.astype(np.float64) + np.log(0.1), rtol=1e-6)
    np.testing.assert_allclose(per_example["unlabelled_bound"], np.sum(q * ev, axis=1) + entropy, rtol=1e-5)
    np.testing.assert_allclose(every[np.arange(n), y], model.neg_L(params, x, y, every_eps[y, np.arange(n)]),
                               rtol=1e-5)  # column y of every_label is -L(x, y) with the same noise


def test_objective_weighs_the_batch_means_as_eq_9():
    neg_L, neg_U, nll = np.float32([-100, -120]), np.float32([-90, -95, -97]), np.float32([2.0, 0.5])
    n_l, n_u = 100, 900
    alpha = 0.1 * (n_l + n_u)
    expected = (n_l * 110 + n_u * 94 + alpha * 1.25) / (n_l + n_u)
    value = semi_supervised_objective(neg_L, neg_U, nll, n_l, n_u, alpha)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_loss_is_eq_9_with_the_papers_alpha(small, data, rng):
    """M2.loss = J^α / N with α = 0.1 N (Kingma et al. 2014, §3.1.2), from its parts, in float64 here."""
    model, params = small
    x, y = data
    c, d = SMALL.n_classes, SMALL.latent
    eps_l, eps_u = noise(rng, 4, d), noise(rng, c, 8, d)
    L = -model.neg_L(params, x[:4], y[:4], eps_l).astype(np.float64)  # the paper's L(x, y) = -bound
    U = -model.neg_U(params, x[4:], eps_u).astype(np.float64)
    nll_y = -model.log_qy(params, x[:4]).astype(np.float64)[np.arange(4), y[:4]]
    n_l, n_u = 100, 900
    expected = (n_l * L.mean() + n_u * U.mean() + 0.1 * (n_l + n_u) * nll_y.mean()) / (n_l + n_u)
    got = model.loss(params, x[:4], y[:4], x[4:], eps_l, eps_u, n_l, n_u)
    assert got == pytest.approx(expected, rel=1e-5)
    assert abs(expected - (n_l * L.mean() + n_u * U.mean()) / (n_l + n_u)) > 0.05  # the α term shows


def test_unlabelled_bound_is_the_sum_over_classes_written_out(small, data, rng):
    """The tiled, vectorised -U(x) against a Python loop over labels, one -L(x, y) at a time."""
    model, params = small
    x, _ = data
    eps = noise(rng, SMALL.n_classes, len(x), SMALL.latent)
    q = np.exp(model.log_qy(params, x).astype(np.float64))
    reference = np.zeros(len(x))
    for c in range(SMALL.n_classes):
        neg_L = model.neg_L(params, x, np.full(len(x), c), eps[c])
        for i in range(len(x)):
            reference[i] += q[i, c] * neg_L[i] - q[i, c] * np.log(q[i, c])
    np.testing.assert_allclose(model.neg_U(params, x, eps), reference, rtol=1e-5)


def test_a_certain_classifier_makes_U_the_labelled_bound_of_its_class(small, data, rng):
    """q(y|x) one-hot on c: the entropy is 0 and -U(x) = -L(x, c), through the whole model."""
    model, params = small
    x, _ = data
    eps = noise(rng, SMALL.n_classes, len(x), SMALL.latent)
    head = {k: v.copy() for k, v in params["classifier"][-1].items()}
    for c in (0, 7):
        head["W"][:] = 0
        head["b"][:] = 0
        head["b"][c] = 200.0  # log q = -200 elsewhere: e^-200 is 0 in float32
        certain = {**params, "classifier": params["classifier"][:-1] + [head]}
        np.testing.assert_allclose(model.neg_U(certain, x, eps), model.neg_L(certain, x, np.full(len(x), c), eps[c]),
                                   rtol=1e-6)
        log_q = np.full((3, 4), -1e4, np.float32)
        log_q[:, c % 4] = 0
        every = rng.standard_normal((3, 4)).astype(np.float32)
        np.testing.assert_array_equal(unlabelled_bound(log_q, every), every[:, c % 4])


def test_labelled_bound_is_eq_6_in_expectation(small, data, rng):
    """The closed-form KL replaces E_q[log p(z) - log q(z|x,y)]: the same mean over z."""
    model, params = small
    x, y = data[0][:3], data[1][:3]
    yy = ops.one_hot(y, SMALL.n_classes, 3)
    mu, logvar = model.encode(params, x, yy)
    draws = 4000
    z = losses.reparameterize(mu[None], logvar[None], noise(rng, draws, 3, SMALL.latent)).reshape(-1, SMALL.latent)
    tile = lambda a: np.tile(a, (draws, 1))
    mc = losses.standard_normal_log_density(z) - losses.diag_gaussian_log_density(z, tile(mu), tile(logvar))
    mc = mc.reshape(draws, 3).astype(np.float64)
    kl = losses.gaussian_kl(mu, logvar)
    se = mc.std(axis=0) / np.sqrt(draws)
    assert np.all(np.abs(mc.mean(axis=0) + kl) < 5 * se + 1e-3)
    log_px = losses.bernoulli_log_likelihood(x, model.decode(params, z[:3], yy))
    eps = ((z[:3] - mu) / np.exp(0.5 * logvar)).astype(np.float32)  # the noise that gave z[:3]
    np.testing.assert_allclose(model.neg_L(params, x, y, eps), log_px - np.log(10) - kl, rtol=1e-5)


# --- The bounds against exact integrals: a 1-d z, 4 pixels, 3 labels, every sum written out -------

TINY = {"bernoulli": M2Config(latent=1, hidden=5, n_classes=3, image_shape=(1, 2, 2)),  # 4 binary pixels
        "gaussian": M2Config(latent=1, hidden=5, n_classes=3, image_shape=(3,), likelihood="gaussian")}  # M1's z1
NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(60)  # ∫ f(t) N(t; 0, 1) dt = Σ_k w_k f(t_k) / √(2π)
WEIGHTS = WEIGHTS / np.sqrt(2 * np.pi)


@pytest.fixture(scope="module", params=sorted(TINY))
def tiny(request):
    model = M2(TINY[request.param])
    rng = np.random.default_rng(4)
    params = model.init(rng)
    if request.param == "bernoulli":
        x = (rng.random((5, 1, 2, 2)) < 0.5).astype(np.float32)
    else:  # features on M1's scale
        x = rng.standard_normal((5, 3)).astype(np.float32)
    return model, params, x


def log_bernoulli(x, logits):
    """log p(x|y,z) written out in float64: Σ_pixels x log σ(l) + (1 - x) log(1 - σ(l))."""
    x, p = x.reshape(len(x), -1).astype(np.float64), 1 / (1 + np.exp(-logits.reshape(len(x), -1).astype(np.float64)))
    return np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)


def log_normal(z, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (z - mean) ** 2 / var)


def log_p_x(model, x, decoded):
    """log p(x|y,z) written out in float64 from the decoder's output: Bernoulli pixels or Gaussian features."""
    if model.cfg.likelihood == "bernoulli":
        return log_bernoulli(x, decoded)
    mean, logvar = (a.astype(np.float64) for a in decoded)
    return np.sum(log_normal(x.astype(np.float64), mean, np.exp(logvar)), axis=1)


def exact_log_joint(model, params, x, label):
    """log p(x, y) = log p(y) + log ∫ p(x|y,z) p(z) dz by quadrature over the prior: (N,)."""
    c = model.cfg.n_classes
    y = ops.one_hot(np.full(len(x), label), c, len(x))
    lik = np.stack([np.exp(log_p_x(model, x, model.decode(params, np.full((len(x), 1), t, np.float32), y)))
                    for t in NODES])  # (K, N)
    return np.log(1 / c) + np.log(WEIGHTS @ lik)


def eq_6_by_quadrature(model, params, x, label):
    """E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)], each density written out: (N,)."""
    c = model.cfg.n_classes
    y = ops.one_hot(np.full(len(x), label), c, len(x))
    mu, logvar = (a.astype(np.float64)[:, 0] for a in model.encode(params, x, y))
    total = 0
    for t, w in zip(NODES, WEIGHTS):
        z = mu + np.exp(0.5 * logvar) * t
        log_px = log_p_x(model, x, model.decode(params, z[:, None].astype(np.float32), y))
        total = total + w * (log_px + np.log(1 / c) + log_normal(z, 0, 1)
                             - log_normal(z, mu, np.exp(logvar)))
    return total


def expected(fn, n, c=None):
    """E_eps[fn(eps)] by the same quadrature: eps (n, 1), or (c, n, 1) with one node for every label."""
    return sum(w * fn(np.full((n, 1) if c is None else (c, n, 1), t, np.float32)).astype(np.float64)
               for t, w in zip(NODES, WEIGHTS))


def test_labelled_bound_is_eq_6_and_below_the_exact_log_p_x_y(tiny):
    """E[-L(x, y)] (closed-form KL) equals eq. 6 integrated from its densities, and lies below
    log p(x, y) integrated exactly; the gap is the KL from q(z|x,y) to the true posterior, > 0 here."""
    model, params, x = tiny
    for label in range(model.cfg.n_classes):
        labels = np.full(len(x), label)
        bound = expected(lambda eps, labels=labels: model.neg_L(params, x, labels, eps), len(x))
        np.testing.assert_allclose(bound, eq_6_by_quadrature(model, params, x, label), rtol=1e-5)
        gap = exact_log_joint(model, params, x, label) - bound
        assert np.all(gap > 1e-4), gap


def test_unlabelled_bound_is_the_sum_over_labels_and_below_the_exact_log_p_x(tiny):
    """E[-U(x)] = Σ_y q(y|x) E[-L(x, y)] - Σ_y q(y|x) log q(y|x), the sum over labels written out with
    eq. 6 from its densities; it lies below log p(x) = log Σ_y p(x, y), each p(x, y) integrated exactly."""
    model, params, x = tiny
    q = np.exp(model.log_qy(params, x).astype(np.float64))
    reference, log_px = 0, -np.inf
    for label in range(model.cfg.n_classes):
        reference = reference + q[:, label] * (eq_6_by_quadrature(model, params, x, label) - np.log(q[:, label]))
        log_px = np.logaddexp(log_px, exact_log_joint(model, params, x, label))
    bound = expected(lambda eps: model.neg_U(params, x, eps), len(x), model.cfg.n_classes)
    np.testing.assert_allclose(bound, reference, rtol=1e-5)
    assert np.all(log_px - bound > 1e-4)


def test_the_best_q_y_makes_U_the_log_sum_over_labels(rng):
    """max over q(y|x) of Σ_y q(y) (-L_y) + H(q) is log Σ_y e^(-L_y), reached at q = softmax(-L): eq. 7
    is then the exact log p(x) = log Σ_y p(x, y) whenever each -L(x, y) is log p(x, y)."""
    neg_L = (2 * rng.standard_normal((6, 4)) - 100).astype(np.float32)
    best = neg_L - np.logaddexp.reduce(neg_L.astype(np.float64), axis=1, keepdims=True)
    log_sum = np.logaddexp.reduce(neg_L.astype(np.float64), axis=1)
    np.testing.assert_allclose(unlabelled_bound(best.astype(np.float32), neg_L), log_sum, rtol=1e-6)
    other = best + rng.standard_normal(best.shape)
    other = (other - np.logaddexp.reduce(other, axis=1, keepdims=True)).astype(np.float32)
    assert np.all(unlabelled_bound(other, neg_L) < log_sum - 1e-3)


def tree_unflatten(like, flat):
    """A tree shaped like `like` holding the consecutive entries of the vector flat."""
    start = 0

    def fill(tree):
        nonlocal start
        if isinstance(tree, dict):
            return {k: fill(tree[k]) for k in sorted(tree)}
        if isinstance(tree, list):
            return [fill(t) for t in tree]
        size = tree.size
        start += size
        return np.reshape(flat[start - size:start], tree.shape)

    return fill(like)


def test_gradient_of_J_matches_finite_differences():
    cfg = M2Config(latent=2, hidden=5, n_classes=3, image_shape=(1, 3, 3))
    model = M2(cfg)
    rng = np.random.default_rng(3)
    params = model.init(rng)
    flat = np.concatenate([p.ravel() for p in leaves(params)]).astype(np.float64)
    flat += 0.1 * rng.standard_normal(flat.shape)  # off zero biases
    x_l = (rng.random((4, 1, 3, 3)) < 0.5).astype(np.float64)
    x_u = (rng.random((5, 1, 3, 3)) < 0.5).astype(np.float64)
    labels = np.array([0, 2, 1, 2])
    eps_l, eps_u = rng.standard_normal((4, 2)), rng.standard_normal((3, 5, 2))
    J = lambda v: model.loss(tree_unflatten(params, v), x_l, labels, x_u, eps_l, eps_u, 40, 60)
    analytic, numeric = grad(J)(flat), numerical_grad(J, flat)
    # Smooth (softplus), so the two agree to ~1e-7 relatively; the atol covers the few
    # entries near 1e-5, where the difference quotient's rounding (~1e-10) dominates.
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    assert np.abs(analytic).max() > 1e-2  # not vacuous


def test_the_classifier_learns_from_unlabelled_images(small, data, rng):
    model, params = small
    x, _ = data
    eps = noise(rng, SMALL.n_classes, len(x), SMALL.latent)
    g = grad(lambda p: np.mean(model.neg_U(p, x, eps)))(params)
    classifier_grads = leaves(g["classifier"])
    assert all(np.abs(a).max() > 0 for a in classifier_grads)
    assert all(a.dtype == np.float32 for a in leaves(g))


def test_a_train_step_lowers_J_on_a_fixed_batch(data, rng):
    model = M2(SMALL)
    params = model.init(np.random.default_rng(1))
    x, y = data
    args = (x[:4], y[:4], x[4:], noise(rng, 4, 3), noise(rng, 10, 8, 3), 100, 900)
    before, grads = model.loss(params, *args), grad(model.loss)(params, *args)
    SGD(params, lr=1e-4).step(grads)
    assert model.loss(params, *args) < before
    for a in leaves(params):
        assert a.dtype == np.float32


def test_make_train_step_runs_and_keeps_float32(data, rng):
    model = M2(SMALL)
    params = model.init(rng)
    x, y = data
    opt = Adam(params, lr=1e-3)
    step = make_train_step(model, params, opt, rng, x[:4], y[:4], n_unlabelled=8, labelled_batch=3)
    losses_seen = [float(step((x[4:],))["loss"]) for _ in range(3)]
    assert all(np.isfinite(losses_seen))
    assert all(a.dtype == np.float32 for a in leaves(params) + leaves(opt.state))
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="labelled_copies must be a positive integer"):
            make_train_step(model, params, opt, rng, x[:4], y[:4], 8, labelled_copies=bad)


def test_labelled_subset_draws_the_same_number_per_class():
    _, y = load_mnist_sample("train")
    labelled, unlabelled = labelled_subset(y, 100, np.random.default_rng(0))
    assert np.all(np.bincount(y[labelled], minlength=10) == 10)
    assert len(np.intersect1d(labelled, unlabelled)) == 0 and len(labelled) + len(unlabelled) == len(y)
    again, _ = labelled_subset(y, 100, np.random.default_rng(0))
    np.testing.assert_array_equal(labelled, again)


def test_bad_labels_are_refused_clearly(small, data, rng):
    model, params = small
    x, y = data
    eps = noise(rng, 4, SMALL.latent)
    with pytest.raises(ValueError, match="labels must lie in \\[0, 10\\), got values in \\[0, 10\\]"):
        model.neg_L(params, x[:4], np.array([0, 3, 10, 2]), eps)
    with pytest.raises(ValueError, match="one_hot expects integer labels"):
        model.neg_L(params, x[:4], np.array([0.0, 1.0, 2.0, 3.0]), eps)
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(4,\), one per image, got shape \(3,\)"):
        model.neg_L(params, x[:4], y[:3], eps)
    with pytest.raises(ValueError, match=r"M2.loss: expected one label per labelled image, shape \(4,\)"):
        model.loss(params, x[:4], y[:5], x[4:], eps, noise(rng, 10, 8, 3), 100, 900)
    with pytest.raises(ValueError, match=r"expected eps of shape \(10, 8, 3\)"):
        model.neg_U(params, x[4:], noise(rng, 8, 3))
    with pytest.raises(ValueError, match="positive multiple of 10"):
        labelled_subset(y, 15, rng)
    with pytest.raises(ValueError, match="class 0 has 1 images, fewer than the 2 per class"):
        labelled_subset(np.arange(10).repeat([1] + [5] * 9), 20, rng)


def test_pictures_show_every_class(small, data):
    model, params = small
    grid = model.class_grid(params, np.zeros((4, SMALL.latent), np.float32))
    assert grid.shape == (40, 1, 28, 28) and 0 <= grid.min() and grid.max() <= 1
    x, _ = data
    strips = model.analogies(params, x[:2])
    assert strips.shape == (22, 1, 28, 28)
    np.testing.assert_array_equal(strips[11], x[1])


def test_demo_decays_the_learning_rate_only_over_a_cpu_budget(semisupervised_demo):
    demo = semisupervised_demo
    assert demo.parse_args([]).lr_final is not None  # the default run: a budget and its schedule
    assert demo.parse_args(["--alpha-scale", "0.1", "--epochs", "30", "--cpu-minutes", "0"]).lr_final is None
    with pytest.raises(SystemExit):
        demo.parse_args(["--cpu-minutes", "0", "--lr-final", "1e-4"])


def test_demo_smoke_run_writes_its_files(tmp_path, semisupervised_demo):
    demo = semisupervised_demo
    out = tmp_path / "m2"
    demo.main(["--sample", "--out", str(out), "--hidden", "16", "--latent", "3", "--test-images", "200"])
    for name in ("m2_samples.png", "m2_analogies.png", "loss.png", "m2.npz", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    # The saved M2's error on the 200 test images, counted here from its classifier's log q(y|x).
    x_test, y_test = load_mnist_sample("test")
    model = M2(M2Config(latent=3, hidden=16))
    params, _ = load_params(out / "m2.npz", model.init(np.random.default_rng(0)))
    predicted = np.argmax(model.log_qy(params, x_test[:200]), axis=1)
    assert metrics["test_error"] == pytest.approx(np.mean(predicted != y_test[:200]), abs=1e-12)
    assert metrics["test_error_per_epoch"][-1] == metrics["test_error"]
    assert metrics["baseline_test_error"] * 200 == pytest.approx(round(metrics["baseline_test_error"] * 200))
    # α = alpha_scale N (the paper's 0.1 N, §3.1.2; the demo's 10 N), N counting the labelled images as often
    # as they are shown.
    n_total = metrics["labelled_copies_used"] * 100 + 2900
    assert metrics["n_total"] == n_total and metrics["alpha"] == pytest.approx(10 * n_total)
    assert metrics["labels"] == 100
