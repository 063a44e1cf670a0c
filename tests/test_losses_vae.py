"""VAE losses against closed forms, Monte Carlo, an exactly solvable model, torch and finite differences.

The exactly solvable model is probabilistic PCA (Tipping & Bishop 1999):
z ~ N(0, I_d), x | z ~ N(W z + b, σ² I_D), so p(x) = N(b, W Wᵀ + σ² I) and the
posterior p(z | x) = N(Σ Wᵀ (x - b) / σ², Σ) with Σ = (I + WᵀW / σ²)⁻¹ are known:
every bound can be compared with the true log p(x).
"""
import autograd.numpy as anp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from autograd import grad
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.distributions import Independent, Normal, kl_divergence

from minigen import losses, nn
from minigen.gradcheck import check_grad


def floats(lo=-3.0, hi=3.0, dtype=np.float64):
    return st.floats(lo, hi, width=32 if dtype == np.float32 else 64)


@st.composite
def gaussian_params(draw, count=2, dtype=np.float64, max_n=3, max_d=4):
    """`count` arrays of one shape (N, D), entries in [-3, 3]: mu, logvar, ..."""
    shape = (draw(st.integers(1, max_n)), draw(st.integers(1, max_d)))
    return [draw(hnp.arrays(dtype, shape, elements=floats(dtype=dtype))) for _ in range(count)]


def normal_logpdf(z, mean, std):
    """Reference log-density, written from σ (not logvar) so it shares no code with minigen."""
    return -0.5 * ((z - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


def torch_normal(mu, logvar):
    return Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * np.asarray(logvar))))


# --- KL divergences ---------------------------------------------------------------

@given(gaussian_params())
def test_gaussian_kl_matches_monte_carlo(params):
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated with 200k samples in float64."""
    mu, logvar = params
    samples = 200_000
    z = mu + np.exp(0.5 * logvar) * np.random.default_rng(0).standard_normal((samples, *mu.shape))
    std = np.exp(0.5 * logvar)
    log_ratio = (normal_logpdf(z, mu, std) - normal_logpdf(z, 0.0, 1.0)).sum(axis=-1)  # (samples, N)
    mc, stderr = log_ratio.mean(axis=0), log_ratio.std(axis=0) / np.sqrt(samples)
    # 5 standard errors: a false alarm once in ~2 million comparisons; 1e-9 covers mu = logvar = 0,
    # where every sample gives exactly 0 and the standard error vanishes.
    assert np.all(np.abs(losses.gaussian_kl(mu, logvar) - mc) <= 5 * stderr + 1e-9)


@given(gaussian_params(count=4))
def test_kl_is_nonnegative_and_zero_only_at_equality(params):
    mu_q, logvar_q, mu_p, logvar_p = params
    assert np.all(losses.gaussian_kl(mu_q, logvar_q) >= 0)
    assert np.all(losses.gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p) >= 0)
    assert np.all(losses.gaussian_kl(np.zeros_like(mu_q), np.zeros_like(mu_q)) == 0)
    assert np.all(losses.gaussian_kl_between(mu_q, logvar_q, mu_q, logvar_q) == 0)
    # Away from equality, strictly positive: at least its mean part ½ Σ (mu_q - mu_p)² / σ_p², the
    # variance part ½ Σ (r - 1 - log r), r = σ_q² / σ_p², being >= 0 (and > 0 where r != 1).
    kl = losses.gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p)
    apart = np.max(np.abs(mu_q - mu_p) + np.abs(logvar_q - logvar_p), axis=1) > 1e-3
    assert np.all(kl[apart] > 0)
    assert np.all(kl >= 0.5 * np.sum((mu_q - mu_p) ** 2 * np.exp(-logvar_p), axis=1) * (1 - 1e-12))
    kl_prior = losses.gaussian_kl(mu_q, logvar_q)
    assert np.all(kl_prior[np.max(np.abs(mu_q) + np.abs(logvar_q), axis=1) > 1e-3] > 0)


def test_kl_of_one_dimension_by_hand():
    """KL(N(1, 1) || N(0, 1)) = ½; KL(N(0, e) || N(0, 1)) = ½ (e - 1 - 1); KL(N(0, 1) || N(2, e²)) =
    ½ (e^-2 + 4 e^-2 - 1 + 2)."""
    one, zero = np.ones((1, 1)), np.zeros((1, 1))
    assert losses.gaussian_kl(one, zero)[0] == pytest.approx(0.5, rel=1e-15)
    assert losses.gaussian_kl(zero, one)[0] == pytest.approx(0.5 * (np.e - 2), rel=1e-15)
    assert losses.gaussian_kl_between(zero, zero, 2 * one, 2 * one)[0] == pytest.approx(
        0.5 * (5 * np.exp(-2) + 1), rel=1e-15)


EPS32 = float(np.finfo(np.float32).eps)
# float32 matters near logvar = 0, where e^logvar - 1 - logvar cancels (a naive float32 form loses
# every digit of a small KL), and for large |logvar|, where e^±logvar spans 1e-13 .. 1e13.
near_zero_or_wide = st.one_of(st.floats(-2.0 ** -10, 2.0 ** -10, width=32), st.floats(-30, 30, width=32))


@st.composite
def float32_gaussians(draw, count=4):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    mus = [draw(hnp.arrays(np.float32, shape, elements=st.floats(-100, 100, width=32))) for _ in range(count // 2)]
    logvars = [draw(hnp.arrays(np.float32, shape, elements=near_zero_or_wide)) for _ in range(count // 2)]
    return [a for pair in zip(mus, logvars) for a in pair]


def kl64_and_rounding(mu_q, lv_q, mu_p, lv_p):
    """The KL in float64 from the same (float32-exact) inputs, and a first-order bound on the rounding
    of the float32 formula: a few ulps of each term, plus what the subtractions r = lv_q - lv_p and
    mu_q - mu_p pass on (Higham 2002, ch. 3)."""
    mu_q, lv_q, mu_p, lv_p = (a.astype(np.float64) for a in (mu_q, lv_q, mu_p, lv_p))
    r, diff = lv_q - lv_p, mu_q - mu_p
    kl = 0.5 * np.sum(np.expm1(r) - r + diff ** 2 * np.exp(-lv_p), axis=1)
    size = (np.abs(np.expm1(r)) + np.abs(r) * (1 + np.abs(lv_q) + np.abs(lv_p))
            + np.exp(-lv_p) * (diff ** 2 * (1 + np.abs(lv_p)) + np.abs(diff) * (np.abs(mu_q) + np.abs(mu_p))))
    return kl, 16 * EPS32 * np.sum(size, axis=1)


@given(float32_gaussians())
def test_kl_in_float32_is_right_to_its_rounding(params):
    mu_q, lv_q, mu_p, lv_p = params
    # Each dimension on its own, (N·D, 1), so that one wide entry's rounding cannot hide another's; and
    # with equal means or mu = 0 too, where only the variance part, the one that cancels, remains.
    mu_q, lv_q, mu_p, lv_p = (a.reshape(-1, 1) for a in (mu_q, lv_q, mu_p, lv_p))
    zeros = np.zeros_like(mu_q)
    cases = [(losses.gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), (mu_q, lv_q, mu_p, lv_p)),
             (losses.gaussian_kl_between(mu_q, lv_q, mu_q, lv_p), (mu_q, lv_q, mu_q, lv_p)),
             (losses.gaussian_kl(mu_q, lv_q), (mu_q, lv_q, zeros, zeros)),
             (losses.gaussian_kl(zeros, lv_q), (zeros, lv_q, zeros, zeros))]
    for got, args in cases:
        expected, rounding = kl64_and_rounding(*args)
        assert got.dtype == np.float32 and np.all(got >= 0)
        assert np.all(np.abs(got - expected) <= rounding + 1e-6 * expected), (got, expected, rounding)
    g = grad(lambda m: anp.sum(losses.gaussian_kl_between(m, lv_q, mu_p, lv_p)))(mu_q)
    assert g.dtype == np.float32 and g.shape == mu_q.shape
    np.testing.assert_allclose(g, (mu_q.astype(np.float64) - mu_p) * np.exp(-lv_p.astype(np.float64)),
                               rtol=1e-5, atol=1e-30)


@given(float32_gaussians(count=2), st.data())
def test_log_densities_in_float32_are_right_to_their_rounding(params, data):
    mu, logvar = params
    z = data.draw(hnp.arrays(np.float32, mu.shape, elements=st.floats(-100, 100, width=32)))
    z64, mu64, lv64 = (a.astype(np.float64) for a in (z, mu, logvar))
    diff = z64 - mu64
    expected = np.sum(-0.5 * (diff ** 2 * np.exp(-lv64) + lv64 + np.log(2 * np.pi)), axis=1)
    size = np.exp(-lv64) * (diff ** 2 * (1 + np.abs(lv64)) + np.abs(diff) * (np.abs(z64) + np.abs(mu64)))
    rounding = 16 * EPS32 * np.sum(size + np.abs(lv64) + np.log(2 * np.pi), axis=1)
    got = losses.diag_gaussian_log_density(z, mu, logvar)
    assert got.dtype == np.float32 and np.all(np.abs(got - expected) <= rounding)
    got = losses.standard_normal_log_density(z)
    expected = np.sum(-0.5 * (z64 ** 2 + np.log(2 * np.pi)), axis=1)
    assert got.dtype == np.float32
    assert np.all(np.abs(got - expected) <= 16 * EPS32 * np.sum(z64 ** 2 + np.log(2 * np.pi), axis=1))


@given(gaussian_params(count=4))
def test_gaussian_kl_between_matches_torch(params):
    mu_q, logvar_q, mu_p, logvar_p = params
    q, p = torch_normal(mu_q, logvar_q), torch_normal(mu_p, logvar_p)
    ours = losses.gaussian_kl_between(mu_q, logvar_q, mu_p, logvar_p)
    np.testing.assert_allclose(ours, kl_divergence(q, p).sum(-1).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours, kl_divergence(Independent(q, 1), Independent(p, 1)).numpy(),
                               rtol=1e-9, atol=1e-12)


@given(gaussian_params())
def test_gaussian_kl_is_kl_between_with_standard_normal_prior(params):
    mu, logvar = params
    zeros = np.zeros_like(mu)
    np.testing.assert_allclose(losses.gaussian_kl(mu, logvar), losses.gaussian_kl_between(mu, logvar, zeros, zeros),
                               rtol=1e-12, atol=1e-14)
    prior = Normal(torch.zeros(mu.shape, dtype=torch.float64), 1.0)
    np.testing.assert_allclose(losses.gaussian_kl(mu, logvar),
                               kl_divergence(torch_normal(mu, logvar), prior).sum(-1).numpy(), rtol=1e-9, atol=1e-12)


# --- Bounds on an exactly solvable model: probabilistic PCA ------------------------

def ppca(seed, orthogonal=False, data_dim=4, latent=2, n=3, sigma2=0.5):
    """W, b, σ², data x (n, D), the true log p(x) (n,), posterior means (n, d) and covariance (d, d)."""
    r = np.random.default_rng(seed)
    w = r.standard_normal((data_dim, latent))
    if orthogonal:  # orthogonal columns: WᵀW is diagonal, and so is the posterior covariance
        w = np.linalg.qr(w)[0] * r.uniform(0.5, 2.0, latent)
    b = r.standard_normal(data_dim)
    x = r.standard_normal((n, latent)) @ w.T + b + np.sqrt(sigma2) * r.standard_normal((n, data_dim))
    log_px = torch.distributions.MultivariateNormal(
        torch.tensor(b), torch.tensor(w @ w.T + sigma2 * np.eye(data_dim))).log_prob(torch.tensor(x)).numpy()
    cov = np.linalg.inv(np.eye(latent) + w.T @ w / sigma2)
    return w, b, sigma2, x, log_px, (x - b) @ w @ cov / sigma2, cov


def ppca_log_likelihood(model, x, z):
    """log p(x | z) for z of shape (S, n, d) and x (n, D) -> (S, n), through minigen's loss."""
    w, b, sigma2 = model[:3]
    s, n, _ = z.shape
    x_rep = np.broadcast_to(x, (s, *x.shape)).reshape(s * n, -1)
    return losses.gaussian_log_likelihood(x_rep, (z @ w.T + b).reshape(s * n, -1), np.log(sigma2)).reshape(s, n)


def ppca_log_weights(model, x, z, mu, logvar):
    """log p(x, z) - log q(z | x) for z (S, n, d) -> (S, n)."""
    mu, logvar = np.broadcast_to(mu, z.shape), np.broadcast_to(logvar, z.shape)
    return (ppca_log_likelihood(model, x, z) + losses.standard_normal_log_density(z)
            - losses.diag_gaussian_log_density(z, mu, logvar))


def kl_to_full_gaussian(mu, logvar, mean, cov):
    """KL(N(mu, diag e^logvar) || N(mean, cov)) per row, by the textbook formula (numpy only)."""
    prec, d = np.linalg.inv(cov), len(cov)
    diff = mean - mu
    return 0.5 * (np.exp(logvar) @ np.diag(prec) + np.einsum("ni,ij,nj->n", diff, prec, diff) - d
                  + np.linalg.slogdet(cov)[1] - logvar.sum(-1))


@given(hnp.arrays(np.float64, (2, 3, 2), elements=floats()))
def test_elbo_is_below_log_px_by_kl_to_the_posterior_for_any_q(q):
    """ELBO(q) = log p(x) - KL(q || p(z|x)) <= log p(x), for any diagonal q."""
    model = ppca(0)
    x, log_px, post_mean, post_cov = model[3:]
    mu, logvar = q  # (n, d) each, for the n = 3 data points
    samples = 100_000
    z = losses.reparameterize(mu[None], logvar[None], np.random.default_rng(1).standard_normal((samples, 3, 2)))
    log_lik = ppca_log_likelihood(model, x, z)  # (samples, n)
    elbo = losses.elbo(log_lik.mean(axis=0), losses.gaussian_kl(mu, logvar))
    tol = 5 * log_lik.std(axis=0) / np.sqrt(samples) + 1e-9  # Monte Carlo error of the first term
    assert np.all(elbo <= log_px + tol)
    np.testing.assert_array_less(np.abs(log_px - elbo - kl_to_full_gaussian(mu, logvar, post_mean, post_cov)), tol)


def test_elbo_equals_log_px_with_the_exact_posterior():
    model = ppca(2, orthogonal=True)
    x, log_px, post_mean, post_cov = model[3:]
    np.testing.assert_allclose(post_cov, np.diag(np.diag(post_cov)), atol=1e-12)  # the premise
    mu, logvar = post_mean, np.broadcast_to(np.log(np.diag(post_cov)), post_mean.shape)
    eps = losses.sample_eps(np.random.default_rng(3), (20_000, *mu.shape)).astype(np.float64)
    z = losses.reparameterize(mu[None], logvar[None], eps)
    # With q = p(z|x), every importance weight p(x, z)/q(z) equals p(x): no Monte Carlo error at all.
    np.testing.assert_allclose(ppca_log_weights(model, x, z, mu, logvar), np.broadcast_to(log_px, z.shape[:2]),
                               rtol=1e-10, atol=1e-10)
    log_lik = ppca_log_likelihood(model, x, z)
    elbo = losses.elbo(log_lik.mean(axis=0), losses.gaussian_kl(mu, logvar))
    np.testing.assert_array_less(np.abs(elbo - log_px), 5 * log_lik.std(axis=0) / np.sqrt(len(z)) + 1e-9)


def test_iwae_bound_rises_with_k_towards_log_px():
    """E[L_1] <= E[L_5] <= E[L_50] <= log p(x) (Burda et al. 2016, theorem 1), averaged over repetitions."""
    model = ppca(0)
    x, log_px, post_mean, post_cov = model[3:]
    # A deliberately imperfect q (shifted, ignoring the posterior correlation) so the gaps are large.
    mu, logvar = post_mean + 0.5, np.broadcast_to(np.log(np.diag(post_cov)), post_mean.shape)
    rng, reps, means, stderrs = np.random.default_rng(4), 2000, [], []
    for k in (1, 5, 50):
        z = losses.reparameterize(mu, logvar, rng.standard_normal((k, reps, *mu.shape)))  # (K, reps, n, d)
        log_w = ppca_log_weights(model, np.tile(x, (reps, 1)), z.reshape(k, -1, 2), np.tile(mu, (reps, 1)),
                                 np.tile(logvar, (reps, 1)))
        bound = losses.iwae_bound(log_w).reshape(reps, -1)
        means.append(bound.mean(axis=0))
        stderrs.append(bound.std(axis=0) / np.sqrt(reps))
    for i in range(2):  # each step up in K tightens the bound by far more than the noise (measured: > 20 SE)
        assert np.all(means[i + 1] - means[i] > 5 * np.hypot(stderrs[i], stderrs[i + 1]))
    assert np.all(means[2] <= log_px + 5 * stderrs[2])


def test_iwae_bound_with_5000_samples_reaches_log_px():
    model = ppca(0)
    x, log_px, post_mean, post_cov = model[3:]
    mu, logvar = post_mean, np.broadcast_to(np.log(2 * np.diag(post_cov)), post_mean.shape)  # q wider than p(z|x)
    k = 5000
    z = losses.reparameterize(mu, logvar, np.random.default_rng(5).standard_normal((k, *mu.shape)))
    log_w = ppca_log_weights(model, x, z, mu, logvar)
    # The estimate's spread by the delta method: sd(w) / (mean(w) sqrt(K)), measured ~0.013 nats;
    # its bias, -Var(w)/(2 K mean(w)²), is ~1e-4 and inside the same margin.
    w = np.exp(log_w - log_w.max(axis=0))
    stderr = w.std(axis=0) / (w.mean(axis=0) * np.sqrt(k))
    assert np.all(np.abs(losses.iwae_bound(log_w) - log_px) <= 5 * stderr + 1e-3)
    assert np.all(stderr < 0.05)  # the test would be vacuous with a useless q


# --- The reparameterisation gradient --------------------------------------------------

@given(gaussian_params(count=4, max_n=2, max_d=3))
def test_reparameterized_gradient_matches_closed_form(params):
    """f(z) = Σ (a z² + c z): E_q[f] = Σ a (mu² + σ²) + c mu, so ∂/∂mu = 2 a mu + c and ∂/∂logvar = a σ²."""
    mu, logvar, a, c = params
    samples = 100_000
    eps = np.random.default_rng(6).standard_normal((samples, *mu.shape))

    def f(m, lv):
        z = losses.reparameterize(m, lv, eps)
        return anp.sum(a * z * z + c * z)

    # Differentiating w.r.t. per-sample copies of mu and logvar gives every sample's gradient,
    # whose mean is the estimate and whose spread is its Monte Carlo error.
    tiled = np.broadcast_to(mu, eps.shape).copy(), np.broadcast_to(logvar, eps.shape).copy()
    for argnum, exact in enumerate((2 * a * mu + c, a * np.exp(logvar))):
        per_sample = grad(f, argnum)(*tiled)
        estimate, stderr = per_sample.mean(axis=0), per_sample.std(axis=0) / np.sqrt(samples)
        assert np.all(np.abs(estimate - exact) <= 5 * stderr + 1e-9)


# --- Log-likelihoods against torch ------------------------------------------------------

EXTREME_LOGITS = np.array([-1e4, -200.0, -30.0, -1.0, 0.0, 1.0, 30.0, 200.0, 1e4], np.float32)


@given(st.data())
def test_bernoulli_log_likelihood_matches_torch(data):
    shape = data.draw(st.sampled_from([(2, 9), (3, 1, 3, 3), (1, 2, 9)]))
    logits = data.draw(hnp.arrays(np.float32, shape, elements=floats(-1e4, 1e4, np.float32)))
    logits.reshape(-1)[:9] = EXTREME_LOGITS[data.draw(st.permutations(range(9)))]  # always some of ±1e4
    x = data.draw(hnp.arrays(np.float32, shape, elements=floats(0.0, 1.0, np.float32)))
    tl = torch.tensor(logits, requires_grad=True)
    ref = -F.binary_cross_entropy_with_logits(tl, torch.tensor(x), reduction="none").reshape(shape[0], -1).sum(1)
    ref.sum().backward()
    value = losses.bernoulli_log_likelihood(x, logits)
    g = grad(lambda lg: anp.sum(losses.bernoulli_log_likelihood(x, lg)))(logits)
    assert value.shape == (shape[0],) and value.dtype == g.dtype == np.float32
    assert np.isfinite(value).all() and np.isfinite(g).all()
    # float32 sums of terms up to 1e4: each row's error is bounded by its own terms' sizes, x·l and softplus(l)
    rounding = 1e-6 * np.sum(2 * np.abs(logits.astype(np.float64)) + 1, axis=tuple(range(1, len(shape))))
    assert np.all(np.abs(value - ref.detach().numpy()) <= 1e-6 * np.abs(ref.detach().numpy()) + rounding)
    np.testing.assert_allclose(g, tl.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("logvar_shape", ["full", "per_feature", "scalar"])
@given(gaussian_params(count=3))
def test_gaussian_log_likelihood_matches_torch(logvar_shape, params):
    x, mean, logvar = params
    logvar = {"full": logvar, "per_feature": logvar[0], "scalar": logvar[0, 0]}[logvar_shape]
    ref = Normal(torch.tensor(mean), torch.tensor(np.exp(0.5 * logvar))).log_prob(torch.tensor(x)).sum(-1)
    np.testing.assert_allclose(losses.gaussian_log_likelihood(x, mean, logvar), ref.numpy(), rtol=1e-10, atol=1e-10)


@given(gaussian_params(count=3))
def test_latent_log_densities_match_torch(params):
    z, mu, logvar = params
    np.testing.assert_allclose(losses.standard_normal_log_density(z),
                               Normal(0.0, 1.0).log_prob(torch.tensor(z)).sum(-1).numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(losses.diag_gaussian_log_density(z, mu, logvar),
                               torch_normal(mu, logvar).log_prob(torch.tensor(z)).sum(-1).numpy(),
                               rtol=1e-10, atol=1e-10)


def test_gaussian_log_likelihood_sums_over_every_feature_axis():
    x = np.random.default_rng(7).standard_normal((2, 1, 3, 3)).astype(np.float32)
    out = losses.gaussian_log_likelihood(x, np.zeros_like(x), 0.0)
    assert out.shape == (2,) and out.dtype == np.float32
    np.testing.assert_allclose(out, -0.5 * (x ** 2).sum((1, 2, 3)) - 4.5 * np.log(2 * np.pi), rtol=1e-6)


# --- log-mean-exp and the IWAE bound --------------------------------------------------

@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 3)), elements=floats()))
def test_iwae_bound_with_one_sample_is_the_log_weight(row):
    np.testing.assert_array_equal(losses.iwae_bound(row[:1]), row[0])
    np.testing.assert_array_equal(losses.iwae_bound(row[:1].astype(np.float32)), row[0].astype(np.float32))


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 3)), elements=floats(-1e4, 1e4)),
       st.sampled_from([0, 1]))
def test_log_mean_exp_matches_torch_at_extremes(a, axis):
    a[0, 0] = 1e4  # e^1e4 overflows and e^-1e4 underflows in any float format
    a[-1, -1] = -1e4
    expected = torch.logsumexp(torch.tensor(a), dim=axis).numpy() - np.log(a.shape[axis])
    np.testing.assert_allclose(losses.log_mean_exp(a, axis=axis), expected, rtol=1e-12, atol=1e-9)
    out32 = losses.log_mean_exp(a.astype(np.float32), axis=axis)
    assert out32.dtype == np.float32 and np.isfinite(out32).all()
    np.testing.assert_allclose(out32, expected, rtol=1e-6, atol=1e-3)


def test_log_mean_exp_of_zero_weights_is_minus_infinity():
    a = np.array([[-np.inf, 0.0], [-np.inf, -np.inf]])
    with np.errstate(divide="ignore"):  # log(0) is the right answer here
        np.testing.assert_array_equal(losses.log_mean_exp(a), [-np.inf, -np.log(2)])


# --- Gradients against finite differences (float64) ---------------------------------

def cotangent(shape, seed=8):
    """Random weights for the outputs, so every gradient entry is a generic number."""
    return np.random.default_rng(seed).standard_normal(shape)


def data_like(a, seed, uniform=False):
    """Fixed data (not differentiated) of a's shape and dtype: float64 for gradchecks, float32 otherwise."""
    r = np.random.default_rng(seed)
    return (r.random(np.shape(a)) if uniform else r.standard_normal(np.shape(a))).astype(a.dtype)


GRAD_CASES = {  # name: (function of arrays -> (N,) or scalar, argument shapes, which to differentiate)
    "gaussian_kl": (losses.gaussian_kl, [(3, 4), (3, 4)], [0, 1]),
    "gaussian_kl_between": (losses.gaussian_kl_between, [(3, 4)] * 4, [0, 1, 2, 3]),
    "bernoulli_log_likelihood": (lambda lg: losses.bernoulli_log_likelihood(data_like(lg, 9, uniform=True), lg),
                                 [(3, 2, 5)], [0]),
    "gaussian_log_likelihood": (lambda m, lv: losses.gaussian_log_likelihood(data_like(m, 9), m, lv),
                                [(3, 5), (3, 5)], [0, 1]),
    "gaussian_log_likelihood_per_feature_logvar": (
        lambda m, lv: losses.gaussian_log_likelihood(data_like(m, 9), m, lv), [(3, 5), (5,)], [0, 1]),
    "diag_gaussian_log_density": (losses.diag_gaussian_log_density, [(3, 4)] * 3, [0, 1, 2]),
    "standard_normal_log_density": (losses.standard_normal_log_density, [(3, 4)], [0]),
    "reparameterize": (lambda m, lv: losses.reparameterize(m, lv, data_like(m, 10)), [(3, 4)] * 2, [0, 1]),
    "iwae_bound": (losses.iwae_bound, [(6, 3)], [0]),
    "log_mean_exp_axis1": (lambda a: losses.log_mean_exp(a, axis=1), [(3, 6)], [0]),
    "beta_vae_loss": (lambda ll, kl: losses.beta_vae_loss(ll, kl, beta=0.7), [(5,), (5,)], [0, 1]),
    "elbo": (losses.elbo, [(5,), (5,)], [0, 1]),
}


@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradients_match_finite_differences(name):
    fn, shapes, argnums = GRAD_CASES[name]
    args = [np.random.default_rng(11 + i).standard_normal(s) for i, s in enumerate(shapes)]
    r = cotangent(np.shape(fn(*args)))
    for i in argnums:
        f = lambda a, i=i: anp.sum(fn(*args[:i], a, *args[i + 1:]) * r)
        assert check_grad(f, args[i]) < 1e-6, f"argument {i}"


def tiny_vae(data_dim=6, latent=2):
    encoder = nn.Sequential(nn.Dense(8), nn.Tanh(), nn.Dense(2 * latent))
    decoder = nn.Sequential(nn.Dense(8), nn.Tanh(), nn.Dense(data_dim))
    rng = np.random.default_rng(12)
    params = {"encoder": encoder.init(rng, (data_dim,))[1], "decoder": decoder.init(rng, (latent,))[1]}
    # Nonzero biases: zero-initialised ones would hide a bias that is never added.
    params = {net: [{k: v + 0.1 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in layer.items()}
                    for layer in layers] for net, layers in params.items()}

    def loss(params, x, eps, beta=0.7):
        h = encoder.apply(params["encoder"], x)
        mu, logvar = h[:, :latent], h[:, latent:]
        logits = decoder.apply(params["decoder"], losses.reparameterize(mu, logvar, eps))
        return losses.beta_vae_loss(losses.bernoulli_log_likelihood(x, logits), losses.gaussian_kl(mu, logvar), beta)

    x = rng.random((4, data_dim)).astype(np.float32)
    return loss, params, x, losses.sample_eps(rng, (4, latent))


def test_beta_vae_loss_gradient_through_a_tiny_vae_matches_finite_differences():
    loss, params, x, eps = tiny_vae()
    params = {net: [{k: v.astype(np.float64) for k, v in layer.items()} for layer in layers]
              for net, layers in params.items()}
    x, eps = x.astype(np.float64), eps.astype(np.float64)
    for net, layers in params.items():
        for i, layer in enumerate(layers):
            for key, value in layer.items():
                def f(v, net=net, i=i, key=key):
                    swapped = {n: [dict(lay) for lay in ls] for n, ls in params.items()}
                    swapped[net][i][key] = v
                    return loss(swapped, x, eps)
                assert check_grad(f, value) < 1e-6, f"{net}[{i}][{key}]"


# --- float32 stays float32 ------------------------------------------------------------

@pytest.mark.parametrize("name", GRAD_CASES)
def test_values_and_gradients_stay_float32(name):
    fn, shapes, argnums = GRAD_CASES[name]
    args = [np.random.default_rng(11 + i).standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)]
    assert fn(*args).dtype == np.float32
    for i in argnums:
        g = grad(lambda a, i=i: anp.sum(fn(*args[:i], a, *args[i + 1:])))(args[i])
        assert g.dtype == np.float32, f"gradient of argument {i} is {g.dtype}"


def test_tiny_vae_loss_and_gradients_stay_float32():
    loss, params, x, eps = tiny_vae()
    value, grads = loss(params, x, eps), grad(loss)(params, x, eps)
    assert value.dtype == np.float32
    assert all(g.dtype == np.float32 for layers in grads.values() for layer in layers for g in layer.values())


def test_scalar_constants_do_not_promote_float32():
    """numpy 2 promotes float32 with numpy float64 scalars; Python and numpy scalar arguments must not."""
    x = np.zeros((2, 3), np.float32)
    assert losses.gaussian_log_likelihood(x, x, np.float64(0.5)).dtype == np.float32
    assert losses.gaussian_log_likelihood(x, x, 0).dtype == np.float32
    assert losses.beta_vae_loss(x[:, 0], x[:, 1], beta=np.float64(4.0)).dtype == np.float32


def test_sample_eps_is_float32_and_reproducible():
    eps = losses.sample_eps(np.random.default_rng(13), (4, 3))
    assert eps.shape == (4, 3) and eps.dtype == np.float32
    np.testing.assert_array_equal(eps, losses.sample_eps(np.random.default_rng(13), (4, 3)))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        losses.sample_eps(np.random, (4, 3))


def test_objectives_combine_the_terms_as_on_the_slide():
    log_lik, kl = np.array([-3.0, -5.0], np.float32), np.array([1.0, 2.0], np.float32)
    np.testing.assert_array_equal(losses.elbo(log_lik, kl), [-4.0, -7.0])
    assert losses.beta_vae_loss(log_lik, kl) == pytest.approx(5.5)
    assert losses.beta_vae_loss(log_lik, kl, beta=2.0) == pytest.approx(7.0)


# --- Errors name both shapes ----------------------------------------------------------

def zeros(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("call, pattern", [
    (lambda: losses.gaussian_kl(zeros(2, 3), zeros(2, 4)), r"mu \(2, 3\), logvar \(2, 4\)"),
    (lambda: losses.gaussian_kl_between(zeros(2, 3), zeros(2, 3), zeros(2, 3), zeros(3)),
     r"mu_q \(2, 3\).*logvar_p \(3,\)"),
    (lambda: losses.bernoulli_log_likelihood(zeros(2, 784), zeros(2, 1, 28, 28)),
     r"x \(2, 784\), logits \(2, 1, 28, 28\)"),
    (lambda: losses.gaussian_log_likelihood(zeros(2, 5), zeros(2, 4), 0.0), r"x \(2, 5\), mean \(2, 4\)"),
    (lambda: losses.gaussian_log_likelihood(zeros(2, 5), zeros(2, 5), zeros(4)), r"\(4,\).*\(2, 5\)"),
    (lambda: losses.diag_gaussian_log_density(zeros(2, 3), zeros(2, 3), zeros(2, 1)), r"z \(2, 3\).*logvar \(2, 1\)"),
    (lambda: losses.reparameterize(zeros(2, 3), zeros(3, 2), zeros(2, 3)), r"mu \(2, 3\), logvar \(3, 2\)"),
    (lambda: losses.reparameterize(zeros(2, 3), zeros(2, 3), zeros(2, 1)), r"mu of shape \(2, 3\).*eps .*\(2, 1\)"),
    (lambda: losses.elbo(zeros(4), zeros(4, 1)), r"log_likelihood \(4,\), kl \(4, 1\)"),
    (lambda: losses.beta_vae_loss(zeros(4), zeros(3)), r"log_likelihood \(4,\), kl \(3,\)"),
    (lambda: losses.iwae_bound(np.float32(0.0)), r"\(K, N\)"),
])
def test_bad_shapes_raise_value_errors_naming_both(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
