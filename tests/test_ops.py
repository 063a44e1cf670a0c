"""ops.py against torch (forward, gradients, double backprop) and finite differences."""
import autograd.numpy as anp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from autograd import grad
from hypothesis import assume, example, given
from hypothesis import strategies as st

from minigen import ops
from minigen.gradcheck import check_grad, numerical_grad, relative_error
from minigen.im2col import channel_rows, col2im


def close(a, b, tol=1e-5, scale=1.0):
    """float32 agreement entry by entry: |a - b| <= tol·(|b| + scale).

    scale (a number or an array like b): the size of the terms summed into each entry, which
    bounds its rounding error when they cancel (default 1, for unit-scale inputs). It is never
    the largest entry of the whole array, which would let small entries be off by far more.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    bound = tol * (np.abs(b) + np.asarray(scale, np.float64))
    worst = np.unravel_index(np.argmax(np.abs(a - b) - bound), a.shape) if a.size else ()
    assert np.all(np.abs(a - b) <= bound), f"at {worst}: {a[worst]} vs {b[worst]}, allowed {bound[worst]}"


def abs_twin(x, w, b, r, s, p, op, transpose):
    """The same convolution of |x|, |w|, |b| with cotangent |r|: each output and gradient entry is
    then the sum of the absolute values of the terms that make it up (conv is bilinear)."""
    (ax, aw, ab), ay = torch_conv(np.abs(x), np.abs(w), np.abs(b), s, p, op, transpose, requires_grad=True)
    (ay * torch.tensor(np.abs(r))).sum().backward()
    return [t.detach().numpy() for t in (ay, ax.grad, aw.grad, ab.grad)]


@st.composite
def conv_case(draw, transpose=False):
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    output_padding = draw(st.integers(0, stride - 1)) if transpose else 0
    if transpose:  # torch needs padding to leave a non-empty output
        assume(min((h - 1) * stride - 2 * padding + kh, (w - 1) * stride - 2 * padding + kw) + output_padding >= 1)
        assume(padding < max(kh, kw))
    else:
        assume(h + 2 * padding >= kh and w + 2 * padding >= kw)
    seed = draw(st.integers(0, 2**16))
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, c, h, w)).astype(np.float32)
    wshape = (c, o, kh, kw) if transpose else (o, c, kh, kw)
    weight = r.standard_normal(wshape).astype(np.float32)
    bias = r.standard_normal(o).astype(np.float32)
    return x, weight, bias, stride, padding, output_padding


def torch_conv(x, w, b, stride, padding, output_padding, transpose, requires_grad=False):
    args = [torch.tensor(a, requires_grad=requires_grad) for a in (x, w, b)]
    if transpose:
        return args, F.conv_transpose2d(*args, stride=stride, padding=padding, output_padding=output_padding)
    return args, F.conv2d(*args, stride=stride, padding=padding)


def mg_conv(x, w, b, stride, padding, output_padding, transpose):
    if transpose:
        return ops.conv_transpose2d(x, w, b, stride, padding, output_padding)
    return ops.conv2d(x, w, b, stride, padding)


@pytest.mark.parametrize("transpose", [False, True])
@given(data=st.data())
def test_conv_forward_and_gradients_match_torch(transpose, data):
    x, w, b, s, p, op = data.draw(conv_case(transpose))
    (tx, tw, tb), ty = torch_conv(x, w, b, s, p, op, transpose, requires_grad=True)
    y = mg_conv(x, w, b, s, p, op, transpose)
    assert y.dtype == np.float32
    # A random cotangent makes every gradient entry a generic, non-degenerate number.
    r = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    scales = abs_twin(x, w, b, r, s, p, op, transpose)
    close(y, ty.detach().numpy(), 1e-5, scales[0])
    (ty * torch.tensor(r)).sum().backward()
    loss = lambda x, w, b: anp.sum(mg_conv(x, w, b, s, p, op, transpose) * r)
    for argnum, ref in enumerate((tx, tw, tb)):
        g = grad(loss, argnum)(x, w, b)
        assert g.dtype == np.float32
        close(g, ref.grad.numpy(), 1e-5, scales[1 + argnum])


@pytest.mark.parametrize("transpose", [False, True])
@given(data=st.data())
def test_conv_gradients_match_finite_differences(transpose, data):
    x, w, b, s, p, op = data.draw(conv_case(transpose))
    x, w, b = (a.astype(np.float64) for a in (x, w, b))
    r = np.random.default_rng(2).standard_normal(mg_conv(x, w, b, s, p, op, transpose).shape)
    for f, at in ((lambda x_: anp.sum(mg_conv(x_, w, b, s, p, op, transpose) * r), x),
                  (lambda w_: anp.sum(mg_conv(x, w_, b, s, p, op, transpose) * r), w)):
        # Elementwise relative error with an absolute floor: a difference quotient carries
        # ~1e-16 |f| / h of rounding, which a near-zero entry's relative error would magnify.
        np.testing.assert_allclose(grad(f)(at), numerical_grad(f, at), rtol=1e-6, atol=1e-8)


@given(data=st.data())
def test_conv_transpose_gradients_taken_together_equal_those_taken_one_at_a_time(data):
    # With both asked for, ops._conv_transpose2d_vjp builds im2col(g) once for the two; taken one
    # at a time each is its own primitive. Same products on the same columns: the same bits.
    x, w, b, s, p, op = data.draw(conv_case(transpose=True))
    r = np.random.default_rng(5).standard_normal(mg_conv(x, w, b, s, p, op, True).shape).astype(np.float32)
    loss = lambda x_, w_: anp.sum(mg_conv(x_, w_, b, s, p, op, True) * r)
    together = grad(lambda xw: loss(*xw))((x, w))
    for argnum, g in enumerate(together):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, grad(loss, argnum)(x, w))


@given(data=st.data())
def test_conv_transpose_is_the_adjoint_of_conv(data):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> for every x, y."""
    x, w, _, s, p, _ = data.draw(conv_case())
    x, w = x.astype(np.float64), w.astype(np.float64)
    y = np.random.default_rng(3).standard_normal(ops.conv2d(x, w, None, s, p).shape)
    out_h = ops.conv_transpose_output_size(y.shape[2], w.shape[2], s, p, 0)
    out_w = ops.conv_transpose_output_size(y.shape[3], w.shape[3], s, p, 0)
    # output_padding recovers the rows a strided conv skipped at the far edge
    op = (x.shape[2] - out_h, x.shape[3] - out_w)
    assume(max(op) < s)
    lhs = np.sum(ops.conv2d(x, w, None, s, p) * y)
    rhs = np.sum(x * ops.conv_transpose2d(y, w, None, s, p, op))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@given(data=st.data())
def test_col2im_is_the_adjoint_of_im2col_in_the_documented_layout(data):
    """cols[(c, a, b), (i, j, n)] = xpad[n, c, i*s + a, j*s + b], and <im2col(x), u> = <x, col2im(u)>."""
    x, w, _, s, p, _ = data.draw(conv_case())
    x = x.astype(np.float64)
    (n, c, h, wd), (kh, kw) = x.shape, w.shape[2:]
    hw = (ops.conv_output_size(h, kh, s, p), ops.conv_output_size(wd, kw, s, p))
    cols = ops._im2col(x, (kh, kw), (s, s), (p, p), hw)
    assert cols.shape == (c * kh * kw, hw[0] * hw[1] * n)
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    i, j, k = (d.draw(st.integers(0, m - 1)) for d, m in ((data, hw[0]), (data, hw[1]), (data, n)))
    window = xpad[k, :, i * s:i * s + kh, j * s:j * s + kw]  # (C, kh, kw)
    np.testing.assert_array_equal(cols[:, (i * hw[1] + j) * n + k], window.ravel())
    u = np.random.default_rng(5).standard_normal(cols.shape)
    back = col2im(u, x.shape, (kh, kw), (s, s), (p, p), hw)
    assert back.shape == x.shape
    assert np.sum(cols * u) == pytest.approx(np.sum(x * back), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("transpose", [False, True])
@given(data=st.data())
def test_double_backprop_matches_torch(transpose, data):
    """d/dw of ||dL/dx||^2 — the shape of WGAN-GP's penalty — through both convolutions."""
    x, w, b, s, p, op = data.draw(conv_case(transpose))

    def penalty(w_):
        dx = grad(lambda x_: anp.sum(anp.tanh(mg_conv(x_, w_, b, s, p, op, transpose))))(x)
        return anp.sum(dx ** 2)

    g = grad(penalty)(w)
    (tx, tw, tb), ty = torch_conv(x, w, b, s, p, op, transpose, requires_grad=True)
    (dx,) = torch.autograd.grad(torch.tanh(ty).sum(), tx, create_graph=True)
    (dx ** 2).sum().backward()
    assert g.dtype == np.float32
    ref = tw.grad.numpy()
    close(g, ref, 1e-4, np.sqrt(np.mean(ref.astype(np.float64) ** 2)))  # floor: the entries' typical size


def test_conv_second_order_matches_finite_differences():
    r = np.random.default_rng(4)
    x, w = r.standard_normal((2, 3, 6, 5)), r.standard_normal((4, 3, 3, 3))

    def penalty(w_):
        dx = grad(lambda x_: anp.sum(anp.tanh(ops.conv2d(x_, w_, None, 2, 1))))(x)
        return anp.sum(dx ** 2)

    assert check_grad(penalty, w) < 1e-6


def test_a_convolution_hands_on_its_output_in_the_layout_the_next_one_reads():
    """conv2d returns a view of its GEMM's channel rows, and an elementwise op keeps that memory
    order (minigen/im2col.py): the next convolution's channel_rows is then a reshape, not a copy."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    y = ops.conv2d(x, rng.standard_normal((5, 3, 4, 4)).astype(np.float32), stride=2, padding=1)
    assert y.shape == (4, 5, 4, 4)
    assert np.shares_memory(channel_rows(y), y)
    z = ops.relu(ops.conv_transpose2d(y, rng.standard_normal((5, 2, 4, 4)).astype(np.float32),
                                      stride=2, padding=1))
    assert z.shape == (4, 2, 8, 8)
    assert np.shares_memory(channel_rows(z), z)


@given(data=st.data(), k=st.integers(1, 4))
def test_label_planes_as_class_maps_equal_the_planes_themselves(data, k):
    """conv2d_label_planes(x, y1, w) = conv2d(append_condition(x, y1), w): values, the gradients in x
    and w (through a second derivative, as WGAN-GP's penalty takes), and the memory order."""
    x, w, b, s, p, _ = data.draw(conv_case())
    labels = np.random.default_rng(len(x)).integers(k, size=len(x))
    y1 = ops.one_hot(labels, k)
    w = np.random.default_rng(k).standard_normal((len(w), x.shape[1] + k, *w.shape[2:])).astype(np.float32)
    planes = ops.conv2d(ops.append_condition(x, y1), w, b, s, p)
    maps = ops.conv2d_label_planes(x, y1, w, b, s, p)
    scale = 1 + np.abs(planes).max()
    np.testing.assert_allclose(maps, planes, atol=1e-5 * scale)
    assert np.shares_memory(channel_rows(maps), maps)  # the next convolution reads it without a copy

    def penalty(conv):  # a function of (x, w) with a gradient of a gradient inside
        return lambda x_, w_: anp.sum(grad(lambda z: anp.sum(anp.tanh(conv(z, w_))))(x_) ** 2)

    by_planes = penalty(lambda z, w_: ops.conv2d(ops.append_condition(z, y1), w_, b, s, p))
    by_maps = penalty(lambda z, w_: ops.conv2d_label_planes(z, y1, w_, b, s, p))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    for argnum in (0, 1):
        np.testing.assert_allclose(grad(by_maps, argnum)(x64, w64), grad(by_planes, argnum)(x64, w64),
                                   rtol=1e-9, atol=1e-9)


def test_label_planes_as_class_maps_refuse_mismatched_shapes():
    x, y1 = np.zeros((2, 1, 6, 6), np.float32), ops.one_hot(np.array([0, 2]), 3)
    with pytest.raises(ValueError, match=r"a weight \(O, C \+ K, kh, kw\)"):
        ops.conv2d_label_planes(x, y1, np.zeros((4, 3, 3, 3), np.float32))  # C + K = 4 channels, not 3
    with pytest.raises(ValueError, match="one-hot labels"):
        ops.conv2d_label_planes(x, y1[:1], np.zeros((4, 4, 3, 3), np.float32))


def test_conv_errors_name_what_was_expected():
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="expects 3 input channels, input .* has 2"):
        ops.conv2d(x[:, :2], np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="4-d"):
        ops.conv2d(x[0], np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        ops.conv2d(x, np.zeros((4, 3, 9, 9), np.float32))
    with pytest.raises(ValueError, match=r"bias of shape \(4,\)"):
        ops.conv2d(x, np.zeros((4, 3, 3, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="output_padding .* smaller than stride"):
        ops.conv_transpose2d(x, np.zeros((3, 4, 3, 3), np.float32), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="stride must be"):
        ops.conv2d(x, np.zeros((4, 3, 3, 3), np.float32), stride=-1)


# --- stable logistic functions ----------------------------------------------------

EXTREME = np.array([-1e4, -200.0, -30.0, -1.0, 0.0, 1e-3, 1.0, 30.0, 200.0, 1e4], np.float32)


@pytest.mark.parametrize("name, ref", [
    ("softplus", F.softplus), ("log_sigmoid", F.logsigmoid), ("sigmoid", torch.sigmoid), ("relu", torch.relu),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.2)),
])
def test_elementwise_ops_match_torch_at_extremes(name, ref):
    fn = getattr(ops, name)
    t = torch.tensor(EXTREME, requires_grad=True)
    ref(t).sum().backward()
    value, g = fn(EXTREME), grad(lambda z: anp.sum(fn(z)))(EXTREME)
    assert value.dtype == g.dtype == np.float32
    assert np.isfinite(value).all() and np.isfinite(g).all()
    np.testing.assert_allclose(value, ref(torch.tensor(EXTREME)).numpy(), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-30)


@given(st.lists(st.one_of(st.floats(-120, 120, width=32), st.floats(width=32, allow_nan=False)),
                min_size=1, max_size=50))
@example([-20.0, -80.0, 30.0])
def test_sigmoid_keeps_its_relative_precision_in_both_tails(xs):
    # The docstring's promise: sigmoid(-80) ~ 1.8e-35 is still right to float32's precision, not lost
    # to cancellation as in 1 - 1/(1 + e^-x) or (1 + tanh(x/2))/2. Against float64 torch, over all float32.
    x = np.array(xs, np.float32)
    ref = torch.sigmoid(torch.tensor(x, dtype=torch.float64)).numpy()
    value = ops.sigmoid(x)
    assert value.dtype == np.float32
    normal = ref >= np.finfo(np.float32).tiny  # below, float32 itself keeps fewer digits
    close(value[normal], ref[normal], 1e-6, scale=0.0)
    assert np.all(value[~normal] <= np.finfo(np.float32).tiny)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, 1.5, -0.5])
def test_leaky_relu_matches_torch_for_any_slope(slope):
    # The forward is a maximum for slopes up to 1 and a minimum above: both sides of that switch.
    x = np.random.default_rng(7).standard_normal((4, 5)).astype(np.float32)
    x[0, :2] = 0.0, -0.0  # at the kink both take the slope's side
    t = torch.tensor(x, requires_grad=True)
    F.leaky_relu(t, slope).sum().backward()
    np.testing.assert_array_equal(ops.leaky_relu(x, slope), F.leaky_relu(torch.tensor(x), slope).numpy())
    np.testing.assert_array_equal(grad(lambda z: anp.sum(ops.leaky_relu(z, slope)))(x), t.grad.numpy())


@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=20),
       st.lists(st.floats(0, 1, width=32), min_size=20, max_size=20))
def test_bce_with_logits_matches_torch(logits, targets):
    logits = np.array(logits, np.float32)
    targets = np.array(targets[:len(logits)], np.float32)
    # The reference runs in float64: torch's float32 formula, (1 - t)·z + softplus(-z), cancels
    # catastrophically for large negative z, where ours (softplus(z) - t·z) does not.
    tl = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    ref = F.binary_cross_entropy_with_logits(tl, torch.tensor(targets, dtype=torch.float64), reduction="none")
    ref.sum().backward()
    value = ops.bce_with_logits(logits, targets)
    g = grad(lambda z: anp.sum(ops.bce_with_logits(z, targets)))(logits)
    assert value.dtype == g.dtype == np.float32
    # softplus(z) - t·z: two terms of size |z| each, whose difference may be far smaller.
    close(value, ref.detach().numpy(), 1e-6, 2 * np.abs(logits) + 1)
    close(g, tl.grad.numpy(), 1e-6)


@pytest.mark.parametrize("name", ["softplus", "log_sigmoid", "sigmoid", "leaky_relu", "log_softmax"])
def test_smooth_ops_match_finite_differences(name):
    x = np.random.default_rng(5).standard_normal((3, 4)) * 3
    r = np.random.default_rng(6).standard_normal((3, 4))
    fn = getattr(ops, name)
    assert check_grad(lambda z: anp.sum(fn(z) * r), x) < 1e-6


def test_relu_gradient_away_from_the_kink():
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    assert check_grad(lambda z: anp.sum(ops.relu(z) * np.arange(1.0, 5.0)), x) < 1e-8


def test_second_derivatives_of_softplus_and_sigmoid():
    x = np.linspace(-5, 5, 7)
    d_softplus = lambda z: anp.sum(grad(lambda u: anp.sum(ops.softplus(u)))(z) ** 2)
    assert check_grad(d_softplus, x) < 1e-6


def test_log_softmax_matches_torch_for_large_logits():
    z = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]], np.float32)
    out = ops.log_softmax(z)
    assert out.dtype == np.float32
    close(out, torch.log_softmax(torch.tensor(z, dtype=torch.float64), dim=1).numpy(), 1e-6)


def test_relative_error_is_zero_for_equal_and_large_for_different():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0
    assert relative_error([1.0, 2.0], [1.0, -2.0]) == 1.0


def test_gradients_through_np_mean_stay_float32():
    """autograd's own VJP of np.mean returns float64 for float32 input; minigen.ops mends it."""
    x = np.ones((3, 4), np.float32)
    for loss in (lambda z: anp.mean(z), lambda z: anp.sum(anp.mean(z, axis=0)),
                 lambda z: anp.sum(anp.mean(z, axis=(0, 1), keepdims=True))):
        assert grad(loss)(x).dtype == np.float32
    np.testing.assert_allclose(grad(lambda z: anp.mean(z))(x), np.full((3, 4), 1 / 12, np.float32))


REDUCTIONS = {  # name: (autograd's function, torch's, keyword args)
    "mean": (anp.mean, lambda t, **kw: t.mean(**kw), {}),
    "var": (anp.var, lambda t, **kw: t.var(correction=0, **kw), {}),
    "var_ddof1": (lambda a, **kw: anp.var(a, ddof=1, **kw), lambda t, **kw: t.var(correction=1, **kw), {}),
    "std": (anp.std, lambda t, **kw: t.std(correction=0, **kw), {}),
    "max": (anp.max, lambda t, **kw: t.amax(**kw), {}),
    "min": (anp.min, lambda t, **kw: t.amin(**kw), {}),
    "amax": (anp.amax, lambda t, **kw: t.amax(**kw), {}),
}


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [None, 1, (0, 2)])
def test_gradients_of_reductions_stay_float32_and_match_torch(name, axis):
    """autograd's VJPs of mean, var, std, max, min return float64 for float32 input; minigen.ops
    mends all of them: float32 gradients, equal to torch's (float32) and to finite differences (float64)."""
    ours, theirs, _ = REDUCTIONS[name]
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)  # no ties
    weights = np.random.default_rng(1).standard_normal(np.shape(ours(x, axis=axis))).astype(np.float32)
    loss = lambda z: anp.sum(ours(z, axis=axis) * weights)
    g = grad(loss)(x)
    assert g.dtype == np.float32
    t = torch.tensor(x, requires_grad=True)
    dims = {} if axis is None else {"dim": axis}
    (theirs(t, **dims) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-6)
    x64 = x.astype(np.float64)
    loss64 = lambda z: np.sum(ours(z, axis=axis) * weights)
    np.testing.assert_allclose(grad(loss64)(x64), numerical_grad(loss64, x64), rtol=1e-6, atol=1e-8)


def test_max_and_min_share_the_gradient_among_ties():
    x = np.array([[1.0, 3.0, 3.0], [0.0, -2.0, -2.0]], np.float32)
    np.testing.assert_array_equal(grad(lambda z: anp.sum(anp.max(z, axis=1)))(x), [[0, 0.5, 0.5], [1, 0, 0]])
    np.testing.assert_array_equal(grad(lambda z: anp.sum(anp.min(z, axis=1)))(x), [[1, 0, 0], [0, 0.5, 0.5]])
    assert grad(lambda z: anp.max(z))(x).dtype == np.float32


def test_one_hot_and_its_errors():
    np.testing.assert_array_equal(ops.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert ops.one_hot(np.array([1]), 10).dtype == np.float32
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got values in \[0, 10\]"):
        ops.one_hot(np.array([0, 10]))
    with pytest.raises(ValueError, match="integer labels of shape"):
        ops.one_hot(np.array([0.0, 1.0]))


def test_one_hot_checks_the_count_it_is_told():
    """The one label check every conditional model (cGAN, CVAE, M2) shares: one integer label per example."""
    np.testing.assert_array_equal(ops.one_hot([1, 0], 2, n=2), np.eye(2, dtype=np.float32)[[1, 0]])
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(3,\), one per image, got shape \(2,\)"):
        ops.one_hot(np.array([1, 0]), 10, n=3)
    with pytest.raises(ValueError, match=r"needs labels y, \(N,\) ints in \[0, 10\)"):
        ops.one_hot(None, 10, n=3)
