"""Pretrained weights: the headline models, trained by the library's own demos, shipped in the package.

    minigen sample --pretrained dcgan --n 64 --out dcgan.png    (or --out dcgan.npy: the images as numbers)
    minigen eval --pretrained dcgan                              the FID and score, as the README quotes them

Each model NAME is two files in minigen/weights/pretrained/:

    NAME.npz    what sampling (and a VAE's likelihood) needs, in the checkpoint format of
                minigen.checkpoint (no pickle): params/<group>/..., state/<group>/... and a
                meta.json with the model's name, options, seed and lr, from which
                minigen.models.build makes the network the weights belong to. No
                discriminator and no optimiser state: a GAN ships one generator.
    NAME.json   where the weights came from (command, commit, run config, wall time), what
                `minigen eval --pretrained NAME` measured on them, and the SHA-256 of NAME.npz,
                checked before the weights are read so that a damaged or edited file is refused.

A GAN trained with an averaged generator (minigen.averaging) ships the *average* as its
generator, with the batch-norm statistics measured for it, and its options lose `ema`:
built again, it is a plain GAN that samples exactly what the averaged one did.
Weights may be stored as float16 (half the bytes); they are read back as float32, the
library's working precision. benchmarks/package_pretrained.py makes the files and says
whether float16 moved the metrics.
"""
import hashlib
import json
from pathlib import Path

import numpy as np

from minigen import models
from minigen.averaging import copy_tree
from minigen.checkpoint import META_KEY, flatten, read_arrays, trees_from_arrays, write_checkpoint
from minigen.rundir import copy_into
from minigen.tree import leaves, rebuild

PRETRAINED_DIR = Path(__file__).resolve().parent / "weights" / "pretrained"
STORAGE = {"float16": np.float16, "float32": np.float32}  # how the weights may be stored on disk
BUILD_FIELDS = ("model", "options", "seed", "lr")  # what minigen.models.build needs


def names(folder=PRETRAINED_DIR):
    """The shipped models' names: each NAME.json in `folder`, sorted."""
    return sorted(p.stem for p in Path(folder).glob("*.json"))


def info(name, folder=PRETRAINED_DIR):
    """NAME.json as a dict: provenance, metrics and the checksum of NAME.npz. An unknown name is a
    ValueError listing the known ones."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        known = names(folder)
        raise ValueError(f"no pretrained model {name!r}; choose from: {', '.join(known) if known else '(none)'}"
                         f" (in {folder})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable description of pretrained weights ({err})") from None


def sha256(path):
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(name, folder=PRETRAINED_DIR):
    """NAME.npz, checked against the SHA-256 recorded in NAME.json."""
    recorded, path = info(name, folder), Path(folder) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the weights of pretrained model {name!r} are missing")
    if sha256(path) != recorded.get("sha256"):
        raise ValueError(f"{path}: its SHA-256 differs from the one recorded in {Path(folder) / f'{name}.json'}: "
                         f"the file is damaged or was changed; reinstall minigen or package it again "
                         f"(benchmarks/package_pretrained.py)")
    return path


def load(name, folder=PRETRAINED_DIR):
    """(config, trainable) of pretrained model `name`, ready to sample and evaluate, like
    minigen.train.load_run's. config holds BUILD_FIELDS; the discriminator of a GAN (not shipped)
    keeps its random initial weights."""
    path = weights_path(name, folder)
    stored = read_arrays(path)  # refuses pickles and NaN/Inf, naming the file
    stored = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in stored.items()}
    meta = json.loads(str(stored[META_KEY])) if META_KEY in stored else {}
    if any(key not in meta for key in BUILD_FIELDS):
        raise ValueError(f"{path}: not a pretrained-weights file (its meta.json lacks {', '.join(BUILD_FIELDS)})")
    trainable = models.build(meta["model"], meta["options"], np.random.default_rng(meta["seed"]), meta["lr"])
    groups = sorted({key.split("/")[1] for key in stored if key.startswith("params/")})
    like = {"params": {g: trainable.params[g] for g in groups if g in trainable.params}, "state": None}
    trees, _ = trees_from_arrays(path, stored, like)  # a group the model lacks is named as unexpected
    copy_into(like["params"], trees["params"])
    for group, buffers in trees["state"].items():
        trainable.state.setdefault(group, {}).update(buffers)  # batch norm's statistics, read in eval mode
    return {key: meta[key] for key in BUILD_FIELDS}, trainable


def sampling_weights(config, trainable, dtype="float32"):
    """(build config, params, state) that a pretrained model keeps of a trained run: the parameter
    groups sampling and evaluation need, rounded to `dtype` (and back to float32), and their buffers.

    A GAN keeps only a generator: its averaged one if it has one (module docstring), with the
    batch-norm statistics measured for the rounded average (so sampling the shipped weights
    is sampling them); otherwise its last. Any other model keeps all its parameter groups. The
    model's own buffers are kept too (a self-conditioned GAN's cluster shares).
    The run's averaged weights are rounded in place, so that its sampler draws what the file will.
    """
    build = {key: config[key] for key in BUILD_FIELDS}
    average = trainable.averaged
    if average is not None:
        copy_into(average.params, _rounded(average.params, dtype))
        build["options"] = {k: v for k, v in config["options"].items() if k != "ema"}
        state = {"generator": average.batch_norm_statistics(), **_model_buffers(trainable)}
        return build, {"generator": copy_tree(average.params)}, state
    keep = ["generator"] if "discriminator" in trainable.params else list(trainable.params)
    params = {g: _rounded(trainable.params[g], dtype) for g in keep}
    return build, params, {**{g: trainable.state[g] for g in keep if g in trainable.state}, **_model_buffers(trainable)}


def _model_buffers(trainable):
    """State groups of the model itself, not of a network nor of the average: a self-conditioned GAN's
    cluster shares (minigen.models.selfcond), which its sampler draws the clusters by."""
    average = trainable.averaged.state if trainable.averaged is not None else None
    return {g: s for g, s in trainable.state.items() if g not in trainable.params and s is not average}


def _rounded(tree, dtype):
    """A float32 copy of `tree` whose values are those `dtype` can hold."""
    return rebuild(tree, (np.asarray(leaf).astype(STORAGE[dtype]).astype(np.float32) for leaf in leaves(tree)))


def save(path, build, params, state, dtype="float32"):
    """Write a pretrained-weights .npz atomically: params stored as `dtype`, state (small) as it is,
    `build` (BUILD_FIELDS) as its meta.json."""
    if dtype not in STORAGE:
        raise ValueError(f"dtype must be one of {', '.join(STORAGE)}, got {dtype!r}")
    arrays = {k: v.astype(STORAGE[dtype]) if np.issubdtype(v.dtype, np.floating) else v
              for k, v in flatten(params, "params").items()}
    write_checkpoint(path, {**arrays, **flatten(state, "state")}, build)
    return Path(path)
