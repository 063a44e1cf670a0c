"""Known wrong backward passes, so that a failing check can name the mistake. Never shipped.

See mistakes.py. These are the slips CS231n's backprop assignment is known for:
transposes in the wrong place, a mean where the chain rule sums, the incoming gradient
forgotten, and batch norm's dx without the terms that come through the batch statistics.
"""
import autograd.numpy as np

from minigen.autograder.mistakes import mistake

UNSTABLE = ("σ(x) written as e^x / (1 + e^x) overflows to inf / inf = nan for large x: use ops.sigmoid(x), "
            "which is stable in both tails")
NO_UPSTREAM = ("a VJP multiplies the local derivative by the incoming gradient (the chain rule): "
               "multiply by g, the gradient of the loss with respect to this function's output")

# --- dense_backward ----------------------------------------------------------------------------

for _site, _name, _hint, _make in (
        ("dense_grad_x", "x_transposed", "dX = G Wᵀ is shaped like x, (N, in); W Gᵀ is its transpose",
         lambda ref: lambda G, W: np.matmul(W, np.transpose(G))),
        ("dense_grad_x", "dx_sign", "a sign error: y = x W + b grows with x along W, so dX = +G Wᵀ (gradient descent "
                                 "subtracts it later, not here)", lambda ref: lambda G, W: -ref(G, W)),
        ("dense_grad_w", "transposes_swapped", "dW = Xᵀ G is shaped like W, (in, out); Gᵀ X is its transpose",
         lambda ref: lambda G, x: np.matmul(np.transpose(G), x)),
        ("dense_grad_w", "dw_mean", "the loss sums the batch's contributions: dW = Xᵀ G, no division by N "
                                            "(a mean in the loss is already inside G)",
         lambda ref: lambda G, x: ref(G, x) / np.shape(G)[0]),
        ("dense_grad_b", "db_mean", "db = Σ_n G[n]: b is added to every row, so every row's gradient adds "
                                            "up; no division by N (a mean in the loss is already inside G)",
         lambda ref: lambda G: np.mean(G, axis=0)),
        ("dense_grad_b", "wrong_axis", "b is added to every example's row: db sums G over the batch axis 0, "
                                       "one number per output feature, (out,)",
         lambda ref: lambda G: np.sum(G, axis=1)),
        ("dense_grad_b", "not_summed", "b (out,) was broadcast over the N rows, so its gradient is G summed over "
                                       "them: shape (out,), not G's (N, out)", lambda ref: lambda G: G)):
    mistake("dense_backward", f"backprop.{_site}", _name, _hint)(_make)


# --- batch_norm_backward -------------------------------------------------------------------------

def _batch_norm(mean_term=True, var_term=True, gamma=True, reduce=np.sum, dgamma_x_hat=True):
    """batch_norm_backward with one part changed, for the variants below."""
    def backward(G, x_hat, inv_std, gamma_):
        axes, shape = (0,) if G.ndim == 2 else (0, 2, 3), (1, -1) + (1,) * (G.ndim - 2)
        m = G.size // G.shape[1]
        dbeta, dgamma = np.sum(G, axis=axes), np.sum(G * x_hat, axis=axes)
        dx = G - (np.reshape(dbeta / m, shape) if mean_term else 0)
        dx = dx - (x_hat * np.reshape(dgamma / m, shape) if var_term else 0)
        dx = dx * inv_std * (np.reshape(gamma_, shape) if gamma else 1)
        scale = 1 if reduce is np.sum else 1 / m
        return dx, scale * (dgamma if dgamma_x_hat else dbeta), scale * dbeta
    return lambda ref: backward


for _name, _hint, _kw in (
        ("no_mean_term", "the mean term is missing: every x_j moves the batch mean μ by 1/m, which puts "
                         "-mean_i G_i (= -dβ/m) into dx_j", dict(mean_term=False)),
        ("no_variance_term", "the variance term is missing: every x_j also moves σ, which puts "
                             "-x̂_j·mean_i(G_i x̂_i) (= -x̂_j dγ/m) into dx_j", dict(var_term=False)),
        ("statistics_constant", "this treats μ and σ as constants, the gradient of evaluation mode; in training "
                                "mode they are functions of the batch: dx = (γ/σ)(G - dβ/m - x̂·dγ/m)",
         dict(mean_term=False, var_term=False)),
        ("no_gamma", "y = γ x̂ + β: dx carries the factor γ (per channel) as well as 1/σ", dict(gamma=False)),
        ("mean_not_sum", "dγ and dβ sum over the batch (and pixels): every value of the channel uses the same γ "
                         "and β, so their gradients add up", dict(reduce=np.mean)),
        ("dgamma_without_x_hat", "γ multiplies x̂: dγ = Σ G·x̂, not Σ G (that is dβ)", dict(dgamma_x_hat=False))):
    mistake("batch_norm_backward", "backprop.batch_norm_backward", _name, _hint)(_batch_norm(**_kw))


# --- conv2d_backward -------------------------------------------------------------------------------

@mistake("conv2d_backward", "ops._conv_transpose2d", "flipped_kernel",
         "the kernel is flipped: input pixel (i, j) spreads w[..., a, b] to output (i·s + a - p, j·s + b - p) as it "
         "is; a flip appears only when the same sum is written as a convolution of the gradient")
def _(ref):
    return lambda y, w, stride, padding, out_hw: ref(y, np.ascontiguousarray(w[:, :, ::-1, ::-1]), stride, padding,
                                                     out_hw)


@mistake("conv2d_backward", "ops._conv_transpose2d", "no_crop",
         "the padding was not cropped: the full col2im result starts `padding` rows and columns before x, so x's "
         "gradient is its [p : p + H, p : p + W] part")
def _(ref):
    return lambda y, w, stride, padding, out_hw: ref(y, w, stride, (0, 0), out_hw)


@mistake("conv2d_backward", "ops._conv_transpose2d", "no_stride",
         "the stride was not applied: the patch of output pixel (i, j) starts at (i·s, j·s), not (i, j)")
def _(ref):
    return lambda y, w, stride, padding, out_hw: ref(y, w, (1, 1), padding, out_hw)


# --- logistic_backward -------------------------------------------------------------------------------

def _sigmoid(x):
    from minigen import ops
    return ops.sigmoid(x)


for _site, _name, _hint, _make in (
        ("softplus_grad", "softplus_no_upstream", NO_UPSTREAM, lambda ref: lambda g, x: _sigmoid(x)),
        ("softplus_grad", "sigmoid_of_minus_x", "d/dx log(1 + e^x) = e^x / (1 + e^x) = σ(x); σ(-x) = 1 - σ(x) is the "
                                                "derivative of softplus(-x) with its sign flipped",
         lambda ref: lambda g, x: g * _sigmoid(-x)),
        ("softplus_grad", "softplus_unstable", UNSTABLE,
         lambda ref: lambda g, x: g * np.exp(x) / (1 + np.exp(x))),
        ("bce_grad_logits", "logits_sign", "a sign error: d/dl [softplus(l) - t·l] = σ(l) - t, the prediction "
                                           "minus the target", lambda ref: lambda g, z, t: -ref(g, z, t)),
        ("bce_grad_logits", "bce_no_upstream", NO_UPSTREAM, lambda ref: lambda g, z, t: _sigmoid(z) - t),
        ("bce_grad_logits", "target_term_missing", "BCE = softplus(l) - t·l: the -t·l term contributes -t to the "
                                                   "derivative", lambda ref: lambda g, z, t: g * _sigmoid(z)),
        ("bce_grad_logits", "bce_unstable", UNSTABLE,
         lambda ref: lambda g, z, t: g * (np.exp(z) / (1 + np.exp(z)) - t)),
        ("bce_grad_targets", "targets_sign", "BCE = softplus(l) - t·l is linear in t with slope -l: dL/dt = -g·l",
         lambda ref: lambda g, logits: g * logits)):
    mistake("logistic_backward", f"ops.{_site}", _name, _hint)(_make)


# --- reparameterize_backward -------------------------------------------------------------------------

def _reparam(d_mu=None, sigma=lambda lv: np.exp(0.5 * lv), half=0.5, with_eps=True, upstream=True):
    def backward(G, logvar, eps):
        G_in = G if upstream else np.ones_like(G)
        s = sigma(logvar) * G_in
        dmu = d_mu(G_in, logvar) if d_mu else G_in
        return dmu, half * s * (eps if with_eps else 1), s
    return lambda ref: backward


for _name, _hint, _kw in (
        ("no_half", "d/dlogvar e^(½ logvar) = ½ e^(½ logvar): the chain rule's ½ is missing", dict(half=1.0)),
        ("sign", "a sign error: σ = e^(½ logvar) grows with logvar, so dlogvar = +½σ·eps·G", dict(half=-0.5)),
        ("variance_not_std", "σ = e^(½ logvar) is the standard deviation; e^logvar is the variance σ²",
         dict(sigma=np.exp)),
        ("no_eps", "z depends on logvar through σ·eps: dlogvar = ½σ·eps·G, eps included", dict(with_eps=False)),
        ("dmu_scaled", "z = mu + σ·eps moves one for one with mu: dz/dmu = 1, so dmu = G",
         dict(d_mu=lambda G, lv: np.exp(0.5 * lv) * G)),
        ("no_upstream", NO_UPSTREAM, dict(upstream=False))):
    mistake("reparameterize_backward", "losses.reparameterize_backward", _name, _hint)(_reparam(**_kw))
