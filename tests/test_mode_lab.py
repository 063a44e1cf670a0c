"""The mode-collapse lab: its two mode counts (minigen.metrics.mode_coverage), the papers' networks
and PacGAN's simultaneous update (minigen.models.toy), the moving average of G's weights
(minigen.optim.update_average), the demo's averaged and learning-rate-decayed steps, and smoke runs."""
import importlib.util
import json
from pathlib import Path

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from minigen import losses, ops
from minigen.metrics import mode_coverage
from minigen.models.toy import Maxout, make_simultaneous_step, pacgan_nets, wgan_gp_nets
from minigen.optim import SGD, update_average

DEMO = Path(__file__).resolve().parents[1] / "demos" / "mode_collapse.py"


@pytest.fixture(scope="module")
def lab():
    spec = importlib.util.spec_from_file_location("mode_collapse", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tree(rng, scale=1.0):
    return {"w": (scale * rng.standard_normal((3, 4))).astype(np.float32),
            "layers": [{"b": (scale * rng.standard_normal(4)).astype(np.float32)}]}


# --- The two mode counts ---------------------------------------------------------------------

GRID = np.array([(x, y) for y in (-4, -2, 0, 2, 4) for x in (-4, -2, 0, 2, 4)], float)  # 25 centres, 2 apart


def on_modes(per_mode, n, std=0.05, far=(9.0, 9.0)):
    """n samples: per_mode[k] of them 1 std from centre k (high quality), the rest at `far` (none)."""
    near = [GRID[k] + [std, 0.0] for k, count in per_mode.items() for _ in range(count)]
    return np.array(near + [far] * (n - len(near)))


def test_strict_count_needs_one_percent_of_the_samples_the_other_one_sample():
    # 2,500 samples: mode 0 gets 24 high-quality samples (one short of 1 %), mode 1 exactly 25,
    # mode 2 a hundred, modes 3..11 one stray sample each; the rest lie far from every mode.
    per_mode = {0: 24, 1: 25, 2: 100, **{k: 1 for k in range(3, 12)}}
    cov = mode_coverage(on_modes(per_mode, 2500), GRID, 0.05)
    assert cov.modes == 2  # modes 1 and 2
    assert cov.modes_one_sample == 12  # modes 0..11
    assert cov.high_quality == pytest.approx((24 + 25 + 100 + 9) / 2500)
    assert cov.counts.tolist() == [per_mode.get(k, 0) for k in range(25)]
    assert tuple(cov) == (cov.modes, cov.modes_one_sample, cov.high_quality, cov.counts)  # strict first


def test_strict_count_scales_with_the_number_of_samples():
    # 1 % of 700 is 7: seven samples cover a mode, six do not (ceil, without float round-up to 8)
    cov = mode_coverage(on_modes({0: 7, 1: 6}, 700), GRID, 0.05)
    assert (cov.modes, cov.modes_one_sample) == (1, 2)
    assert mode_coverage(on_modes({0: 7, 1: 6}, 700), GRID, 0.05, min_share=0.0).modes == 2  # at least one
    assert mode_coverage(on_modes({0: 7, 1: 6}, 700), GRID, 0.05, min_share=0.02).modes == 0  # 14 needed
    with pytest.raises(ValueError, match="min_share"):
        mode_coverage(on_modes({0: 7}, 700), GRID, 0.05, min_share=1.5)


def test_scattered_samples_score_on_the_one_sample_count_only():
    # A generator spreading 2,500 samples uniformly over [-5, 5]²: about 25·π·0.15²/100 = 1.8 % of
    # them fall within 3 std of some mode, ~1.8 per mode: nearly every mode is "covered" once,
    # none by 1 % of the samples.
    x = np.random.default_rng(3).uniform(-5, 5, (2500, 2))
    cov = mode_coverage(x, GRID, 0.05)
    assert cov.high_quality == pytest.approx(25 * np.pi * 0.15 ** 2 / 100, abs=0.006)
    assert cov.modes == 0 and cov.modes_one_sample >= 15


# --- The papers' networks and PacGAN's simultaneous update ---------------------------------------

def test_maxout_takes_the_largest_of_each_units_pieces_and_its_gradient(rng):
    layer = Maxout(3, pieces=4)
    shape, params = layer.init(rng, (5,))
    x = rng.standard_normal((6, 5)).astype(np.float32)
    h = x.astype(np.float64) @ params["W"] + params["b"]  # (6, 12): unit j's pieces in columns 4j..4j+3
    expected = np.stack([h[:, 4 * j:4 * j + 4].max(axis=1) for j in range(3)], axis=1)
    y = layer.apply(params, x)
    assert shape == (3,) and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    # d(sum y)/dW: for each unit, x goes to the column of its winning piece only
    grad = autograd.grad(lambda p: anp.sum(layer.apply(p, x)))(params)
    winners = np.stack([4 * j + h[:, 4 * j:4 * j + 4].argmax(axis=1) for j in range(3)], axis=1)  # (6, 3)
    expected_w = np.zeros((5, 12))
    for n in range(6):
        expected_w[:, winners[n]] += x[n][:, None]
    assert grad["W"].dtype == np.float32
    np.testing.assert_allclose(grad["W"], expected_w, rtol=1e-5, atol=1e-6)


def test_paper_nets_have_the_papers_shapes(rng):
    gan = pacgan_nets(pack=4)
    params = gan.init(rng)
    assert [p["W"].shape for p in params["generator"] if "W" in p] == [(2, 400), (400, 400), (400, 400), (400, 400),
                                                                      (400, 2)]
    assert [p["W"].shape for p in params["discriminator"]] == [(8, 1000), (200, 1000), (200, 1000), (200, 1)]
    assert abs(float(np.std(params["discriminator"][1]["W"])) - 0.02) < 0.001  # N(0, 0.02²)
    critic = wgan_gp_nets().init(rng)["discriminator"]
    assert [p["W"].shape for p in critic if "W" in p] == [(2, 512), (512, 512), (512, 512), (512, 1)]


@pytest.mark.parametrize("pack", [1, 3])
def test_simultaneous_step_takes_both_gradients_at_the_same_point(rng, pack):
    """One SGD step moves D and G by -lr times their gradients at the *old* (D, G), on the same fakes;
    D reads B packed inputs of pack·2 features: pack real samples side by side, and the pack fakes
    of one input come from the pack groups of B latent vectors, one each."""
    import copy
    gan, batch, lr = pacgan_nets(pack=pack, g_hidden=16, d_hidden=8, pieces=2), 5, 1.0
    params = gan.init(rng)
    for layer in params["discriminator"]:  # weights of ~N(0, 1) instead of N(0, 0.02²): D's step moves D visibly
        layer["W"] *= 50
    before = copy.deepcopy(params)
    step_rng = np.random.default_rng(7)
    z = copy.deepcopy(step_rng).standard_normal((pack * batch, 2), dtype=np.float32).reshape(pack, batch, 2)
    real = rng.standard_normal((pack * batch, 2)).astype(np.float32)

    def fakes_packed(g):  # (B, pack·2): input i holds G(z[0, i]), G(z[1, i]), ...
        return anp.concatenate([gan.generator.apply(g, z[k], train=True) for k in range(pack)], axis=1)

    def d_loss(d):
        return (anp.mean(ops.softplus(-gan.discriminator.apply(d, real.reshape(batch, pack * 2))))
                + anp.mean(ops.softplus(gan.discriminator.apply(d, fakes_packed(before["generator"])))))

    def g_loss(g):
        return losses.generator_loss_nonsaturating(gan.discriminator.apply(before["discriminator"], fakes_packed(g)))

    g_d, g_g = autograd.grad(d_loss)(before["discriminator"]), autograd.grad(g_loss)(before["generator"])
    sgd = [SGD(params["generator"], lr=lr), SGD(params["discriminator"], lr=lr)]
    metrics = make_simultaneous_step(gan, params, sgd[0], sgd[1], step_rng)((real,))
    assert metrics["d_loss"] == pytest.approx(float(d_loss(before["discriminator"])), rel=1e-5)
    for new, old, grad in ((params["discriminator"], before["discriminator"], g_d),
                           (params["generator"], before["generator"], g_g)):
        for p_new, p_old, g in zip(new, old, grad):
            for key in p_new:
                np.testing.assert_allclose(p_new[key], p_old[key] - lr * g[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_lab_builds_each_models_settings(lab, rng):
    """PacGAN's minibatch is 100 packed inputs of m samples (its config.py and streams); WGAN-GP's is
    5 critic minibatches of 256 on data scaled to unit std, λ = 0.1 (gan_toy.py), unless told otherwise."""
    args = lab.parse_args(["--arch", "paper"])
    gan, _, _, (g_opt, _), scale, minibatch = lab.build("grid", "pacgan4", args, rng)
    assert (gan.pack_size, minibatch, scale, g_opt.lr, g_opt.betas) == (4, 400, 1.0, 1e-4, (0.8, 0.999))
    assert gan.d_input_shape() == (8,)
    _, _, _, (g_opt, _), scale, minibatch = lab.build("grid", "wgan-gp", args, rng)
    assert (minibatch, scale, g_opt.lr, g_opt.betas) == (5 * 256, 1 / 2.828, 1e-4, (0.5, 0.9))
    small = lab.parse_args(["--arch", "small", "--gp-weight", "10", "--wgan-data", "raw"])
    gan, _, _, (g_opt, _), scale, minibatch = lab.build("ring", "wgan-gp", small, rng)
    assert (minibatch, scale, g_opt.lr) == (500, 1.0, 1e-3)
    assert lab.build("ring", "wgan-gp", lab.parse_args(["--arch", "small"]), rng)[4] == pytest.approx(2 / 1.414)


# --- update_average ------------------------------------------------------------------------

def test_average_equals_the_closed_form_weighted_sum(rng):
    """After t updates from a0 with p1..pt: a = d^t a0 + Σ_i (1 - d) d^(t-i) p_i."""
    decay, start = 0.9, tree(rng)
    average = {"w": start["w"].copy(), "layers": [{"b": start["layers"][0]["b"].copy()}]}
    seen = [tree(rng) for _ in range(5)]
    for params in seen:
        update_average(average, params, decay)
    t = len(seen)
    for key, get in (("w", lambda x: x["w"]), ("b", lambda x: x["layers"][0]["b"])):
        expected = decay ** t * get(start).astype(np.float64) + sum(
            (1 - decay) * decay ** (t - i) * get(p).astype(np.float64) for i, p in enumerate(seen, 1))
        np.testing.assert_allclose(get(average), expected, rtol=1e-5, atol=1e-6, err_msg=key)
        assert get(average).dtype == np.float32, key


def test_decay_zero_copies_and_the_average_stays_a_separate_array(rng):
    average, params = tree(rng), tree(rng)
    arrays = [average["w"], average["layers"][0]["b"]]
    update_average(average, params, 0.0)
    np.testing.assert_array_equal(average["w"], params["w"])
    np.testing.assert_array_equal(average["layers"][0]["b"], params["layers"][0]["b"])
    assert average["w"] is arrays[0] and average["layers"][0]["b"] is arrays[1]  # updated in place
    before = average["w"].copy()
    params["w"] += 1  # changing the parameters later leaves the average alone
    assert not np.shares_memory(average["w"], params["w"])
    np.testing.assert_array_equal(average["w"], before)


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_update_average_rejects_a_decay_outside_0_1(rng, decay):
    with pytest.raises(ValueError, match="decay"):
        update_average(tree(rng), tree(rng), decay)


def test_update_average_rejects_mismatched_trees(rng):
    with pytest.raises(ValueError, match="shape"):
        update_average({"w": np.zeros((2, 2), np.float32)}, {"w": np.zeros(3, np.float32)}, 0.5)
    with pytest.raises(ValueError, match="arrays"):
        update_average({"w": np.zeros(2, np.float32)}, tree(rng), 0.5)


# --- The lab's averaged step and learning-rate decay ----------------------------------------

def test_averaged_step_follows_g_and_leaves_d_and_the_raw_g_alone(lab, rng):
    """The sampled G is a separate average of the trained one; D is shared, not averaged."""
    params = {"generator": tree(rng), "discriminator": tree(rng)}

    def step(batch):  # a stand-in training step: G's weights each step move by 1
        params["generator"]["w"] += 1
        return {"g_loss": 0.0}

    start = params["generator"]["w"].copy()
    averaged_step, sampled = lab.averaged(step, params, decay=0.2)
    assert sampled["discriminator"] is params["discriminator"]
    assert not np.shares_memory(sampled["generator"]["w"], params["generator"]["w"])
    for _ in range(3):
        assert averaged_step(None) == {"g_loss": 0.0}
    np.testing.assert_array_equal(params["generator"]["w"], start + 3)  # the raw G trains on
    expected = start.astype(np.float64)
    for t in range(1, 4):  # the warm-up decay min(0.2, (1 + t) / (10 + t)): 2/11, then 0.2, 0.2
        d = min(0.2, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * (start + t)
    np.testing.assert_allclose(sampled["generator"]["w"], expected, rtol=1e-6)


def test_scheduled_lr_falls_linearly_to_zero_over_the_last_share(lab):
    opts = [SGD({"w": np.zeros(1, np.float32)}, lr=1.0), SGD({"w": np.zeros(1, np.float32)}, lr=0.5)]
    lrs = []
    step = lab.scheduled(lambda batch: lrs.append([o.lr for o in opts]), opts, steps=10, share=0.4)
    for _ in range(10):
        step(None)
    first = [lr for lr, _ in lrs]
    np.testing.assert_allclose(first, [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25])
    np.testing.assert_allclose([lr for _, lr in lrs], np.array(first) / 2)
    assert lab.scheduled(len, opts, 10, 0.0) is len  # no decay: the step itself


def test_lab_smoke_run_reports_both_counts_for_both_samplers(lab, tmp_path, capsys):
    lab.main(["--smoke", "--data", "grid", "--models", "gan", "pacgan2", "--lr-decay", "0.5", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["model"] for r in report["runs"]] == ["gan", "pacgan2"]
    for run in report["runs"]:
        for sampler in ("last", "average"):
            scores = run[sampler]
            assert sum(c >= 25 for c in scores["counts"]) == scores["modes"]  # 1 % of 2,500
            assert sum(c >= 1 for c in scores["counts"]) == scores["modes_one_sample"]
            assert scores["high_quality"] == pytest.approx(sum(scores["counts"]) / 2500)
    assert {r["lr"] for r in report["sweep"]} == {1e-4, 1e-3}
    table = capsys.readouterr().out
    assert "modes strict" in table and "one-sample" in table and "grid pacgan2  average" in table
    assert (tmp_path / "scatter_grid.png").stat().st_size > 0


def test_seeds_split_over_processes_give_the_same_runs(lab, tmp_path):
    """--first-seed: a table's seeds run in separate processes score as they would in one."""
    whole, part = tmp_path / "whole", tmp_path / "part"
    lab.main(["--smoke", "--data", "grid", "--models", "gan", "--seeds", "3", "--out", str(whole)])
    lab.main(["--smoke", "--data", "grid", "--models", "gan", "--seeds", "1", "--first-seed", "2", "--out", str(part)])
    runs = [json.loads((d / "metrics.json").read_text())["runs"] for d in (whole, part)]
    assert [r["seed"] for r in runs[0]] == [0, 1, 2] and [r["seed"] for r in runs[1]] == [2]
    for key in ("last", "average"):
        assert runs[1][0][key] == runs[0][2][key]
    assert runs[0][0]["last"] != runs[0][2]["last"]  # the seeds differ, so the comparison means something
