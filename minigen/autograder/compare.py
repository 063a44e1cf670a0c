"""How the autograder compares your numbers with the reference's, and what it says when they differ.

Agreement is CS231n's relative error, max |x - y| / max(1e-8, |x| + |y|) over the
entries. When a check fails, the message says where and by how much, and looks
for a pattern that points at the mistake: a known wrong formula recorded when the
assignment was built, a sign error, a constant factor (a missing ½), a constant
offset, axes in another order, float64 leaking into a float32 computation.

Gradients are checked twice: against the reference's gradient, and against finite
differences of *your own* function (a directional derivative, centred, in float64),
so that a function whose value is right but whose gradient autograd cannot see
(a plain-numpy call, getval, float()) is told apart from one whose formula is wrong.
"""
import itertools

import autograd.numpy as anp
import numpy as np
from autograd import grad


def rel_error(x, y):
    """max over entries of |x - y| / max(1e-8, |x| + |y|); inf where only one of them is finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        both_same = (x == y) | (np.isnan(x) & np.isnan(y))  # equal infinities count as agreeing
        err = np.where(both_same, 0.0, np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))
    return float(np.max(np.nan_to_num(err, nan=np.inf), initial=0.0))


def _fmt(v):
    """A small array on one line (flattened: the report indents every line)."""
    return np.array2string(np.ravel(v), precision=6, separator=", ", max_line_width=10**6)


def _permutation(got, exp):
    """The axis order that turns `got` into `exp`, if there is one (and it is not the identity)."""
    if got.ndim != exp.ndim or sorted(got.shape) != sorted(exp.shape) or got.ndim > 6:
        return None
    for perm in itertools.permutations(range(got.ndim)):
        moved = got.transpose(perm)
        if perm != tuple(range(got.ndim)) and moved.shape == exp.shape and rel_error(moved, exp) < 1e-5:
            return perm
    return None


def _pattern(got, exp, label=""):
    """A few words on how got relates to exp: a sign, a factor, an offset."""
    got, exp = np.asarray(got, np.float64), np.asarray(exp, np.float64)
    if not np.any(got) and np.any(exp):
        return ("\n  every entry is 0" + (": autograd found no path from this input to your result (it does not "
                "depend on it, or the dependence is hidden from autograd)" if label.startswith("d_") else ""))
    big = np.abs(exp) > 1e-12 * max(np.max(np.abs(exp), initial=0), 1e-300)
    if big.any():
        ratio = got[big] / exp[big]
        r = float(np.median(ratio))
        if np.ptp(ratio) <= 1e-6 * max(1.0, abs(r)):
            scope = "got/expected is" if ratio.size == 1 else "every entry of got/expected is"
            if abs(r + 1) < 1e-6:
                return f"\n  {scope} -1: a sign error"
            if abs(r - 2) < 1e-6 or abs(r - 0.5) < 1e-6:
                return f"\n  {scope} {r:g}: off by a factor of 2 (a missing or extra ½ or 2?)"
            if ratio.size > 1:
                return f"\n  {scope} {r:.6g}: off by a constant factor"
            return f"\n  {scope} {r:.6g}"
    diff = got - exp
    if diff.size > 1 and np.ptp(diff) <= 1e-6 * max(1.0, float(np.max(np.abs(diff)))):
        return f"\n  every entry is off by the same constant, {float(diff.flat[0]):.6g}: a missing or extra term?"
    return ""


def difference(label, got, exp, rtol):
    """None if `got` matches `exp` (shape, dtype where float32, values within rtol); else what is wrong."""
    found = problem(label, got, exp, rtol)
    return found and found[1]


def problem(label, got, exp, rtol):
    """None if `got` matches `exp`; else (kind, message), kind one of "type", "shape", "dtype", "nonfinite",
    "value": a check's hint is shown only for the kinds it is about."""
    try:
        got = np.asarray(got)
    except Exception:  # e.g. an autograd box that escaped
        return "type", f"{label}: expected an array, got {type(got).__name__}"
    if got.dtype == object or not np.issubdtype(got.dtype, np.number):
        return "type", f"{label}: expected an array of numbers, got {type(got).__name__} of dtype {got.dtype}"
    if got.shape != exp.shape:
        msg = f"{label}: expected shape {exp.shape}, got {got.shape}"
        perm = _permutation(got, exp)
        if perm:
            msg += f"; these are the right numbers with the axes in another order (got.transpose{perm})"
        elif exp.ndim == 0:
            msg += "; expected one number (e.g. the mean over the batch)"
        return "shape", msg
    if exp.dtype == np.float32 and got.dtype != np.float32:
        return "dtype", (f"{label}: float32 inputs gave a {got.dtype} result; keep float32 (a numpy float64 scalar or "
                f"constant promotes the whole computation: use Python numbers for constants)")
    if np.issubdtype(exp.dtype, np.floating):
        blown = np.isfinite(exp) & ~np.isfinite(got)
        if blown.any():
            at = tuple(int(i) for i in np.argwhere(blown)[0])
            return "nonfinite", (f"{label}: got {got[at]} at index {at} where the reference gives {exp[at]:.6g}: an "
                    f"overflow or a log(0) — rearrange the formula so that nothing huge is exponentiated")
    err = rel_error(got, exp)
    if err <= rtol:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        each = np.abs(got - exp) / np.maximum(1e-8, np.abs(got) + np.abs(exp))
    at = np.unravel_index(int(np.nanargmax(np.nan_to_num(each, nan=np.inf))), exp.shape) if exp.ndim else ()
    where = f" at index {tuple(int(i) for i in at)}" if exp.ndim else ""
    msg = (f"{label}: wrong value (relative error {err:.2g}, allowed {rtol:.0e}){where}: "
           f"expected {exp[at]:.8g}, got {got[at]:.8g}")
    if exp.ndim and exp.size <= 12:
        flat = " (flattened)" if exp.ndim > 1 else ""
        msg += f"\n  expected{flat} {_fmt(exp)}\n  got{flat}      {_fmt(got)}"
    perm = _permutation(got, exp)
    if perm:
        return "value", msg + f"\n  these are the right numbers with the axes in another order (got.transpose{perm})"
    return "value", msg + _pattern(got, exp, label)


def matches(got, outputs, rtol):
    """Whether `got` reproduces every (non-diagnostic) output in `outputs` that it has."""
    shared = [name for name in outputs if name in got and not name.startswith("_")]
    return bool(shared) and all(difference(name, got[name], outputs[name], rtol) is None for name in shared)


def known_mistake(got, mistakes, rtol):
    """The hint of the first known wrong formula whose outputs `got` reproduces, or None."""
    for why, outputs in (mistakes or {}).values():
        if matches(got, outputs, max(10 * rtol, 1e-6)):
            return why
    return None


def verify(got, expected, rtol, mistakes=None, hint="", gradient=False, hint_on=("value", "shape", "nonfinite"),
           accepted=None, given_vjp=False, own_vjp=False):
    """Raise AssertionError, with a message aimed at the mistake, unless every expected output matches.

    got, expected: {name: array}; names starting with "_" are diagnostics, not compared.
    mistakes: {name: (hint, {output name: array a known wrong formula gives})}.
    accepted: {name: {output name: array}}, other published forms that are also right (Adam's two forms).
    gradient: first demand that autograd agrees with finite differences (see gradients()); given_vjp: the
    gradient comes from the library's own VJPs, so a disagreement means the forward pass is wrong; own_vjp: it
    comes from the VJP the student wrote, so a disagreement means that backward pass is wrong.
    hint: shown for failures of a kind in hint_on, when no known mistake matches.
    """
    found = ("gradient", consistency(got, given_vjp=given_vjp, own_vjp=own_vjp)) if gradient else None
    found = found if found and found[1] else None
    for name, exp in expected.items():
        if found:
            break
        if name.startswith("_"):
            continue
        found = (("missing", f"{name}: no result (the check produced {sorted(got)})") if name not in got
                 else problem(name, got[name], exp, rtol))
    if found is None or any(matches(got, outputs, rtol) and all(n in got for n in outputs if not n.startswith("_"))
                            for outputs in (accepted or {}).values()):
        return
    kind, text = found
    why = known_mistake(got, mistakes, rtol)
    if why:
        text += f"\n  This is a known mistake: {why}"
    elif hint and kind in hint_on:
        text += f"\n  Hint: {hint}"
    raise AssertionError(text)


# --- Gradients ------------------------------------------------------------------------

def gradients(f, wrt, weights, h=1e-5):
    """Gradients of L = Σ f(**wrt) · weights with respect to each array in `wrt`.

    Returns {"d_<name>": ∂L/∂<name>} and, for float64 inputs, the directional derivative
    along a fixed random unit direction v two ways: "_ad" = <∇L, v> by autograd and
    "_fd" = (L(a + h v) - L(a - h v)) / 2h, the centred difference of the same function.
    """
    names = list(wrt)
    args = [wrt[n] for n in names]
    value = f(**wrt)
    if np.shape(value) != np.shape(weights):
        raise AssertionError(f"expected a result of shape {np.shape(weights)}, got {np.shape(value)}")

    def loss(arrays):
        return anp.sum(f(**dict(zip(names, arrays))) * weights)

    try:
        grads = grad(loss)(args)
    except NotImplementedError:
        raise
    except Exception as err:
        raise AssertionError(f"autograd could not differentiate your function ({type(err).__name__}: {err}); "
                             f"use autograd.numpy (np), not plain numpy, on values you differentiate") from err
    out = {f"d_{n}": np.asarray(g) for n, g in zip(names, grads)}
    if all(np.asarray(a).dtype == np.float64 for a in args):
        rng = np.random.default_rng(0)
        v = [rng.standard_normal(np.shape(a)) for a in args]
        norm = np.sqrt(sum(np.sum(d * d) for d in v))
        v = [d / norm for d in v]
        out["_ad"] = np.float64(sum(np.sum(g * d) for g, d in zip(grads, v)))
        step = lambda s: float(loss([a + s * h * d for a, d in zip(args, v)]))
        out["_fd"] = np.float64((step(1) - step(-1)) / (2 * h))
    return out


def consistency(got, rtol=1e-6, given_vjp=False, own_vjp=False):
    """None if autograd's directional derivative agrees with the finite difference; else what is wrong."""
    if "_ad" not in got:
        return None
    ad, fd = float(got["_ad"]), float(got["_fd"])
    if rel_error(ad, fd) <= rtol:
        return None
    if own_vjp:
        return (f"the gradient autograd gets from your backward pass disagrees with finite differences of the "
                f"library's forward pass ({ad:.8g} against {fd:.8g} along a random direction): your VJP does not "
                f"compute the derivative yet; see the checks of each gradient")
    if given_vjp:
        return (f"the library's own VJPs (the gradient of a correct function) disagree with finite differences of "
                f"yours ({ad:.8g} against {fd:.8g} along a random direction): your forward pass does not compute "
                f"the function yet; see the value checks")
    return (f"autograd's gradient of your function disagrees with finite differences of the same function "
            f"(a directional derivative: {ad:.8g} by autograd, {fd:.8g} by differences): part of the "
            f"computation is hidden from autograd — a plain-numpy (onp) call, getval, float(), or an "
            f"in-place update of an array being differentiated")
