"""Checkpoints on disk: one .npz, written atomically, read without pickle.

Trees of arrays (nested lists/dicts, as the layers and optimisers make them) are
stored flat under path keys such as "params/vae/encoder/1/W"; small facts about
the run (epoch, step, config, rng state) go in one JSON string, "meta.json".
Loading fills template trees of the same model, so a file of another model is
refused with the first key or shape that differs, and nothing is ever unpickled:
a pickled object in an .npz can run arbitrary code when loaded.
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

META_KEY = "meta.json"


def flatten(tree, prefix):
    """{"prefix/0/W": array, ...} for a nested list/dict of arrays."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: np.asarray(tree)}
    flat = {}
    for key, sub in items:
        flat.update(flatten(sub, f"{prefix}/{key}"))
    return flat


def write_atomically(path, arrays):
    """np.savez `arrays` to `path` so that a crash at any moment leaves the old file or the new, never half.

    The file is written beside the target, flushed and fsync'ed, then renamed
    over it (a rename within one file system is atomic on POSIX and Windows).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"cannot save {key!r}: object arrays need pickle; store numbers or strings")
        _check_finite(path, key, value, "cannot save")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private (0600); a checkpoint need not be
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_finite(path, key, value, verb):
    """Refuse a float array holding NaN or Inf: a checkpoint of diverged weights is no checkpoint."""
    if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
        raise ValueError(f"{path}: {verb} {key}: it holds NaN or Inf (a diverged run); minigen checkpoints "
                         f"hold finite numbers only")


def _umask():
    mask = os.umask(0)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def read_arrays(path):
    """Every array of an .npz as a dict, refusing pickles and naming what is wrong with the file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except ValueError as err:
        if "allow_pickle" in str(err) and zipfile.is_zipfile(path):  # a real .npz with an object array
            raise ValueError(f"{path}: holds pickled Python objects; minigen checkpoints never do, "
                             f"and unpickling can run arbitrary code, so it is refused") from None
        raise ValueError(f"{path}: not a readable minigen .npz checkpoint ({err})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: not a readable minigen .npz checkpoint ({err})") from None
    for key, value in arrays.items():
        _check_finite(path, key, value, "refusing")
    return arrays


def save_checkpoint(path, trees, meta=None):
    """Write several named trees, e.g. {"params": ..., "optim": ...}, and a JSON-able `meta` dict."""
    arrays = {}
    for name, tree in trees.items():
        arrays.update(flatten(tree, name))
    write_checkpoint(path, arrays, meta)


def write_checkpoint(path, arrays, meta=None):
    """Write flat arrays ({"params/0/W": array, ...}) and a JSON-able `meta` dict atomically."""
    if meta is not None:
        arrays = {**arrays, META_KEY: np.array(json.dumps(meta))}
    write_atomically(path, arrays)


def load_checkpoint(path, like):
    """Read what save_checkpoint wrote into copies of the template trees in `like` ({name: tree}).

    Returns (trees, meta). Every array must match its template's shape and dtype;
    a template of None takes whatever is stored under that name, as nested dicts
    (for buffers such as BatchNorm's running statistics, created on first use).
    """
    return trees_from_arrays(path, read_arrays(path), like)


def trees_from_arrays(path, stored, like):
    """load_checkpoint's work on arrays already read from `path` (by read_arrays; `path` names the
    file in errors): (trees, meta), each tree checked against its template in `like`."""
    trees = {name: unflatten(stored, name) if template is None else _match(path, name, template, stored)
             for name, template in like.items()}
    meta = json.loads(str(stored[META_KEY])) if META_KEY in stored else {}
    return trees, meta


def save_params(path, params, **extra):
    """Write one parameter tree (and any extra named arrays) to `path` atomically."""
    write_atomically(path, {**flatten(params, "params"), **{k: np.asarray(v) for k, v in extra.items()}})


def load_params(path, like):
    """Read params saved by save_params into a copy of the template tree `like`.

    Returns (params, extra) where extra holds the other arrays in the file.
    """
    stored = read_arrays(path)
    params = _match(path, "params", like, stored)
    return params, {k: v for k, v in stored.items() if not k.startswith("params/")}


def unflatten(stored, prefix):
    """The arrays under `prefix/` as nested dicts keyed by the path's parts (all strings);
    the array itself if one is stored under exactly `prefix`."""
    if prefix in stored:
        return stored[prefix]
    tree = {}
    for key, value in stored.items():
        if key.startswith(prefix + "/"):
            *parents, leaf = key[len(prefix) + 1:].split("/")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return tree


def _match(path, name, template, stored):
    """The tree `name` from the stored arrays, checked key by key against `template`."""
    expected = flatten(template, name)
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(k for k in stored if k.startswith(f"{name}/") and k not in expected)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint is of another model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for key, want in expected.items():
        if stored[key].shape != want.shape or stored[key].dtype != want.dtype:
            raise ValueError(f"{path}: {key} is {stored[key].dtype}{stored[key].shape}, "
                             f"the model expects {want.dtype}{want.shape}")
    return _fill(template, name, stored)


def _fill(tree, prefix, stored):
    if isinstance(tree, dict):
        return {k: _fill(v, f"{prefix}/{k}", stored) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_fill(v, f"{prefix}/{i}", stored) for i, v in enumerate(tree)]
    return stored[prefix]
