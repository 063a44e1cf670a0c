"""Optimisers follow torch.optim's trajectory on a least-squares problem."""
import autograd.numpy as anp
import numpy as np
import pytest
import torch
from autograd import grad
from hypothesis import given, settings
from hypothesis import strategies as st

from minigen.optim import SGD, Adam, AdamW, RMSprop, geometric_decay
from minigen.tree import leaves

CASES = {
    "sgd_momentum": (lambda p: SGD(p, lr=0.01, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
    "sgd_nesterov_wd": (lambda p: SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-2),
                        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    "sgd_plain": (lambda p: SGD(p, lr=0.02), lambda p: torch.optim.SGD(p, lr=0.02)),
    "rmsprop": (lambda p: RMSprop(p, lr=1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    "adam": (lambda p: Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    "adam_l2": (lambda p: Adam(p, lr=1e-2, betas=(0.5, 0.999), weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.5, 0.999), weight_decay=0.1)),
    # WGAN-GP's betas. With beta2 = 0.9 this problem is chaotic: differences of one
    # rounding error grow to 1e-8 in float64 over 100 steps (to 1e-3 in float32), so
    # this case runs in float64, where it still tells a wrong formula from a right one.
    "adam_wgan_gp_float64": (lambda p: Adam(p, lr=1e-2, betas=(0.5, 0.9), weight_decay=0.1),
                             lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.5, 0.9), weight_decay=0.1)),
    "adamw": (lambda p: AdamW(p, lr=1e-2), lambda p: torch.optim.AdamW(p, lr=1e-2)),
    "adamw_wd": (lambda p: AdamW(p, lr=1e-2, betas=(0.5, 0.999), weight_decay=0.1),
                 lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.5, 0.999), weight_decay=0.1)),
}


def least_squares(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((50, 8)).astype(dtype)
    y = rng.standard_normal((50, 3)).astype(dtype)
    params = {"W": rng.standard_normal((8, 3)).astype(dtype), "b": np.zeros(3, dtype)}
    loss = lambda p: anp.sum((anp.dot(a, p["W"]) + p["b"] - y) ** 2) / 50
    return params, loss, (a, y)


@pytest.mark.parametrize("case", CASES)
def test_100_steps_follow_torch(case):
    ours, theirs = CASES[case]
    dtype = np.float64 if case.endswith("float64") else np.float32
    params, loss, (a, y) = least_squares(dtype=dtype)
    tW, tb = (torch.tensor(params[k].copy(), requires_grad=True) for k in ("W", "b"))
    opt, topt = ours(params), theirs([tW, tb])
    W_ref = params["W"]  # the optimiser must update this very array
    for _ in range(100):
        opt.step(grad(loss)(params))
        topt.zero_grad()
        (((torch.tensor(a) @ tW + tb - torch.tensor(y)) ** 2).sum() / 50).backward()
        topt.step()
    assert params["W"] is W_ref and params["W"].dtype == dtype
    np.testing.assert_allclose(params["W"], tW.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert float(loss(params)) < float(loss(least_squares()[0]))


class Float32Only(np.ndarray):
    """An array that records every ufunc it takes part in with a float64 operand (array or numpy scalar)."""
    float64_calls = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        operands = inputs + kwargs.get("out", ())
        if any(isinstance(x, (np.ndarray, np.generic)) and x.dtype == np.float64 for x in operands):
            Float32Only.float64_calls.append(ufunc.__name__)
        plain = lambda xs: tuple(x.view(np.ndarray) if isinstance(x, Float32Only) else x for x in xs)
        if "out" not in kwargs:
            return getattr(ufunc, method)(*plain(inputs), **kwargs)
        getattr(ufunc, method)(*plain(inputs), **{**kwargs, "out": plain(kwargs["out"])})
        return kwargs["out"][0]  # the watched array itself, so that `s *= c` keeps watching s


@pytest.mark.parametrize("case", [c for c in CASES if not c.endswith("float64")])
def test_every_pass_of_an_update_stays_in_float32(case):
    # A numpy float64 scalar (np.sqrt of a Python number is one) promotes a float32 array to a
    # float64 pass and a cast back: Adam's bias correction did so, 4 % of an MLP VAE step.
    params, loss, _ = least_squares()
    opt = CASES[case][0](params)
    work = type(opt).scratch
    opt.scratch = lambda p: work(opt, p).view(Float32Only)  # every pass of update writes this scratch
    Float32Only.float64_calls.clear()
    for _ in range(3):
        opt.step(grad(loss)(params))
    assert Float32Only.float64_calls == []


@pytest.mark.parametrize("case", CASES)
def test_an_update_in_blocks_gives_the_bits_of_one_pass_over_the_whole_buffer(case):
    # step() runs update over cache-sized blocks (optim.BLOCK); every rule is elementwise,
    # so blocks of 5 of the 27 parameters (the last one ragged) must change no bit.
    ours, _ = CASES[case]
    dtype = np.float64 if case.endswith("float64") else np.float32
    whole, loss, _ = least_squares(dtype=dtype)
    blocks = {k: v.copy() for k, v in whole.items()}
    o_whole, o_blocks = ours(whole), ours(blocks)
    o_blocks.block = 5
    assert o_whole.block >= o_whole.flat.size
    for _ in range(20):
        o_whole.step(grad(loss)(whole))
        o_blocks.step(grad(loss)(blocks))
    for k in whole:
        np.testing.assert_array_equal(whole[k], blocks[k])
    assert not np.array_equal(whole["W"], least_squares(dtype=dtype)[0]["W"])


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip_continues_the_same_trajectory(case):
    ours, _ = CASES[case]
    p1, loss, _ = least_squares()
    p2 = {k: v.copy() for k, v in p1.items()}
    o1 = ours(p1)
    for _ in range(5):
        o1.step(grad(loss)(p1))
    p2 = {k: v.copy() for k, v in p1.items()}
    o2 = ours(p2)
    o2.load_state_dict({k: v.copy() for k, v in o1.state_dict().items()})
    for _ in range(5):
        o1.step(grad(loss)(p1))
        o2.step(grad(loss)(p2))
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_bad_gradients_and_settings_are_refused():
    params, _, _ = least_squares()
    opt = Adam(params)
    with pytest.raises(ValueError, match="got 1 gradient arrays for 2 parameters"):
        opt.step({"W": params["W"]})
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(3, 8\), its parameter \(8, 3\)"):
        opt.step({"W": params["W"].T, "b": params["b"]})
    with pytest.raises(ValueError, match="learning rate must be positive"):
        SGD(params, lr=0)
    with pytest.raises(TypeError, match="expected a float numpy array"):
        Adam({"W": [1, 2]})
    with pytest.raises(ValueError, match="optimizer state m.0 has shape"):
        Adam(params).load_state_dict({**opt.state_dict(), "m.0": np.zeros(2)})


def test_leaves_order_is_fixed_by_sorted_keys():
    tree = {"b": [np.zeros(1), np.ones(2)], "a": np.full(3, 2.0)}
    assert [len(x) for x in leaves(tree)] == [3, 1, 2]


def test_adamw_is_adam_with_decoupled_decay_as_in_torch():
    """torch.optim.AdamW subclasses torch.optim.Adam and only switches decoupled decay on; so does ours."""
    params, _, _ = least_squares()
    opt = AdamW(params)
    assert isinstance(opt, AdamW) and isinstance(opt, Adam)
    assert opt.decoupled and opt.weight_decay == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]


# --- One flat buffer per optimiser (minigen.flat) ------------------------------------------

def test_the_tree_becomes_views_of_one_buffer_that_the_model_sees():
    rng = np.random.default_rng(0)
    tree = {"enc": [{"W": rng.standard_normal((4, 3)).astype(np.float32)}, {}],
            "dec": {"b": np.arange(3, dtype=np.float32), "W": np.ones((3, 2), np.float32)}}
    before = [a.copy() for a in leaves(tree)]
    enc_list, dec_dict = tree["enc"], tree["dec"]  # a model holding parts of the tree
    opt = SGD(tree, lr=0.5)
    assert tree["enc"] is enc_list and tree["dec"] is dec_dict  # containers changed in place, not replaced
    for a, b in zip(leaves(tree), before):
        np.testing.assert_array_equal(a, b)
        assert a.base is opt.flat and a.flags.c_contiguous
    assert opt.flat.size == 12 + 3 + 6 and opt.flat.dtype == np.float32
    np.testing.assert_array_equal(opt.flat, np.concatenate([b.ravel() for b in before]))
    grads = [np.full_like(a, i + 1.0) for i, a in enumerate(before)]
    grads[2] = np.ones((3, 4), np.float32).T  # a transposed view, as autograd's dot VJP gives
    opt.step({"dec": {"W": grads[0], "b": grads[1]}, "enc": [{"W": grads[2]}, {}]})
    for a, b, g in zip(leaves(tree), before, grads):
        np.testing.assert_array_equal(a, b - 0.5 * g)
    assert enc_list[0]["W"][0, 0] == before[2][0, 0] - 0.5


def test_each_step_is_one_update_over_the_whole_buffer():
    calls = []

    class Counting(Adam):
        def update(self, p, g, m, v):
            calls.append(p.shape)
            super().update(p, g, m, v)

    params, loss, _ = least_squares()
    opt = Counting(params, lr=1e-2)
    opt.step(grad(loss)(params))
    assert calls == [(8 * 3 + 3,)]
    state = opt.state_dict()  # still one entry per parameter array, in leaves order ("W" sorts before "b")
    assert state["m.0"].shape == (8, 3) and state["m.1"].shape == (3,) and state["v.0"].shape == (8, 3)


def test_a_second_optimiser_shares_the_buffer_and_parts_are_refused():
    params, _, _ = least_squares()
    first = Adam(params)
    second = RMSprop(params)
    assert second.flat is first.flat and params["W"].base is first.flat
    with pytest.raises(ValueError, match="already live in another optimiser's buffer"):
        Adam({"W": params["W"]})
    with pytest.raises(TypeError, match="share one dtype"):
        Adam({"a": np.zeros(2, np.float32), "b": np.zeros(2)})
    with pytest.raises(TypeError, match="tuple"):
        Adam({"a": (np.zeros(2), np.zeros(3))})


def test_a_bare_array_is_its_own_buffer():
    p = np.ones((2, 3), np.float32)
    SGD(p, lr=0.1).step(np.ones((2, 3), np.float32))
    np.testing.assert_allclose(p, 0.9)


@settings(max_examples=50, deadline=None)
@given(lr=st.floats(1e-6, 1.0), ratio=st.floats(1e-4, 1.0), fraction=st.floats(0.0, 1.0))
def test_geometric_decay_falls_from_lr_to_lr_final_by_one_factor_per_share(lr, ratio, fraction):
    """lr at 0, lr_final at 1 and after, the geometric mean halfway, and never outside [lr_final, lr]."""
    lr_final = lr * ratio
    assert geometric_decay(lr, lr_final, 0.0) == pytest.approx(lr)
    assert geometric_decay(lr, lr_final, 1.0) == pytest.approx(lr_final)
    assert geometric_decay(lr, lr_final, 3.0) == pytest.approx(lr_final)  # past the budget: held at the end
    assert geometric_decay(lr, lr_final, 0.5) == pytest.approx((lr * lr_final) ** 0.5)
    assert lr_final * (1 - 1e-9) <= geometric_decay(lr, lr_final, fraction) <= lr * (1 + 1e-9)


@pytest.mark.parametrize("args, match", [((0.0, 1e-4, 0.5), "positive"), ((1e-3, -1.0, 0.5), "positive"),
                                         ((1e-3, 1e-4, -0.1), "negative")])
def test_geometric_decay_refuses_what_is_not_a_schedule(args, match):
    with pytest.raises(ValueError, match=match):
        geometric_decay(*args)
