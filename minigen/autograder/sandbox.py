"""Run one exercise on a submission in a Python process of its own, and bring back what it returned.

The grader process (grade.py) never imports the submission. For each exercise it
starts `python -I -S` (no PYTHON* variables, no user or system site-packages, so no
installed or editable copy of minigen) with a sys.path of three entries: a fresh
temporary copy of the probe code (child.py, cases*.py, compare.py), links to numpy
and autograd only, and the submission's folder. The child gets the inputs, never the
reference values; it writes what the student's functions return to a file. Then:

- the child has `timeout` seconds of CPU time from the moment numpy and autograd are
  loaded (the kernel stops it then), and ten times that + 2 min in wall time (for a child
  that sleeps); then its whole process group is killed and the exercise scores 0;
- every minigen.* module the child imported must come from the submission's
  minigen/ folder, or the exercise scores 0 (a `__path__.insert` or a stray
  sys.path entry would have graded somebody else's code);
- a child that ends without writing its results (os._exit(0), a crash) scores 0,
  whatever its exit status.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHILD_FILES = ("child.py", "cases.py", "cases_vae.py", "cases_gan.py", "cases_optim.py", "cases_backprop.py",
               "compare.py")
STARTUP = 120.0  # seconds for Python, numpy and autograd to load on a busy machine: not the student's time
WALL = (10.0, 120.0)  # a child that sleeps is stopped after 10 x its CPU limit + 2 min of wall time
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Outcome:
    status: str                                 # "ok", "timeout", "no_results", "foreign_modules"
    message: str = ""                           # why the exercise scores 0, when status is not "ok"
    outputs: dict = field(default_factory=dict)  # check id -> {name: array}
    errors: dict = field(default_factory=dict)   # check id -> the exception the check raised, as text
    seconds: float = 0.0


def _clean_site(dest):
    """dest/ with links to numpy (and its bundled libraries) and autograd: nothing else from site-packages."""
    import autograd
    dest.mkdir()
    for module in (np, autograd):
        package = Path(module.__file__).resolve().parent
        for path in package.parent.iterdir():
            if path.name == package.name or path.name.startswith(package.name + "."):  # numpy, numpy.libs
                (dest / path.name).symlink_to(path)
    return dest


def _wait(proc, work, timeout):
    """Wait for the child: STARTUP seconds to load numpy, then its time. 'ok' or 'timeout'."""
    start = time.monotonic()
    while not (work / "ready").exists() and proc.poll() is None and time.monotonic() - start < STARTUP:
        time.sleep(0.02)
    try:
        proc.wait(timeout=WALL[0] * timeout + WALL[1])
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's whole group, grandchildren too
        proc.wait()
        return "timeout"
    return "timeout" if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) else "ok"


def foreign_modules(origins, root):
    """The minigen modules in `origins` ({name: file}) that do not come from root/minigen/."""
    inside = str((root / "minigen").resolve()) + os.sep
    return {name: path for name, path in origins.items()
            if path in ("None", "") or not str(Path(path).resolve()).startswith(inside)}


def _start(tmp, root, exercise, timeout, verbose):
    """Lay out the child's folder in tmp and start it; (the process, its work folder)."""
    (tmp / "_grader").mkdir()
    (tmp / "_grader" / "__init__.py").write_text("", encoding="utf-8")
    for name in CHILD_FILES:
        shutil.copyfile(HERE / name, tmp / "_grader" / name)
    site, work = _clean_site(tmp / "site"), tmp / "work"
    work.mkdir()
    path = [str(tmp), str(site), str(root)]
    code = f"import sys; sys.path[:0] = {path!r}; from _grader.child import main; main()"
    command = [sys.executable, "-I", "-S", "-c", code, exercise, str(tmp / "inputs.npz"), str(work), str(timeout)]
    env = {**THREADS, "PATH": os.defpath, "MINIGEN_SUBMISSION": str(root)}
    with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
        proc = subprocess.Popen(command + (["-v"] if verbose else []), cwd=work, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, work


def _results(tmp, work, proc, root, seconds):
    """The Outcome of a child that ended within its time, from the files it wrote (if any)."""
    try:
        outcome = json.loads((work / "outcome.json").read_text(encoding="utf-8"))
        if not (isinstance(outcome.get("errors"), dict) and isinstance(outcome.get("modules"), dict)):
            raise ValueError("outcome.json is not what the child writes")
        with np.load(work / "outputs.npz", allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as err:
        tail = (tmp / "stderr").read_bytes()[-1500:].decode("utf-8", "replace").strip()
        return Outcome("no_results", f"the graded code ended the process (exit status {proc.returncode}) "
                                     f"before it returned any results" + (f":\n{tail}" if tail else "")
                       + ("" if tail else f" ({type(err).__name__})"), seconds=seconds)
    foreign = foreign_modules({str(k): str(v) for k, v in outcome["modules"].items()}, root)
    if foreign:
        lines = [f"{name} was imported from {path}" for name, path in sorted(foreign.items())]
        return Outcome("foreign_modules", f"only the submission's own minigen/ ({root / 'minigen'}) is graded, but "
                                          + "; ".join(lines), seconds=seconds)
    outputs = {}
    for key, value in arrays.items():
        check_id, _, name = key.rpartition("/")
        outputs.setdefault(check_id, {})[name] = value
    return Outcome("ok", outputs=outputs, errors={str(k): str(v)[:4000] for k, v in outcome["errors"].items()},
                   seconds=seconds)


def run(root, exercise, inputs, timeout, verbose=False):
    """Run `exercise`'s probes on the minigen in folder `root`, on `inputs` ({npz key: array}); an Outcome."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="minigen-grade-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "inputs.npz", **inputs)
        started = time.monotonic()
        proc, work = _start(tmp, root, exercise, timeout, verbose)
        status = _wait(proc, work, timeout)
        seconds = time.monotonic() - started
        if status == "timeout":
            return Outcome("timeout", f"stopped at its time limit of {timeout:g} s of CPU time (an endless loop?); "
                                      f"the other exercises are graded as usual", seconds=seconds)
        return _results(tmp, work, proc, root, seconds)
