"""Runs that never lose work: each fault of issue 14, reproduced as a user meets it, from the shell.

Each test asserts the exit status, the key words of the message, and that nothing outside the
run changed and no earlier result was lost. Tiny models on the packaged sample keep them quick.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigen.checkpoint import load_checkpoint, save_checkpoint
from minigen.tree import leaves

TINY = ["--sample", "--set", "hidden=16", "--set", "latent=2", "--batch-size", "500"]  # 6 steps an epoch


def minigen(*args, cwd=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "minigen", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, **kwargs)


def start(*args, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "minigen", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def snapshot(folder):
    """{relative path: sha256} of every file under folder: what must not change."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition(), "timed out"


def steps_logged(run):
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").is_file() else []
    return [json.loads(line)["step"] for line in lines if '"summary"' not in line]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished 1-epoch run (6 steps), copied by the tests that need a run to break."""
    run = tmp_path_factory.mktemp("base") / "run"
    result = minigen("train", "vae", *TINY, "--epochs", "1", "--out", str(run))
    assert result.returncode == 0, result.stderr
    return run


def copy_run(trained, tmp_path):
    import shutil
    return Path(shutil.copytree(trained, tmp_path / "run"))


# 1 --------------------------------------------------------------------------------------------

def test_1_a_folder_that_is_not_this_run_is_never_written_into(tmp_path, trained):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "config.json.bak").write_text("my notes")
    (other / "loss.png").write_bytes(b"my own picture")
    before = snapshot(other)
    for extra in ([], ["--overwrite"]):
        result = minigen("train", "vae", *TINY, "--epochs", "1", "--out", str(other), *extra)
        assert result.returncode == 1 and "is not empty" in result.stderr and "not a minigen run" in result.stderr
        assert snapshot(other) == before
    run = copy_run(trained, tmp_path)
    before = snapshot(run)
    result = minigen("train", "vae", *TINY, "--epochs", "1", "--out", str(run))
    assert result.returncode == 1 and "already holds a run" in result.stderr and "--overwrite" in result.stderr
    assert snapshot(run) == before
    (run / "my_notes.txt").write_text("kept")
    result = minigen("train", "vae", *TINY, "--epochs", "1", "--out", str(run), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert (run / "my_notes.txt").read_text() == "kept" and steps_logged(run) == list(range(1, 7))


# 2 --------------------------------------------------------------------------------------------

def test_2_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    first = start("train", "vae", *TINY, "--epochs", "1000", "--out", str(run))
    try:
        wait_for(lambda: len(steps_logged(run)) >= 2)
        for argv in (["train", "vae", *TINY, "--out", str(run)], ["train", "--resume", str(run)]):
            second = minigen(*argv)
            assert second.returncode == 1, second.stderr
            assert f"in use by process {first.pid}" in second.stderr and "one writer" in second.stderr
        assert first.poll() is None  # the first goes on, undisturbed
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    steps = steps_logged(run)
    assert steps == list(range(1, len(steps) + 1))  # one writer: no step twice, none interleaved
    assert not (run / "run.lock").exists()  # released on exit


def test_2_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path, trained):
    run = copy_run(trained, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    (run / "run.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    result = minigen("train", "--resume", str(run), "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert f"taking over the stale lock of process {int(dead.stdout)}" in result.stderr
    assert not (run / "run.lock").exists()


# 3 --------------------------------------------------------------------------------------------

def test_3_resume_after_the_log_was_cut_short_never_pads_it(tmp_path, trained):
    run = copy_run(trained, tmp_path)
    log = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(log[:len(log) // 2])  # cut mid-line
    result = minigen("train", "--resume", str(run), "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "metrics.jsonl holds" in result.stderr and "missing from the log" in result.stderr
    text = (run / "metrics.jsonl").read_bytes()
    assert b"\x00" not in text
    for line in text.decode().splitlines():
        json.loads(line)  # whole JSON lines only
    assert steps_logged(run)[-6:] == list(range(7, 13))  # the second epoch was logged after what was kept


# 4 --------------------------------------------------------------------------------------------

def test_4_a_kill_during_a_write_leaves_a_temp_file_that_the_next_start_removes(tmp_path, trained):
    run = copy_run(trained, tmp_path)
    script = (f"import os, signal, numpy as np\n"
              f"from minigen.checkpoint import save_checkpoint\n"
              f"def die(f, **arrays):\n"
              f"    f.write(b'PK' + b'x' * 5000); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
              f"np.savez = die\n"
              f"save_checkpoint({str(run / 'checkpoint.npz')!r}, {{'params': {{'w': np.zeros(3, np.float32)}}}})\n")
    assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL
    assert len(list(run.glob("checkpoint.npz*.tmp"))) == 1
    before = load_checkpoint(run / "checkpoint.npz", {"params": None})[1]
    assert before["step"] == 6  # the kill lost nothing
    result = minigen("train", "--resume", str(run), "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stderr and ".tmp" in result.stderr
    assert not list(run.glob("*.tmp")) and load_checkpoint(run / "checkpoint.npz", {"params": None})[1]["step"] == 12


# 5 --------------------------------------------------------------------------------------------

def test_5_sigterm_saves_like_ctrl_c_and_resume_finishes(tmp_path):
    run = tmp_path / "run"
    proc = start("train", "vae", *TINY, "--epochs", "1000", "--out", str(run))
    wait_for(lambda: len(steps_logged(run)) >= 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM: interrupted after step" in err and "checkpoint saved" in err and "Traceback" not in err
    meta = load_checkpoint(run / "checkpoint.npz", {"params": None})[1]
    assert meta["step"] == steps_logged(run)[-1]  # the checkpoint is of the last step logged: nothing lost
    result = minigen("train", "--resume", str(run), "--epochs", str(meta["epoch"]))
    assert result.returncode == 0, result.stderr


# 6 and 7 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, lr, options", [("vae", "10000", ["hidden=16", "latent=2"]),
                                                ("cvae", "10000", ["hidden=16", "latent=2"])])
def test_6_a_divergence_ends_in_the_guard_and_writes_no_bad_checkpoint(tmp_path, model, lr, options):
    run = tmp_path / "run"
    flags = [f for o in options for f in ("--set", o)]
    result = minigen("train", model, "--sample", *flags, "--lr", lr, "--checkpoint-every", "1", "--epochs", "1",
                     "--batch-size", "500", "--out", str(run))
    assert result.returncode == 1, result.stderr
    assert "training diverged at step" in result.stderr and "(epoch 1)" in result.stderr
    assert "NaN or Inf" in result.stderr or " is nan" in result.stderr or " is inf" in result.stderr
    assert "lower --lr" in result.stderr and "Traceback" not in result.stderr
    if (run / "checkpoint.npz").is_file():  # any checkpoint written is one whose weights trained on finitely
        trees, meta = load_checkpoint(run / "checkpoint.npz", {"params": None})
        assert f"(step {meta['step']})" in result.stderr
        step = int(result.stderr.split("diverged at step ")[1].split()[0])
        assert meta["step"] < step


def test_6_a_non_finite_option_is_refused_by_name_before_training():
    from minigen.models import vae
    with pytest.raises(ValueError, match=r"VAEConfig.beta \(the KL weight\) must be a finite number >= 0, got nan"):
        vae.VAE(vae.VAEConfig(latent=2, hidden=8, beta=float("nan")))


def test_6_a_divergence_before_the_first_update_is_not_blamed_on_the_learning_rate(tmp_path, digits):
    from minigen.models import vae
    from minigen.train import Run, TrainingStopped, train_epochs
    rng = np.random.default_rng(0)
    t = vae.trainable(vae.VAEConfig(latent=2, hidden=8), rng)
    first = next(a for a in leaves(t.params) if a.ndim == 2)
    first[0, 0] = np.inf  # as if an option had made the initial weights overflow: the loss is not finite at once
    with pytest.raises(TrainingStopped) as err:
        train_epochs(t.step, (digits,), 1, rng, 32, run=Run(tmp_path, t, rng, {"model": "vae"}, n_pictures=4))
    message = str(err.value)
    assert "diverged at step 1" in message and "learning rate is not the cause" in message
    assert "lower --lr" not in message and not (tmp_path / "checkpoint.npz").exists()


@pytest.fixture(scope="module")
def digits():
    from minigen.data import load_mnist_sample
    return load_mnist_sample("train")[0][:64]


def test_7_no_checkpoint_holds_nan_and_one_that_does_is_refused_by_name(tmp_path, trained):
    with pytest.raises(ValueError, match=r"cannot save params/w: it holds NaN or Inf"):
        save_checkpoint(tmp_path / "c.npz", {"params": {"w": np.array([1, np.nan], np.float32)}})
    assert not list(tmp_path.iterdir())  # nothing written, not even a temp file
    run = copy_run(trained, tmp_path)
    with np.load(run / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    key = next(k for k in arrays if k.startswith("params/") and k.endswith("/W"))
    arrays[key][0, 0] = np.inf
    np.savez(run / "checkpoint.npz", **arrays)  # a file damaged by hand (or an old minigen)
    result = minigen("sample", str(run), "--out", str(tmp_path / "s.png"))
    assert result.returncode == 1 and "checkpoint.npz" in result.stderr and key in result.stderr
    assert "NaN or Inf" in result.stderr and not (tmp_path / "s.png").exists()


# 8 and 10 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["train", "vae", "--lr", "nan"], "--lr: must be a finite number > 0"),
    (["train", "vae", "--lr", "inf"], "--lr: must be a finite number > 0"),
    (["train", "vae", "--lr", "-1"], "--lr: must be a finite number > 0"),
    (["train", "vae", "--batch-size", "0"], "--batch-size: must be a positive integer"),
    (["train", "vae", "--batch-size", "-5"], "--batch-size: must be a positive integer"),
    (["train", "vae", "--epochs", "0"], "--epochs: must be a positive integer"),
    (["train", "vae", "--epochs", "-1"], "--epochs: must be a positive integer"),
    (["train", "vae", "--checkpoint-every", "0"], "--checkpoint-every: must be a positive integer"),
    (["train", "vae", "--checkpoint-every", "-3"], "--checkpoint-every: must be a positive integer"),
    (["sample", "runs/x", "--n", "0"], "--n: must be a positive integer"),
    (["sample", "runs/x", "--n", "-3"], "--n: must be a positive integer"),
])
def test_8_10_flags_out_of_range_are_refused_naming_the_option(argv, words, tmp_path):
    result = minigen(*argv, cwd=tmp_path)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("option, words", [("latent=0", "option latent=0: a size must be a positive integer"),
                                           ("hidden=0", "option hidden=0: a size must be a positive integer"),
                                           ("beta=-5", "option beta=-5.0: must be a finite number >= 0"),
                                           ("beta=nan", "option beta=nan: must be a finite number >= 0"),
                                           ("beta=inf", "option beta=inf: must be a finite number >= 0")])
def test_8_10_model_options_out_of_range_are_refused(option, words, tmp_path):
    result = minigen("train", "vae", "--sample", "--set", option, "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


# 9 ---------------------------------------------------------------------------------------------

def test_9_resume_applies_safe_changes_records_them_and_refuses_the_others(tmp_path, trained):
    run = copy_run(trained, tmp_path)
    before = snapshot(run)
    for flags, words in ((["--batch-size", "64"], "cannot change --batch-size"), (["--seed", "3"], "change --seed"),
                         (["--set", "latent=3"], "cannot change --set")):
        result = minigen("train", "--resume", str(run), "--epochs", "2", *flags)
        assert result.returncode == 1 and words in result.stderr and "start a new run" in result.stderr
    assert snapshot(run) == before
    result = minigen("train", "--resume", str(run), "--lr", "0.0005", "--epochs", "2", "--checkpoint-every", "4")
    assert result.returncode == 0, result.stderr
    assert "applied on resume at step 6: lr 0.0005" in result.stderr and "epochs 2 (was 1)" in result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 0.0005 and config["checkpoint_every"] == 4
    assert config["history"] == [{"step": 6, "changed": {"lr": [None, 0.0005], "epochs": [1, 2],
                                                         "checkpoint_every": [None, 4]}}]
    trees, _ = load_checkpoint(run / "checkpoint.npz", {"params": None, "optim": None})
    assert float(trees["optim"]["vae"]["lr"]) == 0.0005  # the optimiser really took the new lr


# 11 --------------------------------------------------------------------------------------------

def _limit_memory():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


@pytest.mark.parametrize("argv, words", [
    (["train", "vae", "--sample", "--set", "latent=1000000000"], "weights, gradients and optimiser state"),
    (["train", "vae", "--sample", "--set", "hidden=200000"], "weights, gradients and optimiser state"),
])
def test_11_huge_models_are_refused_with_the_figure_and_the_memory(argv, words, tmp_path):
    result = subprocess.run([sys.executable, "-m", "minigen", *argv, "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, preexec_fn=_limit_memory, timeout=300)
    assert result.returncode == 1 and words in result.stderr and "GiB" in result.stderr
    assert "this machine has" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_11_12_huge_samples_and_unknown_formats_are_refused(tmp_path, trained):
    before = snapshot(trained)
    result = minigen("sample", str(trained), "--n", "1000000000", "--out", str(tmp_path / "s.png"))
    assert result.returncode == 1 and "1,000,000,000 samples would need" in result.stderr
    assert "this machine has" in result.stderr
    for name, words in (("x.txt", "'.txt' is not a picture format"), ("name", "no file extension")):
        result = minigen("sample", str(trained), "--out", str(tmp_path / name))
        assert result.returncode == 1 and words in result.stderr and ".png" in result.stderr
    assert not list(tmp_path.iterdir()) and snapshot(trained) == before


# 13 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [("{not json", "not valid JSON"), ("{}", "'model' is missing"),
                                         ('{"model": 3}', "model must be"), ("[1]", "expected a JSON object")])
def test_13_a_hand_broken_config_names_the_file(tmp_path, trained, text, words):
    run = copy_run(trained, tmp_path)
    (run / "config.json").write_text(text)
    for argv in (["sample", str(run)], ["train", "--resume", str(run)]):
        result = minigen(*argv)
        assert result.returncode == 1 and "config.json" in result.stderr and words in result.stderr
        assert "Traceback" not in result.stderr


# 14 --------------------------------------------------------------------------------------------

def test_14_an_explicit_data_dir_wins_or_fails(tmp_path):
    env = {**os.environ, "MINIGEN_DATA": "/work/shared/data/mnist"}
    (tmp_path / "empty").mkdir()
    result = minigen("data", "--data-dir", str(tmp_path / "empty"), env=env)
    assert result.returncode == 1 and "not found in --data-dir" in result.stderr
    (tmp_path / "file").write_text("x")
    result = minigen("data", env={**env, "MINIGEN_DATA": str(tmp_path / "file")})
    assert result.returncode == 1 and "is a file, not a folder" in result.stderr


# 16 --------------------------------------------------------------------------------------------

def test_16_the_thread_count_is_recorded_and_a_change_warned_about(tmp_path):
    run = tmp_path / "run"
    result = minigen("train", "vae", *TINY, "--epochs", "1", "--out", str(run),
                     env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["blas_threads"] == 1
    result = minigen("train", "--resume", str(run), "--epochs", "2", env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    assert result.returncode == 0 and "trained with 1 BLAS threads and continues with 2" in result.stderr
    assert "bit-for-bit" in result.stderr


# 15 --------------------------------------------------------------------------------------------

def test_15_layers_called_directly_check_their_input_once(rng):
    from minigen import nn
    from minigen.nn import NonFiniteInputError
    dense, conv, norm = nn.Dense(3), nn.Conv2d(2, 3), nn.BatchNorm()
    _, p_dense = dense.init(rng, (4,))
    _, p_conv = conv.init(rng, (1, 5, 5))
    _, p_norm = norm.init(rng, (4,))
    bad = np.ones((2, 4), np.float32)
    bad[1, 2] = np.nan
    for layer, params, x in ((dense, p_dense, bad), (norm, p_norm, bad),
                             (conv, p_conv, np.full((2, 1, 5, 5), np.inf, np.float32))):
        with pytest.raises(NonFiniteInputError, match="input contains NaN or Inf"):
            layer.apply(params, x)
    with pytest.raises(TypeError, match="expected float32 input, got int64"):
        dense.apply(p_dense, np.ones((2, 4), np.int64))
    with pytest.raises(NonFiniteInputError, match=r"layer 1 of 2: .*NaN or Inf|Sequential: input contains"):
        net = nn.Sequential(nn.Dense(4), nn.Dense(3))
        _, p_net = net.init(rng, (4,))
        net.apply(p_net, bad)


def test_15_batch_norm_in_train_mode_refuses_one_example_as_torch_does(rng):
    torch = pytest.importorskip("torch")
    from minigen import nn
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.functional.batch_norm(torch.ones(1, 3), None, None, training=True)
    norm = nn.BatchNorm()
    _, params = norm.init(rng, (3,))
    state = {}
    with pytest.raises(ValueError, match="more than one value per channel"):
        norm.apply(params, np.ones((1, 3), np.float32), train=True, state=state)
    assert state == {}  # the running statistics were not touched
    norm.apply(params, np.ones((1, 3), np.float32), train=False, state=state)  # eval mode: one example is fine


@pytest.mark.parametrize("make", [lambda nn: nn.Conv2d(4, 3, stride=0), lambda nn: nn.Conv2d(4, 0),
                                  lambda nn: nn.Conv2d(4, 3, stride=2.5), lambda nn: nn.Conv2d(0, 3),
                                  lambda nn: nn.ConvTranspose2d(4, 3, stride=0), lambda nn: nn.Dense(0),
                                  lambda nn: nn.Conv2d(4, 3, padding=-1)])
def test_15_layer_sizes_are_validated_at_construction(make):
    from minigen import nn
    with pytest.raises(ValueError, match=r"(Conv2d|ConvTranspose2d|Dense)\(.*\): \w+ must be"):
        make(nn)


def test_15_loss_inputs_are_checked_where_they_enter():
    from minigen import losses, ops
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*divided by 255"):
        losses.bernoulli_log_likelihood(np.full((2, 3), 255, np.float32), logits)
    with pytest.raises(ValueError, match="K = 0 importance samples"):
        losses.iwae_bound(np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match=r"bce_with_logits: logits \(2, 3\) and targets \(3,\)"):
        ops.bce_with_logits(logits, np.zeros(3, np.float32))
    # what a valid call gives: log 1/2 per feature (logits 0), so the checks refuse nothing valid
    np.testing.assert_allclose(losses.bernoulli_log_likelihood(np.ones((2, 3), np.float32), logits),
                               3 * np.log(0.5), rtol=1e-6)


@pytest.mark.parametrize("options, word", [({"beta": -5.0}, "beta"), ({"beta": float("nan")}, "beta"),
                                           ({"latent": 0}, "latent")])
def test_10_the_vae_constructor_checks_its_config_too(options, word):
    """Called from Python, not the CLI: the model itself refuses, naming the option."""
    from minigen.models.vae import VAE, VAEConfig
    with pytest.raises(ValueError, match=word):
        VAE(VAEConfig(**options))
