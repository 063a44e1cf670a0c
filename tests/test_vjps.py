"""The hand-written VJPs (ops.dense, ops.batch_norm_train, ops.bce_with_logits) against
autograd's generic derivative of the plain formula, finite differences and torch,
to first and second order, and their dtypes."""
import autograd.numpy as anp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from autograd import grad
from autograd.tracer import getval

from minigen import nn, ops
from minigen.gradcheck import numerical_grad, relative_error


def plain_batch_norm(x, gamma, beta, eps=1e-5):
    """The textbook formula, for autograd to differentiate by itself."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = anp.mean(x, axis=axes, keepdims=True)
    var = anp.mean((x - mean) ** 2, axis=axes, keepdims=True)
    return (x - mean) / anp.sqrt(var + eps) * anp.reshape(gamma, shape) + anp.reshape(beta, shape)


def bn_args(x_shape):
    def make(rng, dtype):
        c = x_shape[1]
        return [(2 * rng.standard_normal(x_shape) + 1).astype(dtype),
                (1 + 0.5 * rng.standard_normal(c)).astype(dtype), rng.standard_normal(c).astype(dtype)]
    return make


# name -> (the primitive, the plain formula, rng, dtype -> its array arguments)
CASES = {
    "dense": (ops.dense, lambda x, W, b: anp.dot(x, W) + b,
              lambda rng, dt: [rng.standard_normal(s).astype(dt) for s in ((5, 4), (4, 3), (3,))]),
    # one output, a discriminator's logit: dX = G W^T is then an outer product, taken by its own path
    "dense_one_output": (ops.dense, lambda x, W, b: anp.dot(x, W) + b,
                         lambda rng, dt: [rng.standard_normal(s).astype(dt) for s in ((5, 4), (4, 1), (1,))]),
    "batch_norm_2d": (ops.batch_norm_train, plain_batch_norm, bn_args((6, 3))),
    "batch_norm_4d": (ops.batch_norm_train, plain_batch_norm, bn_args((3, 2, 3, 4))),
    # as the BatchNorm layer calls it: the statistics measured once, outside, and handed in
    "batch_norm_4d_given_statistics": (lambda x, gamma, beta: ops.batch_norm_train(
        x, gamma, beta, stats=ops.batch_statistics(getval(x))), plain_batch_norm, bn_args((3, 2, 3, 4))),
    "bce_with_logits": (ops.bce_with_logits, lambda z, t: anp.logaddexp(0, z) - t * z,
                        lambda rng, dt: [3 * rng.standard_normal((4, 5)).astype(dt), rng.random((4, 5)).astype(dt)]),
}


def scalar_loss(fn, args, seed=1):
    """L = sum(fn(*args) * R) for a fixed random R: every output matters, with different weights
    (a plain sum would hide batch norm's dx, which is exactly zero for G = 1)."""
    out_shape = np.shape(fn(*[np.asarray(a) for a in args]))
    r = np.random.default_rng(seed).standard_normal(out_shape).astype(np.result_type(args[0]))
    return lambda *a: anp.sum(fn(*a) * r)


def gradients(loss, args):
    return [grad(loss, i)(*args) for i in range(len(args))]


def second_order(loss, args):
    """Gradients of h = sum over arguments of |dL/d arg|^2: each a derivative of a derivative.

    Some terms are constant (dense's db = sum_n R does not depend on its inputs),
    which autograd reports with a warning; their derivative is zero.
    """
    def h(*a):
        return sum(anp.sum(grad(loss, i)(*a) ** 2) for i in range(len(a)))
    return gradients(h, args)


@pytest.mark.parametrize("case", CASES)
def test_value_and_gradients_match_autograds_generic_derivative(case):
    prim, plain, make = CASES[case]
    args = make(np.random.default_rng(0), np.float64)
    np.testing.assert_allclose(prim(*args), plain(*args), rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(gradients(scalar_loss(prim, args), args), gradients(scalar_loss(plain, args), args)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_central_differences(case):
    prim, _, make = CASES[case]
    args = make(np.random.default_rng(2), np.float64)
    loss = scalar_loss(prim, args)
    for i, g in enumerate(gradients(loss, args)):
        def f(a, i=i):
            return loss(*args[:i], a, *args[i + 1:])
        assert relative_error(g, numerical_grad(f, args[i])) < 1e-6, f"argument {i}"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.filterwarnings("ignore:Output seems independent of input")
def test_second_derivatives_match_autograds_generic_derivative(case):
    prim, plain, make = CASES[case]
    args = make(np.random.default_rng(3), np.float64)
    ours = second_order(scalar_loss(prim, args), args)
    theirs = second_order(scalar_loss(plain, args), args)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10, err_msg=f"argument {i}")


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
@pytest.mark.parametrize("case", ["dense", "batch_norm_4d"])
def test_second_derivatives_match_torch(case):
    prim, _, make = CASES[case]
    args = make(np.random.default_rng(4), np.float64)
    ours = second_order(scalar_loss(prim, args), args)
    targs = [torch.tensor(a, requires_grad=True) for a in args]
    if case == "dense":
        out = F.linear(targs[0], targs[1].T, targs[2])
    else:
        out = F.batch_norm(targs[0], None, None, targs[1], targs[2], training=True, eps=1e-5)
    r = torch.tensor(np.random.default_rng(1).standard_normal(out.shape))
    first = torch.autograd.grad((out * r).sum(), targs, create_graph=True)
    theirs = torch.autograd.grad(sum((g ** 2).sum() for g in first), targs, allow_unused=True)
    for i, (a, b) in enumerate(zip(ours, theirs)):  # None: |db|^2 = |sum R|^2 depends on nothing
        b = np.zeros_like(a) if b is None else b.numpy()
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=f"argument {i}")


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
@pytest.mark.parametrize("case", CASES)
def test_float32_in_float32_out_to_second_order(case):
    prim, _, make = CASES[case]
    args = make(np.random.default_rng(5), np.float32)
    loss = scalar_loss(prim, args)
    assert prim(*args).dtype == np.float32
    for order, grads in (("first", gradients(loss, args)), ("second", second_order(loss, args))):
        assert [np.asarray(g).dtype for g in grads] == [np.float32] * len(args), order


def test_layers_use_the_primitives():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 3, 2, 2)).astype(np.float32)
    bn = nn.BatchNorm()
    _, p = bn.init(rng, (3, 2, 2))
    state = {}
    np.testing.assert_allclose(bn.apply(p, x, train=True, state=state), plain_batch_norm(x, p["gamma"], p["beta"]),
                               rtol=1e-5, atol=1e-5)
    # torch's running statistics after one batch: 0.9 * (0, 1) + 0.1 * (mean, unbiased variance)
    np.testing.assert_allclose(state["mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(state["var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    dense = nn.Dense(4)
    _, p = dense.init(rng, (5,))
    x = rng.standard_normal((3, 5)).astype(np.float32)
    g = grad(lambda W: anp.sum(dense.apply({"W": W, "b": p["b"]}, x) ** 2))(p["W"])
    np.testing.assert_allclose(g, 2 * x.T @ (x @ p["W"] + p["b"]), rtol=1e-5, atol=1e-6)
    assert g.dtype == np.float32 and g.flags.c_contiguous  # X^T G from matmul, not a transposed view


def test_batch_norm_given_its_statistics_gives_the_same_bits():
    """The layer measures the statistics once and hands them to the primitive, whose backward pass
    then skips measuring them again: the same numbers as measuring them inside, to the bit."""
    rng = np.random.default_rng(7)
    x, gamma, beta = bn_args((8, 3, 5, 5))(rng, np.float32)
    r = rng.standard_normal(x.shape).astype(np.float32)
    measured_inside = lambda x, gamma: anp.sum(ops.batch_norm_train(x, gamma, beta) * r)
    handed_in = lambda x, gamma: anp.sum(ops.batch_norm_train(x, gamma, beta, stats=ops.batch_statistics(getval(x)))
                                         * r)
    for i in (0, 1):
        np.testing.assert_array_equal(grad(handed_in, i)(x, gamma), grad(measured_inside, i)(x, gamma))
    stats = ops.batch_statistics(x)
    np.testing.assert_allclose(stats.mean, x.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(stats.var, x.var(axis=(0, 2, 3)), rtol=1e-5)
