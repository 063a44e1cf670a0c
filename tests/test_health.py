"""minigen check: a healthy synthetic log passes; D winning, posterior collapse, a collapsed
generator and a NaN are each named, and only they."""
import json

import numpy as np
import pytest

from minigen import health
from minigen.cli import main

STEPS = 2000


def gan_log(seed, d_real_end=0.8, d_fake_end=0.2, g_start=3.0, g_end=2.0, shift=0.0):
    """Per-step records shaped like the MLP GAN demo's: D(x) and D(G(z)) relax towards the ends
    given, G's loss moves from g_start to g_end; noise differs by seed."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, STEPS)
    noise = lambda scale: scale * rng.standard_normal(STEPS)  # noqa: E731
    d_real = np.clip(0.95 + (d_real_end - 0.95) * t + noise(0.02), 0, 1)
    d_fake = np.clip(0.05 + (d_fake_end - 0.05) * t + noise(0.02), 0, 1)
    g_loss = g_start + (g_end - g_start) * t + noise(0.1) + shift
    return [{"step": i + 1, "epoch": 1 + i // 500, "d_real": float(r), "d_fake": float(f),
             "d_loss": float(-np.log(r + 1e-3) - np.log(1 - f + 1e-3)), "g_loss": float(g)}
            for i, (r, f, g) in enumerate(zip(d_real, d_fake, g_loss))]


def vae_log(seed, kl_end=25.0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, STEPS)
    kl = kl_end + (20.0 - kl_end) * np.exp(-10 * t) + 0.2 * rng.standard_normal(STEPS)
    recon = 90 + 100 * np.exp(-10 * t) + rng.standard_normal(STEPS) + (25 - kl_end)  # less code, worse recon
    return [{"step": i + 1, "epoch": 1 + i // 500, "loss": float(r + k), "recon": float(r), "kl": float(k)}
            for i, (r, k) in enumerate(zip(recon, kl))]


def config(model, batch_size=64):
    return {"model": model, "batch_size": batch_size, "lr": None, "options": {}, "data": "mnist", "seed": 5}


def band_of(logs, model):
    band = health.make_band(logs, 50)
    return {**band, "recipe": {k: config(model)[k] for k in ("batch_size", "lr", "options", "data")},
            "covers": "synthetic", "runs": [{"seed": s} for s in range(len(logs))],
            "cpu_seconds_per_epoch": {"min": 1.0, "max": 2.0}}


@pytest.fixture(scope="module")
def gan_band():
    return band_of([gan_log(s) for s in range(3)], "gan")


@pytest.fixture(scope="module")
def vae_band():
    return band_of([vae_log(s) for s in range(3)], "vae")


def names(problems):
    return [p["problem"] for p in problems]


def test_a_band_is_the_min_median_max_over_seeds_per_window():
    logs = [[{"step": i + 1, "x": float(seed * 10 + i)} for i in range(10)] for seed in range(3)]
    band = health.make_band(logs, 5)
    assert band["steps"] == [5, 10]
    assert band["quantities"]["x"] == {"min": [2.0, 7.0], "median": [12.0, 17.0], "max": [22.0, 27.0]}


def test_a_healthy_gan_log_is_healthy_with_and_without_its_band(gan_band):
    for band in (gan_band, None):
        problems, _ = health.diagnose(config("gan"), gan_log(7), band)
        assert problems == []


def test_d_winning_is_named_with_its_numbers(gan_band):
    winning = gan_log(7, d_real_end=0.995, d_fake_end=0.005, g_start=2.0, g_end=6.0)
    for band in (gan_band, None):
        problems, _ = health.diagnose(config("gan"), winning, band)
        assert "D wins" in names(problems)
        text = problems[names(problems).index("D wins")]["text"]
        assert "D(x) = 0.9" in text and "D(G(z)) = 0.0" in text and "G's loss climbed" in text
    assert "outside the band" in names(health.diagnose(config("gan"), winning, gan_band)[0])


def test_a_wgan_critic_is_not_read_as_probabilities():
    critic = [{**r, "d_real": 5.0, "d_fake": -5.0} for r in gan_log(0, g_start=1.0, g_end=9.0)]
    assert "D wins" not in names(health.diagnose(config("wgan"), critic)[0])


def test_posterior_collapse_is_named_and_a_healthy_vae_is_not(vae_band):
    assert health.diagnose(config("vae", 128), vae_log(7), vae_band)[0] == []
    problems, _ = health.diagnose(config("vae", 128), vae_log(7, kl_end=0.01), vae_band)
    assert "posterior collapse" in names(problems)
    assert "KL(q(z|x) || p(z)) is 0.0" in problems[0]["text"]
    assert "D wins" not in names(problems)


def test_a_nan_is_named_with_its_step_and_quantity(gan_band):
    log = gan_log(7)
    log[1234]["g_loss"] = float("nan")
    problems, _ = health.diagnose(config("gan"), log, gan_band)
    assert names(problems)[0] == "diverged"
    assert "g_loss is nan at step 1235" in problems[0]["text"]


def test_a_collapsed_generator_is_named_from_its_samples():
    rng = np.random.default_rng(0)
    fair = np.eye(10)[rng.integers(0, 10, 500)]  # (500, 10) one-hot class probabilities
    varied = rng.random((500, 1, 28, 28))
    assert health.collapsed_samples(fair, varied) == []
    ones = np.eye(10)[np.where(rng.random(500) < 0.8, 1, rng.integers(0, 10, 500))]
    found = health.collapsed_samples(ones, varied)
    assert names(found) == ["mode collapse"] and "as a 1" in found[0]["text"]
    same = np.repeat(varied[:1], 500, axis=0)
    assert names(health.collapsed_samples(fair, same)) == ["same image"]
    assert "fool D" in found[0]["text"] and "fool D" not in health.collapsed_samples(ones, varied, False)[0]["text"]


def test_a_curve_outside_its_band_is_named_and_one_inside_is_not(gan_band):
    problems, _ = health.diagnose(config("gan"), gan_log(7, shift=2.0), gan_band)
    assert names(problems) == ["outside the band"]
    assert problems[0]["text"].startswith("outside the band: g_loss above it from step")
    assert "d_real" not in problems[0]["text"]


def test_a_run_shorter_than_one_window_is_not_compared_with_the_band(gan_band):
    # its per-step values against the band's 50-step windows would be a comparison of unlike things
    problems, notes = health.diagnose(config("gan"), gan_log(7, shift=2.0)[:30], gan_band)
    assert "outside the band" not in names(problems)
    assert any("fewer than one window of the band (50 steps)" in note for note in notes)


def test_notes_say_when_no_band_is_shipped_or_the_recipe_differs(gan_band):
    assert "no band shipped for gan" in health.diagnose(config("gan"), gan_log(7))[1][0]
    notes = health.diagnose(config("gan", batch_size=128), gan_log(7), gan_band)[1]
    assert any("batch_size 128 (band: 64)" in n for n in notes)


def write_run(folder, model, records):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config(model)))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_minigen_check_prints_the_diagnosis_draws_the_panels_and_exits_1_on_a_problem(tmp_path, capsys, gan_band,
                                                                                      monkeypatch):
    monkeypatch.setattr(health, "BANDS_DIR", tmp_path / "bands")  # the synthetic band, not the shipped one
    (tmp_path / "bands").mkdir()
    (tmp_path / "bands" / "gan.json").write_text(json.dumps(gan_band))
    healthy = write_run(tmp_path / "healthy", "gan", gan_log(7))
    assert main(["check", str(healthy)]) == 0
    out = capsys.readouterr().out
    assert "healthy" in out and "inside its band" in out and (healthy / "check.png").stat().st_size > 0
    shifted = write_run(tmp_path / "shifted", "gan", gan_log(7, shift=2.0))
    assert main(["check", str(shifted), "--out", str(tmp_path / "s.png")]) == 1
    assert "outside the band: g_loss above it" in capsys.readouterr().out
    winning = write_run(tmp_path / "winning", "no-such-model", gan_log(7, 0.995, 0.005, 2.0, 6.0))
    assert main(["check", str(winning), "--out", str(tmp_path / "w.png")]) == 1
    out = capsys.readouterr().out
    assert "D wins" in out and "no band shipped for no-such-model" in out and "healthy" not in out


def test_minigen_check_refuses_a_folder_without_a_log_or_a_picture_name_not_png(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 1
    assert "config.json not found" in capsys.readouterr().err
    run = write_run(tmp_path / "run", "gan", gan_log(7))
    assert main(["check", str(run), "--out", str(tmp_path / "c.jpg")]) == 1
    assert "name a .png file" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(health.BANDS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_a_shipped_band_is_well_formed_and_says_where_it_came_from(path):
    band = json.loads(path.read_text())
    assert band["model"] == path.stem and len(band["runs"]) >= 3
    assert all(band[k] for k in ("command", "commit", "machine", "covers", "cpu_seconds_per_epoch"))
    assert np.all(np.diff(band["steps"]) == band["window_steps"])
    for q in band["quantities"].values():
        lo, mid, hi = (np.array(q[s]) for s in ("min", "median", "max"))
        assert len(lo) == len(band["steps"]) and np.all(lo <= mid) and np.all(mid <= hi)


def test_the_shipped_vae_band_is_far_from_posterior_collapse():
    """Else every healthy run of the default recipe would be called collapsed."""
    kl = health.load_band("vae")["quantities"]["kl"]["min"]
    assert min(kl) > 10 * health.COLLAPSED_KL


def test_a_log_being_written_is_read_without_its_unfinished_line(tmp_path):
    run = write_run(tmp_path / "run", "gan", gan_log(7)[:10])
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "epoch": 1, "d_re')
    assert len(health.read_run_log(run)[1]) == 10
