"""Known wrong answers (and one other right one) for adam_step, conv2d_im2col, numerical_grad. Never shipped.

See mistakes.py. Adam has two published forms: Algorithm 1 of Kingma & Ba (2015), which
torch and this library follow, and the "more efficient" order of computation given in
their section 2, α_t = α·√(1 - β2^t)/(1 - β1^t), θ -= α_t·m/(√v + ε̂). With the same ε
the two differ by a relative ~1e-6 (ε̂ = ε·√(1 - β2^t)); both are accepted.
"""
import autograd.numpy as np
import numpy as onp

from minigen.autograder.mistakes import mistake

# --- Adam --------------------------------------------------------------------------------


def _adam(bias_correction=True, in_place=True, state_in_place=True, sqrt=True, swapped=False, eps_inside=False,
          t_shift=0, efficient=False):
    def update(self, p, g, m, v):
        b1, b2 = self.betas[::-1] if swapped else self.betas
        if self.weight_decay and self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        m_new, v_new = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        if state_in_place:
            m[...], v[...] = m_new, v_new
        t = self.t + t_shift
        c1, c2 = (1 - b1 ** t, 1 - b2 ** t) if bias_correction else (1, 1)
        if efficient:  # Kingma & Ba, section 2: the corrections folded into the step size
            step = np.sqrt(c2) / c1 * m_new / (np.sqrt(v_new) + self.eps)
        elif eps_inside:
            step = (m_new / c1) / np.sqrt(v_new / c2 + self.eps)
        else:
            step = (m_new / c1) / ((np.sqrt(v_new / c2) if sqrt else v_new / c2) + self.eps)
        if in_place:
            p -= self.lr * step
        else:
            p = p - self.lr * step  # noqa: F841 (the mistake: rebinding the name leaves the array alone)
    return lambda ref: update


for _name, _hint, _kw in (
        ("no_bias_correction", "divide m by 1 - β1^t and v by 1 - β2^t (bias correction): both start at 0, so "
                               "early averages are too small", dict(bias_correction=False)),
        ("not_in_place", "the parameters did not change: update p in place (p -= ...), rebinding the name "
                         "leaves the optimiser's array as it was", dict(in_place=False)),
        ("state_not_kept", "m and v must be updated in place (m *= β1; m += ...): they are the optimiser's "
                           "memory from one step to the next", dict(state_in_place=False)),
        ("no_sqrt", "divide by √v̂ + eps, the square root of the second moment", dict(sqrt=False)),
        ("betas_swapped", "β1 (0.9) is for m, the mean of g; β2 (0.999) for v, the mean of g²", dict(swapped=True)),
        ("eps_inside_sqrt", "eps goes outside the square root, √v̂ + eps (Algorithm 1); √(v̂ + eps) changes the "
                            "step wherever v̂ is small", dict(eps_inside=True)),
        ("t_plus_one", "the bias corrections use t = 1 at the first step (self.t is already counted): 1 - β^t, "
                       "not 1 - β^(t+1)", dict(t_shift=1)),
        ("t_minus_one", "the bias corrections use t = 1 at the first step (self.t is already counted): with "
                        "t - 1 the first correction is 1 - β^0 = 0, a division by zero", dict(t_shift=-1))):
    mistake("adam_step", "optim.Adam.update", _name, _hint)(_adam(**_kw))

mistake("adam_step", "optim.Adam.update", "efficient_form",
        "Kingma & Ba's section 2 form, α_t = α√(1-β2^t)/(1-β1^t) with ε̂", accepted=True)(_adam(efficient=True))


# --- conv2d via im2col ---------------------------------------------------------------------

@mistake("conv2d_im2col", "ops._conv2d", "flipped_kernel",
         "the kernel is flipped: deep learning's conv2d is a cross-correlation, w[o, c, a, b] multiplies "
         "xpad[n, c, i·s + a, j·s + b] with no flip")
def _(ref):
    return lambda x, w, stride, padding: ref(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), stride, padding)


@mistake("conv2d_im2col", "ops._im2col_windows", "no_padding", "pad the input by `padding` zeros on each side first")
def _(ref):
    return lambda x, kernel, stride, padding, out_hw: ref(x, kernel, stride, (0, 0), out_hw)


@mistake("conv2d_im2col", "ops._im2col_windows", "no_stride",
         "window (i, j) starts at (i·stride, j·stride): the stride was not applied")
def _(ref):
    return lambda x, kernel, stride, padding, out_hw: ref(x, kernel, (1, 1), padding, out_hw)


# --- numerical_grad ------------------------------------------------------------------------

def _differences(f, x, h, forward=False, backward=False, denominator=2.0, step=None, keep_dtype=False):
    x = onp.array(x, dtype=None if keep_dtype else onp.float64)
    g = onp.zeros_like(x)
    h = step or h
    for i in onp.ndindex(x.shape):
        saved = x[i]
        x[i] = saved if backward else saved + h
        up = float(f(x))
        x[i] = saved if forward else saved - h
        down = float(f(x))
        x[i] = saved
        g[i] = (up - down) / ((1.0 if forward or backward else denominator) * h)
    return g


for _name, _hint, _kw in (
        ("forward_difference", "use the centred difference (f(x + h) - f(x - h)) / 2h: the one-sided "
                               "(f(x + h) - f(x)) / h is only first-order accurate", dict(forward=True)),
        ("backward_difference", "use the centred difference (f(x + h) - f(x - h)) / 2h: the backward difference "
                                "(f(x) - f(x - h)) / h is one-sided, only first-order accurate", dict(backward=True)),
        ("half_step", "the centred difference divides by 2h, the distance between x - h and x + h",
         dict(denominator=1.0)),
        ("fixed_step", "use the step h the caller passes (here 1e-3)", dict(step=1e-5)),
        ("float32_kept", "work in float64: with h = 1e-5, float32 rounding swamps f(x + h) - f(x - h)",
         dict(keep_dtype=True))):
    mistake("numerical_grad", "gradcheck.numerical_grad", _name, _hint)(
        lambda ref, kw=_kw: lambda f, x, h=1e-5: _differences(f, x, h, **kw))
