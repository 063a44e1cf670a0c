"""Layers against torch's modules, finite differences, and their error messages."""
import autograd.numpy as anp
import numpy as np
import pytest
import torch
from autograd import grad
from hypothesis import given
from hypothesis import strategies as st

from minigen import nn
from minigen.gradcheck import check_grad
from minigen.init import dcgan_normal, fans, glorot_uniform, he_normal
from minigen.optim import Adam, leaves


def to_torch(params):
    return [torch.tensor(p, requires_grad=True) for p in params]


# Each case: a minigen layer, the input shape of one example, and a function that
# computes the same thing in torch from the minigen params (weights laid out alike).
LAYER_CASES = {
    "dense": (lambda: nn.Dense(5), (7,), lambda x, p: x @ p["W"] + p["b"]),
    "conv2d": (lambda: nn.Conv2d(4, 3, stride=2, padding=1), (3, 7, 6),
               lambda x, p: torch.nn.functional.conv2d(x, p["w"], p["b"], stride=2, padding=1)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 4, stride=2, padding=1, output_padding=1), (3, 5, 4),
                         lambda x, p: torch.nn.functional.conv_transpose2d(x, p["w"], p["b"], 2, 1, 1)),
    "relu": (nn.ReLU, (6,), lambda x, p: torch.relu(x)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), (6,), lambda x, p: torch.nn.functional.leaky_relu(x, 0.1)),
    "sigmoid": (nn.Sigmoid, (6,), lambda x, p: torch.sigmoid(x)),
    "tanh": (nn.Tanh, (2, 3, 3), lambda x, p: torch.tanh(x)),
    "flatten": (nn.Flatten, (2, 3, 3), lambda x, p: x.reshape(len(x), -1)),
    "reshape": (lambda: nn.Reshape((2, 3, 2)), (12,), lambda x, p: x.reshape(len(x), 2, 3, 2)),
    "batchnorm_dense": (nn.BatchNorm, (5,), lambda x, p: torch.nn.functional.batch_norm(
        x, None, None, p["gamma"], p["beta"], training=True)),
    "batchnorm_conv": (nn.BatchNorm, (3, 4, 4), lambda x, p: torch.nn.functional.batch_norm(
        x, None, None, p["gamma"], p["beta"], training=True)),
    # torch's layer_norm has one weight per feature; WGAN-GP's (and ours) one per channel, so scale after it
    "layernorm_dense": (nn.LayerNorm, (5,), lambda x, p: torch.nn.functional.layer_norm(
        x, (5,), eps=1e-5) * p["gamma"] + p["beta"]),
    "layernorm_conv": (nn.LayerNorm, (3, 4, 4), lambda x, p: torch.nn.functional.layer_norm(
        x, (3, 4, 4), eps=1e-5) * p["gamma"][:, None, None] + p["beta"][:, None, None]),
}


def make(case, batch, seed, dtype=np.float32):
    build, shape, ref = LAYER_CASES[case]
    layer = build()
    rng = np.random.default_rng(seed)
    _, params = layer.init(rng, shape)
    # random, non-trivial values everywhere (BatchNorm's gamma starts at exactly 1)
    params = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
    x = rng.standard_normal((batch, *shape)).astype(dtype)
    return layer, params, x, ref


@pytest.mark.parametrize("case", LAYER_CASES)
@given(batch=st.integers(2, 6), seed=st.integers(0, 1000))
def test_layer_forward_and_gradients_match_torch(case, batch, seed):
    layer, params, x, ref = make(case, batch, seed)
    y = layer.apply(params, x, train=True)
    assert y.dtype == np.float32
    names = sorted(params)
    tp, tx = dict(zip(names, to_torch([params[k] for k in names]))), torch.tensor(x, requires_grad=True)
    ty = ref(tx, tp)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    r = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32)
    (ty * torch.tensor(r)).sum().backward()
    loss = lambda params, x: anp.sum(layer.apply(params, x, train=True) * r)
    gp, gx = (grad(loss, 0)(params, x) if params else {}), grad(loss, 1)(params, x)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert gx.dtype == np.float32
    for k in names:
        assert gp[k].dtype == np.float32, k
        np.testing.assert_allclose(gp[k], tp[k].grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", sorted(set(LAYER_CASES) - {"relu", "leaky_relu"}))
def test_layer_gradients_match_finite_differences(case):
    layer, params, x, _ = make(case, 4, 0, np.float64)
    r = np.random.default_rng(1).standard_normal(layer.apply(params, x, train=True).shape)
    assert check_grad(lambda x_: anp.sum(layer.apply(params, x_, train=True) * r), x) < 1e-6
    for k in params:
        f = lambda v, k=k: anp.sum(layer.apply({**params, k: v}, x, train=True) * r)
        assert check_grad(f, params[k]) < 1e-6, k


@pytest.mark.parametrize("case", ["relu", "leaky_relu"])
def test_kinked_layers_match_finite_differences_away_from_zero(case):
    layer, params, x, _ = make(case, 4, 0, np.float64)
    x = np.where(np.abs(x) < 0.1, 0.5, x)  # keep h = 1e-5 away from the kink
    assert check_grad(lambda x_: anp.sum(layer.apply(params, x_) * np.arange(1.0, 7.0)), x) < 1e-8


def test_batchnorm_running_statistics_and_eval_mode_match_torch():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm(momentum=0.1)
    _, params = bn.init(rng, (3, 4, 4))
    ref = torch.nn.BatchNorm2d(3, momentum=0.1)
    state = {}
    for _ in range(3):
        x = (rng.standard_normal((5, 3, 4, 4)) * 2 + 1).astype(np.float32)
        bn.apply(params, x, train=True, state=state)
        ref.train()(torch.tensor(x))
    np.testing.assert_allclose(state["mean"], ref.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(state["var"], ref.running_var.numpy(), rtol=1e-5)
    y = bn.apply(params, x, train=False, state=state)
    np.testing.assert_allclose(y, ref.eval()(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert state["mean"].dtype == y.dtype == np.float32


def test_batchnorm_state_is_not_differentiated_and_nested_per_layer():
    net = nn.Sequential(nn.Dense(4), nn.BatchNorm(), nn.ReLU(), nn.Dense(2), nn.BatchNorm())
    _, params = net.init(np.random.default_rng(0), (3,))
    state = {}
    x = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    g = grad(lambda p: anp.sum(net.apply(p, x, train=True, state=state) ** 2))(params)
    assert set(state) == {"0", "1", "2", "3", "4"} and set(state["1"]) == {"mean", "var"}
    assert all(isinstance(v, np.ndarray) for v in state["4"].values())  # plain arrays, not autograd boxes
    assert [sorted(p) for p in g] == [sorted(p) for p in params]


def test_dropout_keeps_the_mean_and_is_identity_in_eval():
    layer = nn.Dropout(0.3)
    x = np.ones((200, 500), np.float32)
    y = layer.apply({}, x, train=True, rng=np.random.default_rng(0))
    assert y.dtype == np.float32
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.01
    assert layer.apply({}, x) is x
    with pytest.raises(ValueError, match="needs rng"):
        layer.apply({}, x, train=True)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        nn.Dropout(1.0)


def test_the_lecture_generator_reads_naturally():
    G = nn.Sequential(nn.Dense(128), nn.ReLU(), nn.Dense(784), nn.Sigmoid())
    out_shape, params = G.init(np.random.default_rng(0), (100,))
    assert out_shape == (784,)
    z = np.random.default_rng(1).standard_normal((16, 100)).astype(np.float32)
    x = G.apply(params, z)
    assert x.shape == (16, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_shapes_are_inferred_at_init():
    net = nn.Sequential(nn.Dense(7 * 7 * 8), nn.Reshape((8, 7, 7)), nn.ConvTranspose2d(4, 4, 2, 1),
                        nn.ConvTranspose2d(1, 4, 2, 1), nn.Flatten(), nn.Dense(3))
    out_shape, params = net.init(np.random.default_rng(0), (10,))
    assert out_shape == (3,)
    assert params[2]["w"].shape == (8, 4, 4, 4) and params[5]["W"].shape == (784, 3)


def test_wrong_input_shape_names_the_layer_and_both_shapes():
    net = nn.Sequential(nn.Dense(16), nn.ReLU(), nn.Reshape((1, 4, 4)), nn.Conv2d(2, 3))
    _, params = net.init(np.random.default_rng(0), (10,))
    with pytest.raises(ValueError, match=r"layer 0 of 4: Dense\(16\): expected input of shape \(N, 10\), got \(5, 9\)"):
        net.apply(params, np.zeros((5, 9), np.float32))
    conv = nn.Sequential(nn.Conv2d(2, 3))
    _, cparams = conv.init(np.random.default_rng(0), (1, 8, 8))
    with pytest.raises(ValueError, match=r"Conv2d.*expected input of shape \(N, 1, H, W\), got \(2, 3, 8, 8\)"):
        conv.apply(cparams, np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="cannot reshape"):
        nn.Sequential(nn.Reshape((3, 3))).init(None, (10,))
    with pytest.raises(ValueError, match="add Flatten"):
        nn.Sequential(nn.Dense(3)).init(None, (1, 28, 28))


def test_wrong_dtype_and_non_finite_input_are_refused():
    net = nn.Sequential(nn.Dense(2))
    _, params = net.init(np.random.default_rng(0), (3,))
    with pytest.raises(TypeError, match="expected float32 input, got uint8"):
        net.apply(params, np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError, match="expected float32 input, got float16"):
        net.apply(params, np.zeros((2, 3), np.float16))
    with pytest.raises(TypeError, match="numpy float32 array, got list"):
        net.apply(params, [[0.0, 0.0, 0.0]])
    bad = np.zeros((2, 3), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf \(first at index \(1, 2\)\)"):
        net.apply(params, bad)
    with pytest.raises(TypeError, match="forget the"):
        nn.Sequential(nn.Dense(2), nn.ReLU)


def test_initialisers_have_the_documented_scale():
    rng = np.random.default_rng(0)
    assert fans((64, 32, 3, 3)) == (32 * 9, 64 * 9) and fans((100, 50)) == (100, 50)
    w = glorot_uniform(rng, (400, 600))
    assert w.dtype == np.float32 and abs(w.var() - 2 / 1000) < 2e-4
    assert abs(he_normal(rng, (64, 32, 3, 3)).var() - 2 / 288) < 5e-4
    assert abs(dcgan_normal(rng, (500, 500)).std() - 0.02) < 5e-4


def test_a_whole_training_step_of_a_conv_net_stays_float32():
    """A float64 that sneaks in anywhere halves the speed: check every array of a step."""
    net = nn.Sequential(nn.Conv2d(4, 3, padding=1), nn.BatchNorm(), nn.LeakyReLU(), nn.Conv2d(8, 4, 2, 1),
                        nn.ReLU(), nn.Flatten(), nn.Dropout(0.2), nn.Dense(16), nn.Tanh(), nn.Dense(7 * 7),
                        nn.Reshape((1, 7, 7)), nn.ConvTranspose2d(2, 4, 2, 1), nn.Sigmoid())
    rng = np.random.default_rng(0)
    _, params = net.init(rng, (1, 14, 14))
    opt, state = Adam(params), {}
    x = rng.random((4, 1, 14, 14), dtype=np.float32)
    loss = lambda p: anp.mean((net.apply(p, x, train=True, rng=rng, state=state) - x) ** 2)
    value, grads = loss(params), grad(loss)(params)
    opt.step(grads)
    assert np.asarray(value).dtype == np.float32
    for array in leaves(params) + leaves(grads) + leaves(opt.state) + leaves(state):
        assert array.dtype == np.float32, array.shape


def test_layernorm_normalises_each_example_alone_the_same_in_train_and_eval(rng):
    layer = nn.LayerNorm()
    _, params = layer.init(rng, (3, 4, 4))
    x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32) * np.arange(1, 6, dtype=np.float32)[:, None, None, None]
    y = layer.apply(params, x, train=True)
    np.testing.assert_allclose(y.reshape(5, -1).mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(y.reshape(5, -1).var(axis=1), 1, rtol=1e-4)
    np.testing.assert_array_equal(layer.apply(params, x[2:3], train=True), y[2:3])  # the batch does not matter
    np.testing.assert_array_equal(layer.apply(params, x, train=False), y)


@given(seed=st.integers(0, 1000), m=st.integers(2, 6), n=st.integers(2, 6))
def test_power_iteration_finds_the_largest_singular_value(seed, m, n):
    """On a matrix U diag(s) Vᵀ whose top two singular values differ by 1.5x, 30 iterations (error
    shrinking as (s2/s1)^2 per iteration) find s1 and its singular vectors."""
    rng = np.random.default_rng(seed)
    k = min(m, n)
    u_basis, v_basis = (np.linalg.qr(rng.standard_normal((d, k)))[0] for d in (m, n))
    s = np.sort(rng.uniform(0.1, 1.0, k))[::-1] * np.array([1.5] + [1.0] * (k - 1))
    s[0] = max(s[0], 1.5 * s[1]) if k > 1 else s[0]
    matrix = u_basis @ np.diag(s) @ v_basis.T
    u, v = nn.power_iteration(matrix, np.ones(n), 30)
    assert u @ matrix @ v == pytest.approx(s[0], rel=1e-6)
    assert abs(u @ u_basis[:, 0]) == pytest.approx(1, rel=1e-6) and abs(v @ v_basis[:, 0]) == pytest.approx(1, rel=1e-6)


def spectral_conv_and_its_torch_twin(seed):
    """A SpectralNorm(Conv2d) with random weights, and torch's spectral_norm on the same conv."""
    rng = np.random.default_rng(seed)
    layer = nn.SpectralNorm(nn.Conv2d(4, 3, stride=2, padding=1))
    _, params = layer.init(rng, (3, 7, 6))
    params = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    ref = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(params["w"]))
        ref.bias.copy_(torch.tensor(params["b"]))
    return layer, params, torch.nn.utils.parametrizations.spectral_norm(ref), rng


@given(seed=st.integers(0, 1000))
def test_spectral_norm_matches_torch_in_train_and_eval_mode(seed):
    """From the same u and v, one power iteration per train-mode call and none in eval mode, as
    torch.nn.utils.parametrizations.spectral_norm does; the outputs and gradients agree."""
    layer, params, ref, rng = spectral_conv_and_its_torch_twin(seed)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    state = {}
    layer.apply(params, x, state=state)  # the warm-up fills state with u and v
    twin = ref.parametrizations.weight[0]
    with torch.no_grad():
        twin._u.copy_(torch.tensor(state["u"]))
        twin._v.copy_(torch.tensor(state["v"]))
    r = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    for train in (True, True, False):
        loss = lambda p_x, train=train: anp.sum(layer.apply(*p_x, train=train, state=state) * r)  # one iteration
        ref.zero_grad()
        tx = torch.tensor(x, requires_grad=True)
        (ref.train(train)(tx) * torch.tensor(r)).sum().backward()
        gp, gx = grad(loss)((params, x))
        np.testing.assert_allclose(state["u"], twin._u.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.apply(params, x, state=state), ref.eval()(tx).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(gp["w"], ref.parametrizations.weight.original.grad.numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_spectral_norm_wraps_only_layers_with_a_weight_and_needs_no_state_in_eval_mode(rng):
    with pytest.raises(ValueError, match=r"SpectralNorm wraps a layer with a weight matrix \(Dense, Conv2d, "
                                         r"ConvTranspose2d\), got ReLU\(\)"):
        nn.SpectralNorm(nn.ReLU())
    layer = nn.SpectralNorm(nn.Dense(3), warmup=50)
    _, params = layer.init(rng, (5,))
    x = rng.standard_normal((4, 5)).astype(np.float32)
    exact = np.linalg.norm(params["W"], 2)  # without state: the warm-up's estimate, every call
    np.testing.assert_allclose(layer.apply(params, x), x @ (params["W"] / exact) + params["b"], rtol=1e-4, atol=1e-6)
