"""minigen.autodiff.value_and_grad gives autograd's numbers, for any tree, to any order."""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigen import nn
from minigen.autodiff import value_and_grad, value_and_vjp
from minigen.tree import leaves


def mlp_loss(params, x):
    return anp.sum(nn.Sequential(nn.Dense(5), nn.Tanh(), nn.Dense(1)).apply(params, x) ** 2)


@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**16))
def test_equals_autograd_on_a_network(n, d, seed):
    rng = np.random.default_rng(seed)
    _, params = nn.Sequential(nn.Dense(5), nn.Tanh(), nn.Dense(1)).init(rng, (d,))
    x = rng.standard_normal((n, d)).astype(np.float32)
    value, grads = value_and_grad(mlp_loss)(params, x)
    ref_value, ref_grads = autograd.value_and_grad(mlp_loss)(params, x)
    assert value == ref_value
    for g, r in zip(leaves(grads), leaves(ref_grads), strict=True):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, r)


def test_nested_dicts_unused_leaves_and_a_loss_that_ignores_params():
    params = {"b": [np.float32(2.0) * np.ones(2, np.float32), {"z": np.ones(3, np.float32)}],
              "a": np.arange(3, dtype=np.float32)}
    loss = lambda p, k: k * anp.sum(p["a"] ** 2) + anp.sum(p["b"][0] * p["a"][:2])
    value, grads = value_and_grad(loss)(params, 3.0)
    np.testing.assert_allclose(value, 3 * 5 + 2 * 1)
    np.testing.assert_allclose(grads["a"], 6 * np.arange(3) + np.array([2, 2, 0]))
    np.testing.assert_allclose(grads["b"][0], [0, 1])
    np.testing.assert_array_equal(grads["b"][1]["z"], 0)  # not used: a zero gradient of the right shape
    value, grads = value_and_grad(lambda p: 7.0)(params)
    assert value == 7.0 and all((g == 0).all() for g in leaves(grads))


def test_a_gradient_inside_the_loss_differentiates_again():
    """WGAN-GP's shape of loss: the norm of an input gradient, differentiated w.r.t. params."""
    def penalty(params, x):
        score = lambda x: anp.sum(anp.tanh(x * params["w"]))
        return anp.sum(autograd.grad(score)(x) ** 2)

    params, x = {"w": np.array([0.3, -1.2])}, np.array([0.5, 2.0])
    value, grads = value_and_grad(penalty)(params, x)
    ref_value, ref_grads = autograd.value_and_grad(penalty)(params, x)
    assert value == pytest.approx(ref_value)
    np.testing.assert_allclose(grads["w"], ref_grads["w"], rtol=1e-12)


@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**16))
def test_a_vjp_taken_later_equals_the_gradient_of_the_weighted_sum(n, d, seed):
    """value_and_vjp: the forward pass now, and vjp(c) = the gradient of sum(c · f(params)), as
    autograd's own; in between, other traces may run (a GAN's D step)."""
    rng = np.random.default_rng(seed)
    net = nn.Sequential(nn.Dense(5), nn.Tanh(), nn.Dense(3))
    _, params = net.init(rng, (d,))
    x = rng.standard_normal((n, d)).astype(np.float32)
    c = rng.standard_normal((n, 3)).astype(np.float32)
    value, vjp = value_and_vjp(net.apply)(params, x)
    np.testing.assert_array_equal(value, net.apply(params, x))
    other = nn.Sequential(nn.Dense(5), nn.Tanh(), nn.Dense(1)).init(rng, (d,))[1]
    value_and_grad(mlp_loss)(other, x)  # another trace opened and closed before the backward pass
    ref = autograd.grad(lambda p: anp.sum(c * net.apply(p, x)))(params)
    for g, r in zip(leaves(vjp(c)), leaves(ref), strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-7)
    _, vjp = value_and_vjp(lambda p, x: x)(params, x)  # f does not depend on params: zero gradients
    assert all(not g.any() for g in leaves(vjp(c)))
