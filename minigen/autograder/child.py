"""The graded side: run one exercise's probes on the submission and write back what they return.

Runs in a Python process of its own (see sandbox.py), started with -I -S and a sys.path
holding only this folder, numpy and autograd, and the submission. It never sees the
reference values: it reads the inputs, calls the student's functions, and writes
outputs.npz and outcome.json. The grader process decides the points from those.

    python -I -S -c "..." EXERCISE INPUTS.npz OUT_DIR SECONDS [-v]
"""
import importlib
import json
import math
import os
import resource
import sys
import traceback
from pathlib import Path


class Modules:
    """pkg.losses, pkg.ops, ...: the submission's modules, imported when a probe first asks for one (a missing
    optim.py then costs the Adam exercise, not every exercise)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        module = importlib.import_module(f"minigen.{name}")
        setattr(self, name, module)
        return module


def describe(err, root, verbose):
    """'Type: message', and where in the submission it was raised (or the whole traceback with -v)."""
    text = f"{type(err).__name__}: {err}".rstrip()
    if verbose:
        return text + "\n" + "".join(traceback.format_exception(err)).rstrip()
    if isinstance(err, (AssertionError, NotImplementedError)):
        return text
    inside = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(str(root / "minigen"))]
    if inside:
        text += f"\n  (raised at {Path(inside[-1].filename).relative_to(root)}, line {inside[-1].lineno})"
    return text


def forbid(pkg, exercise, sites):
    """Replace each library function at `sites` by one that fails: it would compute the exercise for the student."""
    for site in sites:
        module, _, name = site.partition(".")

        def refuse(*args, _site=site, **kwargs):
            raise AssertionError(f"{exercise}: write it from its formula; calling {_site}, which "
                                 f"computes (part of) this exercise, is not allowed here")
        setattr(getattr(pkg, module), name, refuse)


def limit_cpu(seconds):
    """From now on, `seconds` of CPU time (the kernel stops the process with SIGXCPU after that). CPU time, not
    wall time: a grader busy with a whole class must not fail a student for its own load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))


def main():
    exercise, inputs_path, out_dir, seconds, *flags = sys.argv[1:]
    out_dir, root = Path(out_dir), Path(os.environ["MINIGEN_SUBMISSION"])
    import numpy as np

    from . import cases  # numpy and autograd are imported: the exercise's time starts now
    limit_cpu(float(seconds))
    (out_dir / "ready").touch()
    with np.load(inputs_path, allow_pickle=False) as f:
        data = {key: f[key] for key in f.files}
    pkg, outputs, errors = Modules(), {}, {}
    ex = cases.exercise(exercise)
    for check in cases.checks_for(exercise):
        inputs = {k[len(check.id) + 1:]: v for k, v in data.items() if k.startswith(check.id + "/")}
        if not inputs:  # a check this assignment leaves out (it runs another assigned exercise's code)
            continue
        try:
            forbid(pkg, exercise, ex.forbidden)
            got = {name: np.asarray(value) for name, value in check.probe(pkg, inputs).items()}
            bad = [n for n, v in got.items() if not np.issubdtype(v.dtype, np.number)]
            if bad:
                raise AssertionError(f"{bad[0]}: expected an array of numbers, got dtype {got[bad[0]].dtype}")
            outputs.update({f"{check.id}/{name}": value for name, value in got.items()})
        except BaseException as err:  # noqa: BLE001 (sys.exit in the student's code is a failure, not an exit)
            errors[check.id] = describe(err, root, bool(flags))
    origins = {name: str(getattr(m, "__file__", None)) for name, m in list(sys.modules.items())
               if name == "minigen" or name.startswith("minigen.")}
    np.savez(out_dir / "outputs.npz", **outputs)
    (out_dir / "outcome.json").write_text(json.dumps({"errors": errors, "modules": origins}), encoding="utf-8")


if __name__ == "__main__":
    main()
