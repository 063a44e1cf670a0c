"""The conditional GAN: labels reach both networks, steer the samples, and are scored."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from autograd import grad
from test_sample_quality import reference_frechet

from minigen import models, nn, ops
from minigen.data import load_mnist_sample, ring
from minigen.demo import model_demo
from minigen.metrics import classifier_outputs, sample_quality
from minigen.models.cgan import ConditionalGAN, conv_cgan, mlp_cgan
from minigen.models.gan import RECIPES
from minigen.optim import leaves


def test_append_condition_adds_features_or_constant_planes():
    y1 = ops.one_hot(np.array([2, 0]), 3)
    flat = ops.append_condition(np.ones((2, 4), np.float32), y1)
    np.testing.assert_array_equal(flat, [[1, 1, 1, 1, 0, 0, 1], [1, 1, 1, 1, 1, 0, 0]])
    images = ops.append_condition(np.zeros((2, 1, 5, 6), np.float32), y1)
    assert images.shape == (2, 4, 5, 6) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0, 3], np.ones((5, 6)))  # label 2 -> the third plane is all ones
    np.testing.assert_array_equal(images[1, 1], np.ones((5, 6)))
    assert images[0, 1:3].sum() == 0 and images[1, 2:].sum() == 0
    with pytest.raises(ValueError, match="one-hot labels"):
        ops.append_condition(np.ones((3, 4), np.float32), y1)


def test_both_networks_read_the_label(rng):
    gan = mlp_cgan(hidden=16)
    params = gan.init(rng)
    assert params["generator"][0]["W"].shape == (110, 16)  # z (100) + one-hot (10)
    assert params["discriminator"][0]["W"].shape == (794, 16)  # 784 pixels + one-hot (10)
    z = gan.sample_latent(rng, 2)
    threes, fives = gan.generate(params["generator"], z, np.array([3, 3])), \
        gan.generate(params["generator"], z, np.array([5, 5]))
    assert threes.shape == (2, 1, 28, 28) and threes.dtype == np.float32
    assert np.abs(threes - fives).max() > 1e-4  # same z, another label, another image
    d = params["discriminator"]
    assert gan.score(d, threes, np.array([3, 3])).shape == (2, 1)
    assert not np.allclose(gan.score(d, threes, np.array([3, 3])), gan.score(d, threes, np.array([5, 5])))
    np.testing.assert_array_equal(gan.sample(params, np.random.default_rng(1), 12)[10],
                                  gan.generate(params["generator"], gan.sample_latent(np.random.default_rng(1), 12),
                                               np.arange(12) % 10)[10])  # default labels: the classes in turn


def test_the_conv_cgan_gives_d_the_label_as_constant_planes(rng):
    gan = conv_cgan(latent=8, width=4)
    params = gan.init(rng)
    assert params["generator"][0]["W"].shape == (8 + 10, 2 * 4 * 7 * 7)  # DCGAN's G reads [z, onehot(y)]
    assert params["discriminator"][0]["w"].shape == (4, 1 + 10, 4, 4)  # D's first conv: image + 10 label planes
    x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
    d_in = gan.d_input(x, np.array([7, 0]))
    assert d_in.shape == (2, 11, 28, 28) and d_in.dtype == np.float32
    np.testing.assert_array_equal(d_in[:, :1], x)
    np.testing.assert_array_equal(d_in[:, 1:].max(axis=(2, 3)), ops.one_hot(np.array([7, 0]), 10))
    np.testing.assert_array_equal(d_in[:, 1:].min(axis=(2, 3)), ops.one_hot(np.array([7, 0]), 10))  # constant
    packed = ConditionalGAN(gan.generator, gan.discriminator, 8, (1, 28, 28), pack=2, label_input="planes")
    assert packed.d_input(x, np.array([7, 0])).shape == (1, 22, 28, 28)


@pytest.mark.parametrize("spectral", [False, True])
def test_the_conv_cgans_critic_reads_the_planes_as_class_maps(rng, spectral):
    """What D scores (its first convolution adding one map per label) equals D on d_input's planes,
    and its gradient in D's weights too; packed inputs keep the planes themselves."""
    from minigen.models.dcgan import dcgan_discriminator
    gan = ConditionalGAN(conv_cgan(latent=8, width=4).generator, dcgan_discriminator(4, spectral=spectral),
                         8, (1, 28, 28), label_input="planes")
    d = gan.init(rng)["discriminator"]
    x, y = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32), np.array([7, 0, 7, 3, 9])
    d_in, condition = gan.critic_inputs(x, y)
    assert d_in.shape == (5, 1, 28, 28) and condition.shape == (5, 10)
    via_planes = lambda p: gan.critic(p, gan.d_input(x, y))  # eval mode: spectral norm's u, v held
    np.testing.assert_allclose(gan.score(d, x, y), via_planes(d), rtol=1e-5, atol=1e-6)
    r = np.random.default_rng(2).standard_normal((5, 1)).astype(np.float32)  # a cotangent (batch norm's sum is ~0)
    by_maps = leaves(grad(lambda p: np.sum(r * gan.score(p, x, y)))(d))
    by_planes = leaves(grad(lambda p: np.sum(r * via_planes(p)))(d))
    scale = max(np.abs(b).max() for b in by_planes)  # (the bias before batch norm has a gradient of ~0)
    for a, b in zip(by_maps, by_planes):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)
    packed = ConditionalGAN(gan.generator, gan.discriminator, 8, (1, 28, 28), pack=5, label_input="planes")
    assert packed.critic_inputs(x, y)[1] is None and packed.critic_inputs(x, y)[0].shape == (1, 55, 28, 28)


def test_labels_as_planes_are_refused_where_the_first_layer_cannot_read_them(rng):
    net = nn.Sequential(nn.Flatten(), nn.Dense(1))
    params = net.init(rng, (11, 4, 4))[1]
    with pytest.raises(ValueError, match="labels as planes .* need a first layer Conv2d, got Flatten"):
        net.apply(params, np.zeros((2, 1, 4, 4), np.float32), condition=ops.one_hot(np.array([1, 2]), 10))
    conv = nn.Conv2d(3, 2)
    w = conv.init(rng, (11, 4, 4))[1]
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\), got \(2, 2, 4, 4\)"):
        conv.apply(w, np.zeros((2, 2, 4, 4), np.float32), condition=ops.one_hot(np.array([1, 2]), 10))


def test_the_conv_cgans_networks_both_read_the_label(rng):
    """Same z or same image, another label: another image from G, another score from D."""
    gan = conv_cgan(latent=8, width=4)
    params = gan.init(rng)
    z = np.repeat(gan.sample_latent(rng, 1), 4, axis=0)
    images = gan.generate(params["generator"], z, np.array([3, 3, 5, 9]))
    assert images.shape == (4, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0], images[1])  # same z, same label
    assert np.abs(images[0] - images[2]).max() > 1e-4 and np.abs(images[0] - images[3]).max() > 1e-4
    same = np.repeat(images[:1], 4, axis=0)
    scores = gan.score(params["discriminator"], same, np.array([3, 3, 5, 9]))
    assert scores.shape == (4, 1) and scores[0, 0] == scores[1, 0]
    assert abs(scores[0, 0] - scores[2, 0]) > 1e-6 and abs(scores[0, 0] - scores[3, 0]) > 1e-6


def test_cgan_options_are_checked_where_they_enter():
    with pytest.raises(ValueError, match="arch must be one of mlp, conv"):
        models.build("cgan", {"arch": "resnet"}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="option width sizes arch=conv, not arch=mlp"):
        models.build("cgan", {"width": "32"}, np.random.default_rng(0))  # arch=mlp is the default
    with pytest.raises(ValueError, match="option hidden sizes arch=mlp"):
        models.build("cgan", {"arch": "conv", "hidden": "32"}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="label_input must be one of"):
        ConditionalGAN(nn.Dense(2), nn.Dense(1), 2, (2,), label_input="channels")
    with pytest.raises(ValueError, match=r"needs images \(C, H, W\)"):
        ConditionalGAN(nn.Dense(2), nn.Dense(1), 2, (2,), label_input="planes")


def test_missing_or_misshapen_labels_are_refused_by_name(rng):
    gan = mlp_cgan(hidden=8)
    params = gan.init(rng)
    z = gan.sample_latent(rng, 3)
    with pytest.raises(ValueError, match="needs labels"):
        gan.generate(params["generator"], z)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        gan.generate(params["generator"], z, np.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        gan.generate(params["generator"], z, np.array([1, 2, 10]))
    step, _, _ = RECIPES["gan"].train_step(gan, params, rng)
    with pytest.raises(ValueError, match="images, labels"):
        step((np.zeros((4, 1, 28, 28), np.float32),))
    with pytest.raises(ValueError, match="n_classes"):
        ConditionalGAN(nn.Dense(2), nn.Dense(1), 2, (2,), n_classes=1)


def test_the_label_steers_samples_to_their_own_mode():
    """On the 8-mode ring with the mode as the label, a short training run must put
    most samples asked for mode k nearer centre k than any other centre (chance: 1/8)."""
    rng = np.random.default_rng(0)
    toy = lambda out, act: nn.Sequential(nn.Dense(64), act, nn.Dense(64), act, nn.Dense(out))
    gan = ConditionalGAN(toy(2, nn.ReLU()), toy(1, nn.LeakyReLU(0.2)), latent=2, data_shape=(2,), n_classes=8)
    params = gan.init(rng)
    step, g_opt, d_opt = RECIPES["gan"].train_step(gan, params, rng, lr=2e-3)
    data = ring(rng, 64 * 600, n_modes=8, radius=2.0, std=0.05)
    for i in range(600):
        metrics = step((data.x[64 * i:64 * (i + 1)], data.labels[64 * i:64 * (i + 1)]))
    assert set(metrics) == {"d_real", "d_fake", "d_loss", "g_loss", "d_grad_norm", "g_grad_norm"}
    asked = np.arange(800) % 8
    fake = gan.sample(params, rng, 800, asked)
    nearest = np.argmin(((fake[:, None, :] - data.centres[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == asked) > 0.8
    for array in leaves(params) + leaves(g_opt.state) + leaves(d_opt.state):
        assert array.dtype == np.float32


def test_label_accuracy_is_the_classifiers_agreement_with_the_asked_labels():
    x, y = load_mnist_sample("test")
    x, y = x[:300], y[:300]
    feats, probs = classifier_outputs(x)
    predicted = probs.argmax(1)
    right = sample_quality(x[:150], x[150:], labels=y[:150])
    wrong = sample_quality(x[:150], x[150:], labels=(y[:150] + 1) % 10)
    assert right["label_accuracy"] == np.mean(predicted[:150] == y[:150]) and right["label_accuracy"] > 0.95
    assert wrong["label_accuracy"] == np.mean(predicted[:150] == (y[:150] + 1) % 10) < 0.05
    # The labels change nothing else: FID and score against references written here.
    expected_fid = reference_frechet(feats[:150].mean(0), np.cov(feats[:150], rowvar=False),
                                     feats[150:].mean(0), np.cov(feats[150:], rowvar=False))
    p_y = probs[:150].mean(0)
    expected_is = np.exp(np.mean(np.sum(probs[:150] * (np.log(probs[:150]) - np.log(p_y)), axis=1)))
    for scores in (right, wrong, sample_quality(x[:150], x[150:])):
        assert scores["fid"] == pytest.approx(expected_fid, rel=1e-6)
        assert scores["is"] == pytest.approx(expected_is, rel=1e-6)
    assert "label_accuracy" not in sample_quality(x[:150], x[150:])


def test_the_per_digit_agreement_table_splits_the_agreement_by_the_asked_digit():
    """Images of digits 0-9 asked for as themselves, except every 3 asked for as an 8: digit 3's row
    reads what the classifier says of the 3s, 8's row mixes true 8s with the mislabelled 3s."""
    x, y = load_mnist_sample("test")
    x, y = x[:300], y[:300]
    predicted = classifier_outputs(x)[1].argmax(1)
    asked = np.where(y == 3, 8, y)
    by_digit = sample_quality(x, x, labels=asked)["label_accuracy_by_digit"]
    assert len(by_digit) == 10 and by_digit[3] is None  # no image was asked for a 3
    for d in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        assert by_digit[d] == pytest.approx(np.mean(predicted[asked == d] == d), abs=1e-12)
    assert by_digit[8] < 0.7 < min(by_digit[d] for d in (0, 1, 2, 4, 5, 6, 7, 9))


def test_the_cgan_demo_trains_draws_and_scores_on_the_sample(tmp_path, capsys):
    out = tmp_path / "run"
    trainable, where = model_demo("cgan", "doc", epochs=1, batch_size=64,
                                  argv=["--sample", "--set", "hidden=16", "--out", str(out)])
    assert where == out and trainable.needs_labels and trainable.picture_columns == 10
    for name in ("curves.png", "samples.png", "eval.json", "checkpoint.npz", "samples/epoch_001.png"):
        assert (out / name).is_file(), name
    for name in ("samples.png", "samples/epoch_001.png"):  # 10 x 10 digits of 28 x 28, no ragged row
        grid = plt.imread(out / name)
        assert abs(grid.shape[0] - grid.shape[1]) < 5 and grid.shape[0] > 10 * 28, (name, grid.shape)
    printed = capsys.readouterr().out
    assert "real digits" in printed and "asked-for label" in printed and "±" in printed
    assert "lit background" in printed and printed.count("\nagree ") == 1  # the per-digit table
    scores = json.loads((out / "eval.json").read_text())
    assert len(scores["per_seed"]) == 3 and len(scores["label_accuracy_by_digit"]) == 10
    assert {"fid_sd", "is_sd", "lit_background", "label_accuracy_sd"} <= set(scores)
