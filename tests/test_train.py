"""The training loop with a run directory: resume bit for bit, Ctrl-C, the NaN guard, atomic checkpoints."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minigen.checkpoint import load_checkpoint
from minigen.data import load_mnist_sample
from minigen.models import vae
from minigen.models.trainable import NonFiniteError, apply_gradients
from minigen.optim import SGD, leaves
from minigen.train import Run, TrainingStopped, train_epochs

CONFIG = {"model": "vae", "hidden": 16, "latent": 3}


@pytest.fixture(scope="module")
def digits():
    return load_mnist_sample("train")[0][:96]


def new_run(out, resume=False, checkpoint_every=None, seed=0):
    rng = np.random.default_rng(seed)
    t = vae.trainable(vae.VAEConfig(latent=3, hidden=16), rng, lr=1e-3)
    return t, rng, Run(out, t, rng, CONFIG, resume=resume, checkpoint_every=checkpoint_every, n_pictures=4)


def train(run, t, rng, digits, epochs=2, step=None):
    return train_epochs(step or t.step, (digits,), epochs, rng, batch_size=32, run=run)


def step_lines(out):
    return [line for line in (out / "metrics.jsonl").read_text().splitlines() if '"summary"' not in line]


def interrupt_after(t, n):
    """The trainable's step, with a Ctrl-C arriving during its n-th call."""
    calls = []

    def step(batch):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGINT)
        return t.step(batch)
    return step


def assert_same_params(a, b):
    for x, y in zip(leaves(a.params), leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_run_writes_its_directory(tmp_path, digits):
    t, rng, run = new_run(tmp_path)
    history = train(run, t, rng, digits)
    assert len(history) == 2 and set(history[0]) == {"loss", "recon", "kl", "grad_norm", "seconds"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert {k: config[k] for k in CONFIG} == CONFIG and config["blas_threads"] >= 1
    assert len(step_lines(tmp_path)) == 2 * 3  # 96 images in batches of 32
    assert (tmp_path / "samples" / "epoch_002.png").is_file() and (tmp_path / "loss.png").is_file()
    _, meta = load_checkpoint(tmp_path / "checkpoint.npz", {"params": t.params})
    assert (meta["epoch"], meta["step"], meta["batch"]) == (3, 6, 0)


@pytest.mark.parametrize("stop_at", [3, 4], ids=["at-an-epoch-boundary", "mid-epoch"])
def test_interrupted_and_resumed_equals_straight_through_bit_for_bit(tmp_path, digits, stop_at):
    straight, rng, run = new_run(tmp_path / "straight")
    train(run, straight, rng, digits, epochs=3)

    t, rng, run = new_run(tmp_path / "resumed")
    with pytest.raises(TrainingStopped, match=f"interrupted after step {stop_at} .*--resume"):
        train(run, t, rng, digits, epochs=3, step=interrupt_after(t, stop_at))
    t, rng, run = new_run(tmp_path / "resumed", resume=True, seed=99)  # a different seed: all state comes from disk
    history = train(run, t, rng, digits, epochs=3)

    assert_same_params(straight, t)
    assert step_lines(tmp_path / "straight") == step_lines(tmp_path / "resumed")
    assert len(history) == 3


def test_resume_refuses_a_missing_checkpoint_and_another_model(tmp_path, digits):
    with pytest.raises(FileNotFoundError, match="cannot resume: .*checkpoint.npz does not exist"):
        new_run(tmp_path, resume=True)
    t, rng, run = new_run(tmp_path)
    train(run, t, rng, digits, epochs=1)
    with pytest.raises(FileExistsError, match="already holds a run; pass --resume"):
        new_run(tmp_path)
    t = vae.trainable(vae.VAEConfig(latent=3, hidden=16), rng)
    other = Run(tmp_path, t, rng, {**CONFIG, "model": "cvae"}, resume=True)
    with pytest.raises(ValueError, match="checkpoint of model 'vae', not 'cvae'"):
        train(other, t, rng, digits)
    wider = vae.trainable(vae.VAEConfig(latent=3, hidden=17), rng)
    with pytest.raises(ValueError, match=r"is float32\(784, 16\), the model expects float32\(784, 17\)"):
        train(Run(tmp_path, wider, rng, CONFIG, resume=True), wider, rng, digits)


def test_the_nan_guard_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, digits):
    t, rng, run = new_run(tmp_path)
    train(run, t, rng, digits, epochs=1)
    good = [p.copy() for p in leaves(t.params)]
    t2, rng2, run2 = new_run(tmp_path, resume=True)
    calls = []

    def poisoned(batch):  # before the second step a weight turns NaN, as in a diverging run
        calls.append(1)
        if len(calls) == 2:
            leaves(t2.params)[0][0] = np.nan
        return t2.step(batch)

    with pytest.raises(TrainingStopped, match=r"diverged at step 5 \(epoch 2\): loss is nan; "
                                              r"the last good checkpoint is .*checkpoint.npz \(step 3\)\n"
                                              r"try: lower --lr.*--resume .* --lr 0.0001"):
        train(run2, t2, rng2, digits, epochs=2, step=poisoned)
    trees, meta = load_checkpoint(tmp_path / "checkpoint.npz", {"params": t.params})
    assert meta["step"] == 3  # the checkpoint of the end of epoch 1, untouched
    for saved, before in zip(leaves(trees["params"]), good, strict=True):
        np.testing.assert_array_equal(saved, before)


def test_a_non_finite_gradient_never_reaches_the_weights():
    params = {"w": np.ones(3, np.float32), "b": np.zeros(2, np.float32)}
    opt = SGD(params, lr=0.1)
    with pytest.raises(NonFiniteError, match=r"gradient of the critic \(array 1 of 2\) is NaN or Inf"):
        apply_gradients(opt, {"w": np.array([0, np.inf, 0], np.float32), "b": np.zeros(2, np.float32)}, "critic")
    np.testing.assert_array_equal(params["w"], 1)
    assert apply_gradients(opt, {"w": np.full(3, 2, np.float32), "b": np.zeros(2, np.float32)}, "critic") == \
        pytest.approx(np.sqrt(12))


def test_a_process_killed_while_writing_a_checkpoint_leaves_the_previous_one(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from minigen.checkpoint import save_checkpoint
        path = {str(tmp_path / "ckpt.npz")!r}
        save_checkpoint(path, {{"params": {{"w": np.ones(1000, np.float32)}}}}, {{"step": 1}})
        def die_halfway(f, **arrays):  # SIGKILL with half the new file on disk: no handler runs
            f.write(b"PK\\x03\\x04" + b"x" * 1000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = die_halfway
        save_checkpoint(path, {{"params": {{"w": np.zeros(1000, np.float32)}}}}, {{"step": 2}})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert list(tmp_path.glob("ckpt.npz*.tmp"))  # the half-written file is there, under another name
    trees, meta = load_checkpoint(tmp_path / "ckpt.npz", {"params": {"w": np.zeros(1000, np.float32)}})
    assert meta == {"step": 1} and (trees["params"]["w"] == 1).all()


@pytest.mark.parametrize("model, options", [("gan", {"hidden": "16"}), ("dcgan", {"width": "4", "latent": "8"}),
                                            ("wgan-gp", {"hidden": "16"}), ("cgan", {"hidden": "16"}),
                                            ("cgan", {"arch": "conv", "width": "4", "latent": "8", "ema": "0.9"}),
                                            ("dcgan", {"width": "4", "latent": "8", "ema": "0.9"}),
                                            ("progressive", {"widths": "4,4,4", "phase_images": "40", "ema": "0.9"}),
                                            ("vaegan", {"latent": "3", "hidden": "16", "width": "2", "ema": "0.9"}),
                                            ("vaegan", {"latent": "3", "hidden": "16", "width": "2", "d_hidden": "8"}),
                                            ("m2", {"labels": "10", "labelled_batch": "4", "hidden": "8",
                                                    "latent": "2"})])
def test_gans_resume_bit_for_bit_too(tmp_path, digits, model, options):
    """GANs carry two optimisers (a VAE-GAN three) and (DCGAN) batch-norm running statistics: all must
    come back. (A conditional GAN also draws labels from the run's rng.) With ema, the averaged
    generator is part of the parameters, and so of the comparison."""
    labels = load_mnist_sample("train")[1][:len(digits)]
    assert_resumes_bit_for_bit(tmp_path, model, options, digits, labels)


def assert_resumes_bit_for_bit(tmp_path, model, options, digits, labels=None, epochs=2, batch_size=16, stop_at=2):
    """Train `model` straight through; train it again, Ctrl-C during step `stop_at`, resume with another
    seed: parameters, state and every logged line must be equal. Returns the resumed trainable."""
    from minigen import models

    def fresh(out, resume=False, seed=0):
        rng = np.random.default_rng(seed)
        t = models.build(model, options, rng)
        return t, rng, Run(out, t, rng, {"model": model}, resume=resume, n_pictures=4)

    def fit(run, t, rng, step=None):
        arrays = t.training_arrays(digits, labels)  # M2 keeps a few labelled images aside
        return train_epochs(step or t.step, arrays, epochs, rng, batch_size=batch_size * t.minibatches_per_step,
                            run=run)

    straight, rng, run = fresh(tmp_path / "straight")
    fit(run, straight, rng)
    t, rng, run = fresh(tmp_path / "resumed")
    with pytest.raises(TrainingStopped, match=f"interrupted after step {stop_at} "):
        fit(run, t, rng, step=interrupt_after(t, stop_at))
    t, rng, run = fresh(tmp_path / "resumed", resume=True, seed=5)
    fit(run, t, rng)
    assert_same_params(straight, t)
    for a, b in zip(leaves(straight.state), leaves(t.state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert step_lines(tmp_path / "straight") == step_lines(tmp_path / "resumed")
    return t


def test_a_loaded_run_samples_what_the_trained_model_sampled(tmp_path, digits):
    """load_run must bring back batch norm's running statistics with the weights: DCGAN's
    generator samples with them, and fresh statistics (mean 0, variance 1) give other images."""
    from minigen import models
    from minigen.train import copy_into, load_run

    rng = np.random.default_rng(0)
    t = models.build("dcgan", {"width": "4", "latent": "8"}, rng)
    config = {"model": "dcgan", "options": {"width": "4", "latent": "8"}, "seed": 0, "lr": None}
    train_epochs(t.step, (digits,), 1, rng, batch_size=32, run=Run(tmp_path, t, rng, config, n_pictures=4))
    _, loaded = load_run(tmp_path)
    np.testing.assert_array_equal(loaded.sample(np.random.default_rng(7), 5), t.sample(np.random.default_rng(7), 5))
    weights_only = models.build("dcgan", {"width": "4", "latent": "8"}, np.random.default_rng(0))
    copy_into(weights_only.params, loaded.params)  # the same weights without the statistics: other images
    assert not np.allclose(weights_only.sample(np.random.default_rng(7), 5), loaded.sample(np.random.default_rng(7), 5))


def test_a_loaded_ema_run_samples_its_averaged_generator(tmp_path, digits):
    """The average comes back from the checkpoint, and its batch-norm statistics are measured again."""
    from minigen import models
    from minigen.train import load_run

    options = {"width": "4", "latent": "8", "ema": "0.9"}
    rng = np.random.default_rng(0)
    t = models.build("dcgan", options, rng)
    config = {"model": "dcgan", "options": options, "seed": 0, "lr": None}
    train_epochs(t.step, (digits,), 1, rng, batch_size=32, run=Run(tmp_path, t, rng, config, n_pictures=4))
    _, loaded = load_run(tmp_path)
    np.testing.assert_array_equal(loaded.sample(np.random.default_rng(7), 5), t.sample(np.random.default_rng(7), 5))
    assert not np.allclose(loaded.sample(np.random.default_rng(7), 5),
                           loaded.sample.__self__.gan.sample(loaded.params, np.random.default_rng(7), 5))


def test_a_weight_made_non_finite_by_the_update_stops_the_run_and_blames_the_lr(tmp_path, digits):
    t, rng, run = new_run(tmp_path, checkpoint_every=1)

    def step(batch):  # a finite loss, but the update overflows one weight (a huge learning rate)
        metrics = t.step(batch)
        if metrics and len(step_lines(tmp_path)) == 1:
            leaves(t.params)[2][0] = np.inf
        return metrics

    with pytest.raises(TrainingStopped, match=r"diverged at step 2 \(epoch 1\): weight params/vae/\S+ is NaN or "
                                              r"Inf after the update; the last good checkpoint is .* \(step 1\)\n"
                                              r"try: lower --lr.*--resume .* --lr 0.0001"):
        train(run, t, rng, digits, epochs=1, step=step)
    trees, meta = load_checkpoint(tmp_path / "checkpoint.npz", {"params": t.params})
    assert meta["step"] == 1  # the weights step 2 started from: a finite loss and gradient came of them


def test_an_interrupt_is_reported_through_warnings_not_print(tmp_path, digits, capsys):
    t, rng, run = new_run(tmp_path)
    with pytest.warns(UserWarning, match="SIGINT: stopping after this step"), \
            pytest.raises(TrainingStopped, match="SIGINT: interrupted after step 2"):
        train(run, t, rng, digits, step=interrupt_after(t, 2))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("budget, stop", [(9, (4, 9, 0)), (10, (4, 10, 1))], ids=["at-an-epoch-boundary", "mid-epoch"])
def test_a_time_budget_stops_within_one_step_and_resumes_bit_for_bit(tmp_path, digits, budget, stop):
    """On a counting clock (one unit per step; no wall time in unit tests) a budget of 10 units lets
    10 steps run: 3 epochs of 3 steps and one step of the 4th. The run checkpoints there, draws that
    epoch's samples, and says how far it got; resumed, it ends where an unbroken run ends."""
    straight, rng, run = new_run(tmp_path / "straight")
    train(run, straight, rng, digits, epochs=5)

    t, rng, run = new_run(tmp_path / "budget")
    ticks, said = [], []

    def step(batch):
        ticks.append(1)
        return t.step(batch)

    history = train_epochs(step, (digits,), 5, rng, batch_size=32, run=run, max_seconds=budget, stop_mid_epoch=True,
                           clock=lambda: float(len(ticks)), notify=said.append)
    assert len(ticks) == budget and len(history) == 3
    _, meta = load_checkpoint(tmp_path / "budget" / "checkpoint.npz", {"params": t.params})
    assert (meta["epoch"], meta["step"], meta["batch"]) == stop
    assert (tmp_path / "budget" / "samples" / f"epoch_{3 + (stop[2] > 0):03d}.png").is_file()
    far = f"3 of 5 epochs{' and 1 of 3 steps of epoch 4' if stop[2] else ''} ({budget} of 15 steps)"
    assert run.stopped_for_time == far and said == [
        f"the time budget of {budget / 60:g} min is spent: stopped after {far}; checkpoint saved: continue with "
        f"minigen train --resume {tmp_path / 'budget'}"]

    t, rng, run = new_run(tmp_path / "budget", resume=True, seed=99)
    train(run, t, rng, digits, epochs=5)
    assert_same_params(straight, t)
    assert step_lines(tmp_path / "straight") == step_lines(tmp_path / "budget")
