"""VAE-GAN (Larsen et al. 2016): each loss against its formula, which network each gradient
trains (L_llike never reaches Dis), a finite-difference check, float32, and a bit-for-bit resume."""
import copy

import numpy as np
import pytest

from minigen import losses, models
from minigen.autodiff import value_and_grad
from minigen.data import load_mnist_sample
from minigen.gradcheck import check_grad
from minigen.models import vaegan
from minigen.models.vaegan import VAEGAN, VAEGANConfig
from minigen.optim import leaves

TINY = {"latent": "3", "hidden": "16", "width": "2", "d_hidden": "8"}  # Dis_l: 32 features
GROUPS = ("encoder", "decoder", "discriminator")


@pytest.fixture(scope="module")
def digits():
    return load_mnist_sample("train")[0][:64]


def log_sigmoid(logits):
    return -np.log1p(np.exp(-logits))


def logits(seed, n=6):
    return 2 * np.random.default_rng(seed).standard_normal((n, 1))


# --- Each loss term against its formula, written out in float64 -------------------------

def test_prior_loss_is_the_mean_gaussian_kl():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    expected = np.mean(0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1))
    assert vaegan.prior_loss(mu, logvar) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("variance", [1.0, 0.1])
def test_feature_llike_is_the_negative_log_density_of_a_gaussian_in_feature_space(variance):
    """-log N(Dis_l(x); Dis_l(x~), σ² I) = ½‖Dis_l(x) - Dis_l(x~)‖²/σ² + (D/2) log 2πσ², per example, mean
    (σ² = 1 is the paper's eq. 4)."""
    rng = np.random.default_rng(1)
    real, recon = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((4, 2, 3, 3))
    const = 0.5 * 2 * 3 * 3 * np.log(2 * np.pi * variance)
    expected = np.mean(0.5 * np.sum((real - recon).reshape(4, -1) ** 2, axis=1) / variance + const)
    assert vaegan.feature_llike_loss(real, recon, variance) == pytest.approx(expected, rel=1e-12)
    assert vaegan.feature_llike_loss(real, real, variance) == pytest.approx(const, rel=1e-12)
    assert vaegan.gaussian_constant(real, variance) == pytest.approx(const, rel=1e-12)


def test_gan_losses_match_the_papers_terms():
    real, recon, prior = logits(2), logits(3), logits(4)
    minus_l_gan = -np.mean(log_sigmoid(real)) - np.mean(log_sigmoid(-recon)) - np.mean(log_sigmoid(-prior))
    assert vaegan.discriminator_gan_loss(real, recon, prior) == pytest.approx(minus_l_gan, rel=1e-12)
    nonsaturating = -np.mean(log_sigmoid(recon)) - np.mean(log_sigmoid(prior))
    assert vaegan.generator_gan_loss(recon, prior) == pytest.approx(nonsaturating, rel=1e-12)


def test_feature_llike_gradient_matches_finite_differences_through_dis_l():
    """d L_llike / d x~ through Dis_l, in float64 (the error signal that trains Dec and Enc)."""
    model = VAEGAN(VAEGANConfig(latent=3, hidden=16, width=2, d_hidden=8))
    d64 = [{k: v.astype(np.float64) for k, v in layer.items()}
           for layer in model.init(np.random.default_rng(0))["discriminator"]["features"]]
    rng = np.random.default_rng(1)
    x, x_tilde = rng.random((2, 1, 28, 28)), rng.random((2, 1, 28, 28))
    real = model.features.apply(d64, x)
    assert check_grad(lambda xt: vaegan.feature_llike_loss(real, model.features.apply(d64, xt)), x_tilde) < 1e-5


# --- Which network each gradient trains ----------------------------------------------------

class Spy:
    """Stands in for an optimiser's step: records the gradient, changes nothing."""

    def __init__(self):
        self.grads = None

    def __call__(self, grads):
        self.grads = [np.array(g) for g in leaves(grads)]


def spy_on(trainable, names):
    spies = {name: Spy() for name in names}
    for name, spy in spies.items():
        trainable.optimizers[name].step = spy  # the step closure calls opts[name].step: the same object
    return spies


@pytest.mark.parametrize("own", GROUPS)
def test_each_update_changes_only_its_own_network(digits, own):
    t = models.build("vaegan", TINY, np.random.default_rng(0))
    before = copy.deepcopy(t.params)
    spy_on(t, [name for name in GROUPS if name != own])
    t.step((digits[:16],))
    for name in GROUPS:
        changed = [not np.array_equal(a, b) for a, b in zip(leaves(before[name]), leaves(t.params[name]))]
        assert all(changed) if name == own else not any(changed), name


def test_the_discriminator_is_trained_by_minus_l_gan_alone(digits):
    """Dis's gradient is that of -L_GAN on (x, x~, Dec(z_p)); L_llike, which does depend on
    Dis's parameters, contributes nothing (§2.3: else Dis could shrink its features)."""
    cfg, x = VAEGANConfig(latent=3, hidden=16, width=2, d_hidden=8), digits[:16]
    rng = np.random.default_rng(0)
    t = models.build("vaegan", TINY, rng)
    model, params, replay = VAEGAN(cfg), copy.deepcopy(t.params), copy.deepcopy(rng)
    spies = spy_on(t, GROUPS)
    eps, z_prior = (replay.standard_normal((16, 3), dtype=np.float32) for _ in range(2))  # the step's draws
    t.step((x,))
    mu, logvar = model.encode(params["encoder"], x)
    recon = model.decode(params["decoder"], losses.reparameterize(mu, logvar, eps))
    fake = model.decode(params["decoder"], z_prior)
    def minus_l_gan(d_params):
        return vaegan.discriminator_gan_loss(*(model.dis(d_params, images) for images in (x, recon, fake)))

    _, expected = value_and_grad(minus_l_gan)(params["discriminator"])
    for got, want in zip(spies["discriminator"].grads, leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # ... and the test could fail: L_llike's own gradient in Dis's parameters is far from zero.
    _, leak = value_and_grad(lambda d: vaegan.feature_llike_loss(model.dis_l(d, x), model.dis_l(d, recon)))(
        params["discriminator"])
    assert max(np.abs(g).max() for g in leaves(leak)) > 1e-3


def test_the_gradient_penalty_on_dis_is_between_real_digits_and_prior_samples(digits):
    """--set gp=λ adds λ E(|∇Dis(x̂)| - 1)² on interpolates of x and Dec(z_p) to -L_GAN, and nothing else."""
    cfg, x = VAEGANConfig(latent=3, hidden=16, width=2, d_hidden=8, gp=10.0), digits[:16]
    rng = np.random.default_rng(0)
    t = models.build("vaegan", {**TINY, "gp": "10"}, rng)
    model, params, replay = VAEGAN(cfg), copy.deepcopy(t.params), copy.deepcopy(rng)
    spies = spy_on(t, GROUPS)
    eps, z_prior = (replay.standard_normal((16, 3), dtype=np.float32) for _ in range(2))
    eps_mix = replay.random((16, 1, 1, 1), dtype=np.float32)
    metrics = t.step((x,))
    mu, logvar = model.encode(params["encoder"], x)
    recon = model.decode(params["decoder"], losses.reparameterize(mu, logvar, eps))
    fake = model.decode(params["decoder"], z_prior)

    def penalised(d_params):
        return (vaegan.discriminator_gan_loss(*(model.dis(d_params, images) for images in (x, recon, fake)))
                + losses.gradient_penalty(model.dis, d_params, x, fake, eps_mix, 10.0))

    value, expected = value_and_grad(penalised)(params["discriminator"])
    assert metrics["d_loss"] == pytest.approx(float(value), rel=1e-6) and metrics["gp"] > 0
    for got, want in zip(spies["discriminator"].grads, leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="gp"):
        VAEGAN(VAEGANConfig(gp=-1.0))


def test_params_and_every_gradient_are_float32_and_metrics_finite(digits):
    t = models.build("vaegan", TINY, np.random.default_rng(0))
    assert {p.dtype for p in leaves(t.params)} == {np.dtype(np.float32)}
    spies = spy_on(t, GROUPS)
    metrics = t.step((digits[:16],))
    for name, spy in spies.items():
        assert {g.dtype for g in spy.grads} == {np.dtype(np.float32)}, name
    assert set(metrics) >= {"kl", "feature_recon", "d_real", "d_recon", "d_fake", "d_loss", "g_loss",
                            "enc_grad_norm", "dec_grad_norm", "d_grad_norm"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert 0 <= metrics["d_real"] <= 1 and metrics["feature_recon"] >= 0
    samples = t.sample(np.random.default_rng(1), 5)
    assert samples.shape == (5, 1, 28, 28) and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() <= 1


def test_the_conv_variant_reads_its_features_from_a_feature_map(digits):
    model = VAEGAN(VAEGANConfig(latent=3, conv=True, width=2, d_hidden=8))
    params = model.init(np.random.default_rng(0))
    assert model.dis_l(params["discriminator"], digits[:4]).shape == (4, 4, 7, 7)
    t = models.build("vaegan", {"latent": "3", "conv": "true", "width": "2", "d_hidden": "8"}, np.random.default_rng(0))
    assert all(np.isfinite(v) for v in t.step((digits[:4],)).values())
    assert t.sample(np.random.default_rng(0), 2).shape == (2, 1, 28, 28)


def test_gamma_weights_the_decoders_reconstruction_gradient(digits):
    """Dec's gradient is γ·∇L_llike + ∇(GAN loss): linear in γ, the other two networks' not at all."""
    grads = {}
    for gamma in ("0", "1", "2"):
        t = models.build("vaegan", {**TINY, "gamma": gamma}, np.random.default_rng(0))
        spies = spy_on(t, GROUPS)
        t.step((digits[:16],))
        grads[gamma] = {name: spy.grads for name, spy in spies.items()}
    for g0, g1, g2 in zip(*(grads[k]["decoder"] for k in ("0", "1", "2"))):
        np.testing.assert_allclose(g2 - g1, g1 - g0, rtol=1e-4, atol=1e-6)
    assert any(np.abs(g1 - g0).max() > 0 for g0, g1 in zip(grads["0"]["decoder"], grads["1"]["decoder"]))
    for name in ("encoder", "discriminator"):
        for a, b in zip(grads["0"][name], grads["2"][name]):
            np.testing.assert_array_equal(a, b)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="gamma"):
        VAEGAN(VAEGANConfig(gamma=-1.0))
    with pytest.raises(ValueError, match="feature_var"):
        VAEGAN(VAEGANConfig(feature_var=0.0))
    with pytest.raises(ValueError, match="unknown option 'beta'"):
        models.build("vaegan", {"beta": "2"}, np.random.default_rng(0))
    assert "vaegan" in models.describe()
