"""The training loop: minibatches, a progress bar, logs, pictures, checkpoints, resume, a NaN guard.

A model supplies `step(batch) -> dict of floats` (its loss written out,
value_and_grad, an optimiser step); this loop does everything around it, the
same way for every model. Without a `Run` it only trains (what the demos use);
with one it also keeps a run directory:

    config.json       the model and hyper-parameters
    metrics.jsonl     one line per step, and one summary line per epoch
    checkpoint.npz    params, optimiser state, rng state, position (atomic, no pickle)
    samples/epoch_003.png, loss.png   pictures after every epoch

A run resumed from its checkpoint ends with the same parameters, bit for bit, as
one that ran straight through: the checkpoint holds the rng's state and the
epoch's shuffled order, so the resumed run draws exactly the numbers the
uninterrupted one would have drawn.
"""
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from minigen import __version__
from minigen.checkpoint import load_checkpoint, save_checkpoint
from minigen.data import batches
from minigen.models.trainable import NonFiniteError, check_finite
from minigen.tree import leaves


class TrainingStopped(RuntimeError):
    """Training ended early (NaN/Inf, or Ctrl-C); the message says why and what was kept."""


class TrainingInterrupted(TrainingStopped):
    """Ctrl-C: the run stopped after a whole step and saved a checkpoint."""


@dataclass
class Position:
    """Where a run is: the epoch in progress (1-based), steps taken, batches done in this epoch."""
    epoch: int = 1
    step: int = 0
    batch: int = 0
    order: np.ndarray | None = None  # this epoch's shuffled example order
    totals: dict = field(default_factory=dict)  # running sums of the metrics over this epoch
    seen: int = 0
    history: list = field(default_factory=list)  # mean metrics of each finished epoch


def train_epochs(step, arrays, epochs, rng, batch_size=128, desc="train", log=None, max_seconds=None, run=None,
                 clock=time.perf_counter):
    """Run `step` over shuffled minibatches of `arrays` for `epochs` passes.

    arrays: tuple of arrays sharing their first axis, e.g. (x, y).
    rng: numpy Generator for the shuffling.
    log: optional callable(epoch, metrics) called at the end of each epoch.
    max_seconds: optional time budget; an epoch starts only if, judging by the
        last one's duration, it will end within the budget.
    clock: what the budget counts: wall seconds (time.perf_counter, the default) or
        this process's CPU seconds (time.process_time), which a busy machine does not shrink.
    run: optional Run, to log, draw, checkpoint, and resume from its checkpoint.
    Returns one dict of mean metrics per epoch.
    """
    pos = run.resume_position() if run is not None else Position()
    n_batches = -(-len(arrays[0]) // batch_size)
    began = epoch_began = clock()
    last = 0.0  # the last whole epoch's duration on `clock`
    with _deferred_interrupt() as interrupted:
        while pos.epoch <= epochs:
            if pos.batch == 0 and max_seconds is not None and clock() - began + last > max_seconds:
                break
            if pos.batch == 0:  # a fresh epoch: a new order, new sums
                pos.order, pos.totals, pos.seen = rng.permutation(len(arrays[0])), {}, 0
            start, seen_before = time.perf_counter(), pos.seen  # a resumed epoch counts speed from here
            bar = tqdm(batches(None, *arrays, batch_size=batch_size, order=pos.order, skip=pos.batch),
                       total=n_batches, initial=pos.batch, desc=f"{desc} {pos.epoch}/{epochs}", leave=False,
                       mininterval=0.5)
            for batch in bar:
                metrics = _guarded(step, batch, pos, run)
                pos.step, pos.batch, pos.seen = pos.step + 1, pos.batch + 1, pos.seen + len(batch[0])
                for key, value in metrics.items():
                    pos.totals[key] = pos.totals.get(key, 0.0) + value * len(batch[0])
                bar.set_postfix({**{k: f"{v / pos.seen:.4f}" for k, v in pos.totals.items()},
                                 "samples/s": f"{(pos.seen - seen_before) / (time.perf_counter() - start):.0f}"},
                                refresh=False)
                if run is not None:
                    run.after_step(pos, metrics)
                if interrupted():
                    bar.close()
                    _stop_on_interrupt(pos, run)
            means = {k: v / pos.seen for k, v in pos.totals.items()}
            means["seconds"] = time.perf_counter() - start
            last, epoch_began = clock() - epoch_began, clock()
            pos.history.append(means)
            pos.epoch, pos.batch = pos.epoch + 1, 0
            if run is not None:
                run.after_epoch(pos, means)
            if log is not None:
                log(pos.epoch - 1, means)
    return pos.history


def _guarded(step, batch, pos, run):
    """step(batch), with every metric checked finite; a NaN/Inf stops training, naming step and quantity."""
    try:
        return {k: check_finite(k, v) for k, v in step(batch).items()}
    except NonFiniteError as err:
        kept = f"; the last good checkpoint is {run.checkpoint_path}" if run is not None and \
            run.checkpoint_path.is_file() else ""
        remedies = f"\ntry: {run.remedies}" if run is not None else ""
        raise TrainingStopped(f"training diverged at step {pos.step + 1} (epoch {pos.epoch}): {err}{kept}"
                              f"{remedies}") from None


def _stop_on_interrupt(pos, run):
    where = f"interrupted after step {pos.step} (epoch {pos.epoch}, batch {pos.batch})"
    if run is None:
        raise TrainingInterrupted(where)
    run.save(pos)
    raise TrainingInterrupted(f"{where}; checkpoint saved in {run.checkpoint_path}; "
                          f"continue with --resume {run.out}")


class _deferred_interrupt:
    """Ctrl-C during a step would leave parameters half-updated: note it, stop after the step.

    A second Ctrl-C interrupts at once. Only the main thread can set handlers;
    elsewhere this does nothing.
    """

    def __enter__(self):
        self.flag = False
        try:
            self.previous = signal.signal(signal.SIGINT, self._note)
        except ValueError:  # not the main thread
            self.previous = None
        return lambda: self.flag

    def _note(self, signum, frame):
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True
        print("\nCtrl-C: stopping after this step (press again to abort at once)", flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


class Run:
    """A run directory (see the module docstring) for one Trainable, its rng and its config.

    config: JSON-able dict with at least "model"; `resume=True` continues from
    the checkpoint in `out` (refusing one of another model).
    """

    def __init__(self, out, trainable, rng, config, resume=False, checkpoint_every=None, n_pictures=64):
        self.out, self.trainable, self.rng, self.config = Path(out), trainable, rng, config
        self.resume, self.checkpoint_every, self.n_pictures = resume, checkpoint_every, n_pictures
        self.checkpoint_path, self.log_path = self.out / "checkpoint.npz", self.out / "metrics.jsonl"
        self.remedies = trainable.remedies
        if resume and not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: {self.checkpoint_path} does not exist")
        if not resume and self.checkpoint_path.is_file():
            raise FileExistsError(f"{self.out} already holds a run; pass --resume to continue it "
                                  f"or choose another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        if not resume:
            (self.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            self.log_path.write_text("")

    def trees(self):
        t = self.trainable
        return {"params": t.params, "optim": {k: o.state_dict() for k, o in t.optimizers.items()}}

    def save(self, pos):
        """Checkpoint everything needed to continue exactly from `pos`."""
        meta = {"model": self.config["model"], "config": self.config, "minigen": __version__,
                "epoch": pos.epoch, "step": pos.step, "batch": pos.batch, "totals": pos.totals,
                "seen": pos.seen, "history": pos.history, "rng": self.rng.bit_generator.state,
                "log_bytes": self.log_path.stat().st_size}
        order = {"order": pos.order} if pos.order is not None else {}
        save_checkpoint(self.checkpoint_path, {**self.trees(), "state": self.trainable.state, **order}, meta)

    def resume_position(self):
        """Load the checkpoint into the trainable's arrays (in place) and return where it stopped."""
        if not self.resume:
            return Position()
        like = {**self.trees(), "state": None, "order": None}
        trees, meta = _load_model_checkpoint(self.checkpoint_path, like, self.config["model"])
        copy_into(self.trainable.params, trees["params"])
        for name, opt in self.trainable.optimizers.items():
            opt.load_state_dict(trees["optim"][name])
        _merge_into(self.trainable.state, trees["state"])
        self.rng.bit_generator.state = meta["rng"]
        with open(self.log_path, "r+b") as f:  # forget what was logged after the checkpoint
            f.truncate(meta["log_bytes"])
        order = trees["order"] if isinstance(trees["order"], np.ndarray) else None
        return Position(meta["epoch"], meta["step"], meta["batch"], order, meta["totals"], meta["seen"],
                        meta["history"])

    def after_step(self, pos, metrics):
        self._log({"step": pos.step, "epoch": pos.epoch, **metrics})
        if self.checkpoint_every and pos.step % self.checkpoint_every == 0:
            self.save(pos)

    def after_epoch(self, pos, means):
        from minigen import viz
        self._log({"epoch": pos.epoch - 1, "summary": True, **means})
        picture_rng = np.random.default_rng(0)  # the same noise every epoch: watch one set of samples evolve
        viz.save_image_grid(self.trainable.sample(picture_rng, self.n_pictures),
                            self.out / "samples" / f"epoch_{pos.epoch - 1:03d}.png", self.trainable.picture_columns)
        viz.save_curves(pos.history, self.out / "loss.png", [k for k in pos.history[-1] if k != "seconds"],
                        f"{self.config['model']} training")
        self.save(pos)

    def _log(self, record):
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_config(run_dir):
    """The config.json of a run directory, with a clear error if it is not one."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a minigen run directory (no config.json); "
                                f"runs are made by `minigen train MODEL`")
    return json.loads(path.read_text())


def load_run(run_dir):
    """(config, trainable) of a finished or stopped run, its parameters and buffers (e.g. batch
    norm's running statistics, which sampling uses) read from the checkpoint."""
    from minigen import models
    config = read_config(run_dir)
    trainable = models.build(config["model"], config["options"], np.random.default_rng(config["seed"]),
                             config["lr"])
    trees, _ = _load_model_checkpoint(Path(run_dir) / "checkpoint.npz", {"params": trainable.params, "state": None},
                                      config["model"])
    copy_into(trainable.params, trees["params"])
    _merge_into(trainable.state, trees["state"])
    return config, trainable


def _load_model_checkpoint(path, like, model):
    """load_checkpoint, refusing a checkpoint written by another model."""
    trees, meta = load_checkpoint(path, like)
    if meta.get("model") != model:
        raise ValueError(f"{path} is a checkpoint of model {meta.get('model')!r}, not {model!r}")
    return trees, meta


def _merge_into(state, saved):
    """Put saved buffers into the (nested) state dict in place, keeping its dicts: models hold them."""
    for key, value in saved.items():
        if isinstance(value, dict):
            _merge_into(state.setdefault(key, {}), value)
        else:
            state[key] = value


def copy_into(tree, saved):
    """Overwrite the arrays of `tree` with those of `saved`, in place: optimisers and steps hold them."""
    for current, new in zip(leaves(tree), leaves(saved), strict=True):
        np.copyto(current, new)


def mean_over_batches(fn, arrays, batch_size=1000):
    """Mean of fn(batch) -> (N,) per-example values over the whole data, in order."""
    values = [np.asarray(fn(batch)) for batch in batches(None, *arrays, batch_size=batch_size, shuffle=False)]
    return float(np.concatenate(values).mean())
