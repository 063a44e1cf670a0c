"""The backward exercises' expected values, recomputed by autograd's generic derivative. Never shipped.

When an assignment is built, each backward check's reference outputs (from the library's
hand-written VJPs) must agree, on that build's own (private-seed) inputs, with autograd
differentiating the plain forward formula written here one numpy call at a time;
otherwise the build fails. So students are graded against the generic derivative,
not merely against the library's code. The formulas are the forward passes of other
exercises, which is why this file stays with the instructor.
"""
import autograd.numpy as np
from autograd import make_vjp

from minigen.autograder.compare import rel_error


def vjps(f, args, g):
    """The VJP of f at args applied to g, for each argument: (df/darg_0ᵀ g, ...)."""
    return tuple(make_vjp(lambda *a, i=i: f(*a), i)(*args)[0](g) for i in range(len(args)))


def batch_norm(x, gamma, beta, eps=1e-5):
    axes, shape = (0,) if x.ndim == 2 else (0, 2, 3), (1, -1) + (1,) * (x.ndim - 2)
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * np.reshape(gamma, shape) + np.reshape(beta, shape)


def conv2d(x, w, stride, padding):
    """Cross-correlation as a sum over kernel offsets of strided slices (differentiable by autograd as is)."""
    (sh, sw), (ph, pw), (kh, kw) = stride, padding, w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), "constant")
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    return sum(np.einsum("nchw,oc->nohw", xp[:, :, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw],
                         w[:, :, a, b]) for a in range(kh) for b in range(kw))


def softplus(x):
    return np.logaddexp(0.0, x)


def _dense(inp):
    dx, dw, db = vjps(lambda x, W, b: np.dot(x, W) + b, (inp["x"], inp["W"], inp["b"]), inp["G"])
    return {"dx": dx, "dW": dw, "db": db}


def _batch_norm(inp):
    dx, dgamma, dbeta = vjps(batch_norm, (inp["x"], inp["gamma"], inp["beta"]), inp["G"])
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def _col2im(inp):
    from minigen.autograder.cases_backprop import CONV_CASES
    out = {}
    for i, (s, p) in enumerate(CONV_CASES):
        if f"g{i}" in inp:
            out[f"dx_{i}"] = vjps(lambda x, s=s, p=p: conv2d(x, inp["w"], s, p), (inp["x"],), inp[f"g{i}"])[0]
    return out


def _logistic(inp):
    x, t, g = inp["x"], inp["targets"], inp["g"]
    dlogits, dtargets = vjps(lambda z, t: softplus(z) - t * z, (x, t), g)
    return {"dx": vjps(softplus, (x,), g)[0], "dlogits": dlogits, "dtargets": dtargets}


def _reparameterize(inp):
    dmu, dlogvar, deps = vjps(lambda mu, lv, e: mu + np.exp(0.5 * lv) * e,
                              tuple(np.broadcast_to(inp[k], inp["G"].shape) for k in ("mu", "logvar", "eps")),
                              inp["G"])
    return {"dmu": dmu, "dlogvar": dlogvar, "deps": deps}


GENERIC = {"dense_backward": _dense, "batch_norm_backward": _batch_norm, "conv2d_backward": _col2im,
           "logistic_backward": _logistic, "reparameterize_backward": _reparameterize}


def check_reference(check, inputs, expected, rtol=1e-9):
    """Raise RuntimeError unless the reference's float64 outputs of a backward check equal autograd's generic
    derivative of the plain formula on the same inputs (outputs it does not compute, e.g. a layer's value,
    are left to the other checks)."""
    if check.exercise not in GENERIC or any(v.dtype != np.float64 for v in inputs.values()):
        return
    generic = GENERIC[check.exercise](inputs)
    for name, value in expected.items():
        if name in generic and rel_error(value, generic[name]) > rtol:
            raise RuntimeError(f"the reference of check {check.id} disagrees with autograd's generic derivative in "
                               f"{name} (relative error {rel_error(value, generic[name]):.2g})")
