"""Data: MNIST from its IDX files (checksummed), 2-D toy mixtures, minibatches.

load_mnist looks for the four canonical files in the `data_dir` argument when
one is given (and nowhere else: an explicit folder wins or fails); otherwise in
$MINIGEN_DATA, then the user cache (where it downloads them when online).
Every file's *uncompressed* bytes are checked against the SHA-256 of the
canonical file, so a truncated or corrupted copy is caught at once and
re-compressed copies are still accepted.
"""
import gzip
import hashlib
import os
import struct
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

FILES = {  # split -> (images file, labels file)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SHA256 = {  # of the uncompressed canonical files
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Hashes of the canonical .gz downloads, for pooch to check before we decompress.
DOWNLOAD_HASH = {
    "train-images-idx3-ubyte": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# The sample shipped in the package: the first 3,000 training and first 1,000
# test examples of the canonical files (see mnist_sample/README.md).
SAMPLE_DIR = Path(__file__).parent / "mnist_sample"
SAMPLE_SHA256 = {
    "train-images-idx3-ubyte": "fc10080e92e48998cf561522ec74cfcd9fdc1d3eb6d815e4b8d6392c71460463",
    "train-labels-idx1-ubyte": "fb68983ef4dddd9fd08a65eeffd7110e567eb77e5ef20f1b57f69a7269e7d425",
    "t10k-images-idx3-ubyte": "de7c252b04f05e1f8309634180ccdf286dc6dbac8c579b74e76e02ae0331ca52",
    "t10k-labels-idx1-ubyte": "832c0d20f0dc42e575488c75a83a970787d4c8d4d05831b2ef03701b4a478a90",
}


class DataError(ValueError):
    """A data file is missing, truncated or not what it claims to be."""


def load_mnist(split="train", data_dir=None, fallback_to_sample=False, download=True):
    """MNIST as arrays.

    Returns x: (N, 1, 28, 28) float32 in [0, 1] and y: (N,) int64 labels 0-9,
    N = 60,000 (train) or 10,000 (test).
    With fallback_to_sample=True, a machine with no copy and no network gets the
    packaged 3,000/1,000-example sample instead, with a loud warning.
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = find_mnist(data_dir)
    if folder is None and download and not data_dir:
        folder = _download_to_cache()
    if folder is None:
        if fallback_to_sample:
            warnings.warn("MNIST not found: using the 3,000/1,000-example sample packaged with minigen. "
                          "Figures from it are NOT comparable to full-MNIST results.", stacklevel=2)
            return load_mnist_sample(split)
        raise DataError(_not_found_message(data_dir))
    images, labels = FILES[split]
    return _read_split(folder, images, labels, SHA256)


def load_split(split, data_dir=None, sample=False, fallback_to_sample=False):
    """What a demo or a run trains on: the packaged sample if `sample`, else full MNIST (load_mnist)."""
    if sample:
        return load_mnist_sample(split)
    return load_mnist(split, data_dir, fallback_to_sample=fallback_to_sample)


def load_mnist_sample(split="train"):
    """The small real-MNIST sample shipped inside the package (3,000 train / 1,000 test)."""
    images, labels = FILES[split]
    return _read_split(SAMPLE_DIR, images, labels, SAMPLE_SHA256)


def _read_split(folder, images, labels, sums):
    x = read_idx(Path(folder) / f"{images}.gz", sums[images])
    y = read_idx(Path(folder) / f"{labels}.gz", sums[labels])
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{folder}: {images} holds {x.shape}, {labels} holds {y.shape}; expected "
                        f"(N, 28, 28) images and N labels")
    return (x[:, None].astype(np.float32) / 255.0), y.astype(np.int64)


def search_path(data_dir=None):
    """Where load_mnist looks, in order: only `data_dir` when given, else $MINIGEN_DATA and the cache.

    A folder named explicitly that is a file is refused here, by name."""
    if data_dir:
        _must_be_folder(data_dir, "--data-dir")
        return [Path(data_dir)]
    places = []
    if os.environ.get("MINIGEN_DATA"):
        places.append(_must_be_folder(os.environ["MINIGEN_DATA"], "MINIGEN_DATA"))
    places.append(cache_dir())
    return places


def _must_be_folder(path, what):
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{what}={path} is a file, not a folder: point it at the folder that holds the "
                        f"four MNIST .gz files")
    return path


def cache_dir():
    import pooch  # imported here: only downloads and the cache need it
    return Path(pooch.os_cache("minigen")) / "mnist"


def find_mnist(data_dir=None):
    """The first folder on the search path that holds all four .gz files, or None."""
    for place in search_path(data_dir):
        if all((place / f"{name}.gz").is_file() for name in SHA256):
            return place
    return None


def _download_to_cache():
    """Fetch the canonical files into the cache with pooch; None when offline."""
    import pooch
    target = cache_dir()
    for name, known_hash in DOWNLOAD_HASH.items():
        for mirror in MIRRORS:
            try:
                pooch.retrieve(mirror + name + ".gz", known_hash, fname=name + ".gz", path=target,
                               progressbar=sys.stderr.isatty())
                break
            except Exception as err:  # a mirror down or no network: try the next one
                last_error = err
        else:
            warnings.warn(f"could not download {name}.gz ({last_error})", stacklevel=3)
            return None
    return target


def _not_found_message(data_dir):
    places = "\n".join(f"  {p}" for p in search_path(data_dir))
    files = "\n".join(f"  {name}.gz  (uncompressed SHA-256 {digest})" for name, digest in SHA256.items())
    if data_dir:
        missing = [f"{name}.gz" for name in SHA256 if not (Path(data_dir) / f"{name}.gz").is_file()]
        return (f"MNIST not found in --data-dir {data_dir} (missing {', '.join(missing)}); a folder named "
                f"explicitly is the only one searched. Put the four files\n{files}\nin it, or leave "
                f"--data-dir out to use MINIGEN_DATA or the cache.")
    return (f"MNIST not found (nor downloaded). Put the four files\n{files}\n"
            f"in one of these folders (searched in this order):\n{places}\n"
            f"or set MINIGEN_DATA to the folder that holds them.")


def read_idx(path, sha256=None):
    """Read a gzipped IDX file (LeCun's format: magic, dims, raw big-endian data).

    Checks the SHA-256 of the uncompressed bytes when given, and that the payload
    has exactly as many bytes as the header promises.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty (0 bytes), e.g. an interrupted copy or download; "
                            f"fetch it again")
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except PermissionError:  # the file may be fine: do not advise deleting it
        raise DataError(f"{path}: permission denied: this user cannot read it; fix its permissions "
                        f"(e.g. chmod a+r) or copy it to a folder of your own") from None
    except (OSError, EOFError) as err:  # BadGzipFile is an OSError; truncation is EOFError
        raise DataError(f"{path}: not a readable gzip file ({err}); expected an IDX file whose "
                        f"uncompressed SHA-256 is {sha256}. Delete it and fetch it again.") from None
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"{path}: checksum mismatch, the file is corrupt or not the canonical one.\n"
                        f"  expected SHA-256 {sha256}\n  found    SHA-256 {hashlib.sha256(raw).hexdigest()}")
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    payload = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(dims)):
        raise DataError(f"{path}: header promises {dims} = {int(np.prod(dims))} bytes, "
                        f"file holds {payload.size}: truncated or corrupt")
    return payload.reshape(dims)


def binarize(rng, x):
    """Dynamic binarization: each pixel drawn as Bernoulli(intensity), anew each time it is used."""
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def balanced_indices(rng, labels, n, n_classes=10):
    """Sorted indices of n examples, n / n_classes of each class, drawn with rng (a small labelled set).

    labels: (N,) int. The draw is class by class, 0 first, so a seed gives the same set everywhere.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected integer labels of shape (N,), got {labels.dtype} of shape {labels.shape}")
    if n <= 0 or n % n_classes:
        raise ValueError(f"a balanced labelled set needs a positive multiple of {n_classes} examples "
                         f"(the same number per class), got {n}")
    per_class = n // n_classes
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} images, fewer than the {per_class} per class "
                             f"that {n} balanced labels need")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


# --- Minibatches -----------------------------------------------------------------

def batches(rng, *arrays, batch_size=128, shuffle=True, drop_last=False, order=None, skip=0):
    """Yield tuples of minibatches of `arrays` (all with the same first axis).

    The order comes from `rng` (a numpy Generator), so a seeded run is repeatable;
    or pass it as `order` (a permutation), and `skip` minibatches already done —
    how a run resumed in the middle of an epoch picks up where it stopped.
    Float arrays are checked once, up front, for NaN/Inf: a bad example found here
    names its index, instead of a NaN loss appearing steps later.
    """
    n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            raise ValueError(f"batches: arrays have different lengths {[len(a) for a in arrays]}")
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            bad = int(np.argwhere(~np.isfinite(a.reshape(n, -1)).all(axis=1))[0, 0])
            raise ValueError(f"batches: example {bad} contains NaN or Inf")
    if order is None:
        order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(skip * batch_size, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(a[idx] for a in arrays)


# --- 2-D mixtures for the mode-collapse lab ---------------------------------------

class Mixture(NamedTuple):
    """Samples x (n, 2) float32, mode centres (k, 2), the per-mode std and labels (n,)."""
    x: np.ndarray
    centres: np.ndarray
    std: float
    labels: np.ndarray


def ring(rng, n=2500, n_modes=8, radius=2.0, std=0.02):
    """Equal mixture of n_modes Gaussians evenly spaced on a circle.

    The 2D-ring benchmark of the mode-collapse literature (VEEGAN, PacGAN); the
    radius and std here are minigen's defaults, check a paper's own before comparing.
    """
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return _mixture(rng, n, radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), std)


def grid(rng, n=2500, side=5, spacing=2.0, std=0.02):
    """Equal mixture of side x side Gaussians on a lattice centred at 0.

    The 2D-grid benchmark (VEEGAN, PacGAN): by default 25 modes at {-4, -2, 0, 2, 4}^2.
    """
    ticks = (np.arange(side) - (side - 1) / 2) * spacing
    return _mixture(rng, n, np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2), std)


def _mixture(rng, n, centres, std):
    labels = rng.integers(len(centres), size=n)
    x = centres[labels] + std * rng.standard_normal((n, 2))
    return Mixture(x.astype(np.float32), centres.astype(np.float32), std, labels)


def make_sample(src_dir, out_dir=SAMPLE_DIR, n_train=3000, n_test=1000):
    """Write the packaged sample: the first n examples of each canonical IDX file."""
    for split, n in (("train", n_train), ("test", n_test)):
        for name in FILES[split]:
            arr = read_idx(Path(src_dir) / f"{name}.gz", SHA256[name])[:n]
            header = struct.pack(f">BBBB{arr.ndim}I", 0, 0, 0x08, arr.ndim, *arr.shape)
            with gzip.GzipFile(Path(out_dir) / f"{name}.gz", "wb", mtime=0) as f:
                f.write(header + arr.tobytes())
