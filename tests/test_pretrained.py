"""Pretrained weights (minigen.pretrained; `minigen sample|eval --pretrained NAME`): the shipped files
load and draw images in [0, 1]; a packaged run samples exactly what the run sampled; a changed,
pickled or missing file is refused with its name. No training beyond two steps of a tiny model."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from minigen import metrics, models, pretrained
from minigen.checkpoint import read_arrays
from minigen.cli import main
from minigen.data import find_mnist, load_split

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = pretrained.names()
HEADLINE = {"dcgan", "cgan", "wgan-gp", "vae", "vae2d"}


def test_the_headline_models_are_shipped_with_their_provenance():
    assert HEADLINE <= set(SHIPPED)
    for name in HEADLINE:
        info = pretrained.info(name)
        assert "minigen demo" in info["command"] and info["commit"] and "fid" in info["metrics"]


@pytest.mark.parametrize("name", SHIPPED)
def test_sample_pretrained_writes_an_npy_in_range_and_a_png(name, tmp_path):
    assert main(["sample", "--pretrained", name, "--n", "12", "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy", allow_pickle=False)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1 and x.std(axis=0).mean() > 0.01  # in range, and not one image 12 times
    assert main(["sample", "--pretrained", name, "--n", "12", "--out", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", SHIPPED)
def test_eval_scores_a_pretrained_model_on_a_few_test_images(name):
    """What `minigen eval --pretrained NAME` computes (metrics.eval_scores), on 200 images of the sample."""
    _, trainable = pretrained.load(name)
    x, y = load_split("test", sample=True)
    scores = metrics.eval_scores(trainable, x[:200], y[:200], seeds=(0,))
    assert np.isfinite(scores["fid"]) and scores["fid"] > 0 and 1 <= scores["is"] <= 10
    if trainable.likelihood is not None:  # a VAE: its encoder was shipped too
        assert 50 < scores["test_neg_elbo"] < 300 and scores["test_nll_iwae"] <= scores["test_neg_elbo"]


def test_the_pretrained_cgan_draws_the_digits_asked_for():
    """Wrong batch-norm statistics or a wrong label order would make the classifier disagree."""
    _, trainable = pretrained.load("cgan")
    images = trainable.sample(np.random.default_rng(0), 100)  # image i is of digit i % 10
    _, probs = metrics.classifier_outputs(images)
    assert np.mean(probs.argmax(1) == np.arange(100) % 10) > 0.9


def test_an_unknown_name_lists_the_shipped_ones(capsys):
    assert main(["sample", "--pretrained", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "no-such-model" in err and all(name in err for name in SHIPPED)
    assert main(["eval", "--pretrained", "no-such-model"]) == 1


def test_a_run_and_a_pretrained_name_together_are_refused(capsys, tmp_path):
    assert main(["sample", str(tmp_path), "--pretrained", "dcgan"]) == 1
    assert "either RUN_DIR or --pretrained" in capsys.readouterr().err
    assert main(["sample"]) == 1


def copy_shipped(name, folder):
    for suffix in (".npz", ".json"):
        shutil.copy(pretrained.PRETRAINED_DIR / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder / f"{name}.npz"


def test_a_changed_weights_file_is_refused_naming_it(tmp_path):
    """A well-formed .npz whose numbers were changed: only the checksum can tell."""
    path = copy_shipped("dcgan", tmp_path)
    arrays = read_arrays(path)
    arrays["params/generator/0/b"] = arrays["params/generator/0/b"] + np.float16(0.5)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=f"{path}.*SHA-256"):
        pretrained.load("dcgan", tmp_path)


def test_a_pickled_file_is_refused_even_with_its_checksum_recorded(tmp_path):
    path = copy_shipped("dcgan", tmp_path)
    np.savez(path, **{"params/generator/0/b": np.array([{"code": "run me"}], dtype=object)})
    info = json.loads((tmp_path / "dcgan.json").read_text())
    (tmp_path / "dcgan.json").write_text(json.dumps({**info, "sha256": pretrained.sha256(path)}))
    with pytest.raises(ValueError, match="pickled"):
        pretrained.load("dcgan", tmp_path)


def test_a_missing_weights_file_is_named(tmp_path):
    copy_shipped("dcgan", tmp_path).unlink()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "dcgan.npz")):
        pretrained.load("dcgan", tmp_path)
    (tmp_path / "dcgan.json").write_text("{not json")
    with pytest.raises(ValueError, match="dcgan.json"):
        pretrained.load("dcgan", tmp_path)


def package(tmp_path, config, trainable, dtype):
    """sampling_weights + save + a NAME.json with the checksum: what benchmarks/package_pretrained.py writes."""
    build, params, state = pretrained.sampling_weights(config, trainable, dtype)
    path = pretrained.save(tmp_path / "tiny.npz", build, params, state, dtype)
    (tmp_path / "tiny.json").write_text(json.dumps({"sha256": pretrained.sha256(path)}))
    return path


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_packaged_averaged_gan_samples_what_the_run_samples(tmp_path, dtype):
    """The averaged generator becomes the generator, with batch-norm statistics measured for the
    stored (rounded) weights; no discriminator, no live generator, no optimiser state is kept."""
    config = {"model": "dcgan", "options": {"width": "4", "ema": "0.9"}, "seed": 0, "lr": None}
    rng = np.random.default_rng(0)
    trainable = models.build("dcgan", config["options"], rng)
    for _ in range(2):
        trainable.step((rng.random((16, 1, 28, 28), dtype=np.float32),))
    before = trainable.sample(np.random.default_rng(3), 6)
    path = package(tmp_path, config, trainable, dtype)
    stored = read_arrays(path)
    assert {key.split("/")[1] for key in stored if key != "meta.json"} == {"generator"}
    assert {v.dtype for k, v in stored.items() if k.startswith("params/")} == {np.dtype(dtype)}
    after = trainable.sample(np.random.default_rng(3), 6)  # the run's averaged G, now with rounded weights
    loaded_config, loaded = pretrained.load("tiny", tmp_path)
    assert loaded_config["options"] == {"width": "4"}
    np.testing.assert_array_equal(loaded.sample(np.random.default_rng(3), 6), after)
    np.testing.assert_allclose(after, before, atol=0 if dtype == "float32" else 0.02)


def test_a_packaged_self_conditioned_gan_keeps_its_cluster_shares(tmp_path):
    """Its sampler draws clusters by their shares of the training images: those travel with the weights."""
    config = {"model": "dcgan", "options": {"width": "4", "ema": "0.9", "clusters": "3"}, "seed": 0, "lr": None}
    trainable = models.build("dcgan", config["options"], np.random.default_rng(0))
    trainable.state["clusters"]["shares"] = np.array([0.0, 0.75, 0.25], np.float32)  # as training_arrays sets
    package(tmp_path, config, trainable, "float32")
    assert "state/clusters/shares" in read_arrays(tmp_path / "tiny.npz")
    _, loaded = pretrained.load("tiny", tmp_path)
    np.testing.assert_array_equal(loaded.state["clusters"]["shares"], [0.0, 0.75, 0.25])
    draw = [model.sample(np.random.default_rng(3), 6) for model in (loaded, trainable)]
    np.testing.assert_array_equal(*draw)


def test_a_packaged_vae_keeps_its_encoder_for_the_likelihood(tmp_path):
    config = {"model": "vae", "options": {"hidden": "16", "latent": "2"}, "seed": 0, "lr": None}
    trainable = models.build("vae", config["options"], np.random.default_rng(5))
    package(tmp_path, config, trainable, "float32")
    _, loaded = pretrained.load("tiny", tmp_path)
    draw = [model.sample(np.random.default_rng(1), 4) for model in (loaded, trainable)]
    np.testing.assert_array_equal(*draw)
    x, _ = load_split("test", sample=True)
    assert (metrics.vae_test_metrics(*loaded.likelihood, x[:50], nll_k=5)
            == metrics.vae_test_metrics(*trainable.likelihood, x[:50], nll_k=5))


def test_the_packaging_script_ships_a_vae_demo_folder(tmp_path, monkeypatch):
    """benchmarks/package_pretrained.py on a folder demos/vae_mnist.py wrote (one epoch of a tiny VAE
    on the packaged sample): the file loads by name, its JSON holds the checksum, metrics and provenance."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "demos"))
    import package_pretrained
    import vae_mnist
    if find_mnist() is None:
        pytest.skip("the script scores on MNIST's test split, which is not here")
    vae_mnist.main(["--sample", "--epochs", "1", "--hidden", "16", "--latent", "2", "--nll-k", "5", "--nll-n", "20",
                    "--out", str(tmp_path / "run")])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # the script pins threads
        monkeypatch.setenv(var, "1")
    package_pretrained.main(["tiny", str(tmp_path / "run"), "--command", "python demos/vae_mnist.py --sample",
                             "--commit", "abc", "--threads", "1", "--eval-images", "50", "--out", str(tmp_path)])
    info = pretrained.info("tiny", tmp_path)
    assert info["sha256"] == pretrained.sha256(tmp_path / "tiny.npz") and info["commit"] == "abc"
    assert info["metrics"]["test_neg_elbo"] > 0 and info["run"]["config"]["options"]["latent"] == "2"
    config, loaded = pretrained.load("tiny", tmp_path)
    assert config["model"] == "vae" and loaded.sample(np.random.default_rng(0), 3).shape == (3, 1, 28, 28)
    assert {key.split("/")[0] for key in read_arrays(tmp_path / "tiny.npz")} == {"params", "meta.json"}


def test_the_packaging_script_reads_an_m2_demo_folder_as_minigen_train_m2_builds_it(tmp_path):
    """An M2 demo folder (m2.npz + metrics.json) becomes `minigen train m2` with the demo's labelled
    images (label_seed = its seed) and its weights: the classifier predicts as the demo's did."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "demos"))
    import package_pretrained
    import semisupervised_mnist
    semisupervised_mnist.main(["--sample", "--labels", "100", "--seed", "3", "--out", str(tmp_path)])
    config, trainable, facts = package_pretrained.read_folder(tmp_path)
    assert config["model"] == "m2" and config["options"]["label_seed"] == "3" and config["options"]["labels"] == "100"
    from minigen.checkpoint import load_params
    from minigen.models.m2 import M2, M2Config
    saved, _ = load_params(tmp_path / "m2.npz", trainable.params["m2"])
    x = load_split("test", sample=True)[0][:20]
    demo_model = M2(M2Config(latent=int(config["options"]["latent"]), hidden=int(config["options"]["hidden"])))
    assert np.array_equal(demo_model.predict(saved, x), demo_model.predict(trainable.params["m2"], x))
    assert trainable.sample(np.random.default_rng(0), 4).shape == (4, 1, 28, 28)
    assert facts["demo_metrics"]["test_error"] >= 0
