"""GAN losses against their formulas and torch, the saturation property, WGAN-GP's penalty
by double backprop against torch, alternating training (clipping, n_critic) and mode coverage."""
import runpy
import sys
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from autograd import grad

from minigen import losses, nn
from minigen.data import ring
from minigen.gradcheck import check_grad
from minigen.metrics import mode_coverage
from minigen.models.gan import GAN, RECIPES, make_gan_step, mlp_gan, toy_gan
from minigen.optim import SGD, leaves

DEMO = Path(__file__).resolve().parents[1] / "demos" / "mode_collapse.py"


def logits_pair(seed=0, n=7, m=5):
    rng = np.random.default_rng(seed)
    return 3 * rng.standard_normal(n), 3 * rng.standard_normal(m)


TWO_SIDED = ("discriminator_loss", "discriminator_loss_smoothed", "wgan_critic_loss", "hinge_discriminator_loss")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# --- Each loss against its formula written directly (float64, moderate logits) ---------------

def test_losses_match_their_formulas():
    real, fake = logits_pair()
    d_real, d_fake = sigmoid(real), sigmoid(fake)
    expected = {
        "discriminator_loss": -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake)),
        "discriminator_loss_smoothed": -np.mean(0.9 * np.log(d_real) + 0.1 * np.log(1 - d_real))
                                       - np.mean(np.log(1 - d_fake)),
        "generator_loss_minimax": np.mean(np.log(1 - d_fake)),
        "generator_loss_nonsaturating": -np.mean(np.log(d_fake)),
        "wgan_critic_loss": np.mean(fake) - np.mean(real),
        "wgan_generator_loss": -np.mean(fake),
        "hinge_discriminator_loss": np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)),
        "hinge_generator_loss": -np.mean(fake),
    }
    for name, value in expected.items():
        fn = getattr(losses, name)
        got = fn(real, fake) if name in TWO_SIDED else fn(fake)
        assert got == pytest.approx(value, rel=1e-12, abs=1e-12), name


# --- Against torch, including logits of ±1e4 -------------------------------------------------

def torch_losses(real, fake):
    r, f = torch.tensor(real), torch.tensor(fake)
    bce = F.binary_cross_entropy_with_logits
    return {
        "discriminator_loss": bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)),
        "discriminator_loss_smoothed": bce(r, torch.full_like(r, 0.9)) + bce(f, torch.zeros_like(f)),
        "generator_loss_minimax": -bce(f, torch.zeros_like(f)),  # E[log(1 - σ(l))]
        "generator_loss_nonsaturating": bce(f, torch.ones_like(f)),
        "wgan_critic_loss": f.mean() - r.mean(),
        "wgan_generator_loss": -f.mean(),
        "hinge_discriminator_loss": F.relu(1 - r).mean() + F.relu(1 + f).mean(),
        "hinge_generator_loss": -f.mean(),
    }


def call(name, real, fake):
    fn = getattr(losses, name)
    return fn(real, fake) if name in TWO_SIDED else fn(fake)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_losses_match_torch_and_stay_finite_for_huge_logits(scale):
    rng = np.random.default_rng(1)
    real = (scale * rng.standard_normal((6, 1))).astype(np.float32)
    fake = (scale * rng.standard_normal((4, 1))).astype(np.float32)
    real[0, 0], fake[0, 0] = -scale, scale  # both tails for sure: D badly wrong on one of each
    for name, ref in torch_losses(real, fake).items():
        value = call(name, real, fake)
        assert np.isfinite(value) and value.dtype == np.float32, name
        assert float(value) == pytest.approx(ref.item(), rel=1e-5, abs=1e-5), name
        g = grad(lambda f, name=name: call(name, real, f))(fake)
        assert np.all(np.isfinite(g)) and g.dtype == np.float32, name


@pytest.mark.parametrize("name", ["discriminator_loss", "discriminator_loss_smoothed", "generator_loss_minimax",
                                  "generator_loss_nonsaturating", "wgan_critic_loss", "wgan_generator_loss",
                                  "hinge_discriminator_loss", "hinge_generator_loss"])
def test_loss_gradients_match_finite_differences(name):
    real, fake = logits_pair(2)
    fake = fake + 0.3  # keep hinge's kinks at ±1 away from every entry
    assert check_grad(lambda f: call(name, real, f), fake) < 1e-7
    if name in TWO_SIDED:
        assert check_grad(lambda r: call(name, r, fake), real) < 1e-7


def test_smoothed_d_is_best_when_it_gives_real_digits_the_smoothed_label():
    """With real_label s, the real term's slope in a logit, (σ(l) - s)/N, is zero at D(x) = s: D is
    not pushed to certainty. Fakes keep their target 0, and s = 1 is the plain loss."""
    real, fake = np.full(3, np.log(0.8 / 0.2)), np.zeros(2)  # D(x) = 0.8 on every real
    slope = grad(lambda r: losses.discriminator_loss_smoothed(r, fake, real_label=0.8))(real)
    np.testing.assert_allclose(slope, 0, atol=1e-12)
    assert np.all(grad(losses.discriminator_loss)(real, fake) < 0)  # the plain loss still pushes up
    r, f = logits_pair(3)
    assert losses.discriminator_loss_smoothed(r, f, real_label=1.0) == pytest.approx(losses.discriminator_loss(r, f))
    with pytest.raises(ValueError, match=r"real_label must be in \(0, 1\]"):
        losses.discriminator_loss_smoothed(r, f, real_label=1.5)


@pytest.mark.parametrize("model, options", [("gan", {"hidden": "8"}), ("dcgan", {"width": "2", "latent": "4"}),
                                            ("cgan", {"arch": "conv", "width": "2", "latent": "4"})])
def test_label_smoothing_is_an_option_of_the_cross_entropy_gans_only(model, options):
    from minigen import models
    rng = np.random.default_rng(1)
    x, y = rng.random((4, 1, 28, 28), dtype=np.float32), np.arange(4)
    plain, smoothed = (models.build(model, {**options, **extra}, np.random.default_rng(0))
                       for extra in ({}, {"smooth": "0.1"}))
    metrics = [t.step((x, y) if t.needs_labels else (x,)) for t in (plain, smoothed)]
    assert metrics[0]["d_loss"] != metrics[1]["d_loss"]  # the option reaches D's loss
    with pytest.raises(ValueError, match="smooth applies to the cross-entropy GAN losses"):
        models.build("wgan-gp", {"hidden": "8", "smooth": "0.1"}, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"smooth must be in \[0, 1\)"):
        models.build("gan", {"hidden": "8", "smooth": "1"}, np.random.default_rng(0))


def test_scores_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"fake_logits of shape \(N,\) or \(N, 1\)"):
        losses.discriminator_loss(np.zeros(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="real_scores"):
        losses.wgan_critic_loss(np.zeros(()), np.zeros(3))


# --- The lecture's point: the minimax loss saturates, the non-saturating one does not ------------

def test_minimax_generator_gradient_vanishes_as_d_rejects_fakes_but_nonsaturating_does_not():
    """As D(G(z)) = σ(l) -> 0 (l -> -inf, D confidently right), d/dl of log(1 - σ(l)) = -σ(l) -> 0:
    a generator that is losing gets no signal. -log σ(l) has d/dl = -(1 - σ(l)) -> -1."""
    m = 4
    slopes = {}
    for logit in (-2.0, -5.0, -10.0, -20.0):
        fake = np.full(m, logit, dtype=np.float32)
        slopes[logit] = (grad(losses.generator_loss_minimax)(fake)[0],
                         grad(losses.generator_loss_nonsaturating)(fake)[0])
    minimax, nonsat = zip(*slopes.values())
    assert all(abs(a) > abs(b) for a, b in zip(minimax, minimax[1:]))  # shrinking as D(G(z)) -> 0 ...
    assert abs(minimax[-1]) < 1e-8 * (1 / m)  # ... to nothing: σ(-20) ≈ 2e-9
    assert all(g == pytest.approx(-1 / m, rel=0.15) for g in nonsat)  # the non-saturating one stays ≈ -1/m
    assert nonsat[-1] == pytest.approx(-1 / m, rel=1e-6)
    # Both losses agree on where the generator is pushed: the same sign (towards larger logits).
    assert all(a < 0 and b < 0 for a, b in slopes.values())


# --- WGAN-GP's gradient penalty: double backprop against torch ------------------------------------

def mlp_critic():
    """Layers and the shape of one example. Tanh, not only ReLUs: its second derivative is not 0,
    so the double-backprop path through the activations is exercised too."""
    return [nn.Dense(8), nn.Tanh(), nn.Dense(8), nn.LeakyReLU(0.2), nn.Dense(1)], (3,)


def conv_critic():
    return [nn.Conv2d(3, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 3, stride=1, padding=1),
            nn.Tanh(), nn.Flatten(), nn.Dense(1)], (2, 6, 6)


def torch_apply(layers, params, x):
    """The same critic in torch, layer by layer, on the same parameter values."""
    for layer, p in zip(layers, params):
        kind = layer.name.split("(")[0]
        if kind == "Dense":
            x = x @ p["W"] + p["b"]
        elif kind == "Conv2d":
            stride = 2 if "stride=2" in layer.name else 1
            x = F.conv2d(x, p["w"], p["b"], stride=stride, padding=1)
        elif kind == "LeakyReLU":
            x = F.leaky_relu(x, 0.2)
        elif kind == "Tanh":
            x = torch.tanh(x)
        elif kind == "Flatten":
            x = x.flatten(1)
    return x


@pytest.mark.parametrize("make_critic", [mlp_critic, conv_critic])
def test_gradient_penalty_and_its_parameter_gradient_match_torch_double_backprop(make_critic):
    layers, shape = make_critic()
    critic = nn.Sequential(*layers)
    rng = np.random.default_rng(3)
    _, params = critic.init(rng, shape)
    params = [{k: v.astype(np.float64) + 0.1 * rng.standard_normal(v.shape) for k, v in p.items()} for p in params]
    real, fake = rng.standard_normal((5, *shape)), rng.standard_normal((5, *shape))
    eps = rng.random(5)
    penalty = lambda p: losses.gradient_penalty(critic.apply, p, real, fake, eps, weight=10.0)

    t_params = [{k: torch.tensor(v, requires_grad=True) for k, v in p.items()} for p in params]
    e = torch.tensor(eps).reshape(5, *([1] * len(shape)))
    x_hat = (e * torch.tensor(real) + (1 - e) * torch.tensor(fake)).requires_grad_(True)
    (slopes,) = torch.autograd.grad(torch_apply(layers, t_params, x_hat).sum(), x_hat, create_graph=True)
    t_penalty = 10 * ((slopes.flatten(1).norm(dim=1) - 1) ** 2).mean()
    t_penalty.backward()  # through the gradient: double backprop

    assert penalty(params) == pytest.approx(t_penalty.item(), rel=1e-9)
    ours = grad(penalty)(params)
    for p_ours, p_torch in zip(ours, t_params):
        for k in p_ours:
            # The last bias shifts every score alike, so no slope depends on it: torch leaves its grad None.
            expected = np.zeros_like(p_ours[k]) if p_torch[k].grad is None else p_torch[k].grad.numpy()
            np.testing.assert_allclose(p_ours[k], expected, rtol=1e-7, atol=1e-10)


def test_gradient_penalty_gradient_matches_finite_differences_through_conv():
    layers, shape = conv_critic()
    critic = nn.Sequential(*layers)
    rng = np.random.default_rng(5)
    _, params = critic.init(rng, shape)
    params = [{k: v.astype(np.float64) for k, v in p.items()} for p in params]
    real, fake, eps = rng.standard_normal((3, *shape)), rng.standard_normal((3, *shape)), rng.random(3)

    def penalty_in_first_kernel(w):
        p = [dict(layer) for layer in params]
        p[0]["w"] = w
        return losses.gradient_penalty(critic.apply, p, real, fake, eps)

    assert check_grad(penalty_in_first_kernel, params[0]["w"]) < 1e-4  # LeakyReLU kinks: CS231n's 1e-4


def test_gradient_penalty_is_float32_and_zero_for_a_unit_slope_critic():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((6, 2)).astype(np.float32)
    fake = rng.standard_normal((6, 2)).astype(np.float32)
    eps = rng.random(6, dtype=np.float32)
    # D(x) = w·x with ‖w‖ = 1 is exactly 1-Lipschitz with unit slope everywhere: no penalty.
    unit = lambda p, x: anp.dot(x, p)
    w = np.array([0.6, 0.8], np.float32)
    assert losses.gradient_penalty(unit, w, real, fake, eps) == pytest.approx(0, abs=1e-5)
    # ‖w‖ = 2: (2 - 1)² λ = 10 for every interpolate.
    value = losses.gradient_penalty(unit, 2 * w, real, fake, eps)
    assert value.dtype == np.float32 and value == pytest.approx(10, rel=1e-5)
    assert grad(lambda p: losses.gradient_penalty(unit, p, real, fake, eps))(2 * w).dtype == np.float32
    with pytest.raises(ValueError, match="eps"):
        losses.gradient_penalty(unit, w, real, fake, np.zeros(5, np.float32))


def test_gradient_penalty_takes_one_eps_per_example_only():
    """An (N, 1) eps against N = 28 images of 28 x 28 would broadcast over each image's rows: refused.
    (N,) and (N, 1, 1, 1) give the same penalty as an interpolation written out per example."""
    rng = np.random.default_rng(5)
    real, fake = rng.random((28, 1, 28, 28)), rng.random((28, 1, 28, 28))
    w = rng.standard_normal((1, 28, 28))
    critic = lambda p, x: anp.sum(anp.tanh(x * p), axis=(1, 2, 3))  # per-example slope varies with x̂
    eps = rng.random(28)
    expected = 0.0
    for i in range(28):  # the formula, one example at a time: x̂_i = ε_i real_i + (1 - ε_i) fake_i
        x_hat = eps[i] * real[i] + (1 - eps[i]) * fake[i]
        slope = w * (1 - np.tanh(x_hat * w) ** 2)
        expected += 10 * (np.sqrt(np.sum(slope ** 2)) - 1) ** 2 / 28
    for shaped in (eps, eps.reshape(28, 1, 1, 1)):
        assert losses.gradient_penalty(critic, w, real, fake, shaped) == pytest.approx(expected, rel=1e-9)
    for wrong in (eps.reshape(28, 1), eps.reshape(1, 28), eps[:, None, None]):
        with pytest.raises(ValueError, match=r"expected eps of shape \(28,\) or \(28, 1, 1, 1\)"):
            losses.gradient_penalty(critic, w, real, fake, wrong)


# --- Alternating training ------------------------------------------------------------------------

def test_the_lecture_mlp_gan_has_the_lecture_shapes_and_trains_in_float32(rng):
    gan = mlp_gan()
    params = gan.init(rng)
    assert [p["W"].shape for p in params["generator"] if p] == [(100, 128), (128, 784)]
    assert [p["W"].shape for p in params["discriminator"] if p] == [(784, 128), (128, 1)]
    images = gan.sample(params, rng, 3)
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1  # a sigmoid output
    step, g_opt, d_opt = RECIPES["gan"].train_step(gan, params, rng)
    metrics = step((rng.random((8, 1, 28, 28), dtype=np.float32),))
    assert set(metrics) == {"d_real", "d_fake", "d_loss", "g_loss", "d_grad_norm", "g_grad_norm"}
    assert 0 < metrics["d_real"] < 1 and 0 < metrics["d_fake"] < 1  # probabilities σ(logit)
    for array in leaves(params) + leaves(g_opt.state) + leaves(d_opt.state):
        assert array.dtype == np.float32


def test_a_deeper_mlp_gan_doubles_g_widths_and_d_mirrors_them(rng):
    gan = mlp_gan(hidden=8, layers=3, g_norm=True)
    params = gan.init(rng)
    g_shapes = [p["W"].shape for p in params["generator"] if p and "W" in p]
    assert g_shapes == [(100, 8), (8, 16), (16, 32), (32, 784)]
    assert [p["W"].shape for p in params["discriminator"] if p] == [(784, 32), (32, 16), (16, 8), (8, 1)]
    g_name = gan.generator.name
    assert g_name.startswith("Sequential(Dense(8), BatchNorm(") and g_name.count("BatchNorm") == 3
    assert "BatchNorm" not in gan.discriminator.name


def test_wgan_step_with_clipping_keeps_every_critic_weight_in_range(rng):
    gan = toy_gan(hidden=16, depth=2)
    params = gan.init(rng)
    # Glorot's init puts many weights outside [-0.01, 0.01]: the clip has work to do.
    assert max(np.abs(p).max() for p in leaves(params["discriminator"])) > 0.1
    step, _, _ = RECIPES["wgan"].train_step(gan, params, rng, lr=0.1)  # a large lr pushes weights far out
    step((ring(rng, 5 * 10).x,))
    for p in leaves(params["discriminator"]):
        assert np.abs(p).max() <= 0.01
    assert max(np.abs(p).max() for p in leaves(params["discriminator"])) == pytest.approx(0.01)
    assert max(np.abs(p).max() for p in leaves(params["generator"])) > 0.1  # G is never clipped


class CountingSGD(SGD):
    def step(self, grads):
        self.calls = getattr(self, "calls", 0) + 1
        super().step(grads)


@pytest.mark.parametrize("n_critic", [1, 5])
def test_n_critic_discriminator_updates_per_generator_update(n_critic, rng):
    gan = toy_gan(hidden=8, depth=1)
    params = gan.init(rng)
    g_opt, d_opt = CountingSGD(params["generator"], 1e-3), CountingSGD(params["discriminator"], 1e-3)
    step = make_gan_step(gan, params, g_opt, d_opt, rng, losses.wgan_critic_loss, losses.wgan_generator_loss,
                         n_critic=n_critic, logits=False)
    x = ring(rng, 3 * n_critic * 4).x
    for batch in np.split(x, 3):
        step((batch,))
    assert (d_opt.calls, g_opt.calls) == (3 * n_critic, 3)
    with pytest.raises(ValueError, match="n_critic"):
        make_gan_step(gan, params, g_opt, d_opt, rng, n_critic=0)


def test_gradient_penalty_step_logs_the_penalty_and_keeps_float32(rng):
    gan = toy_gan(hidden=8, depth=2, pack=2)
    params = gan.init(rng)
    step, g_opt, d_opt = RECIPES["wgan-gp"].train_step(gan, params, rng)
    metrics = step((ring(rng, 5 * 8).x,))
    assert metrics["gp"] > 0 and np.isfinite(list(metrics.values())).all()
    for array in leaves(params) + leaves(g_opt.state) + leaves(d_opt.state):
        assert array.dtype == np.float32


def doubled_in_train_mode():
    """A critic layer that is x in eval mode and 2x in train mode (as dropout differs between modes)."""
    return nn.Layer("Doubled()", lambda rng, shape: (tuple(shape), {}),
                    lambda p, x, train=False, **_: 2 * x if train else x)


def test_the_penalty_differentiates_the_critic_the_loss_trains(rng):
    """D(x) = 2·w·x in train mode (the loss's), w·x in eval mode: the penalty's slope must be 2‖w‖,
    so the logged penalty is λ(2‖w‖ - 1)², a closed form. (The old step took eval mode: λ(‖w‖ - 1)².)"""
    d = nn.Sequential(nn.Dense(1), doubled_in_train_mode())
    gan = GAN(nn.Sequential(nn.Dense(2)), d, 2, (2,))
    params = gan.init(rng)
    w = params["discriminator"][0]["W"].astype(np.float64).ravel()
    step = make_gan_step(gan, params, SGD(params["generator"]), SGD(params["discriminator"]), rng,
                         losses.wgan_critic_loss, losses.wgan_generator_loss, gp_weight=10.0, logits=False)
    logged = step((ring(rng, 6).x,))["gp"]
    assert logged == pytest.approx(10 * (2 * np.linalg.norm(w) - 1) ** 2, rel=1e-5)


def test_packed_penalty_is_on_the_gradient_of_each_packed_input(rng):
    """PacGAN with a linear critic D(x1, x2) = w·[x1, x2] + b: each packed input's gradient is w, the
    whole of it, so the logged penalty is λ(‖w‖ - 1)² (not a norm per sample within the pack)."""
    gan = GAN(nn.Sequential(nn.Dense(2)), nn.Sequential(nn.Dense(1)), 2, (2,), pack=2)
    params = gan.init(rng)
    w = params["discriminator"][0]["W"].astype(np.float64).ravel()  # (4,): two samples of 2-d
    step = make_gan_step(gan, params, SGD(params["generator"]), SGD(params["discriminator"]), rng,
                         losses.wgan_critic_loss, losses.wgan_generator_loss, gp_weight=10.0, logits=False)
    logged = step((ring(rng, 8).x,))["gp"]
    assert logged == pytest.approx(10 * (np.linalg.norm(w) - 1) ** 2, rel=1e-5)
    assert abs(logged - 10 * np.mean([(np.linalg.norm(half) - 1) ** 2 for half in (w[:2], w[2:])])) > 1e-3


def test_a_conditional_critics_penalty_takes_the_gradient_over_its_label_planes_too(rng):
    """A linear convolutional critic has one gradient v for every input, so the logged penalty is
    λ(‖v‖ - 1)², v over all that d_input builds, image and label planes, though the loss reads the
    planes as class maps (ops.conv2d_label_planes); not λ(‖v over the image‖ - 1)²."""
    from minigen.models.conditional import ConditionalGAN
    g = nn.Sequential(nn.Dense(36), nn.Reshape((1, 6, 6)))
    d = nn.Sequential(nn.Conv2d(2, 3, stride=2), nn.Flatten(), nn.Dense(1))
    gan = ConditionalGAN(g, d, 2, (1, 6, 6), n_classes=3, label_input="planes")
    params = gan.init(rng)
    x, y = rng.random((4, 1, 6, 6), dtype=np.float32), np.array([0, 1, 2, 1])
    v = grad(lambda u: anp.sum(gan.critic(params["discriminator"], u)))(gan.d_input(x[:1], y[:1])).astype(float)
    step = make_gan_step(gan, params, SGD(params["generator"]), SGD(params["discriminator"]), rng,
                         losses.wgan_critic_loss, losses.wgan_generator_loss, gp_weight=10.0, logits=False)
    logged = step((x, y))["gp"]
    assert logged == pytest.approx(10 * (np.linalg.norm(v) - 1) ** 2, rel=1e-4)
    assert abs(logged - 10 * (np.linalg.norm(v[:, :1]) - 1) ** 2) > 1e-3


def test_penalty_input_gradient_is_that_of_the_loss_critic_with_layer_norm(rng, monkeypatch):
    from minigen.models.dcgan import dcgan
    gan = dcgan(latent=4, width=2, critic_norm="layer")
    params = gan.init(rng)
    seen = []
    original = losses.gradient_penalty
    monkeypatch.setattr(losses, "gradient_penalty", lambda *args, **kw: seen.append(args) or original(*args, **kw))
    d_before = [{k: v.copy() for k, v in p.items()} for p in params["discriminator"]]
    step = make_gan_step(gan, params, SGD(params["generator"]), SGD(params["discriminator"]), rng,
                         losses.wgan_critic_loss, losses.wgan_generator_loss, gp_weight=10.0, logits=False)
    logged = step((rng.random((4, 1, 28, 28), dtype=np.float32),))["gp"]
    critic, _, real, fake, eps, _ = seen[0]
    x_hat = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    used = grad(lambda x: anp.sum(critic(d_before, x)))(x_hat)
    trained = grad(lambda x: anp.sum(gan.score(d_before, x, train=True)))(x_hat)  # what d_loss scores
    np.testing.assert_allclose(used, trained, rtol=1e-6, atol=1e-9)
    norms = np.sqrt((trained.astype(np.float64) ** 2).reshape(4, -1).sum(axis=1))
    assert logged == pytest.approx(10 * np.mean((norms - 1) ** 2), rel=1e-4)


def test_a_batch_norm_critic_is_refused_under_a_gradient_penalty(rng):
    from minigen import models
    from minigen.models.dcgan import dcgan
    gan = dcgan(latent=4, width=2)  # the paper's DCGAN critic, with batch norm
    params = gan.init(rng)
    with pytest.raises(ValueError, match=r"without batch norm: the penalty is on each example's own gradient.*"
                                         r"Gulrajani et al. 2017.*norm=layer"):
        RECIPES["wgan-gp"].train_step(gan, params, rng)
    with pytest.raises(ValueError, match="without batch norm"):
        models.build("dcgan", {"width": "2", "latent": "4", "loss": "wgan-gp"}, rng)
    for norm in ("layer", "none"):
        models.build("dcgan", {"width": "2", "latent": "4", "loss": "wgan-gp", "norm": norm}, rng)
    RECIPES["wgan"].train_step(gan, params, rng)  # weight clipping has no per-example penalty: allowed


def test_packing_puts_m_samples_side_by_side(rng):
    gan = toy_gan(hidden=8, depth=1, pack=3)
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(gan.pack(x), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    params = gan.init(rng)
    assert params["discriminator"][0]["W"].shape == (6, 8)  # D's first layer sees 3 samples
    assert gan.score(params["discriminator"], x).shape == (2, 1)
    with pytest.raises(ValueError, match="divisible by 3"):
        gan.pack(x[:4])


def test_gan_init_checks_the_networks_fit(rng):
    with pytest.raises(ValueError, match="one score per input"):
        GAN(nn.Sequential(nn.Dense(2)), nn.Sequential(nn.Dense(3)), 4, (2,)).init(rng)
    with pytest.raises(ValueError, match="pack"):
        GAN(nn.Sequential(nn.Dense(2)), nn.Sequential(nn.Dense(1)), 4, (2,), pack=0)


# --- Mode coverage -------------------------------------------------------------------------------

def test_mode_coverage_on_known_samples():
    mixture = ring(np.random.default_rng(0), n=2500, std=0.02)
    centres, std = mixture.centres, mixture.std
    exact = mode_coverage(np.repeat(centres, 10, axis=0), centres, std)  # 10 samples on each centre
    assert exact.modes == 8 and exact.high_quality == 1.0 and exact.counts.tolist() == [10] * 8
    one = mode_coverage(np.repeat(centres[3:4], 2500, axis=0), centres, std)  # all at one centre
    assert one.modes == 1 and one.high_quality == 1.0 and one.counts[3] == 2500
    real = mode_coverage(mixture.x, centres, std)  # the data itself: 3σ holds ~98.9% of a 2-d Gaussian
    assert real.modes == 8 and real.high_quality == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    noise = np.random.default_rng(1).uniform(-3, 3, (2500, 2))  # uniform noise: a few land near modes by chance
    far = mode_coverage(noise, centres, std)
    area = 8 * np.pi * (3 * std) ** 2 / 36  # share of the square inside some 3σ disc
    assert far.high_quality == pytest.approx(area, abs=0.01) and far.high_quality < 0.02
    assert far.modes == 0 < far.modes_one_sample  # a few stray hits per mode: never 1 % of the samples


def test_mode_coverage_boundary_and_errors():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    just_in, just_out = [[0.299, 0.0]], [[0.301, 0.0]]
    assert mode_coverage(just_in, centres, 0.1).modes == 1
    assert mode_coverage(just_out, centres, 0.1).modes == 0
    with pytest.raises(ValueError, match="same d"):
        mode_coverage(np.zeros((4, 3)), centres, 0.1)
    with pytest.raises(ValueError, match="std > 0"):
        mode_coverage(np.zeros((4, 2)), centres, 0.0)


# --- The demo ----------------------------------------------------------------------------------

def test_mode_collapse_demo_smoke_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(DEMO), "--smoke", "--out", str(tmp_path)])
    runpy.run_path(str(DEMO), run_name="__main__")
    for name in ("scatter_ring.png", "scatter_grid.png", "lr_sweep.png", "metrics.json", "curves_ring_gan.png"):
        assert (tmp_path / name).stat().st_size > 0, name


# The cross-entropy GANs that take a gradient penalty as an option, each tiny: (model, options)
PENALISED_GANS = [("gan", {"hidden": "8"}), ("dcgan", {"width": "2", "latent": "4", "norm": "none"}),
                  ("cgan", {"hidden": "8"})]


def step_on_noise(trainable):
    """One step on 4 random images (with labels 0-3 for a conditional model): its metrics."""
    rng = np.random.default_rng(1)
    x, y = rng.random((4, 1, 28, 28), dtype=np.float32), np.arange(4)
    return trainable.step((x, y) if trainable.needs_labels else (x,))


@pytest.mark.parametrize("model, options", PENALISED_GANS)
def test_the_gradient_penalty_is_an_option_of_the_cross_entropy_gan_too(model, options):
    """--set gp=10 adds WGAN-GP's penalty to the non-saturating GAN's D loss (Fedus et al. 2018)."""
    from minigen import models
    plain, penalised = (step_on_noise(models.build(model, {**options, **extra}, np.random.default_rng(0)))
                        for extra in ({}, {"gp": "10"}))
    assert "gp" not in plain and penalised["gp"] > 0
    assert penalised["d_loss"] > plain["d_loss"]  # the same logits, plus a positive penalty
    with pytest.raises(ValueError, match="gp=-1.0: must be a finite number >= 0"):
        models.build("gan", {"hidden": "8", "gp": "-1"}, np.random.default_rng(0))


def test_a_lazy_penalty_enters_every_kth_critic_step_at_k_times_the_weight(rng, monkeypatch):
    """gp_every=3 (lazy regularisation): the penalty on critic steps 0, 3, 6, ... of D's optimiser,
    at weight 3λ, logged at λ; a step resumed from D's optimiser state keeps the schedule."""
    gan = toy_gan(hidden=8, depth=2)
    params = gan.init(rng)
    weights, original = [], losses.gradient_penalty
    monkeypatch.setattr(losses, "gradient_penalty",
                        lambda *args: weights.append(args[-1]) or original(*args))
    d_opt = SGD(params["discriminator"])
    step = make_gan_step(gan, params, SGD(params["generator"]), d_opt, rng, losses.wgan_critic_loss,
                         losses.wgan_generator_loss, n_critic=2, gp_weight=10.0, logits=False, gp_every=3)
    logs = [step((ring(rng, 2 * 8).x,)) for _ in range(4)]  # critic steps 0-7
    assert weights == [30.0, 30.0, 30.0]  # steps 0, 3, 6
    assert all(log["gp"] > 0 for log in logs)
    d_opt.t = 2  # as if loaded from a checkpoint after two critic steps: the next one is penalised
    weights.clear()
    step((ring(rng, 2 * 8).x,))
    assert weights == [30.0]
    with pytest.raises(ValueError, match="gp_every must be a positive integer"):
        make_gan_step(gan, params, SGD(params["generator"]), d_opt, rng, gp_weight=10.0, gp_every=0)


@pytest.mark.parametrize("model, options", PENALISED_GANS)
def test_gp_every_needs_a_penalty_to_space_out(model, options):
    from minigen import models
    trainable = models.build(model, {**options, "gp": "10", "gp_every": "4"}, np.random.default_rng(0))
    assert "gp" in step_on_noise(trainable)
    with pytest.raises(ValueError, match="gp_every=4 spaces out a gradient penalty, but this recipe has none"):
        models.build(model, {**options, "gp_every": "4"}, np.random.default_rng(0))


@pytest.mark.parametrize("model, options", [("wgan", {"hidden": "8"}),
                                            ("dcgan", {"width": "2", "latent": "4", "loss": "wgan", "norm": "none"})])
def test_the_clipping_bound_is_an_option_of_the_weight_clipped_critic(model, options):
    """--set clip=c clips WGAN's critic to [-c, c] in place of the paper's 0.01."""
    from minigen import models
    x = np.random.default_rng(1).random((4 * 5, 1, 28, 28), dtype=np.float32)  # 5 critic minibatches
    trainable = models.build(model, {**options, "clip": "0.05"}, np.random.default_rng(0), lr=0.1)
    trainable.step((x,))
    largest = max(np.abs(p).max() for p in leaves(trainable.params["discriminator"]))
    assert largest == pytest.approx(0.05)  # the large lr pushed weights out; the new bound held them
    with pytest.raises(ValueError, match="clip applies to WGAN's weight-clipped critic"):
        models.build("gan", {"hidden": "8", "clip": "0.05"}, np.random.default_rng(0))


def test_adams_beta1_is_an_option_of_the_dcgan():
    """--set beta1=0 trains both nets with Adam without momentum; the recipe's β2 stays."""
    from minigen import models
    small = {"width": "2", "latent": "4", "norm": "none"}
    for loss, beta2 in (("gan", 0.999), ("wgan-gp", 0.9)):
        trainable = models.build("dcgan", {**small, "loss": loss, "beta1": "0"}, np.random.default_rng(0))
        assert [opt.betas for opt in trainable.optimizers.values()] == [(0.0, beta2)] * 2
    with pytest.raises(ValueError, match="beta1 applies to Adam; this recipe trains with rmsprop"):
        models.build("dcgan", {**small, "loss": "wgan", "beta1": "0"}, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\)"):
        models.build("dcgan", {**small, "beta1": "1"}, np.random.default_rng(0))


def test_a_third_convolution_in_d_is_an_option_of_the_dcgan():
    """--set d_convs=3 adds a 3x3 stride-1 convolution at 7 x 7 before D's logit; G is untouched."""
    from minigen import models
    small = {"width": "2", "latent": "4", "norm": "layer"}
    two, three = (models.build("dcgan", {**small, "d_convs": k}, np.random.default_rng(0)) for k in ("2", "3"))
    kernels = lambda t: [p["w"].shape for p in t.params["discriminator"] if "w" in p]  # conv kernels
    assert kernels(two) == [(2, 1, 4, 4), (4, 2, 4, 4)]
    assert kernels(three) == [(2, 1, 4, 4), (4, 2, 4, 4), (4, 4, 3, 3)]
    shapes = lambda t: [np.shape(a) for p in t.params["generator"] for a in p.values()]
    assert shapes(two) == shapes(three)
    logged = three.step((np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32),))
    assert np.isfinite(list(logged.values())).all()
    with pytest.raises(ValueError, match="convs must be 2 or 3"):
        models.build("dcgan", {**small, "d_convs": "4"}, np.random.default_rng(0))


def test_spectral_normalisation_is_an_option_of_the_dcgan():
    """--set sn=true puts D's two convolutions and its logit layer under nn.SpectralNorm; the weights
    it normalises stay the parameters, and each layer's power-iteration vectors are D's state."""
    from minigen import models
    small = {"width": "2", "latent": "4", "norm": "none"}
    plain, normalised = (models.build("dcgan", {**small, "sn": sn}, np.random.default_rng(0))
                         for sn in ("false", "true"))
    shapes = lambda t: [np.shape(a) for p in t.params["discriminator"] for a in p.values()]
    assert shapes(plain) == shapes(normalised)
    step_on_noise(normalised)
    state = normalised.state["discriminator"]
    vectors = {layer: (s["u"].shape, s["v"].shape) for layer, s in state.items() if "u" in s}
    assert vectors == {"0": ((2,), (16,)), "2": ((4,), (32,)), "5": ((196,), (1,))}
    for layer, p in enumerate(normalised.params["discriminator"]):
        if str(layer) in vectors:  # the estimate after 10 + 3 iterations, against the exact σ
            weight = p.get("w", p.get("W"))
            exact = np.linalg.norm(weight.reshape(len(weight), -1), 2)
            estimate = state[str(layer)]["u"] @ weight.reshape(len(weight), -1) @ state[str(layer)]["v"]
            assert estimate == pytest.approx(exact, rel=1e-2), layer
    assert "u" not in str(plain.state)


def test_a_spectrally_normalised_dcgan_resumes_bit_for_bit(tmp_path):
    """The power iteration's vectors go into the checkpoint with batch norm's statistics: one epoch
    and a resumed second one end where two straight epochs do."""
    from minigen.checkpoint import read_arrays
    from minigen.cli import main
    args = ["dcgan", "--sample", "--batch-size", "500", "--set", "width=2", "--set", "latent=4",
            "--set", "norm=none", "--set", "sn=true"]
    assert main(["train", *args, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *args, "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--epochs", "2"]) == 0
    straight, resumed = (read_arrays(tmp_path / run / "checkpoint.npz") for run in ("straight", "resumed"))
    assert any(key.startswith("state/discriminator/") and key.endswith("/v") for key in straight)
    for key in straight:
        if key != "meta.json":
            np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)


def test_reused_fakes_give_g_the_gradient_of_a_fresh_pass_at_the_same_z(monkeypatch):
    """reuse_fakes: G's step differentiates the forward pass of D's step. With every z the same, the
    default step (a second pass through G) must land on the same weights, batch norm in G included."""
    from minigen.models.dcgan import dcgan
    from minigen.optim import Adam
    z = np.random.default_rng(2).standard_normal((4, 4), dtype=np.float32)
    x = np.random.default_rng(3).random((4, 1, 28, 28), dtype=np.float32)
    results = []
    for reuse in (False, True):
        gan = dcgan(latent=4, width=2, critic_norm="none")
        monkeypatch.setattr(gan, "sample_latent", lambda rng, n: z)
        params = gan.init(np.random.default_rng(0))
        step = make_gan_step(gan, params, Adam(params["generator"], lr=1e-2), Adam(params["discriminator"], lr=1e-2),
                             np.random.default_rng(1), reuse_fakes=reuse)
        logs = [step((x,)) for _ in range(3)]
        results.append((leaves(params), logs))
    (plain, plain_logs), (reused, reused_logs) = results
    for a, b in zip(plain, reused, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert [log["g_loss"] for log in plain_logs] == pytest.approx([log["g_loss"] for log in reused_logs], rel=1e-5)
    with pytest.raises(ValueError, match="reuse_fakes lets G's step score the fakes of D's one step; with n_critic=5"):
        make_gan_step(gan, params, SGD(params["generator"]), SGD(params["discriminator"]), np.random.default_rng(0),
                      n_critic=5, reuse_fakes=True)


@pytest.mark.parametrize("model, options", PENALISED_GANS)
def test_reuse_is_an_option_of_every_gan_with_one_critic_step(model, options, monkeypatch):
    """--set reuse=true: one pass through G a step (counted here), where the default makes two."""
    from minigen import models
    calls, original = [], GAN.generate  # a ConditionalGAN's generate calls GAN's
    monkeypatch.setattr(GAN, "generate", lambda self, *args, **kw: calls.append(1) or original(self, *args, **kw))
    passes = []
    for reuse in ("false", "true"):
        trainable = models.build(model, {**options, "reuse": reuse}, np.random.default_rng(0))
        calls.clear()
        assert np.isfinite(step_on_noise(trainable)["g_loss"])
        passes.append(len(calls))
    assert passes == [2, 1]
    with pytest.raises(ValueError, match="reuse applies to recipes with one critic step per G step; this one takes 5"):
        models.build("wgan-gp", {"hidden": "8", "reuse": "true"}, np.random.default_rng(0))
