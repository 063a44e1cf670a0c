"""The autograder's messages: each known mistake named with its own words, hints only where they apply,
and the right answers (both published forms of Adam) accepted.

Each wrong answer is written here as a student would write it, independently of the
variants in minigen/autograder/mistakes*.py, patched into the library in this process,
and judged by the autograder's own judge() against a fresh build's data.
"""
from functools import cache

import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad

from minigen.autograder import cases, compare, reference
from minigen.autograder.grade import judge, part
from minigen.autograder.sandbox import Outcome

F32_WORDS = "np.float64(0.5)"


@cache
def built(exercise):
    return reference.exercise_data(cases.exercise(exercise), seed=3, private=True)


def messages(exercise, site, student):
    """{check name: the autograder's message, or None if it passes} for `student` written at `site`."""
    data, shown, accepted = built(exercise)
    out = {}
    for check in cases.checks_for(exercise):
        entry = {"id": check.id, "mistakes": shown[check.id], "accepted": accepted[check.id]}
        try:
            with reference.patched(site, lambda original: student), onp.errstate(all="ignore"):
                got = reference._run(check, reference.reference_modules(), part(data, f"{check.id}/in"))
            outcome = Outcome("ok", outputs={check.id: got})
        except Exception as err:  # noqa: BLE001 (as the child reports it)
            outcome = Outcome("ok", errors={check.id: f"{type(err).__name__}: {err}"})
        out[check.name] = judge(entry, data, outcome)
    return out


def kl(scale=0.5, sign=1.0):
    return lambda mu, logvar: sign * scale * anp.sum(mu * mu + anp.exp(logvar) - 1.0 - logvar, axis=-1)


def test_the_float32_hint_comes_only_with_a_float32_failure():
    wrong_sign = messages("gaussian_kl", "losses.gaussian_kl", kl(sign=-1.0))
    assert "sign error" in wrong_sign["value"] and F32_WORDS not in wrong_sign["float32"]
    promoted = messages("gaussian_kl", "losses.gaussian_kl", kl(scale=onp.float64(0.5)))
    assert promoted["value"] is None and promoted["gradient"] is None
    assert "float32 inputs gave a float64 result" in promoted["float32"] and F32_WORDS in promoted["float32"]
    nan = messages("gaussian_kl", "losses.gaussian_kl", lambda mu, logvar: anp.sum(anp.log(-1 - mu * mu), axis=-1))
    assert all(F32_WORDS not in m for m in nan.values()) and "got nan" in nan["float32"]


def test_a_zero_gradient_is_not_called_a_constant_factor():
    with pytest.raises(AssertionError) as err:
        compare.verify({"d_mu": onp.zeros(4)}, {"d_mu": onp.array([1.0, -2.0, 3.0, 0.5])}, 1e-6)
    assert "every entry is 0" in str(err.value) and "autograd found no path" in str(err.value)
    assert "factor" not in str(err.value)


def adam(eps_inside=False, t_shift=0, efficient=False):
    """Adam.update as a student might write it: plain numpy, in place."""
    def update(self, p, g, m, v):
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g * g
        t = self.t + t_shift
        if efficient:
            p -= self.lr * onp.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (onp.sqrt(v) + self.eps)
        elif eps_inside:
            p -= self.lr * (m / (1 - b1 ** t)) / onp.sqrt(v / (1 - b2 ** t) + self.eps)
        else:
            p -= self.lr * (m / (1 - b1 ** t)) / (onp.sqrt(v / (1 - b2 ** t)) + self.eps)
    return update


def test_both_published_adam_forms_score_full_marks():
    assert messages("adam_step", "optim.Adam.update", adam()) == {c.name: None for c in cases.checks_for("adam_step")}
    efficient = messages("adam_step", "optim.Adam.update", adam(efficient=True))
    assert efficient == {c.name: None for c in cases.checks_for("adam_step")}


@pytest.mark.parametrize("kwargs, words", [
    (dict(eps_inside=True), "eps goes outside the square root"),
    (dict(t_shift=1), "not 1 - β^(t+1)"),
    (dict(t_shift=-1), "a division by zero"),
])
def test_adam_mistakes_are_named(kwargs, words):
    found = messages("adam_step", "optim.Adam.update", adam(**kwargs))
    assert words in found["three_steps"] and "known mistake" in found["three_steps"]
    assert "Algorithm 1 of Kingma" not in found["three_steps"]  # the generic hint is not added to a named one


def test_a_backward_difference_is_named():
    def backward(f, x, h=1e-5):
        x = onp.array(x, dtype=onp.float64)
        g = onp.zeros_like(x)
        for i in onp.ndindex(x.shape):
            here = float(f(x))
            x[i] -= h
            g[i] = (here - float(f(x))) / h
            x[i] += h
        return g
    found = messages("numerical_grad", "gradcheck.numerical_grad", backward)
    for check in ("value", "float32_input"):
        assert "backward difference" in found[check] and "float64" not in found[check].split("known mistake")[1]


def penalty(where):
    def gp(critic, params, real, fake, eps, weight=10.0):
        e = anp.reshape(eps, (-1,) + (1,) * (real.ndim - 1))
        x = {"fakes": fake, "reals": real, "one": eps[0] * real + (1 - eps[0]) * fake}[where]
        slopes = grad(lambda x: anp.sum(critic(params, x)))(x)
        norms = anp.sqrt(anp.sum(anp.reshape(slopes ** 2, (real.shape[0], -1)), axis=1) + 1e-12)
        return weight * anp.mean((norms - 1) ** 2) + 0 * anp.sum(e)
    return gp


@pytest.mark.parametrize("where, words", [
    ("fakes", "not at the fakes themselves"), ("reals", "not at the real ones"), ("one", "one ε per example")])
def test_gradient_penalty_mistakes_are_named(where, words):
    found = messages("gradient_penalty", "losses.gradient_penalty", penalty(where))
    assert words in found["value"] and "known mistake" in found["value"]
