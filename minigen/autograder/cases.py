"""The exercises and their checks: what is run, on what, for how many points.

Read this (and cases_vae.py, cases_gan.py, cases_optim.py, cases_backprop.py) to see exactly how you
are graded. Each check calls your function (from `pkg`, a namespace holding your
minigen's modules) on inputs stored in data/<exercise>.npz; the grader compares
what comes back with the reference implementation's numbers, which it alone reads.
No reference code is here.

Every exercise runs in a Python process of its own, with a time limit, on inputs
drawn from the assignment's seed (a teacher's private build has other inputs).
Checks give partial credit where it teaches: the value, the gradient (against the
reference and against finite differences of your own function), float32 kept.
"""
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MODULES = ("backprop", "ops", "losses", "optim", "gradcheck")  # the minigen modules a probe may use, as pkg.<name>
TIMEOUT = 10.0  # seconds an exercise may take, by default (Python's own start-up is not counted)


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str            # the lecture concept
    sites: tuple          # the functions the student writes, "module.qualname"
    enabled: bool = True
    timeout: float = TIMEOUT
    forbidden: tuple = ()  # library functions that compute the answer: calling them fails the check


EXERCISES = (
    Exercise("gaussian_kl", "the KL divergence KL(N(mu, diag σ²) ‖ N(0, I)), closed form",
             ("losses.gaussian_kl", "losses.gaussian_kl_between")),
    Exercise("reparameterize", "the reparameterization trick, z = mu + σ·eps", ("losses.reparameterize",)),
    Exercise("elbo", "the ELBO and the β-VAE loss", ("losses.elbo", "losses.beta_vae_loss")),
    Exercise("bce_with_logits", "binary cross-entropy with logits, numerically stable",
             ("ops.bce_with_logits", "ops.log_sigmoid")),
    Exercise("discriminator_loss", "the GAN discriminator's loss", ("losses.discriminator_loss",),
             forbidden=("losses.generator_loss_minimax",)),
    Exercise("generator_loss_nonsaturating", "the non-saturating generator loss",
             ("losses.generator_loss_nonsaturating", "losses.generator_loss_minimax")),
    Exercise("gradient_penalty", "WGAN-GP's gradient penalty", ("losses.gradient_penalty",)),
    Exercise("adam_step", "one step of Adam, with bias correction", ("optim.Adam.update",)),
    Exercise("conv2d_im2col", "conv2d forward via im2col and one matrix product",
             ("ops._im2col_windows", "ops._conv2d")),
    Exercise("numerical_grad", "a numerical gradient by central differences", ("gradcheck.numerical_grad",)),
    # Backward passes by hand (CS231n's assignment 2): the library's own VJPs, registered with defvjp.
    Exercise("dense_backward", "the dense layer's backward pass (dX, dW, db)",
             ("backprop.dense_grad_x", "backprop.dense_grad_w", "backprop.dense_grad_b")),
    Exercise("batch_norm_backward", "batch norm's backward pass in training mode (dx, dγ, dβ)",
             ("backprop.batch_norm_backward",)),
    Exercise("conv2d_backward", "conv2d's backward pass in x: col2im (the transposed convolution)",
             ("im2col.col2im",)),
    Exercise("logistic_backward", "the VJPs of softplus and of BCE with logits",
             ("ops.softplus_grad", "ops.bce_grad_logits", "ops.bce_grad_targets")),
    Exercise("reparameterize_backward", "the reparameterization gradient: dz/dmu, dz/dlogvar, dz/deps",
             ("losses.reparameterize_backward",)),
)

# Where a failure of each kind gets the check's hint: a float32 hint is no help with a sign error.
VALUE_KINDS = ("value", "shape", "nonfinite")


@dataclass(frozen=True)
class Check:
    exercise: str
    name: str
    points: int
    what: str                 # one line: what is checked
    inputs: Callable          # rng -> {name: array}; run once, when the assignment is built
    probe: Callable           # (pkg, inputs) -> {name: array}; names starting with "_" are diagnostics
    rtol: float = 1e-6
    gradient: bool = False    # also demand autograd's gradient agree with finite differences
    hint: str = ""            # added to a failure of a kind in hint_on that matches no known mistake
    hint_on: tuple = VALUE_KINDS
    given_vjp: bool = False   # the gradient comes from the library's own VJPs, not from the student's code
    own_vjp: bool = False     # the gradient comes from the VJP the student writes in this exercise
    needs: tuple = ()         # other exercises whose functions the probe runs: if one of them is assigned too,
                              # this check is left out (the other exercise grades that code)

    @property
    def id(self):
        return f"{self.exercise}.{self.name}"


CHECKS = []


def check(exercise, name, points, what, inputs, **options):
    """Register the decorated probe as a check."""
    def register(probe):
        CHECKS.append(Check(exercise, name, points, what, inputs, probe, **options))
        return probe
    return register


def normal(rng, shape, dtype=np.float64, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def extremes(rng, shape, dtype, big=1e4, count=None):
    """Normal(0, 3) values with, at positions the seed picks, huge ones: one near +big, one near -big, and
    more of random sign and size between 30 and big / 10. No fixed edge values: every seed has its own."""
    values = normal(rng, shape, np.float64, 3.0).ravel()
    count = count or max(2, values.size // 2)
    at = rng.permutation(values.size)[:count]
    sizes = 10 ** rng.uniform(1.5, np.log10(big) - 1, size=count)
    sizes[:2] = big * rng.uniform(0.5, 1.0, size=2)
    signs = np.where(rng.uniform(size=count) < 0.5, -1.0, 1.0)
    signs[:2] = (1.0, -1.0)
    values[at] = signs * sizes
    return values.reshape(shape).astype(dtype)


F32 = dict(rtol=1e-4, hint_on=("dtype",))  # float32 checks: looser values, exact dtype; their hint is about dtype
F32_HINT = "keep constants Python numbers (0.5, not np.float64(0.5)); np.exp(0.5) is a float64 too"


def checks_for(exercise):
    return [c for c in CHECKS if c.exercise == exercise]


def exercise(name):
    return next(ex for ex in EXERCISES if ex.name == name)


# The checks, one module per model family; importing them registers them (they import this module).
from . import cases_backprop, cases_gan, cases_optim, cases_vae  # noqa: E402,F401
