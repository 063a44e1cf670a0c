"""What a model hands the training loop, and the guarded gradient step every model takes.

A model family builds a `Trainable`: its parameter trees, its optimisers, a
`step(batch) -> metrics` closure, and a sampler. The loop in minigen.train
does the rest (progress, logs, pictures, checkpoints, resume) the same way for
every model, so none of that is copied per model.
"""
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from minigen.tree import leaves


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN or Inf; the message names the quantity."""


@dataclass
class Trainable:
    """params: {group: tree}, e.g. {"vae": ...} or {"generator": ..., "discriminator": ...}.
    optimizers: {group: Optimizer} over the same groups.
    step: batch (tuple of arrays) -> {metric: float}; draws its noise from the run's rng.
    sample: (rng, n) -> n images (n, 1, 28, 28) in [0, 1]; a conditional model (needs_labels)
        draws image i for class i % picture_columns.
    state: buffers trained without gradients, e.g. BatchNorm running statistics.
    remedies: what to try when training diverges (printed by the NaN guard).
    test_metrics: optional (x_test, y_test) -> {metric: number}, what the model measures on the
        test set by itself (a CVAE's -ELBO given the label, a VAE-GAN's reconstruction error).
    likelihood: optional (model, params) of a model with a likelihood bound (model.elbo and
        model.iwae_log_weights, as a VAE has), whose test -ELBO and IWAE NLL `minigen eval` reports.
        `minigen eval` prints both, with the FID and score of samples: minigen.metrics.eval_scores.
    needs_labels: whether step's batches are (x, y) rather than (x,).
    minibatches_per_step: how many minibatches one step consumes (a WGAN's n_critic).
    picture_columns: columns of the sample grids (a conditional model: one per class).
    """
    params: dict
    optimizers: dict
    step: Callable
    sample: Callable
    state: dict = field(default_factory=dict)
    remedies: str = "lower the learning rate"
    test_metrics: Callable | None = None
    likelihood: tuple | None = None
    needs_labels: bool = False
    minibatches_per_step: int = 1
    picture_columns: int = 8


def check_finite(name, value):
    """Raise NonFiniteError naming `name` if the scalar `value` is NaN or Inf; return it as a float."""
    value = float(value)
    if not np.isfinite(value):
        raise NonFiniteError(f"{name} is {value}")
    return value


def apply_gradients(opt, grads, name):
    """The NaN guard around opt.step: refuse a non-finite gradient *before* it reaches the weights.

    Returns the gradient's global L2 norm (worth logging: a norm that explodes
    is the warning sign of an unstable run, long before the NaN).
    """
    # np.linalg.norm reads a transposed array as it lies (np.vdot would copy it first: 20x slower here)
    squares = [float(np.linalg.norm(g)) ** 2 for g in leaves(grads)]
    norm = float(np.sqrt(sum(squares)))
    if not np.isfinite(norm):
        first = next(i for i, s in enumerate(squares) if not np.isfinite(s))
        raise NonFiniteError(f"gradient of the {name} (array {first} of {len(squares)}) is NaN or Inf")
    opt.step(grads)
    return norm


def configure(cfg, options):
    """A copy of the dataclass `cfg` with `options` ({name: text}, e.g. from `--set latent=2`) applied.

    Each text is read as the type of the field's current value; a tuple of ints
    is written "200,200". An unknown name or an unreadable value is a ValueError
    that lists what is accepted.
    """
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    changes = {}
    for name, text in options.items():
        if name not in fields:
            raise ValueError(f"unknown option {name!r}; choose from: {', '.join(fields)}")
        changes[name] = _parse_like(fields[name], text, name)
    return dataclasses.replace(cfg, **changes)


def _parse_like(current, text, name):
    """text read as the type of `current`: bool, int, float, str, or a tuple of ints ("200,200")."""
    if not isinstance(text, str):
        return text
    try:
        if isinstance(current, bool):
            return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
        if isinstance(current, tuple) or "," in text:
            return tuple(int(part) for part in text.split(","))
        return type(current)(text)
    except (KeyError, ValueError):
        raise ValueError(f"option {name}={text!r}: expected a value like {current!r}") from None
