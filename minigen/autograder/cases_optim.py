"""Checks of the numerical exercises: adam_step, conv2d_im2col, numerical_grad."""
import os
import sys

import numpy as np

from .cases import F32, F32_HINT, check, normal
from .compare import gradients

# --- adam_step -----------------------------------------------------------------------------

def adam_inputs(dtype):
    return lambda rng: {"w": normal(rng, (3, 4), dtype), "b": normal(rng, (4,), dtype),
                        "gw": normal(rng, (3, 3, 4), dtype), "gb": normal(rng, (3, 4), dtype, 1e-3)}


def adam_run(pkg, inp, steps, **hyper):
    """Adam on {"w", "b"} for `steps` steps with the stored gradients; the params and buffers after."""
    params = {"w": inp["w"].copy(), "b": inp["b"].copy()}
    opt = pkg.optim.Adam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8, **hyper)
    for t in range(steps):
        opt.step({"w": inp["gw"][t], "b": inp["gb"][t]})
    state = opt.state_dict()
    return {"b": params["b"], "w": params["w"], "m_b": state["m.0"], "m_w": state["m.1"],
            "v_b": state["v.0"], "v_w": state["v.1"]}


UPDATE_HINT = ("follow Algorithm 1 of Kingma & Ba (2015) line by line: m and v first (in place), then "
               "p -= lr·m̂ / (√v̂ + eps) with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t), t = 1 at the first step")


@check("adam_step", "first_step", 3, "the parameters after one step (bias correction makes it about lr·sign(g))",
       adam_inputs(np.float64), hint=UPDATE_HINT)
def adam_first(pkg, inp):
    out = adam_run(pkg, inp, 1)
    return {"w": out["w"], "b": out["b"]}


@check("adam_step", "three_steps", 3, "the parameters after three steps", adam_inputs(np.float64), hint=UPDATE_HINT)
def adam_three(pkg, inp):
    out = adam_run(pkg, inp, 3)
    return {"w": out["w"], "b": out["b"]}


@check("adam_step", "moments", 2, "the moving averages m and v after three steps", adam_inputs(np.float64),
       hint=UPDATE_HINT)
def adam_moments(pkg, inp):
    out = adam_run(pkg, inp, 3)
    return {k: out[k] for k in ("m_w", "m_b", "v_w", "v_b")}


@check("adam_step", "adamw_float32", 2, "three steps of AdamW (decoupled weight decay) on float32 parameters",
       adam_inputs(np.float32), hint=F32_HINT, **F32)
def adam_w_float32(pkg, inp):
    return adam_run(pkg, inp, 3, weight_decay=0.1, decoupled=True)


# --- conv2d_im2col -------------------------------------------------------------------------

CONV_CASES = (  # (stride, padding) for x (2, 3, 6, 5) and w (4, 3, 3, 2)
    ((1, 1), (0, 0)), ((2, 2), (1, 1)), ((2, 1), (0, 2)))


def conv_inputs(dtype):
    def make(rng):
        x, w = normal(rng, (2, 3, 6, 5), dtype), normal(rng, (4, 3, 3, 2), dtype)
        return {"x": x, "w": w, "g": normal(rng, (2, 4, 3, 3), dtype)}
    return make


def out_hw(x, w, stride, padding):
    return tuple((x.shape[2 + i] + 2 * padding[i] - w.shape[2 + i]) // stride[i] + 1 for i in range(2))


@check("conv2d_im2col", "windows", 3, "_im2col_windows: the (N, C, Ho, Wo, kh, kw) windows, with stride and padding",
       conv_inputs(np.float64))
def conv_windows(pkg, inp):
    x, w = inp["x"], inp["w"]
    return {f"windows_{i}": np.array(pkg.ops._im2col_windows(x, w.shape[2:], s, p, out_hw(x, w, s, p)))
            for i, (s, p) in enumerate(CONV_CASES)}


@check("conv2d_im2col", "forward", 3, "conv2d(x, w) for three strides and paddings", conv_inputs(np.float64),
       hint="conv2d is a cross-correlation: y[n, o, i, j] = Σ_{c, a, b} xpad[n, c, i·s + a, j·s + b] w[o, c, a, b]")
def conv_forward(pkg, inp):
    # No bias: adding it is not the exercise, and a wrong layout would show up as a broadcasting error.
    return {f"y_{i}": pkg.ops.conv2d(inp["x"], inp["w"], None, s, p) for i, (s, p) in enumerate(CONV_CASES)}


def lines_run(fn, folder):
    """fn(), and how many lines of the Python files in `folder` it ran (sys.settrace's "line" events)."""
    count = 0

    def in_folder(frame, event, arg):
        nonlocal count
        count += event == "line"
        return in_folder

    old = sys.gettrace()
    sys.settrace(lambda frame, event, arg: in_folder if frame.f_code.co_filename.startswith(folder) else None)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


@check("conv2d_im2col", "structure", 2,
       "im2col + one matrix product: _im2col_windows called once, and no more lines run for a larger input",
       conv_inputs(np.float64),
       hint="the exercise is im2col and one GEMM: call _im2col_windows once, then contract its windows with w in a "
            "single np.tensordot (or reshape and @); loops over examples, channels or pixels make the Python work "
            "grow with the input")
def conv_structure(pkg, inp):
    """Calls of _im2col_windows and lines of the graded package run by conv2d, for a small and a larger input
    (more examples, channels out, pixels): im2col + GEMM runs the same lines for both."""
    ops, folder = pkg.ops, os.path.dirname(os.path.abspath(pkg.ops.__file__)) + os.sep
    windows, calls = ops._im2col_windows, []

    def counted(*args, **kwargs):
        calls.append(1)
        return windows(*args, **kwargs)
    runs = []
    ops._im2col_windows = counted
    try:
        for n, o, size in ((1, 2, 5), (3, 5, 9)):
            x, w = np.resize(inp["x"], (n, 3, size, size)), np.resize(inp["w"], (o, 3, 3, 2))
            calls.clear()
            runs.append((lines_run(lambda x=x, w=w: ops.conv2d(x, w, None, 2, 1), folder), len(calls)))
    finally:
        ops._im2col_windows = windows
    (small, calls_small), (large, calls_large) = runs
    return {"windows_calls": np.array([calls_small, calls_large]),
            "lines_added_by_larger_input": np.array(large - small)}


@check("conv2d_im2col", "gradient", 1, "gradient in x and w (stride 2, padding 1) through the given VJPs",
       conv_inputs(np.float64), gradient=True, given_vjp=True, needs=("conv2d_backward",))
def conv_gradient(pkg, inp):
    f = lambda x, w: pkg.ops.conv2d(x, w, None, stride=2, padding=1)
    return gradients(f, {"x": inp["x"], "w": inp["w"]}, inp["g"])


@check("conv2d_im2col", "float32", 1, "float32 in, float32 out", conv_inputs(np.float32), hint=F32_HINT, **F32)
def conv_float32(pkg, inp):
    return conv_forward(pkg, inp)


# --- numerical_grad ----------------------------------------------------------------------

def wiggly(x):
    """A smooth scalar function with cross terms, so every partial derivative differs."""
    x = np.asarray(x)
    return np.sum(np.sin(x) * x * x) + x.flat[0] * x.flat[-1] + np.prod(x.flat[:3])


def grad_inputs(dtype):
    return lambda rng: {"x": normal(rng, (3, 2)).astype(dtype)}


@check("numerical_grad", "value", 4, "the gradient of a smooth function at a (3, 2) array", grad_inputs(np.float64),
       rtol=1e-8, hint="one coordinate at a time: g[i] = (f(x + h e_i) - f(x - h e_i)) / 2h, with x[i] put back "
                       "after each pair of evaluations")
def ngrad_value(pkg, inp):
    return {"grad": pkg.gradcheck.numerical_grad(wiggly, inp["x"])}


@check("numerical_grad", "input_kept", 2, "x is left as it was, and the gradient has x's shape",
       grad_inputs(np.float64), rtol=1e-12, hint="restore x[i] after each pair of evaluations (or work on a copy)")
def ngrad_input(pkg, inp):
    x = inp["x"].copy()
    g = pkg.gradcheck.numerical_grad(wiggly, x)
    if np.shape(g) != x.shape:
        raise AssertionError(f"the gradient has shape {np.shape(g)}, x has {x.shape}: they must be the same")
    return {"x_after": x}


@check("numerical_grad", "uses_h", 2, "with h = 1e-3 (the step you are given) on the same function",
       grad_inputs(np.float64), rtol=1e-8, hint="difference with the step h that the caller passes")
def ngrad_h(pkg, inp):
    return {"grad": pkg.gradcheck.numerical_grad(wiggly, inp["x"], h=1e-3)}


@check("numerical_grad", "float32_input", 2, "a float32 x still gives an accurate gradient (work in float64)",
       grad_inputs(np.float32), rtol=1e-8)
def ngrad_float32(pkg, inp):
    return ngrad_value(pkg, inp)


