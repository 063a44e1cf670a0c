"""The averaged generator (minigen.averaging; Yazıcı et al. 2019) in every GAN of `minigen train`:
the running average of the weights, sampling from it, its batch-norm statistics, checkpoints."""
import numpy as np
import pytest

from minigen import models, nn
from minigen.data import load_mnist_sample
from minigen.models.gan import mlp_gan
from minigen.tree import leaves

TINY = {"gan": {"hidden": "16"}, "wgan": {"hidden": "16"}, "wgan-gp": {"hidden": "16"},
        "dcgan": {"width": "4", "latent": "8"}, "cgan": {"hidden": "16"},
        "progressive": {"widths": "4,4,4", "latent": "8", "phase_images": "32"},
        "vaegan": {"latent": "3", "hidden": "16", "width": "2", "d_hidden": "8"}}
CONV_CGAN = {"arch": "conv", "width": "4", "latent": "8"}  # a second cgan, DCGAN's nets with batch norm
LIVE = {"vaegan": "decoder"}  # the network sampled from, averaged as params[LIVE + "_average"]


@pytest.fixture(scope="module")
def digits():
    x, y = load_mnist_sample("train")
    return x[:160], y[:160]


def batch_for(t, digits, i, size=8):
    n = size * t.minibatches_per_step
    x, y = digits[0][i * n:(i + 1) * n], digits[1][i * n:(i + 1) * n]
    return (x, y) if t.needs_labels else (x,)


@pytest.mark.parametrize("model, options", [(model, TINY[model]) for model in sorted(TINY)] + [("cgan", CONV_CGAN)])
def test_the_average_is_the_running_average_of_the_recorded_weights(model, options, digits):
    """Record G's weights after every step and fold them by hand, a ← β_t a + (1 − β_t) θ from a = θ_0,
    with the ramp β_t = min(β, (1 + t) / (10 + t)): 2/11, 3/12, then β = 0.3 from the third step on."""
    decay, steps, live = 0.3, 4, LIVE.get(model, "generator")
    betas = [2 / 11, 3 / 12, 0.3, 0.3]
    t = models.build(model, {**options, "ema": str(decay)}, np.random.default_rng(0))
    recorded = [[np.array(p, np.float64) for p in leaves(t.params[live])]]
    for i in range(steps):
        t.step(batch_for(t, digits, i))
        recorded.append([np.array(p, np.float64) for p in leaves(t.params[live])])
    by_hand = recorded[0]
    for beta, weights in zip(betas, recorded[1:], strict=True):
        by_hand = [beta * a + (1 - beta) * w for a, w in zip(by_hand, weights)]
    average = leaves(t.params[live + "_average"])
    assert len(average) == len(by_hand)
    for got, want in zip(average, by_hand):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    moved = [not np.allclose(a, w) for a, w in zip(by_hand, recorded[-1])]
    assert any(moved)  # the average is not simply the last weights


def test_off_by_default_and_a_decay_of_one_is_refused():
    t = models.build("gan", TINY["gan"], np.random.default_rng(0))
    assert "generator_average" not in t.params
    for model in ("dcgan", "vaegan"):
        with pytest.raises(ValueError, match=r"ema .* must be in \[0, 1\)"):
            models.build(model, {**TINY[model], "ema": "1"}, np.random.default_rng(0))


def test_samples_come_from_the_averaged_generator(digits):
    t = models.build("gan", {**TINY["gan"], "ema": "0.5"}, np.random.default_rng(0))
    for i in range(3):
        t.step(batch_for(t, digits, i))
    gan = mlp_gan(hidden=16)
    averaged = gan.sample({"generator": t.params["generator_average"]}, np.random.default_rng(3), 6)
    live = gan.sample(t.params, np.random.default_rng(3), 6)
    np.testing.assert_array_equal(t.sample(np.random.default_rng(3), 6), averaged)
    assert not np.allclose(averaged, live)


def test_the_conv_cgan_samples_the_asked_digits_from_its_averaged_generator(digits):
    """Sample i asks for class i % 10, from the averaged weights with their own batch-norm statistics
    (measured with labels drawn as G's step draws them), not from the live generator."""
    t = models.build("cgan", {**CONV_CGAN, "ema": "0.5"}, np.random.default_rng(0))
    for i in range(3):
        t.step(batch_for(t, digits, i))
    averaged_g = t.sample.__self__
    gan, stats = averaged_g.gan, averaged_g.batch_norm_statistics()
    assert stats is not gan.state["generator"]  # measured afresh for the averaged weights
    z = gan.sample_latent(np.random.default_rng(3), 12)
    by_hand = gan.generate(t.params["generator_average"], z, np.arange(12) % 10, state=stats)
    np.testing.assert_array_equal(t.sample(np.random.default_rng(3), 12), by_hand)
    assert not np.allclose(by_hand, gan.sample(t.params, np.random.default_rng(3), 12))
    asked = np.full(12, 7)  # any labels can be asked for (demos/augment_mnist.py draws the labelled set's)
    sevens = gan.generate(t.params["generator_average"], z, asked, state=stats)
    np.testing.assert_array_equal(averaged_g.sample(np.random.default_rng(3), 12, asked), sevens)
    assert not np.allclose(sevens, by_hand)


def test_counting_batch_norm_keeps_plain_means_of_the_batches(rng):
    """A state with a batch count averages batch statistics with equal weights (torch's momentum=None)."""
    layer = nn.BatchNorm()
    xs = [rng.normal(k, 1 + k, (50, 3)).astype(np.float32) for k in range(3)]
    state = {"batches": 0}
    for x in xs:
        layer.apply({"gamma": np.ones(3, np.float32), "beta": np.zeros(3, np.float32)}, x, train=True, state=state)
    assert state["batches"] == 3
    np.testing.assert_allclose(state["mean"], np.mean([x.mean(0) for x in xs], 0), rtol=1e-5)
    np.testing.assert_allclose(state["var"], np.mean([x.var(0, ddof=1) for x in xs], 0), rtol=1e-5)


def test_batch_norm_statistics_are_measured_for_the_averaged_weights(digits):
    """DCGAN's G: the first batch norm's recomputed mean is the mean of the averaged G's own Dense
    outputs over the measuring passes' z, not the live G's running mean."""
    t = models.build("dcgan", {**TINY["dcgan"], "ema": "0.5"}, np.random.default_rng(0))
    for i in range(4):
        t.step(batch_for(t, digits, i))
    t.sample(np.random.default_rng(0), 4)
    averaged_g = t.sample.__self__  # the sampler is the AveragedGenerator's
    stats = averaged_g.batch_norm_statistics()
    rng = np.random.default_rng(0)  # the measuring passes' seed: 4 batches of 256 z
    z = np.concatenate([rng.standard_normal((256, 8), dtype=np.float32) for _ in range(4)])
    dense = averaged_g.gan.generator.spec[1]["layers"][0]
    first = dense.apply(t.params["generator_average"][0], z)
    np.testing.assert_allclose(stats["1"]["mean"], first.mean(0), rtol=1e-4, atol=1e-5)
    live = averaged_g.gan.state["generator"]["1"]["mean"]
    assert not np.allclose(live, stats["1"]["mean"], rtol=1e-3, atol=1e-4)


def test_the_vaegan_samples_its_averaged_decoder_and_reconstructs_with_the_live_one(digits):
    from minigen.models.vaegan import VAEGAN, VAEGANConfig
    t = models.build("vaegan", {**TINY["vaegan"], "ema": "0.5"}, np.random.default_rng(0))
    for i in range(3):
        t.step(batch_for(t, digits, i))
    model = VAEGAN(VAEGANConfig(latent=3, hidden=16, width=2, d_hidden=8))
    averaged = model.sample({"decoder": t.params["decoder_average"]}, np.random.default_rng(3), 6)
    np.testing.assert_array_equal(t.sample(np.random.default_rng(3), 6), averaged)
    assert not np.allclose(averaged, model.sample(t.params, np.random.default_rng(3), 6))
    recon = t.test_metrics(digits[0][:20], None)["recon_mse"]
    assert recon == pytest.approx(float(np.mean((model.reconstruct(t.params, digits[0][:20]) - digits[0][:20]) ** 2)))
