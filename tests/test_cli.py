"""The console script and python -m minigen, as a user runs them."""
import json
import subprocess
import sys

import pytest

from minigen.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minigen", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for word in ("data", "demo", "examples:"):
        assert word in result.stdout
    assert "classifier" in run("demo", "--help").stdout


def test_console_script_is_installed():
    result = subprocess.run(["minigen", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("minigen ")


def test_data_verifies_mnist(mnist_dir, capsys):
    assert main(["data", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "train: 60000 images" in out and "test: 10000 images" in out and "SHA-256 verified" in out


def test_missing_data_is_one_clear_line_and_exit_1(tmp_path, monkeypatch):
    env = {"PATH": "", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = run("data", "--data-dir", str(tmp_path / "nowhere"), env={**env, "PYTHONPATH": ":".join(sys.path)})
    assert result.returncode == 1
    assert result.stderr.startswith("minigen: error: MNIST not found") and "Traceback" not in result.stderr


def test_unknown_demo_and_flag(capsys):
    assert main(["demo", "nope"]) == 1
    assert "unknown demo 'nope'; choose from: classifier, vae, anomaly" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-flag"])
    assert exit_info.value.code == 2


def test_debug_shows_the_traceback():
    result = run("--debug", "demo", "nope")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_classifier_demo_runs_on_the_sample(tmp_path):
    result = run("demo", "classifier", "--", "--sample", "--epochs", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and (tmp_path / "classifier.npz").is_file()
    accuracy = float(result.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 70  # one epoch on 3,000 images: far above chance (10%)


def test_vae_demo_runs_on_the_sample_and_writes_its_pictures(tmp_path):
    result = run("demo", "vae", "--", "--sample", "--epochs", "1", "--latent", "2", "--nll-k", "10",
                 "--nll-n", "50", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("samples.png", "reconstructions.png", "interpolation.png", "manifold.png", "loss.png",
                 "vae.npz", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    assert "test -ELBO" in result.stdout


def test_train_sample_eval_and_resume_on_the_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--sample", "--epochs", "1", "--set", "hidden=32", "--set", "latent=4",
                 "--out", str(out)]) == 0
    assert "done: 1 epochs" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert (out / "samples" / "epoch_002.png").is_file()
    assert main(["sample", str(out), "--n", "9"]) == 0 and (out / "sample.png").is_file()
    assert main(["eval", str(out)]) == 0
    assert "test_nll_iwae" in capsys.readouterr().out and (out / "eval.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["train"], "name the model to train"),
    (["train", "nope"], "unknown model 'nope'; choose from: vae"),
    (["train", "vae", "--set", "latnt=2"], "unknown option 'latnt'; choose from: latent"),
    (["train", "vae", "--set", "latent"], "--set expects KEY=VALUE"),
    (["train", "vae", "--set", "latent=two"], "option latent='two': expected a value like 20"),
    (["train", "--resume", "/nonexistent/run"], "not a minigen run directory"),
    (["sample", "/nonexistent/run"], "not a minigen run directory"),
])
def test_train_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigen: error: ") and message in err and err.count("\n") == 1


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    import signal
    import time
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "minigen", "train", "vae", "--sample", "--epochs", "1000",
                             "--set", "hidden=16", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.npz").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)  # wait for the first epoch's checkpoint, so training is surely under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted after step" in err and "--resume" in err and "Traceback" not in err
    result = run("train", "--resume", str(out), "--epochs", "2")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("model", ["gan", "wgan-gp", "dcgan", "cvae", "m2"])
def test_every_model_trains_samples_and_evaluates_from_the_shell(model, tmp_path, capsys):
    out = tmp_path / model
    small = {"gan": ["hidden=16"], "wgan-gp": ["hidden=16"], "dcgan": ["width=4", "latent=8"], "cvae": ["hidden=16"],
             "m2": ["labels=100", "hidden=16", "latent=3"]}
    flags = [f for option in small[model] for f in ("--set", option)]
    assert main(["train", model, "--sample", "--epochs", "1", "--batch-size", "256", *flags, "--out", str(out)]) == 0
    assert main(["sample", str(out), "--n", "10"]) == 0 and (out / "sample.png").is_file()
    assert main(["eval", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("fid" in printed and "is " in printed) if model != "cvae" else "test_neg_elbo_given_y" in printed
    if model == "m2":  # the classifier's error on the test set, as json.loads reads it back
        assert 0 <= json.loads((out / "eval.json").read_text())["test_error"] <= 1


def test_a_demo_runs_in_its_own_process_and_leaves_sys_argv_alone(capfd):
    before = list(sys.argv)
    assert main(["demo", "classifier", "--", "--help"]) == 0
    assert sys.argv == before and "--sample" in capfd.readouterr().out


def test_minutes_stops_a_run_early_records_the_budget_and_a_resume_takes_a_new_one(tmp_path, capsys):
    """--minutes 0.0001 (6 ms) cannot hold 3 epochs of 188 steps: the run stops early, says how far it
    got, and keeps the budget in config.json; --resume --minutes 100 replaces it and finishes."""
    import json
    out = tmp_path / "run"
    assert main(["train", "gan", "--sample", "--set", "hidden=16", "--epochs", "3", "--batch-size", "16",
                 "--minutes", "0.0001", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "done on time: " in captured.out and " of 3 epochs" in captured.out and "of 564 steps)" in captured.out
    assert "time budget of 0.0001 min is spent" in captured.err and f"--resume {out}" in captured.err
    assert json.loads((out / "config.json").read_text())["minutes"] == 0.0001
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len([s for s in steps if "summary" not in s]) < 3 * 188
    assert main(["train", "--resume", str(out), "--minutes", "100"]) == 0
    assert "done: 3 epochs" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["minutes"] == 100 and config["history"][0]["changed"] == {"minutes": [0.0001, 100]}


def test_demo_presets_apply_under_explicit_flags_and_unknown_ones_are_named(tmp_path, capsys, monkeypatch):
    """A preset's options replace the demo's default options and come before the flags given, so a
    flag given wins; an unknown preset is refused naming the known ones; --help lists them and the
    default options. samples.png: 8 x 8."""
    import json

    from minigen import viz
    from minigen.demo import model_demo
    presets = {"tiny": ["--set", "hidden=8", "--epochs", "1", "--batch-size", "256"], "long": ["--minutes", "60"]}
    with pytest.raises(SystemExit, match="unknown preset 'huge'; choose from: tiny, long"):
        model_demo("gan", "doc", epochs=20, batch_size=64, presets=presets, argv=["--preset", "huge"])
    with pytest.raises(SystemExit):  # argparse's --help exits 0
        model_demo("gan", "doc", epochs=20, batch_size=64, options=["--set", "latent=4"], presets=presets,
                   argv=["--help"])
    shown = capsys.readouterr().out
    assert "--preset tiny       --set hidden=8 --epochs 1 --batch-size 256" in shown
    assert "--epochs 20 --batch-size 64 --set latent=4" in shown
    grids, draw = [], viz.save_image_grid
    monkeypatch.setattr(viz, "save_image_grid", lambda images, path, ncol=8, **kw: (
        grids.append((path.name, images.shape[0], ncol)), draw(images, path, ncol, **kw))[1])
    out = tmp_path / "run"
    model_demo("gan", "doc", epochs=20, batch_size=64, options=["--set", "latent=4"], presets=presets,
               argv=["--sample", "--preset=tiny", "--set", "hidden=12", "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    # latent=4, a default option, is gone: the preset took the default options' place
    assert (config["options"], config["epochs"], config["batch_size"]) == ({"hidden": "12"}, 1, 256)
    assert ("samples.png", 64, 8) in grids
