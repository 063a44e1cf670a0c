"""The training loop: minibatches, a progress bar, the NaN guard, Ctrl-C and SIGTERM.

A model supplies `step(batch) -> dict of floats` (its loss written out,
value_and_grad, an optimiser step); this loop does everything around it, the
same way for every model. Without a `Run` it only trains (what the demos use);
with one (minigen.rundir) it also keeps a run directory: logs, pictures,
checkpoints, and resume bit for bit.

The NaN guard: a NaN or Inf anywhere in a step (a metric, a gradient, an updated
weight, an activation a layer's input check catches) stops training with one
message: the step, the epoch, the quantity, the last good checkpoint, and a
remedy that fits the cause.
"""
import signal
import time
import warnings

import numpy as np
from tqdm.auto import tqdm

from minigen import allocator
from minigen.data import batches
from minigen.models.trainable import NonFiniteError, check_finite
from minigen.nn import NonFiniteInputError
from minigen.rundir import Position, Run, copy_into, first_non_finite, load_run, read_config

__all__ = ["Position", "Run", "TrainingInterrupted", "TrainingStopped", "copy_into", "load_run", "mean_over_batches",
           "read_config", "train_epochs"]


class TrainingStopped(RuntimeError):
    """Training ended early (NaN/Inf, Ctrl-C or SIGTERM); the message says why and what was kept."""


class TrainingInterrupted(TrainingStopped):
    """Ctrl-C or SIGTERM: the run stopped after a whole step and saved a checkpoint.
    `signum` is the signal that stopped it (the CLI exits with 128 + signum)."""

    def __init__(self, message, signum=signal.SIGINT):
        super().__init__(message)
        self.signum = signum


def _warn(message):
    warnings.warn(message, stacklevel=2)


def train_epochs(step, arrays, epochs, rng, batch_size=128, desc="train", log=None, max_seconds=None, run=None,
                 clock=time.perf_counter, notify=None, stop_mid_epoch=False):
    """Run `step` over shuffled minibatches of `arrays` for `epochs` passes.

    arrays: tuple of arrays sharing their first axis, e.g. (x, y).
    rng: numpy Generator for the shuffling.
    log: optional callable(epoch, metrics) called at the end of each epoch.
    max_seconds: optional time budget; an epoch starts only if, judging by the
        last one's duration, it will end within the budget.
    stop_mid_epoch: check max_seconds before every step instead: a step starts only if, judging
        by the last one's duration, it will end within the budget, so the run stops within one
        step of it, mid-epoch if need be (with a run: a checkpoint there, and the epoch's samples).
    clock: what the budget counts: wall seconds (time.perf_counter, the default) or
        this process's CPU seconds (time.process_time), which a busy machine does not shrink.
    run: optional Run, to log, draw, checkpoint, and resume from its checkpoint.
    notify: callable(str) for messages during training (a signal noted); default: the
        run's, else warnings.warn.
    Returns one dict of mean metrics per epoch.
    Before the first step it tells glibc's malloc to keep freed memory (minigen.allocator;
    process-wide), which spares every step the page faults of fresh memory.
    """
    notify = notify or (run.notify if run is not None else _warn)
    allocator.keep_freed_memory()  # each step reuses the pages the last one freed (minigen.allocator)
    pos = run.resume_position() if run is not None else Position()
    n_batches = -(-len(arrays[0]) // batch_size)
    began = epoch_began = clock()
    last = last_step = 0.0  # the last whole epoch's and the last step's durations on `clock`

    def out_of_time(next_part):
        return max_seconds is not None and clock() - began + next_part > max_seconds

    with _deferred_interrupt(notify) as interrupted:
        while pos.epoch <= epochs:
            if pos.batch == 0 and out_of_time(last_step if stop_mid_epoch else last):
                if stop_mid_epoch:  # before this epoch's order is drawn: the checkpoint's rng is this moment's
                    return _stop_for_time(pos, run, notify, epochs, n_batches, max_seconds)
                break
            if pos.batch == 0:  # a fresh epoch: a new order, new sums
                pos.order, pos.totals, pos.seen = rng.permutation(len(arrays[0])), {}, 0
            start, seen_before = time.perf_counter(), pos.seen  # a resumed epoch counts speed from here
            bar = tqdm(batches(None, *arrays, batch_size=batch_size, order=pos.order, skip=pos.batch),
                       total=n_batches, initial=pos.batch, desc=f"{desc} {pos.epoch}/{epochs}", leave=False,
                       mininterval=0.5)
            for batch in bar:
                if stop_mid_epoch and pos.batch and out_of_time(last_step):
                    bar.close()
                    return _stop_for_time(pos, run, notify, epochs, n_batches, max_seconds)
                step_began = clock()
                metrics = _guarded(pos, run, _checked_step, step, batch, run)
                pos.step, pos.batch, pos.seen = pos.step + 1, pos.batch + 1, pos.seen + len(batch[0])
                for key, value in metrics.items():
                    pos.totals[key] = pos.totals.get(key, 0.0) + value * len(batch[0])
                bar.set_postfix({**{k: f"{v / pos.seen:.4f}" for k, v in pos.totals.items()},
                                 "samples/s": f"{(pos.seen - seen_before) / (time.perf_counter() - start):.0f}"},
                                refresh=False)
                if run is not None:
                    _guarded(pos, run, run.after_step, pos, metrics)
                last_step = clock() - step_began
                if interrupted():
                    bar.close()
                    _stop_on_interrupt(pos, run, interrupted())
            means = {k: v / pos.seen for k, v in pos.totals.items()}
            means["seconds"] = time.perf_counter() - start
            last, epoch_began = clock() - epoch_began, clock()
            pos.history.append(means)
            pos.epoch, pos.batch = pos.epoch + 1, 0
            if run is not None:
                run.after_epoch(pos, means)
            if log is not None:
                log(pos.epoch - 1, means)
    if run is not None:
        run.commit()  # the end of training: nothing more will vouch for the last checkpoint's weights
    return pos.history


def how_far(pos, epochs, n_batches):
    """How far a run got, e.g. "2 of 10 epochs and 130 of 469 steps of epoch 3 (1,068 of 4,690 steps)"."""
    done = f"{pos.epoch - 1} of {epochs} epochs"
    if pos.batch:
        done += f" and {pos.batch} of {n_batches} steps of epoch {pos.epoch}"
    return f"{done} ({pos.step:,} of {epochs * n_batches:,} steps)"


def _stop_for_time(pos, run, notify, epochs, n_batches, max_seconds):
    """The budget is spent before the epoch's end: with a run, checkpoint here and draw this epoch's
    samples (the next --resume continues from this step); say how far the run got. Returns the history."""
    done = how_far(pos, epochs, n_batches)
    message = f"the time budget of {max_seconds / 60:g} min is spent: stopped after {done}"
    if run is not None:
        run.stop_early(pos)
        message += f"; checkpoint saved: continue with minigen train --resume {run.out}"
        run.stopped_for_time = done
    notify(message)
    return pos.history


def _checked_step(step, batch, run):
    """step(batch) with every metric checked finite, then (with a run) every updated weight."""
    metrics = {k: check_finite(k, v) for k, v in step(batch).items()}
    if run is not None:
        run.commit()  # a finite loss and gradient from the pending checkpoint's weights: they are good
        bad = first_non_finite(run.trainable.params, "params")
        if bad is not None:
            raise NonFiniteError(f"weight {bad} is NaN or Inf after the update")
    return metrics


def _guarded(pos, run, fn, *args):
    """fn(*args), turning a NaN/Inf anywhere in a step (loss, gradient, weight, activation) into the guard's
    message: step, epoch, quantity, the last good checkpoint, and a remedy that fits the cause."""
    try:
        return fn(*args)
    except (NonFiniteError, NonFiniteInputError) as err:
        quantity = str(err) if isinstance(err, NonFiniteError) else f"an activation became NaN or Inf: {err}"
        message = f"training diverged at step {pos.step + 1} (epoch {pos.epoch}): {quantity}"
        if run is None:
            raise TrainingStopped(message) from None
        run.discard_pending()
        kept = run.last_checkpoint()
        message += (f"; the last good checkpoint is {run.checkpoint_path} (step {kept})" if kept is not None
                    else "; no checkpoint was written before it")
        raise TrainingStopped(f"{message}\ntry: {run.remedy(pos, quantity, kept)}") from None


def _stop_on_interrupt(pos, run, signum):
    where = f"{signal.Signals(signum).name}: interrupted after step {pos.step} (epoch {pos.epoch}, batch {pos.batch})"
    if run is None:
        raise TrainingInterrupted(where, signum)
    run.save(pos)
    run.commit()
    raise TrainingInterrupted(f"{where}; checkpoint saved in {run.checkpoint_path}; "
                              f"continue with --resume {run.out}", signum)


class _deferred_interrupt:
    """Ctrl-C or SIGTERM (what `timeout`, schedulers and `docker stop` send) during a step would
    leave parameters half-updated: note it, stop after the step. A second signal interrupts at
    once. Only the main thread can set handlers; elsewhere this does nothing.
    """
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, notify):
        self.notify = notify

    def __enter__(self):
        self.signum, self.previous = None, {}
        for signum in self.SIGNALS:
            try:
                self.previous[signum] = signal.signal(signum, self._note)
            except ValueError:  # not the main thread
                pass
        return lambda: self.signum

    def _note(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.notify(f"{signal.Signals(signum).name}: stopping after this step and saving "
                    f"(send it again to abort at once)")

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


def mean_over_batches(fn, arrays, batch_size=1000):
    """Mean of fn(batch) -> (N,) per-example values over the whole data, in order."""
    values = [np.asarray(fn(batch)) for batch in batches(None, *arrays, batch_size=batch_size, shuffle=False)]
    return float(np.concatenate(values).mean())
