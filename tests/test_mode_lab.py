"""The mode-collapse lab's fix: the moving average of G's weights (minigen.optim.update_average),
the demo's averaged and learning-rate-decayed training steps, and a smoke run of its *-ema variants."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

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
