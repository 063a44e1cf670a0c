"""A run directory: logs, pictures, checkpoints, resume bit for bit.

minigen.train's loop, given a Run, keeps a run directory:

    config.json       the model and hyper-parameters
    metrics.jsonl     one line per step, and one summary line per epoch
    checkpoint.npz    params, optimiser state, rng state, position (atomic, no pickle)
    samples/epoch_003.png, loss.png   pictures after every epoch
    run.lock          held by the one process writing the run (minigen.runlock)

A run resumed from its checkpoint ends with the same parameters, bit for bit, as
one that ran straight through: the checkpoint holds the rng's state and the
epoch's shuffled order, so the resumed run draws exactly the numbers the
uninterrupted one would have drawn (at a fixed BLAS thread count: matrix
products sum in an order that depends on it, so the run records the count).

A checkpoint is written only once the weights in it have been used for one more
step whose loss and gradients were finite (or at the end of training, or on
Ctrl-C/SIGTERM), so the NaN guard's "last good checkpoint" is a good one.
"""
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minigen import __version__, runlock
from minigen.checkpoint import flatten, load_checkpoint, write_checkpoint
from minigen.models.trainable import NonFiniteError
from minigen.tree import leaves


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


def first_non_finite(tree, prefix):
    """The path (e.g. "params/vae/encoder/1/W") of the first float array in `tree` holding NaN/Inf, or None."""
    for key, array in flatten(tree, prefix).items():
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            return key
    return None


def _warn(message):
    warnings.warn(message, stacklevel=2)


class Run:
    """A run directory (see the module docstring) for one Trainable, its rng and its config.

    config: JSON-able dict with at least "model"; `resume=True` continues from
    the checkpoint in `out` (refusing one of another model); `overwrite=True`
    starts a run again in a folder that holds one (minigen.runlock.prepare says
    which folders may be written). `changes` ({option: [old, new]}) are the options
    a resumed run changes (e.g. lr), already applied in `config`: recorded with their
    step in the config's "history", a new lr put into the restored optimisers.
    notify: callable(str) for messages (default warnings.warn).
    The caller should hold the folder's runlock.RunLock (the CLI does).
    """

    def __init__(self, out, trainable, rng, config, resume=False, checkpoint_every=None, n_pictures=None,
                 overwrite=False, changes=None, notify=None):
        self.out, self.trainable, self.rng, self.config = Path(out), trainable, rng, config
        self.resume, self.checkpoint_every = resume, checkpoint_every
        self.n_pictures = trainable.picture_count() if n_pictures is None else n_pictures
        self.checkpoint_path, self.log_path = self.out / "checkpoint.npz", self.out / "metrics.jsonl"
        self.remedies, self.changes, self.notify = trainable.remedies, dict(changes or {}), notify or _warn
        self._pending = None  # a checkpoint waiting for one more finite step to vouch for its weights
        self.stopped_for_time = None  # how far the run got, if its time budget stopped it (minigen.train)
        if resume and not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: {self.checkpoint_path} does not exist")
        runlock.prepare(self.out, resume, overwrite, self.notify)
        self.out.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.config = {**config, "blas_threads": runlock.blas_threads()}
            self._write_config()
            self.log_path.write_text("")

    def _write_config(self):
        (self.out / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")

    def trees(self):
        t = self.trainable
        return {"params": t.params, "optim": {k: o.state_dict() for k, o in t.optimizers.items()}}

    def save(self, pos):
        """Take a checkpoint of everything needed to continue exactly from `pos`; it reaches the disk
        when the next step is finite (`commit`), so weights that diverge at once are never saved."""
        meta = {"model": self.config["model"], "config": self.config, "minigen": __version__,
                "epoch": pos.epoch, "step": pos.step, "batch": pos.batch, "totals": pos.totals,
                "seen": pos.seen, "history": pos.history, "rng": self.rng.bit_generator.state,
                "log_bytes": self.log_path.stat().st_size}
        order = {"order": pos.order} if pos.order is not None else {}
        trees = {**self.trees(), "state": self.trainable.state, **order}
        copies = {name: flatten(tree, name) for name, tree in trees.items()}
        # copies: the arrays and the running sums change in place with the next step
        self._pending = ({name: {k: np.array(v) for k, v in flat.items()} for name, flat in copies.items()},
                         json.loads(json.dumps(meta)))

    def commit(self):
        """Write the pending checkpoint: the log first (flushed to disk, so both agree after a crash)."""
        if self._pending is None:
            return
        trees, meta = self._pending
        self._pending = None
        arrays = {k: v for flat in trees.values() for k, v in flat.items()}
        bad = next((k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating)
                    and not np.isfinite(v).all()), None)
        if bad is not None:
            raise NonFiniteError(f"{bad} holds NaN or Inf, so it is not checkpointed")
        with open(self.log_path, "rb+") as f:
            os.fsync(f.fileno())
        write_checkpoint(self.checkpoint_path, arrays, meta)

    def discard_pending(self):
        self._pending = None

    def last_checkpoint(self):
        """The step of the checkpoint on disk, or None if there is none."""
        if not self.checkpoint_path.is_file():
            return None
        with np.load(self.checkpoint_path) as f:
            return json.loads(str(f["meta.json"])).get("step")

    def remedy(self, pos, quantity, kept):
        """What to try after a divergence at `pos`: the learning rate is no suspect before any update.
        kept: the step of the last good checkpoint, or None."""
        if pos.step == 0 and "after the update" not in quantity:
            return ("the model diverged before its first update, so the learning rate is not the cause: "
                    "check the model's options (--set) and the data")
        lr = max((o.lr for o in self.trainable.optimizers.values()), default=None)
        smaller = f"--lr {lr / 10:g}" if lr else "a smaller --lr"
        if kept is None:
            return f"{self.remedies}; e.g. start again with {smaller} --out {self.out} --overwrite"
        return (f"{self.remedies}; e.g. continue from the last good checkpoint: "
                f"minigen train --resume {self.out} {smaller}")

    def resume_position(self):
        """Load the checkpoint into the trainable's arrays (in place) and return where it stopped."""
        if not self.resume:
            return Position()
        like = {**self.trees(), "state": None, "order": None}
        trees, meta = _load_model_checkpoint(self.checkpoint_path, like, self.config["model"])
        copy_into(self.trainable.params, trees["params"])
        for name, opt in self.trainable.optimizers.items():
            opt.load_state_dict(trees["optim"][name])
            if "lr" in self.changes:  # the checkpoint holds the old lr
                opt.lr = self.changes["lr"][1]
        _merge_into(self.trainable.state, trees["state"])
        self.rng.bit_generator.state = meta["rng"]
        self._cut_log(meta["log_bytes"])
        self._record_resume(meta["step"])
        order = trees["order"] if isinstance(trees["order"], np.ndarray) else None
        return Position(meta["epoch"], meta["step"], meta["batch"], order, meta["totals"], meta["seen"],
                        meta["history"])

    def _cut_log(self, expected):
        """Forget what was logged after the checkpoint; a log cut shorter keeps its whole lines, never padded."""
        if not self.log_path.is_file():
            self.log_path.write_text("")
        with open(self.log_path, "r+b") as f:
            text = f.read(expected)
            if len(text) == expected and (expected == 0 or text.endswith(b"\n")):
                f.truncate(expected)
                return
            keep = text.rfind(b"\n") + 1
            f.truncate(keep)
        lines = text[:keep].count(b"\n")
        self.notify(f"{self.log_path} holds {len(text)} of the {expected} bytes the checkpoint expects (it was "
                    f"cut or edited): kept its first {lines} whole lines; the steps "
                    f"after them up to the checkpoint are missing from the log")

    def _record_resume(self, step):
        """Apply and record the changed options; warn when the BLAS thread count differs."""
        threads, recorded = runlock.blas_threads(), self.config.get("blas_threads")
        if threads is not None and recorded is not None and threads != recorded:
            self.notify(f"this run was trained with {recorded} BLAS threads and continues with {threads}: "
                        f"it will not be bit-for-bit equal to an unbroken run (set OPENBLAS_NUM_THREADS="
                        f"{recorded} to keep it)")
        if not self.changes:
            return
        entry = {"step": step, "changed": self.changes}
        self.config = {**self.config, "history": [*self.config.get("history", []), entry]}
        self._write_config()
        self.notify("applied on resume at step " + str(step) + ": " + ", ".join(
            f"{key} {new} (was {'the default' if old is None else old})" for key, (old, new) in self.changes.items()))

    def after_step(self, pos, metrics):
        self.commit()  # this step was finite: the weights of the pending checkpoint are good
        self._log({"step": pos.step, "epoch": pos.epoch, **metrics})
        if self.checkpoint_every and pos.step % self.checkpoint_every == 0:
            self.save(pos)

    def after_epoch(self, pos, means):
        from minigen import viz
        self._log({"epoch": pos.epoch - 1, "summary": True, **means})
        self.draw_samples(pos.epoch - 1)
        viz.save_curves(pos.history, self.out / "loss.png", [k for k in pos.history[-1] if k != "seconds"],
                        f"{self.config['model']} training")
        self.save(pos)

    def draw_samples(self, epoch):
        """samples/epoch_NNN.png: n_pictures samples of the model as it is now."""
        from minigen import viz
        picture_rng = np.random.default_rng(0)  # the same noise every epoch: watch one set of samples evolve
        viz.save_image_grid(self.trainable.sample(picture_rng, self.n_pictures),
                            self.out / "samples" / f"epoch_{epoch:03d}.png", self.trainable.picture_columns)

    def stop_early(self, pos):
        """A run stopped by its time budget: mid-epoch, this epoch's samples so far and a checkpoint
        written now, from which --resume continues with the next step; at an epoch's start, the
        checkpoint the last epoch's end took (and its samples)."""
        if pos.batch:
            self.draw_samples(pos.epoch)
            self.save(pos)
        self.commit()

    def _log(self, record):
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_config(run_dir, required=("model", "options", "seed", "lr")):
    """The config.json of a run directory, checked (minigen.runlock.read_config)."""
    return runlock.read_config(run_dir, required)


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


