"""The progressive GAN: resampling, the fade-in's endpoints, the schedule, gradients, and resume through a growth."""
import numpy as np
import pytest
from autograd import grad
from autograd.tracer import getval
from test_train import assert_resumes_bit_for_bit, step_lines

from minigen.autodiff import value_and_grad
from minigen.data import load_mnist_sample
from minigen.gradcheck import check_grad
from minigen.models import gan as gan_family
from minigen.models.progressive import (
    ProgressiveGAN,
    avgpool,
    fade,
    minibatch_stddev,
    pixel_norm,
    schedule,
    trainable,
    upsample,
)
from minigen.optim import leaves

TINY = {"latent": 4, "widths": (3, 2, 2)}


@pytest.fixture(scope="module")
def tiny():
    gan = ProgressiveGAN(**TINY, phase_images=8)
    return gan, gan.init(np.random.default_rng(0))


@pytest.fixture(scope="module")
def digits():
    return load_mnist_sample("train")[0][:8]


def test_upsample_copies_each_pixel_into_a_block_and_avgpool_undoes_it(rng):
    x = rng.standard_normal((2, 3, 7, 7), dtype=np.float32)
    big = upsample(x, 4)
    assert big.shape == (2, 3, 28, 28) and big.dtype == np.float32
    np.testing.assert_array_equal(big[:, :, 8:12, 20:24], np.broadcast_to(x[:, :, 2:3, 5:6], (2, 3, 4, 4)))
    assert avgpool(big, 4).shape == (2, 3, 7, 7) and avgpool(big, 4).dtype == np.float32
    np.testing.assert_allclose(avgpool(upsample(x, 2), 2), x, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(avgpool(x[:, :, :6, :6], 3)[0, 0, 1, 0], np.float32(x[0, 0, 3:6, :3].mean()))
    with pytest.raises(ValueError, match=r"avgpool by 2 needs H and W divisible by 2, got \(7, 7\)"):
        avgpool(x, 2)


def test_resampling_gradients_match_finite_differences_and_stay_float32(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    weights = rng.standard_normal((1, 2, 8, 8))
    assert check_grad(lambda v: np.sum(weights * upsample(v, 2)), x) < 1e-7
    assert check_grad(lambda v: np.sum(weights[:, :, :2, :2] * avgpool(v, 2)), x) < 1e-7
    x32 = x.astype(np.float32)
    assert grad(lambda v: np.sum(avgpool(upsample(v, 2), 2) ** 2))(x32).dtype == np.float32


def test_pixel_norm_and_minibatch_stddev(rng):
    x = rng.standard_normal((5, 3, 2, 2), dtype=np.float32)
    normed = pixel_norm(x)
    np.testing.assert_allclose(np.mean(normed ** 2, axis=1), 1, rtol=1e-5)  # each pixel's feature vector
    np.testing.assert_allclose(normed / x, np.broadcast_to(normed[:, :1] / x[:, :1], x.shape), rtol=1e-5)
    spread = minibatch_stddev(x)
    assert spread.shape == (5, 4, 2, 2) and spread.dtype == np.float32
    np.testing.assert_array_equal(spread[:, :3], x)
    np.testing.assert_allclose(spread[:, 3], np.std(x, axis=0).mean(), rtol=1e-5)


@pytest.mark.parametrize("images, level, alpha", [(0, 0, 1.0), (99, 0, 1.0), (100, 1, 0.0), (125, 1, 0.25),
                                                   (199, 1, 0.99), (200, 1, 1.0), (300, 2, 0.0), (350, 2, 0.5),
                                                   (400, 2, 1.0), (10_000, 2, 1.0)])
def test_the_schedule_is_stable_fade_stable_fade_then_stable(images, level, alpha):
    assert schedule(images, 100, 3) == (level, alpha)


def test_a_schedule_of_one_level_never_fades():
    assert [schedule(i, 10, 1) for i in (0, 15, 35)] == [(0, 1.0)] * 3


def test_fade_endpoints_reproduce_the_old_and_the_new_path_exactly(tiny, rng):
    gan, params = tiny
    g, d = params["generator"], params["discriminator"]
    z, x = gan.sample_latent(rng, 5), rng.random((5, 1, 28, 28), dtype=np.float32)
    for level in (1, 2):
        np.testing.assert_array_equal(gan.generate_at(g, z, level, 0.0), gan.generate_at(g, z, level - 1, 1.0))
        np.testing.assert_array_equal(gan.score_at(d, x, level, 0.0), gan.score_at(d, x, level - 1, 1.0))
        ends = [gan.image_logits(g, z, level, a) for a in (0.0, 1.0)]
        np.testing.assert_allclose(gan.image_logits(g, z, level, 0.25), 0.75 * ends[0] + 0.25 * ends[1],
                                   rtol=1e-5, atol=1e-6)  # linear in α before the sigmoid
    assert fade(None, "new", 1) == "new" and fade("old", None, 0) == "old"


def test_each_level_draws_at_its_resolution_then_upsamples_to_28(tiny, rng):
    gan, params = tiny
    z = gan.sample_latent(rng, 3)
    for level, block in [(0, 4), (1, 2), (2, 1)]:
        images = gan.generate_at(params["generator"], z, level, 1.0)
        assert images.shape == (3, 1, 28, 28) and images.dtype == np.float32
        assert ((images >= 0) & (images <= 1)).all()
        np.testing.assert_array_equal(images, upsample(images[:, :, ::block, ::block], block))
        assert len(np.unique(images[0])) > (28 // block) ** 2 // 2  # constant on blocks, not everywhere
    with pytest.raises(ValueError, match=r"a level in \[0, 3\) and α in \[0, 1\] \(1 at level 0\), got level 0, α 0.5"):
        gan.generate_at(params["generator"], z, 0, 0.5)


def test_sampling_follows_the_schedule_kept_in_state(rng):
    gan = ProgressiveGAN(**TINY, phase_images=10)
    params = gan.init(rng)
    assert gan.progress() == (0, 1.0)
    assert np.unique(gan.sample(params, rng, 2)[0, 0, :4, :4]).size == 1
    gan.advance(35)
    assert gan.progress() == (2, 0.5)
    assert gan.state["schedule"]["images"].dtype == np.int64
    assert np.unique(gan.sample(params, rng, 2)[0, 0, :4, :4]).size > 1


def replaced(tree, path, value):
    """A copy of the nested dicts/lists `tree` with the leaf at `path` replaced by value (others shared)."""
    if not path:
        return value
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[path[0]] = replaced(tree[path[0]], path[1:], value)
    return copy


def float64(tree):
    if isinstance(tree, dict):
        return {k: float64(v) for k, v in tree.items()}
    return [float64(v) for v in tree] if isinstance(tree, list) else tree.astype(np.float64)


@pytest.mark.parametrize("pixel_norm", [False, True])
def test_gradients_of_a_fading_network_match_finite_differences(pixel_norm):
    rng = np.random.default_rng(1)  # (seed 0 puts a LeakyReLU input within 1e-5 of its kink: a 1% error at h = 1e-5)
    gan = ProgressiveGAN(latent=2, widths=(2, 2), phase_images=10, pixel_norm=pixel_norm)  # 14 x 14, then 28 x 28
    params = float64(gan.init(rng))  # finite differences need float64 throughout
    g, d = params["generator"], params["discriminator"]
    z, x = gan.sample_latent(rng, 2).astype(np.float64), rng.random((2, 1, 28, 28))
    new_conv, new_from_rgb = ("blocks", 1, 1, "w"), ("from_rgb", 1, 0, "w")  # the new level's weights, mid-fade
    assert check_grad(lambda w: np.sum(gan.generate_at(replaced(g, new_conv, w), z, 1, 0.3) ** 2),
                      g["blocks"][1][1]["w"]) < 1e-4  # LeakyReLU: kinks
    assert check_grad(lambda w: np.sum(gan.score_at(replaced(d, new_from_rgb, w), x, 1, 0.3)),
                      d["from_rgb"][1][0]["w"]) < 1e-4
    old_to_rgb = ("to_rgb", 0, "w")
    assert check_grad(lambda w: np.sum(gan.generate_at(replaced(g, old_to_rgb, w), z, 1, 0.3) ** 2),
                      g["to_rgb"][0]["w"]) < 1e-4


@pytest.mark.parametrize("pixel_norm", [False, True])
def test_gradients_stay_float32_mid_fade(rng, pixel_norm):
    gan = ProgressiveGAN(**TINY, pixel_norm=pixel_norm)
    params = gan.init(rng)
    z = gan.sample_latent(rng, 3)

    def loss(params):
        return np.mean(gan.score_at(params["discriminator"], gan.generate_at(params["generator"], z, 2, 0.5), 2, 0.5))

    value, grads = value_and_grad(loss)(params)
    assert np.asarray(value).dtype == np.float32
    assert [g.dtype for g in leaves(grads)] == [np.float32] * len(leaves(params))
    assert all(np.any(g != 0) for g in leaves(grads["generator"]["blocks"]))  # every level takes part mid-fade


def later_levels(params):
    g, d = params["generator"], params["discriminator"]
    return leaves([g["blocks"][1:], g["to_rgb"][1:], d["blocks"][1:], d["from_rgb"][1:]])


def test_a_step_keeps_float32_leaves_levels_not_grown_untouched_and_logs_the_schedule(digits):
    rng = np.random.default_rng(1)
    gan = ProgressiveGAN(**TINY, phase_images=100)
    t = trainable(gan, gan_family.RECIPES["gan"], rng)
    later = [p.copy() for p in later_levels(t.params)]
    before_base = t.params["generator"]["blocks"][0][0]["W"].copy()
    metrics = t.step((digits,))
    assert {"d_real", "d_fake", "d_loss", "g_loss", "d_grad_norm", "g_grad_norm"} <= set(metrics)
    assert (metrics["alpha"], metrics["resolution"]) == (1.0, 7.0) and int(gan.state["schedule"]["images"]) == 8
    for p, q in zip(later_levels(t.params), later, strict=True):
        np.testing.assert_array_equal(p, q)  # zero gradients, and Adam moves nothing with them
    assert not np.array_equal(t.params["generator"]["blocks"][0][0]["W"], before_base)
    assert all(p.dtype == np.float32 for p in leaves(t.params))
    assert all(b.dtype == np.float32 for opt in t.optimizers.values() for b in leaves(opt.state))


def test_reaching_a_new_level_restarts_the_optimisers(digits):
    gan = ProgressiveGAN(**TINY, phase_images=16)
    t = trainable(gan, gan_family.RECIPES["gan"], np.random.default_rng(2))
    for _ in range(2):
        t.step((digits,))
    assert t.optimizers["generator"].t == 2
    logged = t.step((digits,))  # images 16: the 14 x 14 fade begins
    assert (logged["alpha"], logged["resolution"]) == (0.0, 14.0) and t.optimizers["generator"].t == 1
    assert int(gan.state["schedule"]["level"]) == 1


def test_bad_settings_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match=r"widths must be 1 to 3 positive channel counts .* got \(8, 8, 8, 8\)"):
        ProgressiveGAN(widths=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="phase_images must be a positive int .* got 0"):
        ProgressiveGAN(phase_images=0)


def test_a_resumed_run_matches_one_straight_through_across_a_growth(tmp_path, digits):
    """Interrupted in the 7 x 7 phase, resumed with another seed: the schedule (in state), both optimisers
    (reset at the growth) and the rng all come back, and it grows to 14 x 14 on time."""
    options = {"latent": "4", "widths": "3,2,2", "phase_images": "16"}
    t = assert_resumes_bit_for_bit(tmp_path, "progressive", options, digits, epochs=4, batch_size=4, stop_at=3)
    lines = step_lines(tmp_path / "resumed")
    assert '"alpha": 0.25, "resolution": 14.0' in lines[5] and int(t.state["schedule"]["images"]) == 32


def pool(x, f):
    """Mean over f x f blocks, written out here for the test: (N, C, H, W) -> (N, C, H/f, W/f)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // f, f, w // f, f).mean(axis=(3, 5))


def test_mid_fade_d_reads_fakes_as_g_drew_them_and_reals_blended_once(digits):
    """Karras et al.'s released code blends reals between resolutions (train.py, process_reals) and feeds
    fakes as G made them, already a blend of G's two toRGB paths. Spy on what the new level's fromRGB
    reads during a training step at α = 0.3: for fakes G's 14 x 14 image itself, for reals the blend."""
    gan = ProgressiveGAN(**TINY, phase_images=10)
    t = trainable(gan, gan_family.RECIPES["gan"], np.random.default_rng(3))
    gan.advance(13)  # phase 1 (the 14 x 14 fade), 3 images into 10
    assert gan.progress() == (1, 0.3)
    reads, made = [], []
    layer, generate = gan.from_rgb[1], gan.generate
    gan.from_rgb[1] = layer.__class__(layer.name, layer.init,
                                      lambda p, x, **kw: reads.append(getval(x)) or layer.apply(p, x, **kw))
    gan.generate = lambda *args, **kw: made.append(getval(generate(*args, **kw))) or made[-1]
    t.step((digits,))
    real_read, fake_read = reads[0], reads[1]  # the critic objective scores reals first, then fakes
    x14 = pool(digits.astype(np.float64), 2)
    x7_up = np.repeat(np.repeat(pool(x14, 2), 2, axis=2), 2, axis=3)
    np.testing.assert_allclose(real_read, 0.7 * x7_up + 0.3 * x14, rtol=1e-5, atol=1e-6)
    fake14 = made[0][:, :, ::2, ::2]  # G's blended image at 14 x 14 (upsampled by 2 to 28 x 28)
    np.testing.assert_allclose(fake_read, fake14, rtol=1e-6, atol=1e-7)  # unchanged: no second blend
    assert not np.allclose(fake14, 0.7 * np.repeat(np.repeat(pool(fake14, 2), 2, 2), 2, 3) + 0.3 * fake14,
                           atol=1e-3)  # (a second blend would be visible)


def test_mid_fade_d_blends_its_two_input_paths(tiny, rng):
    """score_at's features entering the old blocks: (1 - α)·fromRGB_old(avgpool x) + α·block_new(fromRGB_new x)."""
    gan, params = tiny
    d = params["discriminator"]
    x = rng.random((4, 1, 28, 28), dtype=np.float32)
    old = gan.from_rgb[1].apply(d["from_rgb"][1], pool(x, 2))  # level 2's old path reads 14 x 14
    new = gan.d_blocks[2].apply(d["blocks"][2], gan.from_rgb[2].apply(d["from_rgb"][2], x))
    h = 0.7 * old + 0.3 * new
    for k in (1, 0):
        h = gan.d_blocks[k].apply(d["blocks"][k], h)
    np.testing.assert_allclose(gan.score_at(d, x, 2, 0.3), h, rtol=1e-4, atol=1e-5)
