"""Backward passes written by hand: the dense layer and batch normalisation.

These are the backward passes of CS231n's second assignment. autograd could
derive them by itself from the forward formulas, one numpy call at a time: a
dense layer is then three traced operations (dot, add, and the sum that undoes
the bias's broadcast), batch norm about a dozen, each with its own VJP and its
own temporary arrays. Here each layer is ONE autograd primitive whose VJP is
the formula from the docstring, a few large numpy calls.

Each VJP is itself written with autograd.numpy operations, so autograd can
differentiate it again: WGAN-GP's penalty differentiates the critic's backward
pass with respect to the critic's weights.

float32 in -> float32 out, for the values and for every gradient.
"""
from typing import NamedTuple

import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, defvjp_argnums, primitive
from autograd.tracer import isbox


@primitive
def dense(x, W, b):
    """y = x W + b.  x: (N, in), W: (in, out), b: (out,) -> y: (N, out).

    Backward, given G = dL/dy (N, out). From y[n, j] = sum_i x[n, i] W[i, j] + b[j]:

        dL/dx[n, i] = sum_j G[n, j] W[i, j]   ->  dX = G W^T     (N, in)
        dL/dW[i, j] = sum_n x[n, i] G[n, j]   ->  dW = X^T G     (in, out)
        dL/db[j]    = sum_n G[n, j]           ->  db = sum_n G   (out,)

    W^T and X^T are transposed views, not copies: matmul hands them to BLAS,
    which reads a matrix in either order.
    """
    y = onp.matmul(x, W)
    y += b  # in place: y is a fresh array, so the bias costs no second (N, out) one
    return y


def dense_grad_x(G, W):
    """dL/dx of the dense layer: G = dL/dy (N, out), W (in, out) -> dX = G W^T, (N, in)."""
    # BEGIN SOLUTION
    return np.matmul(G, np.transpose(W))
    # END SOLUTION


def dense_grad_w(G, x):
    """dL/dW of the dense layer: G = dL/dy (N, out), x (N, in) -> dW = X^T G, (in, out)."""
    # BEGIN SOLUTION
    return np.matmul(np.transpose(x), G)
    # END SOLUTION


def dense_grad_b(G):
    """dL/db of the dense layer: G = dL/dy (N, out) -> db = sum over the batch of G, (out,)."""
    # BEGIN SOLUTION
    return np.sum(G, axis=0)
    # END SOLUTION


def _dense_grad_x(G, W):
    """dense_grad_x, but with one output (a discriminator's logit) G W^T is an outer product,
    (N, 1) by (1, in), for which numpy's matmul runs a plain loop without BLAS: the broadcast
    product G * W^T gives the same numbers (each entry is one product) about 13 times faster."""
    if onp.shape(W)[1] == 1:
        return G * np.transpose(W)
    return dense_grad_x(G, W)


# One function per argument: autograd asks only for the gradients it needs (none for the data x).
defvjp(dense,
       lambda y, x, W, b: lambda G: _dense_grad_x(G, W),
       lambda y, x, W, b: lambda G: dense_grad_w(G, x),
       lambda y, x, W, b: lambda G: dense_grad_b(G))


def _channel_axes(x):
    """The axes batch norm averages over: the batch, and for images also height and width."""
    return (0,) if onp.ndim(x) == 2 else (0, 2, 3)


def _per_channel(v, x):
    """A (C,) vector shaped to broadcast against x: (1, C) or (1, C, 1, 1)."""
    return np.reshape(v, (1, -1) + (1,) * (onp.ndim(x) - 2))


def _normalise(x, eps):
    """x_hat = (x - mean) / sqrt(var + eps) per channel, and inv_std = 1 / sqrt(var + eps) (broadcastable)."""
    _, centred, _, inv_std = _moments(x, eps)
    return centred * inv_std, inv_std


def _moments(x, eps):
    """Per channel: the mean, x - mean, the (biased) variance and 1 / sqrt(var + eps); all but
    x - mean broadcastable against x. Written with autograd.numpy, so that a second derivative
    (the VJP below, when it is traced) can differentiate it."""
    axes = _channel_axes(x)
    mean = np.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    return mean, centred, var, 1 / np.sqrt(var + eps)


class BatchStatistics(NamedTuple):
    """One batch's statistics, measured once (batch_statistics) and read in three places: the
    running averages take mean and var, the forward and the backward pass centred and inv_std.
    Measured again in each place they cost two fifths of batch norm's passes over x (23 passes
    for a forward and a backward pass, 14 now); the price is centred, one array the size of x
    held from the forward pass to the backward pass."""
    mean: onp.ndarray  # (C,)
    var: onp.ndarray  # (C,), biased
    centred: onp.ndarray  # x - mean, shaped like x
    inv_std: onp.ndarray  # 1 / sqrt(var + eps), (1, C) or (1, C, 1, 1)


def batch_statistics(x, eps=1e-5):
    """x: (N, C) or (N, C, H, W), plain numbers (not traced) -> its BatchStatistics."""
    mean, centred, var, inv_std = _moments(x, eps)
    return BatchStatistics(onp.ravel(mean), onp.ravel(var), centred, inv_std)


@primitive
def batch_norm_train(x, gamma, beta, eps=1e-5, stats=None):
    """Batch normalisation with the batch's own statistics (Ioffe & Szegedy 2015, Algorithm 1).

    x: (N, C) or (N, C, H, W); gamma, beta: (C,) -> y shaped like x. Per channel c,
    over the m = N (or N*H*W) values x_i of that channel:

        mu = mean_i x_i,  sigma = sqrt(mean_i (x_i - mu)^2 + eps),  x_hat_i = (x_i - mu) / sigma,
        y_i = gamma x_hat_i + beta.

    Backward, given G = dL/dy. dbeta = sum_i G_i and dgamma = sum_i G_i x_hat_i.
    For x, every x_j moves mu and sigma and so every x_hat_i of its channel:
    d mu / d x_j = 1/m and d sigma / d x_j = (x_j - mu) / (m sigma) = x_hat_j / m, so

        d x_hat_i / d x_j = (delta_ij - 1/m - x_hat_i x_hat_j / m) / sigma.

    Summing G_i gamma times that over i gives the compact three-term form:

        dx_j = (gamma / sigma) (G_j - mean_i G_i - x_hat_j mean_i (G_i x_hat_i))
             = (gamma / sigma) (G_j - dbeta / m - x_hat_j dgamma / m).

    stats: x's BatchStatistics, when the caller has measured them (the BatchNorm layer does, for
    its running averages); then neither this forward pass nor its backward pass measures them again.
    """
    stats = batch_statistics(x, eps) if stats is None else stats
    # y = (x - mu) (gamma / sigma) + beta: two passes over x, where x_hat first would be three
    return stats.centred * (stats.inv_std * _per_channel(gamma, x)) + _per_channel(beta, x)


def batch_norm_backward(G, x_hat, inv_std, gamma):
    """The three gradients of batch_norm_train (the formulas in its docstring), in one pass.

    G = dL/dy and x_hat: shaped like x, (N, C) or (N, C, H, W); inv_std = 1 / sigma per
    channel, broadcastable against x, (1, C) or (1, C, 1, 1); gamma: (C,).
    Returns (dx shaped like x, dgamma (C,), dbeta (C,)). Sums and means run over
    _channel_axes(x); _per_channel(v, x) shapes a (C,) vector to broadcast against x.
    Written with autograd.numpy, so that autograd can differentiate it again.
    """
    # BEGIN SOLUTION
    axes = _channel_axes(G)
    m = onp.size(G) // onp.shape(G)[1]  # values per channel: N, or N*H*W
    dgamma, dbeta = np.sum(G * x_hat, axis=axes), np.sum(G, axis=axes)  # (C,) each
    dx = (_per_channel(gamma, G) * inv_std) * (
        G - _per_channel(dbeta / m, G) - x_hat * _per_channel(dgamma / m, G))
    return dx, dgamma, dbeta
    # END SOLUTION


def _batch_norm_vjp(argnums, y, args, kwargs):
    x, gamma = args[0], args[1]
    eps = args[3] if len(args) > 3 else kwargs.get("eps", 1e-5)
    stats = args[4] if len(args) > 4 else kwargs.get("stats")

    def vjp(G):
        if stats is None or any(isbox(a) for a in (G, x, gamma)):
            # A second derivative is being traced (or nobody measured the statistics): x_hat from x
            # with autograd.numpy, so that it sees how x_hat depends on x.
            x_hat, inv_std = _normalise(x, eps)
        else:
            x_hat, inv_std = stats.centred * stats.inv_std, stats.inv_std  # the bits _normalise gives
        grads = batch_norm_backward(G, x_hat, inv_std, gamma)  # (dx, dgamma, dbeta)
        return tuple(grads[i] for i in argnums)

    return vjp


defvjp_argnums(batch_norm_train, _batch_norm_vjp)
