"""autograd's reductions mended to keep float32 gradients float32 — a process-wide change.

Under numpy 2's promotion rules float32 / int64 is float64. autograd's VJPs of
np.mean, np.var and np.std divide by a numpy int64 count, and those of np.max,
np.min, np.amax and np.amin by the int64 number of tied maxima: every gradient
that flowed through one came back float64 (for max, HIPS/autograd#199; for mean,
found by tests/test_nn.py), doubling the cost of whatever follows it.

The VJPs below are autograd's own formulas with the count made a Python number or
cast to the input's dtype; the values are unchanged. defvjp registers them on
autograd's primitives, so importing minigen (minigen.ops imports this module) mends
these reductions for all code in the process, a user's own losses included. The
README says so under "What is inside"; tests/test_ops.py checks every one against
torch and finite differences.
"""
import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp
from autograd.numpy import numpy_wrapper
from autograd.numpy.numpy_vjps import repeat_to_match_shape


def _mean_vjp(ans, x, axis=None, keepdims=False, **kwargs):
    """d mean / dx = 1 / count for every entry reduced."""
    shape, dtype = onp.shape(x), onp.result_type(x)

    def vjp(g):
        g_repeated, count = repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        return g_repeated / int(count)

    return vjp


def _var_vjp(ans, x, axis=None, ddof=0, keepdims=False, **kwargs):
    """d var / dx = 2 (x - mean(x)) / (count - ddof), count the number of entries reduced."""
    shape, dtype = onp.shape(x), onp.result_type(x)

    def vjp(g):
        g_repeated, count = repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        return 2.0 * g_repeated * (x - np.mean(x, axis=axis, keepdims=True)) / float(count - ddof)

    return vjp


def _std_vjp(ans, x, axis=None, ddof=0, keepdims=False, **kwargs):
    """d std / dx = (x - mean(x)) / ((count - ddof) std): the chain rule through sqrt(var)."""
    shape, dtype = onp.shape(x), onp.result_type(x)

    def vjp(g):
        g_repeated, count = repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        if count <= 1:  # as autograd: one entry has std 0 and no defined slope
            return g_repeated * 0.0
        g_repeated, count = repeat_to_match_shape(g / ans, shape, dtype, axis, keepdims)
        return g_repeated * (x - np.mean(x, axis=axis, keepdims=True)) / float(count - ddof)

    return vjp


def _chooser_vjp(ans, x, axis=None, keepdims=None, **kwargs):
    """max / min: the gradient goes to the chosen entry, shared equally among ties."""
    shape, dtype = onp.shape(x), onp.result_type(x)

    def vjp(g):
        g_repeated, _ = repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        chosen = x == repeat_to_match_shape(ans, shape, dtype, axis, keepdims)[0]
        return g_repeated * chosen / onp.sum(chosen, axis=axis, keepdims=True).astype(dtype)

    return vjp


defvjp(numpy_wrapper._primitive_mean, _mean_vjp)
defvjp(numpy_wrapper._primitive_var, _var_vjp)
defvjp(numpy_wrapper._primitive_std, _std_vjp)
for _reduction in (np.max, np.min, np.amax, np.amin):
    defvjp(_reduction, _chooser_vjp)
