"""What a model hands the training loop, and the guarded gradient step every model takes.

A model family builds a `Trainable`: its parameter trees, its optimisers, a
`step(batch) -> metrics` closure, and a sampler. The loop in minigen.train
does the rest (progress, logs, pictures, checkpoints, resume) the same way for
every model, so none of that is copied per model.
"""
import dataclasses
import math
import resource
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
    split_data: optional (x, y) -> the arrays whose minibatches step takes, for a model that
        makes them itself (M2: a few labelled images kept aside, step fed the rest; a self-
        conditioned GAN: the images paired with their clusters).
    minibatches_per_step: how many minibatches one step consumes (a WGAN's n_critic).
    picture_columns: columns of the sample grids (a conditional model: one per class).
    averaged: a GAN's minigen.averaging.AveragedGenerator, which `sample` draws from (None: the
        model samples its last weights); minigen.pretrained ships its weights and statistics.
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
    averaged: object = None
    split_data: Callable | None = None

    def training_arrays(self, x, y):
        """What the loop draws minibatches from: split_data(x, y) if given, else (x, y) or (x,)."""
        if self.split_data is not None:
            return self.split_data(x, y)
        return (x, y) if self.needs_labels else (x,)

    def picture_count(self):
        """Samples for a square grid: 8 x 8; a conditional model's 10 x 10, one class per column,
        every class ten times and no ragged last row."""
        return self.picture_columns ** 2


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
        changes[name] = _check_range(name, _parse_like(fields[name], text, name), may_be_off=fields[name] == 0)
    return dataclasses.replace(cfg, **changes)


def _check_range(name, value, may_be_off=False):
    """Sizes (ints, tuples of ints) must be >= 1, seeds (a name ending in "seed") >= 0, and so must an
    int whose default is 0 (may_be_off: 0 turns it off, e.g. dcgan's clusters); weights and scales
    (floats) finite and >= 0."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    numbers = value if isinstance(value, tuple) else (value,)
    seed = name.endswith("seed")
    if any(isinstance(v, int) and v < (0 if seed or may_be_off else 1) for v in numbers):
        raise ValueError(f"option {name}={value!r}: " + ("a seed must be an integer >= 0" if seed
                                                          else "must be an integer >= 0 (0: off)" if may_be_off
                                                          else "a size must be a positive integer"))
    if any(isinstance(v, float) and not (math.isfinite(v) and v >= 0) for v in numbers):
        raise ValueError(f"option {name}={value!r}: must be a finite number >= 0")
    return value


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


# --- Memory: refuse what cannot fit before numpy tries to allocate it ------------------

class MemoryLimitError(MemoryError):
    """A model or a sample would not fit in this machine's memory; the message gives both figures."""


def machine_memory():
    """(total, available) bytes of RAM, each capped by the address-space limit (ulimit -v) if one is set;
    None where /proc/meminfo is missing."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    except (OSError, ValueError, IndexError):
        return None
    total, available = info.get("MemTotal"), info.get("MemAvailable", info.get("MemTotal"))
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        total, available = min(total, limit), min(available, limit)
    return total, available


def _gib(n):
    return f"{n / 2**30:,.1f} GiB"


class MemoryBudget(np.random.Generator):
    """A Generator drawing the same stream as `rng` that refuses a draw (or a `charge`) once the running
    total, times `bytes_per_value`, would pass this machine's memory.

    Weights are drawn by their initialisers, so building a model with this rng counts its
    parameters before they are allocated. Training needs about 16 bytes per float32 parameter:
    the weight, its gradient, and Adam's two moments. `active = False` stops the counting.
    """

    def __init__(self, rng, bytes_per_value=16, what="the model's weights, gradients and optimiser state"):
        super().__init__(rng.bit_generator)
        self.values, self.bytes_per_value, self.what, self.active = 0, bytes_per_value, what, True
        self.memory = machine_memory()

    def charge(self, count, what=None):
        """Count `count` more values; raise MemoryLimitError if the total would not fit in RAM."""
        count = int(math.prod(count)) if isinstance(count, (tuple, list)) else int(count or 1)
        if not self.active or self.memory is None:
            return
        self.values += count
        need = self.values * self.bytes_per_value
        if need > self.memory[0]:
            raise MemoryLimitError(f"{what or self.what} would need at least {_gib(need)} "
                                   f"({self.values:,} values); this machine has {_gib(self.memory[0])} "
                                   f"({_gib(self.memory[1])} available): choose smaller sizes")

    def uniform(self, low=0.0, high=1.0, size=None):
        self.charge(size)
        return super().uniform(low, high, size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        self.charge(size)
        return super().normal(loc, scale, size)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        self.charge(size)
        return super().standard_normal(size, dtype, out)

    def random(self, size=None, dtype=np.float64, out=None):
        self.charge(size)
        return super().random(size, dtype, out)
