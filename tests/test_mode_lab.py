"""The mode-collapse lab: its two mode counts (minigen.metrics.mode_coverage), the papers' networks
and PacGAN's simultaneous update (minigen.models.toy), the moving average of G's weights
(minigen.optim.update_average), the demo's averaged and learning-rate-decayed steps, and smoke runs."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from minigen.metrics import mode_coverage
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


def test_lab_smoke_run_of_the_averaged_variants(lab, tmp_path):
    lab.main(["--smoke", "--data", "ring", "--models", "gan-ema", "pacgan-ema", "--sweep-lrs",
              "--lr-decay", "0.5", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["model"] for r in report["runs"]] == ["gan-ema", "pacgan-ema"]
    assert all(0 <= r["high_quality"] <= 1 and 0 <= r["modes"] <= 8 for r in report["runs"])
    assert (tmp_path / "scatter_ring.png").stat().st_size > 0
