"""demos/augment_mnist.py: where each generator's z comes from, the judge, the paired gains, a smoke run."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from minigen.data import load_mnist_sample

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))
import augment_mnist  # noqa: E402  (the demo script, imported for its main and helpers)
import semisupervised_mnist  # noqa: E402


class RecordingModel:
    """Stands in for the CVAE / M2: records what encode and decode_mean were given."""

    def __init__(self, latent=3, n_classes=10):
        self.cfg = type("Cfg", (), {"latent": latent, "n_classes": n_classes})()
        self.encoded, self.decoded = [], []

    def encode(self, params, x, y):
        self.encoded.append((x, np.asarray(y)))
        mu = np.repeat(x.reshape(len(x), -1)[:, :1], self.cfg.latent, axis=1)  # mu = the image's first pixel
        return mu.astype(np.float32), np.full_like(mu, -60.0, dtype=np.float32)  # sd ~ 1e-13: z = mu

    def decode_mean(self, params, z, y):
        self.decoded.append((z, np.asarray(y)))
        return np.zeros((len(z), 1, 28, 28), np.float32)

    def predict(self, params, x):
        return np.full(len(x), 7)


def test_cvae_posterior_encodes_a_real_image_of_the_wanted_class():
    x_l = np.arange(20, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 28, 28), np.float32)
    y_l = np.arange(20) % 10  # image i has first pixel i and class i % 10
    labels = np.array([3, 3, 8, 0, 9])
    model = RecordingModel()
    augment_mnist.cvae_posterior(model, None, np.random.default_rng(0), x_l, y_l, labels)
    (x_src, y_enc), = model.encoded
    assert np.array_equal(y_l[x_src[:, 0, 0, 0].astype(int)], labels)  # each source image is of its wanted class
    assert np.array_equal(y_enc, labels)
    z, y_dec = model.decoded[0]
    assert np.allclose(z[:, 0], x_src[:, 0, 0, 0]) and np.array_equal(y_dec, labels)  # z from that image's q


def test_m2_style_encodes_with_the_predicted_label_and_decodes_with_the_wanted_one():
    x_u = np.random.default_rng(0).random((50, 1, 28, 28), dtype=np.float32)
    labels = np.array([0, 1, 2, 3])
    model = RecordingModel()
    augment_mnist.m2_style(model, None, np.random.default_rng(0), x_u, labels)
    (_, y_enc), = model.encoded
    z, y_dec = model.decoded[0]
    assert np.array_equal(y_enc.argmax(1), [7, 7, 7, 7])  # q(z | x_u, predicted label 7), one-hot
    assert np.array_equal(y_dec.argmax(1), labels)


def test_the_judge_agrees_with_true_labels_and_not_with_wrong_ones():
    x, y = load_mnist_sample("test")
    x, y = x[:300], y[:300]
    assert augment_mnist.judge_agreement(x, y) > 0.95
    assert augment_mnist.judge_agreement(x, (y + 1) % 10) < 0.05


def test_nearest_distance_is_zero_for_copies_and_the_rms_gap_otherwise():
    x_l = np.zeros((3, 1, 28, 28), np.float32)
    x_l[1] += 0.5
    x_l[2] += 1.0
    copies = x_l[[2, 0, 1, 1]]
    assert augment_mnist.nearest_distance(copies, x_l, chunk=3) == pytest.approx(0.0, abs=1e-6)
    between = np.full((2, 1, 28, 28), 0.2, np.float32)  # nearest: the zeros, RMS 0.2 (0.3 from the halves)
    between[1] = 0.9  # nearest: the ones, RMS 0.1
    assert augment_mnist.nearest_distance(between, x_l, chunk=1) == pytest.approx(0.15, abs=1e-5)


def test_gains_are_paired_with_each_seeds_own_baseline():
    per_seed = {0: {"real only": (0.70, None, 0.24), "g": (0.75, 0.9, 0.10)},
                1: {"real only": (0.60, None, 0.22), "g": (0.62, 0.8, 0.20)},
                2: {"real only": (0.80, None, 0.20)}}  # g missing at seed 2 (e.g. no M2 run for it)
    s = augment_mnist.summarise(per_seed)
    assert list(s) == ["real only", "g"]
    assert s["g"]["seeds"] == [0, 1]
    assert s["g"]["gain_mean"] == pytest.approx(0.035) and s["g"]["gain_sd"] == pytest.approx(0.015)
    assert s["g"]["judge_agreement"] == pytest.approx(0.85) and s["g"]["nearest_distance"] == pytest.approx(0.15)
    assert s["real only"]["nearest_distance"] == pytest.approx(0.22)
    assert s["real only"]["mean"] == pytest.approx(0.70) and s["real only"]["judge_agreement"] is None


def test_smoke_run_on_the_sample_with_an_m2_run(tmp_path):
    m2_dir = tmp_path / "m2"
    semisupervised_mnist.main(["--sample", "--labels", "100", "--seed", "1", "--out", str(m2_dir)])
    result = augment_mnist.main(["--sample", "--epochs", "0.05", "--hidden", "32", "--labels", "100",
                                 "--seeds", "0", "1", "--factor", "2", "--test-n", "100",
                                 "--m2", str(m2_dir), "--out", str(tmp_path / "aug")])
    table = result["table"]["100"]
    assert set(table) == {"real only", "cvae-prior", "cvae-posterior", "cgan", "m2-prior", "m2-style"}
    assert table["m2-style"]["seeds"] == [1] and table["cvae-prior"]["seeds"] == [0, 1]  # M2 serves its seed
    assert json.loads((tmp_path / "aug" / "metrics.json").read_text())["picture_rows"] == ["cvae-prior",
                                                                                         "cvae-posterior", "cgan"]
    assert (tmp_path / "aug" / "augment_samples.png").is_file()


def test_a_folder_without_an_m2_run_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected m2.npz and metrics.json"):
        augment_mnist.load_m2_runs([tmp_path])
