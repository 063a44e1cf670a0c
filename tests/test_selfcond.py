"""The self-conditioned GAN (minigen.models.selfcond): trained on its own clusters, never the labels;
samples drawn by cluster share; the shares travel with the checkpoint."""
import numpy as np
import pytest

from minigen import models
from minigen.checkpoint import read_arrays
from minigen.cli import main
from minigen.clusters import kmeans
from minigen.data import load_mnist_sample
from minigen.metrics import eval_scores
from minigen.models.selfcond import CLUSTER_SEED, SelfConditionedGAN

SMALL = {"width": "2", "latent": "4", "norm": "none", "clusters": "3"}
CLI_SMALL = ["dcgan", "--sample", "--batch-size", "500", *[a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]]


def test_clusters_option_builds_a_self_conditioned_dcgan(rng):
    trainable = models.build("dcgan", SMALL, rng)
    params = trainable.params
    assert params["generator"][0]["W"].shape[0] == 4 + 3  # G reads [z, onehot(cluster)]
    # D's first convolution reads the image and one constant plane per cluster
    assert params["discriminator"][0]["w"].shape[1] == 1 + 3
    assert not trainable.needs_labels and trainable.picture_columns == 8  # samples are not asked-for classes
    with pytest.raises(ValueError, match="clusters must be 0 .off. or an int >= 2, got 1"):
        models.build("dcgan", {**SMALL, "clusters": "1"}, rng)
    for bad in ("-2", "2.5"):  # refused where options are read, naming the option
        with pytest.raises(ValueError, match="clusters"):
            models.build("dcgan", {**SMALL, "clusters": bad}, rng)
    off = models.build("dcgan", {**SMALL, "clusters": "0"}, rng)  # 0 turns it off: the unconditional DCGAN
    assert off.params["generator"][0]["W"].shape[0] == 4 and "clusters" not in off.state


def test_training_sees_the_clusters_of_the_images_not_their_labels(rng):
    x, y = load_mnist_sample("train")
    trainable = models.build("dcgan", SMALL, rng)
    images, clusters = trainable.training_arrays(x, y)
    assert images is x
    _, expected = kmeans(x, 3, np.random.default_rng(CLUSTER_SEED))
    np.testing.assert_array_equal(clusters, expected)
    _, again = trainable.training_arrays(x, np.random.default_rng(1).permutation(y))  # other labels: same clusters
    np.testing.assert_array_equal(again, clusters)
    shares = trainable.state["clusters"]["shares"]
    assert shares.dtype == np.float32
    np.testing.assert_allclose(shares, np.bincount(clusters, minlength=3) / len(x), rtol=1e-6)


def test_samples_draw_clusters_by_their_shares(rng):
    from minigen.models.dcgan import dcgan
    gan = dcgan(latent=4, width=2, critic_norm="none", clusters=4)
    assert isinstance(gan, SelfConditionedGAN)
    gan.state["clusters"]["shares"] = np.array([0.0, 0.7, 0.0, 0.3], np.float32)
    drawn = gan.sample_labels(np.random.default_rng(0), 20_000)
    counts = np.bincount(drawn, minlength=4) / len(drawn)
    assert counts[0] == counts[2] == 0
    assert abs(counts[1] - 0.7) < 0.02  # 20,000 draws: sd 0.0032
    params = gan.init(rng)
    stream = np.random.default_rng(5)  # y=None: the clusters are drawn by share first, then z
    expected = gan.sample(params, stream, 6, y=gan.sample_labels(stream, 6))
    np.testing.assert_array_equal(gan.sample(params, np.random.default_rng(5), 6), expected)
    threes, ones = (gan.sample(params, np.random.default_rng(9), 6, y=np.full(6, c)) for c in (3, 1))
    assert threes.shape == (6, 1, 28, 28) and np.abs(threes - ones).max() > 0  # asked for, not drawn


def test_a_self_conditioned_run_resumes_bit_for_bit_and_samples_after_loading(tmp_path):
    """The shares go into the checkpoint: one epoch and a resumed second end where two straight epochs
    do, and a loaded run samples by the trained shares without seeing the data again."""
    from minigen.train import load_run
    assert main(["train", *CLI_SMALL, "--set", "ema=0.99", "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *CLI_SMALL, "--set", "ema=0.99", "--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--epochs", "2"]) == 0
    straight, resumed = (read_arrays(tmp_path / run / "checkpoint.npz") for run in ("straight", "resumed"))
    for key in straight:
        if key != "meta.json":
            np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)
    x, _ = load_mnist_sample("train")
    shares = np.bincount(kmeans(x, 3, np.random.default_rng(CLUSTER_SEED))[1], minlength=3) / len(x)
    np.testing.assert_allclose(straight["state/clusters/shares"], shares, rtol=1e-6)
    _, trainable = load_run(tmp_path / "straight")
    np.testing.assert_allclose(trainable.state["clusters"]["shares"], shares, rtol=1e-6)
    samples = trainable.sample(np.random.default_rng(0), 8)
    assert samples.shape == (8, 1, 28, 28) and np.isfinite(samples).all()


def test_eval_scores_a_self_conditioned_gan_without_label_agreement(rng):
    """Its clusters are not digits: `minigen eval` must not score them as asked-for classes."""
    x, y = load_mnist_sample("test")
    trainable = models.build("dcgan", SMALL, rng)
    scores = eval_scores(trainable, x[:200], y[:200], seeds=(0,))
    assert "fid" in scores and not any(key.startswith("label_accuracy") for key in scores)
