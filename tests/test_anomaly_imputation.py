"""The one-class anomaly protocol's AUROC, the background-model and typicality scores, Metropolis-within-Gibbs
imputation on a toy whose posterior is known, the nearest-neighbour baseline, and the two demos."""
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from minigen import apps, imputation
from minigen.metrics import auroc

DEMOS = Path(__file__).resolve().parents[1] / "demos"


# --- AUROC: the one-class protocol, against the Mann-Whitney U statistic ------------------

def mann_whitney_auroc(scores, is_anomaly):
    """U / (n_pos n_neg) from ranks: sort, give each run of tied values the mean of the ranks it spans."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks, i = [0.0] * len(scores), 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for t in range(i, j + 1):  # positions i..j hold ranks i+1..j+1
            ranks[order[t]] = (i + 1 + j + 1) / 2
        i = j + 1
    n_pos = sum(is_anomaly)
    n_neg = len(scores) - n_pos
    rank_sum = sum(r for r, a in zip(ranks, is_anomaly) if a)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(-4, 4)), min_size=3, max_size=60), st.integers(0, 9))
def test_one_class_auroc_equals_the_rank_based_mann_whitney_u(rows, normal):
    labels = np.array([d for d, _ in rows])
    scores = np.array([s for _, s in rows], float) / 2  # few distinct values: ties within and across classes
    is_anomaly = labels != normal  # the protocol: every digit but the normal one is an anomaly
    if is_anomaly.all() or not is_anomaly.any():
        return
    expected = mann_whitney_auroc(list(scores), list(is_anomaly))
    assert auroc(scores, is_anomaly) == pytest.approx(expected, abs=1e-12)
    u = stats.mannwhitneyu(scores[is_anomaly], scores[~is_anomaly], alternative="two-sided").statistic
    assert expected == pytest.approx(u / (is_anomaly.sum() * (~is_anomaly).sum()), abs=1e-12)


def test_auroc_with_ties_by_hand():
    # anomalies score 2, 1, 1; normal examples 1, 0. Pairs: (2>1) (2>0) (1=1: ½) (1>0) (1=1: ½) (1>0) -> 5 of 6
    assert auroc(np.array([2.0, 1.0, 1.0, 1.0, 0.0]), np.array([True, True, True, False, False])) == 5 / 6


# --- The scores beside -ELBO ------------------------------------------------------------

def test_typicality_flags_both_tails():
    reference = np.array([9.0, 10.0, 11.0])  # mean 10
    np.testing.assert_allclose(apps.typicality_scores([10.0, 4.0, 13.0], reference), [0.0, 6.0, 3.0])
    with pytest.raises(ValueError, match="reference scores of shape"):
        apps.typicality_scores([1.0], np.zeros((0,)))


def test_mutate_replaces_the_given_share_of_pixels_by_uniform_noise():
    x = np.full((200, 1, 28, 28), 2.0, np.float32)  # 2 is outside [0, 1]: a replaced pixel is easy to see
    out = apps.mutate(np.random.default_rng(0), x, 0.3)
    replaced = out != 2.0
    assert abs(replaced.mean() - 0.3) < 0.01 and out[replaced].min() >= 0 and out[replaced].max() < 1
    assert abs(out[replaced].mean() - 0.5) < 0.01  # uniform on [0, 1]
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        apps.mutate(np.random.default_rng(0), x, -0.1)


def test_centre_square_mask():
    mask = apps.centre_square_mask((2, 1, 28, 28), size=14)
    assert (~mask).sum() == 2 * 14 * 14 and not mask[:, :, 7:21, 7:21].any() and mask[:, :, :7].all()
    with pytest.raises(ValueError, match="size <= min"):
        apps.centre_square_mask((2, 1, 28, 28), size=29)


# --- Metropolis-within-Gibbs on a toy whose posterior is known ------------------------------
#
# Two binary pixels, a 1-d code:  z ~ N(0, 1),  p(x_j = 1 | z) = σ(w_j z + b_j).
# The encoder q(z | x) = N(a·x + c, e^logvar) is deliberately wrong, so only the
# Metropolis-Hastings correction can make the chain sample the true posterior.

TOY = {"w": np.array([2.0, -1.5], np.float32), "b": np.array([0.5, 0.3], np.float32),
       "a": np.array([0.4, 0.2], np.float32), "c": np.float32(-0.3), "logvar": np.float32(np.log(1.8))}


class Toy:
    cfg = SimpleNamespace(latent=1, image_shape=(1, 1, 2))

    def encode(self, params, x):
        flat = np.asarray(x, np.float32).reshape(len(x), 2)
        mu = flat @ params["a"][:, None] + params["c"]  # (N, 1)
        return mu, np.full_like(mu, params["logvar"])

    def decode(self, params, z):
        return (z * params["w"] + params["b"]).reshape(-1, 1, 1, 2)  # (N, 1) * (2,) -> logits (N, 1, 1, 2)


def log_sigmoid(t):
    return -np.log1p(np.exp(-t))


def toy_log_joint_over_q(x, z, p):
    """log p(x | z) + log p(z) - log q(z | x) for one image x = (x0, x1) and one z, written out."""
    log_px = sum(xj * log_sigmoid(p["w"][j] * z + p["b"][j]) + (1 - xj) * log_sigmoid(-(p["w"][j] * z + p["b"][j]))
                 for j, xj in enumerate(x))
    mu, var = p["a"] @ np.asarray(x, float) + p["c"], np.exp(p["logvar"])
    return log_px + stats.norm.logpdf(z) - stats.norm.logpdf(z, mu, np.sqrt(var))


def test_acceptance_ratio_matches_a_hand_computation():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.6]], np.float32)  # the last: a grey, soft-target pixel
    z_old = np.array([[0.3], [-1.2], [2.0]], np.float32)
    z_new = np.array([[-0.4], [0.9], [0.1]], np.float32)
    got = imputation.log_acceptance(Toy(), TOY, x.reshape(3, 1, 1, 2), np.ones((3, 1, 1, 2), bool), z_old, z_new)
    # log ρ = log[p(x|z̃) p(z̃) q(z|x)] - log[p(x|z) p(z) q(z̃|x)]
    expected = [toy_log_joint_over_q(xi, zn, TOY) - toy_log_joint_over_q(xi, zo, TOY)
                for xi, zo, zn in zip(x, z_old[:, 0], z_new[:, 0])]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_chain_samples_the_exact_posterior_of_the_toy():
    """x0 = 1 observed, x1 missing. By quadrature: p(z | x0 = 1) ∝ N(z; 0, 1) σ(w0 z + b0),
    and P(x1 = 1 | x0 = 1) = ∫ σ(w1 z + b1) p(z | x0 = 1) dz."""
    grid = np.linspace(-8, 8, 20001)
    post = stats.norm.pdf(grid) * np.exp(log_sigmoid(TOY["w"][0] * grid + TOY["b"][0]))
    post /= post.sum()
    z_mean, z_var = (grid * post).sum(), (grid ** 2 * post).sum() - (grid * post).sum() ** 2
    p_x1 = (np.exp(log_sigmoid(TOY["w"][1] * grid + TOY["b"][1])) * post).sum()

    n = 400  # independent chains, all in one batch
    x = np.tile(np.array([1.0, 0.0], np.float32), (n, 1)).reshape(n, 1, 1, 2)
    mask = np.tile(np.array([True, False]), (n, 1)).reshape(n, 1, 1, 2)
    chain = imputation.metropolis_within_gibbs(Toy(), TOY, x, mask, np.random.default_rng(0))
    zs, rejected = [], 0
    for t in range(1500):
        state = next(chain)
        assert np.all(state.x_hat[mask] == 1.0)  # the observed pixel never moves
        if t >= 100:
            zs.append(state.z[:, 0])
            rejected += (~state.accepted).sum()
    zs = np.concatenate(zs)
    assert rejected > 0.05 * len(zs)  # the correction is at work: the wrong proposal is often refused
    assert zs.mean() == pytest.approx(z_mean, abs=0.02)  # 560,000 correlated draws: the error is ~0.005
    assert zs.var() == pytest.approx(z_var, abs=0.03)

    result = imputation.mwg_impute(Toy(), TOY, x, mask, np.random.default_rng(1), n_iter=1500, burn_in=100)
    assert result.mean[:, 0, 0, 1].mean() == pytest.approx(p_x1, abs=0.01)
    assert np.all(result.mean[:, 0, 0, 0] == 1.0) and 0 < result.acceptance < 0.95


def test_mwg_impute_refuses_bad_arguments():
    x, mask = np.zeros((2, 1, 1, 2), np.float32), np.ones((2, 1, 1, 2), bool)
    with pytest.raises(ValueError, match="burn_in < n_iter"):
        imputation.mwg_impute(Toy(), TOY, x, mask, np.random.default_rng(0), n_iter=5, burn_in=5)
    with pytest.raises(ValueError, match="bool mask"):
        imputation.mwg_impute(Toy(), TOY, x, mask.astype(int), np.random.default_rng(0), n_iter=5, burn_in=1)


# --- The nearest-neighbour baseline -------------------------------------------------------

def test_knn_impute_by_hand():
    train = np.array([[0, 0, 1, 1], [1, 1, 0, 0], [1, 0, 0.5, 0.5]], np.float32).reshape(3, 1, 1, 4)
    x = np.array([[1, 0.9, 9, 9], [0, 0, 9, 9]], np.float32).reshape(2, 1, 1, 4)  # 9: missing, never read
    mask = np.array([[True, True, False, False]] * 2).reshape(2, 1, 1, 4)
    # image 0 on its first two pixels: distances 1.81, 0.01, 0.81 -> nearest train 1, then train 2
    # image 1: distances 0, 2, 1 -> nearest train 0, then train 2
    np.testing.assert_allclose(imputation.knn_impute(train, x, mask, k=1).reshape(2, 4),
                               [[1, 0.9, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_allclose(imputation.knn_impute(train, x, mask, k=2, batch_size=1).reshape(2, 4),
                               [[1, 0.9, 0.25, 0.25], [0, 0, 0.75, 0.75]])
    other = np.array([[False, True, True, False], [True, False, False, True]]).reshape(2, 1, 1, 4)  # per-image masks
    x2 = np.array([[9, 1, 0.1, 9], [0, 9, 9, 1]], np.float32).reshape(2, 1, 1, 4)
    np.testing.assert_allclose(imputation.knn_impute(train, x2, other, k=1).reshape(2, 4),
                               [[1, 1, 0.1, 0], [0, 0, 1, 1]])
    with pytest.raises(ValueError, match="k must be in 1..3"):
        imputation.knn_impute(train, x, mask, k=4)


# --- The demos, on the packaged sample ------------------------------------------------------

def test_anomaly_demo_runs_both_protocols(tmp_path, capsys):
    runpy.run_path(str(DEMOS / "anomaly_mnist.py"))["main"](
        ["--sample", "--epochs", "1", "--loo-epochs", "1", "--k", "3", "--normal", "3", "8",
         "--held-out", "9", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    one_class = metrics["one_class"]["3"]["0"]
    assert set(one_class) >= {"elbo", "iwae", "reconstruction"} and 0 <= one_class["elbo"] <= 1
    held_out = metrics["held_out"]["9"]["0"]
    assert set(held_out) >= {"elbo", "iwae", "likelihood_ratio", "typicality"}
    assert (tmp_path / "anomaly.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "SAMPLE ONLY" in out and "DCAE" in out and "likelihood ratio" in out


def test_imputation_demo_reports_every_method_for_every_mask(tmp_path, capsys):
    runpy.run_path(str(DEMOS / "imputation_mnist.py"))["main"](
        ["--sample", "--epochs", "1", "--proposal-epochs", "1", "--n-iter", "6", "--burn-in", "2", "--n-test", "40",
         "--is-k", "5", "--more-k", "7", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["masks"]) == {"bottom half", "centre square", "random 50% of pixels"}
    table = metrics["masks"]["bottom half"]["mse"]
    assert {"training mean", "kNN", "Metropolis-within-Gibbs, mean", "importance-weighted mean, K=5",
            "Metropolis-within-Gibbs, partial encoder, mean", "importance-weighted mean, partial encoder, K=5",
            "collapsed MwG, partial encoder, mean", "importance-weighted mean, partial encoder, K=7"} <= set(table)
    proposals = metrics["masks"]["bottom half"]["proposals"]
    assert set(proposals) == {"VAE encoder", "partial encoder"}
    assert all(1 <= d["ess_mean"] <= 5 and 0 <= d["mwg_acceptance"] <= 1 for d in proposals.values())
    assert (tmp_path / "imputation.png").stat().st_size > 1000 and (tmp_path / "partial.npz").exists()
    out = capsys.readouterr().out
    assert "SAMPLE ONLY" in out and "MSE" in out and "ESS" in out


def test_importance_sampled_conditional_mean_matches_the_toy_posterior():
    grid = np.linspace(-8, 8, 20001)
    post = stats.norm.pdf(grid) * np.exp(log_sigmoid(TOY["w"][0] * grid + TOY["b"][0]))
    p_x1 = (np.exp(log_sigmoid(TOY["w"][1] * grid + TOY["b"][1])) * post).sum() / post.sum()
    prior_guess = (np.exp(log_sigmoid(TOY["w"][1] * grid + TOY["b"][1])) * stats.norm.pdf(grid)).sum() / \
        stats.norm.pdf(grid).sum()
    assert abs(p_x1 - prior_guess) > 0.05  # observing x0 does move the answer: the test can tell them apart
    x = np.array([[1.0, 0.0]] * 3, np.float32).reshape(3, 1, 1, 2)
    mask = np.array([[True, False]] * 3).reshape(3, 1, 1, 2)
    guess = imputation.importance_impute(Toy(), TOY, x, mask, np.random.default_rng(0), k=20000, batch_size=2).mean
    np.testing.assert_allclose(guess[:, 0, 0, 1], p_x1, atol=0.01)
    np.testing.assert_array_equal(guess[:, 0, 0, 0], 1.0)


# --- The partial encoder q(z | x_obs) as the proposal ----------------------------------------
#
# On the toy: q(z | x_obs, mask) = N(a·(x·mask) + c, e^logvar), blind to the missing pixel. It
# proposes independently of the chain's current x1, so ρ holds q(· | x_obs), not q(· | x̂).

def toy_observed_proposal(x_hat, mask):
    flat = (np.asarray(x_hat, np.float32) * mask).reshape(len(x_hat), 2)
    mu = flat @ np.array([[0.7], [0.1]], np.float32) + np.float32(0.2)  # (N, 1)
    return mu, np.full_like(mu, np.log(0.9))


def toy_posterior_grid():
    """p(z | x0 = 1) on a grid by quadrature, and P(x1 = 1 | x0 = 1)."""
    grid = np.linspace(-8, 8, 20001)
    post = stats.norm.pdf(grid) * np.exp(log_sigmoid(TOY["w"][0] * grid + TOY["b"][0]))
    post /= post.sum()
    return grid, post, (np.exp(log_sigmoid(TOY["w"][1] * grid + TOY["b"][1])) * post).sum()


@pytest.mark.parametrize("collapsed", [False, True])
def test_acceptance_ratio_with_the_observed_pixel_proposal_by_hand(collapsed):
    x_hat = np.array([[1.0, 1.0], [0.0, 1.0]], np.float32)  # x1 (missing) holds the chain's current draw
    mask = np.array([[True, False]] * 2).reshape(2, 1, 1, 2)
    z_old, z_new = np.array([[0.3], [-1.1]], np.float32), np.array([[-0.5], [0.8]], np.float32)

    def log_w(x, z):  # log p(x̂ | z) + log p(z) - log q(z | x_obs), x_obs = x0 alone; collapsed: p(x0 | z)
        logits = TOY["w"] * z + TOY["b"]
        counted = [0] if collapsed else [0, 1]
        log_px = sum(x[j] * log_sigmoid(logits[j]) + (1 - x[j]) * log_sigmoid(-logits[j]) for j in counted)
        return log_px + stats.norm.logpdf(z) - stats.norm.logpdf(z, 0.7 * x[0] + 0.2, np.sqrt(0.9))

    expected = [log_w(x, zn) - log_w(x, zo) for x, zo, zn in zip(x_hat, z_old[:, 0], z_new[:, 0])]
    got = imputation.log_acceptance(Toy(), TOY, x_hat.reshape(2, 1, 1, 2), mask, z_old, z_new,
                                    proposal=toy_observed_proposal, collapsed=collapsed)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the default proposal, the VAE's q(z | x̂), gives another ratio: the argument is not ignored
    default = imputation.log_acceptance(Toy(), TOY, x_hat.reshape(2, 1, 1, 2), mask, z_old, z_new)
    assert np.abs(default - got).max() > 0.1


@pytest.mark.parametrize("collapsed", [False, True])
def test_independence_chain_samples_the_exact_posterior_of_the_toy(collapsed):
    grid, post, p_x1 = toy_posterior_grid()
    z_mean, z_var = (grid * post).sum(), (grid ** 2 * post).sum() - (grid * post).sum() ** 2
    n = 400
    x = np.tile(np.array([1.0, 0.0], np.float32), (n, 1)).reshape(n, 1, 1, 2)
    mask = np.tile(np.array([True, False]), (n, 1)).reshape(n, 1, 1, 2)
    result = imputation.mwg_impute(Toy(), TOY, x, mask, np.random.default_rng(2), n_iter=1500, burn_in=100,
                                   proposal=toy_observed_proposal, collapsed=collapsed)
    assert result.mean[:, 0, 0, 1].mean() == pytest.approx(p_x1, abs=0.01)
    assert 0.05 < result.acceptance < 0.95  # the correction is at work
    chain = imputation.metropolis_within_gibbs(Toy(), TOY, x, mask, np.random.default_rng(3),
                                               proposal=toy_observed_proposal, collapsed=collapsed)
    zs = np.concatenate([next(chain).z[:, 0] for _ in range(1500)][100:])
    assert zs.mean() == pytest.approx(z_mean, abs=0.02) and zs.var() == pytest.approx(z_var, abs=0.03)


def test_collapsed_chain_refuses_a_proposal_that_reads_the_missing_pixels():
    x, mask = np.zeros((2, 1, 1, 2), np.float32), np.array([[True, False]] * 2).reshape(2, 1, 1, 2)
    with pytest.raises(ValueError, match="blind to the missing pixels"):
        imputation.metropolis_within_gibbs(Toy(), TOY, x, mask, np.random.default_rng(0), collapsed=True)


def test_importance_weights_effective_sample_size_and_resampled_completions():
    _, _, p_x1 = toy_posterior_grid()
    x = np.array([[1.0, 0.0]] * 4000, np.float32).reshape(-1, 1, 1, 2)
    mask = np.array([[True, False]] * 4000).reshape(-1, 1, 1, 2)
    out = imputation.importance_impute(Toy(), TOY, x, mask, np.random.default_rng(0), k=50, batch_size=1000,
                                       proposal=toy_observed_proposal, keep=3)
    assert out.draws.shape == (3, *x.shape) and np.all(out.draws[:, :, 0, 0, 0] == 1.0)
    # a resampled z_k is a draw of p(z | x_obs): E[x1 | z_k] averages to P(x1 = 1 | x0 = 1)
    assert out.draws[:, :, 0, 0, 1].mean() == pytest.approx(p_x1, abs=0.01)
    assert np.all((out.ess >= 1) & (out.ess <= 50)) and out.ess.mean() < 49
    # a decoder that ignores z and the prior as proposal: every weight equal, ESS = K exactly
    flat = {**TOY, "w": np.zeros(2, np.float32)}
    prior = lambda x_hat, mask: (np.zeros((len(x_hat), 1), np.float32),) * 2  # noqa: E731  N(0, 1)
    even = imputation.importance_impute(Toy(), flat, x[:5], mask[:5], np.random.default_rng(0), k=50, proposal=prior)
    np.testing.assert_allclose(even.ess, 50, rtol=1e-5)


def test_partial_encoder_bound_stays_below_log_p_x_obs_and_training_closes_the_gap():
    """On the toy, log p(x_obs) = log ∫ Π_{j observed} σ(±(w_j z + b_j)) N(z; 0, 1) dz by quadrature; the
    partial encoder's bound must stay below it for every mask, and training (decoder fixed) must close the gap."""
    from minigen.models import partial_vae
    from minigen.optim import Adam
    grid = np.linspace(-8, 8, 8001)
    x = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 3, np.float32).reshape(12, 1, 1, 2)
    mask = np.repeat(np.array([[True, False], [False, True], [True, True]]), 4, axis=0).reshape(12, 1, 1, 2)
    logits = TOY["w"] * grid[:, None] + TOY["b"]  # (G, 2)
    exact = [np.log(np.sum(stats.norm.pdf(grid) * np.exp(np.sum(np.where(
        m, xi * log_sigmoid(logits) + (1 - xi) * log_sigmoid(-logits), 0), axis=1))) * (grid[1] - grid[0]))
        for xi, m in zip(x.reshape(12, 2), mask.reshape(12, 2))]
    decode = lambda z: Toy().decode(TOY, z)  # noqa: E731
    encoder = partial_vae.PartialEncoder(partial_vae.PartialConfig(latent=1, hidden=16, image_shape=(1, 1, 2)))
    params, rng = encoder.init(np.random.default_rng(0)), np.random.default_rng(1)

    def gap():  # log p(x_obs) - ELBO, per (image, mask), the ELBO averaged over 4000 draws of q
        eps = rng.standard_normal((4000, 12, 1), dtype=np.float32)
        return np.asarray(exact) - encoder.log_weights(params, decode, x, mask, eps).mean(axis=0)

    before = gap()
    step = partial_vae.make_train_step(encoder, params, Adam(params, lr=1e-2), rng, decode,
                                       lambda r, shape: mask[r.integers(12, size=shape[0]) % 3 * 4])
    for _ in range(600):
        step((x[rng.integers(12, size=32)],))
    after = gap()
    assert before.min() > -0.02 and after.min() > -0.02  # a lower bound (up to Monte Carlo error)
    assert after.mean() < 0.3 * before.mean() and after.max() < 0.05
