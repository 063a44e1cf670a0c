"""Build an assignment's autograder: run every check on the reference, store the numbers. Never shipped.

For each selected exercise, data/<exercise>.npz holds, per check, the inputs
("<check id>/in/<name>"), the reference's outputs ("<check id>/out/<name>") and
the outputs of each known mistake that the check can tell apart from the
reference ("<check id>/mistake/<mistake>/<name>"). manifest.json lists
exercise -> checks -> points, and the mistakes' hints.
"""
import contextlib
import importlib
import json
import shutil
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from minigen import __version__
from minigen.autograder import cases, generic, mistakes
from minigen.autograder.compare import verify

HERE = Path(__file__).resolve().parent
SHIPPED = {**{name: name for name in ("cases.py", "cases_vae.py", "cases_gan.py", "cases_optim.py",
                                       "cases_backprop.py", "compare.py", "grade.py", "sandbox.py", "child.py")},
           "grader_conftest.py": "conftest.py", "grader_tests.py": "test_exercises.py"}
GENERATED = {
    "__init__.py": '"""This assignment\'s autograder. From the folder above: python -m autograder"""\n',
    "__main__.py": "from .grade import main\n\nraise SystemExit(main())\n",
    "pytest.ini": "[pytest]\n# Its own pytest root: no outer configuration applies here.\npython_files = test_*.py\n",
}


def reference_modules():
    """The instructor's modules, in the namespace the probes expect (pkg.losses, ...)."""
    return SimpleNamespace(**{name: importlib.import_module(f"minigen.{name}") for name in cases.MODULES})


@contextlib.contextmanager
def patched(site, make):
    """Temporarily replace the function at `site` ("module.qualname") by make(original)."""
    module, _, qualname = site.partition(".")
    owner = importlib.import_module(f"minigen.{module}")
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = vars(owner)[attr] if isinstance(owner, type) else getattr(owner, attr)
    setattr(owner, attr, make(original))
    try:
        yield
    finally:
        setattr(owner, attr, original)


def _run(check, ref, inputs):
    outputs = check.probe(ref, {k: np.array(v, copy=True) for k, v in inputs.items()})
    return {k: np.asarray(v) for k, v in outputs.items()}


def input_rng(check, seed, private):
    """The generator of a check's inputs. A private build draws from another stream than a public one, even
    with the same seed: the inputs students have seen are never the ones their grades come from."""
    return np.random.default_rng([2 if private else 1, seed, zlib.crc32(check.id.encode())])


def graded_checks(exercise, assigned=()):
    """The checks of `exercise` in an assignment of the exercises named in `assigned`: a check that runs the
    code of another assigned exercise (check.needs) is left out, so that no mistake costs points twice."""
    return [c for c in cases.checks_for(exercise.name) if not set(c.needs) & set(assigned)]


def exercise_data(exercise, seed=0, private=False, assigned=()):
    """({npz key: array}, {check id: {mistake: hint}}, {check id: {accepted form: note}}) for one exercise;
    `seed` and `private` pick the inputs; `assigned` names the exercises of the assignment."""
    ref, data, shown, accepted = reference_modules(), {}, {}, {}
    for check in graded_checks(exercise, assigned):
        inputs = check.inputs(input_rng(check, seed, private))
        expected = _run(check, ref, inputs)
        try:  # the reference must pass its own check (e.g. autograd agrees with finite differences)
            verify(expected, expected, check.rtol, gradient=check.gradient)
        except AssertionError as err:
            raise RuntimeError(f"the reference fails check {check.id}: {err}") from err
        generic.check_reference(check, inputs, expected)  # a backward pass: = autograd's own derivative
        data.update({f"{check.id}/in/{k}": v for k, v in inputs.items()})
        data.update({f"{check.id}/out/{k}": v for k, v in expected.items()})
        shown[check.id], accepted[check.id] = {}, {}
        for m in mistakes.mistakes_for(exercise.name):
            try:
                with patched(m.site, m.make), warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    wrong = _run(check, ref, inputs)
            except Exception:  # a variant that crashes on these inputs leaves nothing to compare
                continue
            try:
                verify(wrong, expected, check.rtol)
                continue  # this check cannot tell the mistake from the reference
            except AssertionError:
                pass
            kind, store = ("accept", accepted) if m.accepted else ("mistake", shown)
            data.update({f"{check.id}/{kind}/{m.name}/{k}": v for k, v in wrong.items() if not k.startswith("_")})
            store[check.id][m.name] = m.hint
    return data, shown, accepted


def where(site):
    module, _, qualname = site.partition(".")
    return f"minigen/{module}.py: {qualname}"


def write_autograder(dest, exercises, stub="raise", seed=0, private=False):
    """Write the autograder for `exercises` (cases.Exercise) into the new folder `dest`."""
    dest = Path(dest)
    (dest / "data").mkdir(parents=True)
    for source, name in SHIPPED.items():
        shutil.copyfile(HERE / source, dest / name)
    for name, text in GENERATED.items():
        (dest / name).write_text(text, encoding="utf-8")
    manifest = {"minigen": __version__, "stub": stub, "seed": seed, "private": private, "exercises": []}
    assigned = [ex.name for ex in exercises]
    for ex in exercises:
        data, shown, accepted = exercise_data(ex, seed, private, assigned)
        np.savez_compressed(dest / "data" / f"{ex.name}.npz", **data)
        checks = graded_checks(ex, assigned)
        manifest["exercises"].append({
            "name": ex.name, "title": ex.title, "where": [where(s) for s in ex.sites],
            "points": sum(c.points for c in checks), "timeout": ex.timeout,
            "forbidden": [where(s) for s in ex.forbidden],
            "checks": [{"id": c.id, "name": c.name, "points": c.points, "what": c.what, "mistakes": shown[c.id],
                        "accepted": accepted[c.id]} for c in checks]})
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest
