"""The run directory's safety rules: one writer (a lock), no foreign files overwritten, a readable config.

One writer per run directory: an exclusive lock on `RUN_DIR/run.lock`, which names its holder.

Two `minigen train` processes in one folder would interleave metrics.jsonl and
overwrite each other's checkpoints, so the writer of a run holds an exclusive
flock(2) on `run.lock` and writes its pid and host into it. The kernel drops a
flock when its process dies, however it dies (kill -9, a crash), so a lock can
never outlive its holder: a lock file whose flock is free is stale, and is
taken over with a message naming the process that left it.
"""
import fcntl
import json
import math
import os
import socket
import warnings
from pathlib import Path

LOCK_NAME = "run.lock"


class RunLocked(RuntimeError):
    """Another live process holds the run directory's lock."""


def _holder(fd):
    """The {"pid", "host"} written in the open lock file, or None if there is none."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 4096).decode() or "null")
    except ValueError:
        return None
    return holder if isinstance(holder, dict) and "pid" in holder and "host" in holder else None


class RunLock:
    """Context manager: hold `folder/run.lock` for the duration of a `with` block.

    notify: callable(str) for the message when a stale lock is taken over
        (default: warnings.warn); library code does not print.
    Raises RunLocked naming the holder's pid and host when a live process holds it.
    """

    def __init__(self, folder, notify=None):
        self.path = Path(folder) / LOCK_NAME
        self.notify = notify or (lambda message: warnings.warn(message, stacklevel=3))
        self.me = {"pid": os.getpid(), "host": socket.gethostname()}
        self.fd = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd) or {"pid": "?", "host": "?"}
                os.close(fd)
                raise RunLocked(f"{self.path.parent} is in use by process {holder['pid']} on host "
                                f"{holder['host']} (it holds {self.path}); a run directory takes one writer: "
                                f"wait for that process to end, or train into another --out") from None
            try:  # the holder we waited out may have removed the file: then lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _holder(fd)
        if old is not None and old != self.me:
            self.notify(f"taking over the stale lock of process {old['pid']} on {old['host']} "
                        f"(it ended without releasing {self.path})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(self.me) + "\n").encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # unlink while still locked: no one can take the old inode
            os.close(self.fd)
            self.fd = None
        return False


# --- What may be written where ---------------------------------------------------

RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.npz", "loss.png")  # what a run writes at its top


def prepare(out, resume=False, overwrite=False, notify=None):
    """Check that a run may be written into `out`, before anything is; call it holding the lock.

    A new run goes into a missing or empty folder. A folder holding a minigen run
    (a config.json) is continued with resume=True or, with overwrite=True, its run
    files are removed and it starts again (other files in it are kept). Any other
    non-empty folder is refused: minigen never writes into a folder it did not make.
    Stale `checkpoint.npz*.tmp` files (a process killed while saving) are removed.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME) if out.is_dir() else []
    notify = notify or (lambda message: warnings.warn(message, stacklevel=3))
    for tmp in sorted(out.glob("checkpoint.npz*.tmp")) if out.is_dir() else []:
        tmp.unlink()
        entries.remove(tmp.name)
        notify(f"removed {tmp}, left by a process killed while it wrote a checkpoint")
    if resume or not entries:
        return
    if not (out / "config.json").is_file():
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise FileExistsError(f"{out} is not empty ({shown}) and is not a minigen run: minigen writes only "
                              f"into new or empty folders and its own runs; choose another --out")
    if not overwrite:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it, --overwrite to "
                              f"start it again from scratch, or choose another --out")
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for picture in (out / "samples").glob("epoch_*.png"):
        picture.unlink()
    notify(f"--overwrite: removed the previous run's files from {out}")


def blas_threads():
    """How many threads the BLAS under numpy uses (OpenBLAS asked directly), else None.

    Matrix products sum in an order that depends on the thread count, so runs are
    bit-for-bit repeatable only at a fixed count: the run records it.
    """
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libraries = {line.split()[-1] for line in f if "blas" in line.lower() and line.split()[-1][0] == "/"}
    except OSError:
        libraries = set()
    for path in sorted(libraries):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(library, name):
                return int(getattr(library, name)())
    return None


# --- config.json, checked as it is read -----------------------------------------

def _positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _positive_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


CONFIG_FIELDS = {  # key -> (check, what it must be); None is allowed where the check says so
    "model": (lambda v: isinstance(v, str), "a model name such as \"vae\""),
    "epochs": (_positive_int, "a positive integer"),
    "batch_size": (_positive_int, "a positive integer"),
    "lr": (lambda v: v is None or _positive_number(v), "null or a positive finite number"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer"),
    "options": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v), "a {name: value} object"),
    "data": (lambda v: v in ("sample", "mnist"), "\"sample\" or \"mnist\""),
    "data_dir": (lambda v: v is None or isinstance(v, str), "null or a folder name"),
    "checkpoint_every": (lambda v: v is None or _positive_int(v), "null or a positive integer"),
    "minutes": (lambda v: v is None or _positive_number(v), "null or a positive number of minutes"),
}
ADDED_LATER = ("minutes",)  # settings that runs made before them lack: checked when present, never required


def read_config(run_dir, required=("model", "options", "seed", "lr")):
    """The config.json of a run directory, checked key by key; errors name the file.

    required: the settings that must be present (what loading the model needs; resuming
    from the command line needs them all); any other known setting present is checked too."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a minigen run directory (no config.json); "
                                f"runs are made by `minigen train MODEL`")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"{path}: not valid JSON ({err}); it was edited or damaged: restore it "
                         f"(the checkpoint's meta holds a copy) or start a new run") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object of the run's settings, got {type(config).__name__}")
    for key, (check, what) in CONFIG_FIELDS.items():
        if key not in config and key not in required:
            continue
        if key not in config:
            raise ValueError(f"{path}: the setting {key!r} is missing; restore the file or start a new run")
        if not check(config[key]):
            raise ValueError(f"{path}: {key} must be {what}, got {config[key]!r}")
    return config
