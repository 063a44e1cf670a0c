"""The training loop: minibatches, a progress bar, running averages of the metrics.

A model supplies `step(batch) -> dict of floats` (its loss written out,
value_and_grad, an optimiser step); this loop does everything around it, the
same way for every model.
"""
import time

import numpy as np
from tqdm.auto import tqdm

from minigen.data import batches


def train_epochs(step, arrays, epochs, rng, batch_size=128, desc="train", log=None, max_seconds=None):
    """Run `step` over shuffled minibatches of `arrays` for `epochs` passes.

    arrays: tuple of arrays sharing their first axis, e.g. (x, y).
    rng: numpy Generator for the shuffling.
    log: optional callable(epoch, metrics) called at the end of each epoch.
    max_seconds: optional time budget; an epoch starts only if, judging by the
        last one's duration, it will end within the budget.
    Returns one dict of mean metrics per epoch.
    """
    history = []
    n_batches = -(-len(arrays[0]) // batch_size)
    began = time.perf_counter()
    for epoch in range(1, epochs + 1):
        last = history[-1]["seconds"] if history else 0.0
        if max_seconds is not None and time.perf_counter() - began + last > max_seconds:
            break
        totals, seen, start = {}, 0, time.perf_counter()
        bar = tqdm(batches(rng, *arrays, batch_size=batch_size), total=n_batches,
                   desc=f"{desc} {epoch}/{epochs}", leave=False, mininterval=0.5)
        for batch in bar:
            metrics = step(batch)
            n = len(batch[0])
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + float(value) * n
            seen += n
            bar.set_postfix({**{k: f"{v / seen:.4f}" for k, v in totals.items()},
                             "samples/s": f"{seen / (time.perf_counter() - start):.0f}"}, refresh=False)
        means = {k: v / seen for k, v in totals.items()}
        means["seconds"] = time.perf_counter() - start
        history.append(means)
        if log is not None:
            log(epoch, means)
    return history


def evaluate(fn, arrays, batch_size=1000):
    """Mean of fn(batch) -> (N,) per-example values over the whole data, in order."""
    values = [np.asarray(fn(batch)) for batch in batches(None, *arrays, batch_size=batch_size, shuffle=False)]
    return float(np.concatenate(values).mean())
