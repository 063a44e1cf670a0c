"""The backward-pass exercises: the library trains with the functions students write, a wrong
backward pass written as a student would gets the hint of its mistake, and a check that runs
another assigned exercise's code is left out.

The wrong implementations here are written independently of mistakes_backprop.py's variants
(loops where the library uses one GEMM, and so on): a hint must come from the numbers alone.
"""
import re

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from test_assign import fill  # one student-writes-a-stub helper for every grader test file
from test_grade import grade

from minigen import assign, backprop, losses, ops
from minigen.autograder import cases, compare, reference
from minigen.autograder.grade import part

BACKPROP = ["dense_backward", "batch_norm_backward", "conv2d_backward", "logistic_backward", "reparameterize_backward"]


class Called(Exception):
    pass


def refuse(*args, **kwargs):
    raise Called


def gradient_of(f, argnum, *args):
    """d/d(args[argnum]) of sum(f(*args) ** 2): runs f's backward pass."""
    return grad(lambda *a: anp.sum(f(*a) ** 2), argnum)(*args)


ONES = [np.ones(s) for s in ((4, 3), (3, 2), (2,))]


@pytest.mark.parametrize("module, site, f, argnum, args", [
    (backprop, "dense_grad_x", ops.dense, 0, ONES), (backprop, "dense_grad_w", ops.dense, 1, ONES),
    (backprop, "dense_grad_b", ops.dense, 2, ONES),
    (backprop, "batch_norm_backward", ops.batch_norm_train, 1, [np.eye(3), np.ones(3), np.ones(3)]),
    (ops, "_conv_transpose2d", ops.conv2d, 0, [np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3))]),
    (ops, "softplus_grad", ops.softplus, 0, [np.ones(3)]),
    (ops, "bce_grad_logits", ops.bce_with_logits, 0, [np.ones(3), np.ones(3)]),
    (ops, "bce_grad_targets", ops.bce_with_logits, 1, [np.ones(3), np.ones(3)]),
    (losses, "reparameterize_backward", losses.reparameterize, 0, [np.ones(3)] * 3)])
def test_the_library_trains_with_the_functions_students_write(monkeypatch, module, site, f, argnum, args):
    run = lambda: gradient_of(f, argnum, *args)
    run()
    monkeypatch.setattr(module, site, refuse)
    with pytest.raises(Called):
        run()


# --- Wrong backward passes, as students write them ---------------------------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def bn_student(mean_term=True, var_term=True):
    """Batch norm's backward, for (N, C) only, written out term by term as on a whiteboard."""
    def backward(G, x_hat, inv_std, gamma):
        m = G.shape[0]
        dbeta, dgamma = G.sum(axis=0), (G * x_hat).sum(axis=0)
        dx = G.copy()
        if mean_term:
            dx = dx - dbeta / m
        if var_term:
            dx = dx - x_hat * dgamma / m
        return gamma * inv_std * dx, dgamma, dbeta
    return backward


def col2im_loops(crop=True):
    """conv2d's dx by four loops over pixels and kernel offsets (right when crop, the padding subtracted)."""
    def col2im(y, w, stride, padding, out_hw):
        out = np.zeros((y.shape[0], w.shape[1]) + tuple(out_hw), dtype=y.dtype)
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                for a in range(w.shape[2]):
                    for b in range(w.shape[3]):
                        r = i * stride[0] + a - (padding[0] if crop else 0)
                        c = j * stride[1] + b - (padding[1] if crop else 0)
                        if 0 <= r < out_hw[0] and 0 <= c < out_hw[1]:
                            out[:, :, r, c] += y[:, :, i, j] @ w[:, :, a, b]
        return out
    return col2im


WRONG = [  # (check id, site, the student's function, words of the hint it must get)
    ("dense_backward.dx", "backprop.dense_grad_x", lambda G, W: W @ G.T, "W Gᵀ is its transpose"),
    ("dense_backward.dx", "backprop.dense_grad_x", lambda G, W: -G @ W.T, "a sign error"),
    ("dense_backward.dW", "backprop.dense_grad_w", lambda G, x: G.T @ x, "Gᵀ X is its transpose"),
    ("dense_backward.db", "backprop.dense_grad_b", lambda G: G.mean(axis=0), "no division by N"),
    ("batch_norm_backward.dx", "backprop.batch_norm_backward", bn_student(mean_term=False), "the mean term is missing"),
    ("batch_norm_backward.dx", "backprop.batch_norm_backward", bn_student(var_term=False),
     "the variance term is missing"),
    ("batch_norm_backward.dx", "backprop.batch_norm_backward", bn_student(False, False), "evaluation mode"),
    ("conv2d_backward.stride_padding", "ops._conv_transpose2d", col2im_loops(crop=False), "not cropped"),
    ("logistic_backward.softplus", "ops.softplus_grad", lambda g, x: sigmoid(x), "incoming gradient"),
    ("logistic_backward.softplus_large", "ops.softplus_grad", lambda g, x: g * np.exp(x) / (1 + np.exp(x)),
     "use ops.sigmoid"),
    ("logistic_backward.bce", "ops.bce_grad_logits", lambda g, z, t: g * (t - sigmoid(z)), "prediction minus"),
    ("reparameterize_backward.dlogvar", "losses.reparameterize_backward",
     lambda G, lv, e: (G, G * e * np.exp(0.5 * lv), G * np.exp(0.5 * lv)), "the chain rule's ½ is missing"),
    ("reparameterize_backward.dlogvar", "losses.reparameterize_backward",
     lambda G, lv, e: (G, 0.5 * G * e * np.exp(lv), G * np.exp(0.5 * lv)), "the variance"),
]


@pytest.fixture(scope="module")
def built():
    """{exercise: (data, mistakes shown per check)}, as a full assignment builds them (seed 3, private)."""
    return {ex.name: reference.exercise_data(ex, 3, True, BACKPROP)[:2] for ex in assign.select(BACKPROP)}


def message(check, built, got):
    """What the grader says about `got` for `check`, or None if it passes."""
    data, shown = built[check.exercise]
    mistakes = {name: (hint, part(data, f"{check.id}/mistake/{name}")) for name, hint in shown[check.id].items()}
    try:
        compare.verify(got, part(data, f"{check.id}/out"), check.rtol, mistakes, check.hint, check.gradient,
                       check.hint_on, None, check.given_vjp, check.own_vjp)
    except AssertionError as err:
        return str(err)
    return None


def probe_with(check, built, site, student):
    data, _ = built[check.exercise]
    with reference.patched(site, lambda ref: student), np.errstate(all="ignore"):
        return check.probe(reference.reference_modules(), part(data, f"{check.id}/in"))


@pytest.mark.parametrize("check_id, site, student, words", WRONG, ids=[f"{w[0]}:{w[3][:20]}" for w in WRONG])
def test_each_named_mistake_gets_its_hint(built, check_id, site, student, words):
    check = next(c for c in cases.CHECKS if c.id == check_id)
    text = message(check, built, probe_with(check, built, site, student))
    assert text and "This is a known mistake" in text and words in text, text


def test_a_right_answer_by_loops_scores_every_check(built):
    for check in reference.graded_checks(cases.exercise("conv2d_backward"), BACKPROP):
        assert message(check, built, probe_with(check, built, "ops._conv_transpose2d", col2im_loops())) is None


def test_a_check_that_runs_another_assigned_exercise_is_left_out():
    names = lambda ex, assigned: [c.name for c in reference.graded_checks(cases.exercise(ex), assigned)]
    assert "gradient" in names("bce_with_logits", ["bce_with_logits"])
    assert "gradient" not in names("bce_with_logits", ["bce_with_logits", "logistic_backward"])
    assert "autograd" in names("conv2d_backward", ["conv2d_backward"])
    assert "autograd" not in names("conv2d_backward", ["conv2d_im2col", "conv2d_backward"])


# --- End to end: a student copy, one wrong backward pass per exercise, graded in subprocesses ----------

SUBMISSION = {  # (file, function, code): one classic mistake in each exercise, the rest right
    "dense_backward": [("backprop.py", "dense_grad_x", "return np.matmul(G, np.transpose(W))"),
                       ("backprop.py", "dense_grad_w", "return np.matmul(np.transpose(G), x)"),  # transposes swapped
                       ("backprop.py", "dense_grad_b", "return np.sum(G, axis=0)")],
    "batch_norm_backward": [("backprop.py", "batch_norm_backward", """axes = _channel_axes(G)
m = onp.size(G) // onp.shape(G)[1]
dgamma, dbeta = np.sum(G * x_hat, axis=axes), np.sum(G, axis=axes)
dx = _per_channel(gamma, G) * inv_std * (G - x_hat * _per_channel(dgamma / m, G))  # the mean term forgotten
return dx, dgamma, dbeta""")],
    "reparameterize_backward": [("losses.py", "reparameterize_backward", """sigma = np.exp(0.5 * logvar)
return G, G * sigma * eps, G * sigma  # the chain rule's 1/2 forgotten""")],
}


def test_a_submission_with_backprop_mistakes_gets_partial_credit_and_hints(tmp_path):
    assign.build(tmp_path, exercises=list(SUBMISSION))
    for lines in SUBMISSION.values():
        for relfile, qualname, code in lines:
            fill(tmp_path, relfile, qualname, code)
    report, text = grade(tmp_path, tmp_path)
    rows = {r["exercise"]: r for r in report["exercises"]}
    assert {name: r["status"] for name, r in rows.items()} == dict.fromkeys(SUBMISSION, "partial"), text
    assert "Gᵀ X is its transpose" in rows["dense_backward"]["first_failure"]
    assert "the mean term is missing" in rows["batch_norm_backward"]["first_failure"]
    assert "the chain rule's ½ is missing" in rows["reparameterize_backward"]["first_failure"]
    assert re.search(r"dense_backward\s+\d+/10\s+PARTIAL", text)
