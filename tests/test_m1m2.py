"""M1+M2 (Kingma et al. 2014, §3.2): M1's features, its active units, fresh draws, and the demo's M1+M2 mode."""
import json

import numpy as np
import pytest

from minigen.models.m1m2 import active_units, draw_features, full_latent, posterior_features
from minigen.models.vae import VAE, VAEConfig


def test_features_are_the_mean_and_log_variance_of_q():
    model = VAE(VAEConfig(latent=4, hidden=(8,), activation="softplus"))
    params = model.init(np.random.default_rng(0))
    x = np.random.default_rng(1).random((2500, 1, 28, 28)).astype(np.float32)
    features = posterior_features(model, params, x, batch=1000)  # three batches, the last one short
    mu, logvar = model.encode(params, x)
    assert features.shape == (2500, 2, 4) and features.dtype == np.float32
    # The same up to float32 rounding: a GEMM's summation order depends on how many rows it is given
    # (OpenBLAS blocks, and at two threads splits, by them), so batches of 1,000 and one of 2,500 may
    # differ in the last bits of sums of 784 products (4.5e-7 seen on a 2-core VM at two threads).
    np.testing.assert_allclose(features[:, 0], mu, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(features[:, 1], logvar, rtol=1e-5, atol=2e-6)


def test_active_units_are_those_whose_mean_moves_with_the_image():
    rng = np.random.default_rng(0)
    mean = np.stack([rng.normal(0, 1.0, 1000), rng.normal(0, 0.05, 1000), rng.normal(3, 0.2, 1000),
                     np.full(1000, 0.7)], axis=1)  # std 1, 0.05, 0.2, 0
    features = np.stack([mean, np.zeros_like(mean)], axis=1).astype(np.float32)
    assert active_units(features).tolist() == [True, False, True, False]
    assert active_units(features, threshold=0.5).tolist() == [True, False, False, False]


def test_draws_follow_q_z1_given_x():
    """z1 = mean + e^(logvar/2) eps: over many draws of the same row, mean and variance as stored."""
    features = np.array([[[1.0, -2.0, 0.0], [0.0, np.log(0.25), np.log(4.0)]]], np.float32)  # (1, 2, 3)
    draws = draw_features(np.random.default_rng(0), np.repeat(features, 40_000, axis=0))
    assert draws.shape == (40_000, 3) and draws.dtype == np.float32
    np.testing.assert_allclose(draws.mean(axis=0), [1.0, -2.0, 0.0], atol=0.03)
    np.testing.assert_allclose(draws.var(axis=0), [1.0, 0.25, 4.0], rtol=0.03)


def test_full_latent_puts_the_inactive_units_at_the_prior_mean():
    active = np.array([False, True, False, True])
    z = full_latent(np.array([[1.5, -2.0], [0.5, 3.0]], np.float32), active)
    np.testing.assert_array_equal(z, [[0, 1.5, 0, -2.0], [0, 0.5, 0, 3.0]])


@pytest.fixture()
def demo(semisupervised_demo):
    return semisupervised_demo


def test_demo_m1_m2_mode_trains_m2_on_m1_features(demo, tmp_path):
    out = tmp_path / "m1m2"
    metrics = demo.main(["--sample", "--m1-cpu-minutes", "0.02", "--out", str(out), "--hidden", "16",
                         "--latent", "3", "--test-images", "200"])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test_error"] == metrics["test_error"] and saved["m1_cpu_seconds"] > 0
    assert 1 <= saved["m1_active_units"] <= 8  # the sample's M1 has an 8-d z
    for name in ("m2_samples.png", "m2_analogies.png", "m2.npz"):
        assert (out / name).is_file(), name
    # M2's decoder models the active features with a Gaussian: a mean and a log-variance for each
    assert np.load(out / "m2.npz")["params/decoder/2/b"].shape == (2 * saved["m1_active_units"],)


    # A second run reuses the saved M1: the same features, so the same active units
    again = demo.main(["--sample", "--m1-weights", str(out / "m1.npz"), "--out", str(tmp_path / "again"),
                       "--hidden", "16", "--latent", "3", "--test-images", "200"])
    assert again["m1_active_units"] == saved["m1_active_units"]
    assert again["m1_cpu_seconds"] == pytest.approx(saved["m1_cpu_seconds"])


@pytest.mark.parametrize("argv", [["--m1-cpu-minutes", "-1"], ["--m1-cpu-minutes", "1", "--m1-weights", "m1.npz"]])
def test_demo_refuses_bad_m1_options(demo, argv):
    with pytest.raises(SystemExit):
        demo.parse_args(argv)
