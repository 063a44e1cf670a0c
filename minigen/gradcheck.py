"""Check a gradient against central finite differences — use it on your own code.

    (f(x + h e_i) - f(x - h e_i)) / 2h  =  df/dx_i + O(h^2)

Work in float64: with h = 1e-5, float32's ~1e-7 precision would make the
difference quotient mostly rounding noise. Judge by CS231n's relative error
max|a - b| / max(1e-8, |a| + |b|) (elementwise, then the max):
  ~1e-7 or less   correct, for a smooth function;
  up to ~1e-4     fine where the function has kinks (ReLU, max) near x;
  above ~1e-2     almost certainly a bug.
"""
import numpy as np
from autograd import grad


def relative_error(a, b):
    """max over entries of |a - b| / max(1e-8, |a| + |b|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), initial=0.0))


def numerical_grad(f, x, h=1e-5):
    """Central-difference gradient of scalar f at array x (f must accept float64)."""
    # BEGIN SOLUTION
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        f_plus = float(f(x))
        x[i] = saved - h
        f_minus = float(f(x))
        x[i] = saved
        g[i] = (f_plus - f_minus) / (2 * h)
    return g
    # END SOLUTION


def check_grad(f, x, h=1e-5):
    """Relative error between autograd's gradient of scalar f at x and finite differences."""
    x = np.asarray(x, dtype=np.float64)
    return relative_error(grad(f)(x), numerical_grad(f, x, h))
