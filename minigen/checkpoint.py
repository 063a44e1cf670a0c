"""Parameters on disk: one .npz, written atomically, read without pickle.

A parameter tree (nested lists/dicts of arrays) is stored flat under path keys
such as "params/0/2/W". Loading fills a template tree of the same model, so a
file of another architecture is refused with the first key or shape that differs.
"""
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


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


def save_params(path, params, **extra):
    """Write params (and any extra named arrays) to `path` atomically.

    The file is written beside the target, flushed and fsync'ed, then renamed over
    it: a crash at any moment leaves either the old file or the new, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {**flatten(params, "params"), **{k: np.asarray(v) for k, v in extra.items()}}
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"cannot save {key!r}: object arrays need pickle; store numbers or strings")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_params(path, like):
    """Read params saved by save_params into a copy of the template tree `like`.

    Returns (params, extra) where extra holds the other arrays in the file.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such checkpoint") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: not a readable minigen .npz checkpoint ({err})") from None
    expected = flatten(like, "params")
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(k for k in stored if k.startswith("params/") and k not in expected)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint is of another model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for key, template in expected.items():
        if stored[key].shape != template.shape or stored[key].dtype != template.dtype:
            raise ValueError(f"{path}: {key} is {stored[key].dtype}{stored[key].shape}, "
                             f"the model expects {template.dtype}{template.shape}")
    params = _fill(like, "params", stored)
    return params, {k: v for k, v in stored.items() if not k.startswith("params/")}


def _fill(tree, prefix, stored):
    if isinstance(tree, dict):
        return {k: _fill(v, f"{prefix}/{k}", stored) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_fill(v, f"{prefix}/{i}", stored) for i, v in enumerate(tree)]
    return stored[prefix]
