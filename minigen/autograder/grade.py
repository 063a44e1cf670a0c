"""Grade a minigen against this assignment: a report per exercise, as text and as JSON.

    python -m autograder                          from the assignment's folder
    python autograder/grade.py                    the same, from anywhere
    python autograder/grade.py --exercises gaussian_kl,adam_step -v
    python private/autograder/grade.py --package SUBMISSION --json alice.json

Each exercise runs in a Python process of its own (sandbox.py) with a time limit;
this process compares what comes back with the reference values, which only it
reads. An exercise's points are the sum of the checks it passes (see cases.py);
the report names each failing exercise's first failure. Exit status 0 on full marks.
"""
import argparse
import datetime
import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__:
    from . import cases, compare, sandbox
else:  # run as a script: load this folder as a package under a name of its own
    if sys.path and Path(sys.path[0]).resolve() == HERE:
        sys.path.pop(0)  # this folder's modules are not top-level modules
    _spec = importlib.util.spec_from_file_location("_autograder", HERE / "__init__.py",
                                                   submodule_search_locations=[str(HERE)])
    sys.modules["_autograder"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["_autograder"])
    cases, compare, sandbox = (importlib.import_module(f"_autograder.{m}") for m in ("cases", "compare", "sandbox"))

# In the library's own copy (minigen/autograder/, not a build) there is no manifest: judge() still works.
MANIFEST = (json.loads((HERE / "manifest.json").read_text(encoding="utf-8")) if (HERE / "manifest.json").is_file()
            else {"exercises": []})


def load_data(exercise):
    """{npz key: array} of data/<exercise>.npz: inputs, reference outputs, known mistakes' outputs."""
    with np.load(HERE / "data" / f"{exercise}.npz", allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def part(data, prefix):
    """The arrays stored under "<prefix>/<name>", by name."""
    return {key[len(prefix) + 1:]: value for key, value in data.items() if key.startswith(prefix + "/")}


def run_exercise(root, name, timeout, verbose=False):
    """(sandbox.Outcome, the exercise's data) for exercise `name` on the minigen in folder `root`."""
    data = load_data(name)
    inputs = {key.replace("/in/", "/", 1): v for key, v in data.items() if "/in/" in key}
    return sandbox.run(root, name, inputs, timeout, verbose), data


def judge(c, data, outcome):
    """None if check `c` (its manifest entry) passes on the outcome; else the message."""
    if outcome.status != "ok":
        return outcome.message
    if c["id"] in outcome.errors:
        return outcome.errors[c["id"]]
    check = next(k for k in cases.CHECKS if k.id == c["id"])
    mistakes = {name: (hint, part(data, f"{c['id']}/mistake/{name}")) for name, hint in c["mistakes"].items()}
    accepted = {name: part(data, f"{c['id']}/accept/{name}") for name in c.get("accepted", {})}
    try:
        compare.verify(outcome.outputs.get(c["id"], {}), part(data, f"{c['id']}/out"), check.rtol, mistakes,
                       check.hint, check.gradient, check.hint_on, accepted, check.given_vjp, check.own_vjp)
    except AssertionError as err:
        return f"AssertionError: {err}"
    return None


def grade_exercise(root, ex, timeout, weight=None, verbose=False):
    """The report's row for exercise `ex` (its manifest entry)."""
    outcome, data = run_exercise(root, ex["name"], timeout, verbose)
    tests = []
    for c in ex["checks"]:
        message = judge(c, data, outcome)
        tests.append({"check": c["name"], "what": c["what"], "passed": message is None,
                      "points": 0 if message else c["points"], "max_points": c["points"], "message": message})
    earned = sum(t["points"] for t in tests)
    first = next((f"{t['check']}: {t['message']}" for t in tests if not t["passed"]), None)
    if outcome.status != "ok":
        first = outcome.message
    points, max_points = earned, ex["points"]
    if weight is not None:  # the teacher's re-weighting: the same fraction of other points
        points, max_points = round(earned / ex["points"] * weight, 2), weight
    return {"exercise": ex["name"], "title": ex["title"], "where": ex["where"], "points": points,
            "max_points": max_points, "status": "pass" if first is None else "partial" if earned else "fail",
            "outcome": outcome.status, "seconds": round(outcome.seconds, 2), "first_failure": first, "checks": tests}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def autograder_hash():
    """One SHA-256 over this autograder's code, manifest and reference data: which grader gave a grade."""
    h = hashlib.sha256()
    for path in sorted(HERE.glob("*.py")) + [HERE / "manifest.json"] + sorted((HERE / "data").glob("*.npz")):
        h.update(f"{path.relative_to(HERE).as_posix()}\0{sha256(path)}\n".encode())
    return h.hexdigest()


def graded_files(root):
    """{path under root: SHA-256} of every file in the graded minigen/ (compiled caches aside)."""
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted((root / "minigen").rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def grade(root, exercises=None, config=None, timeout=None, verbose=False):
    """The report, as a dict, for the minigen in folder `root`. config: {"points": {exercise: points},
    "timeouts": {exercise: seconds}} from the teacher; timeout: seconds for every exercise (overrides)."""
    root, config, started = Path(root).resolve(), config or {}, time.monotonic()
    rows = [grade_exercise(root, ex, timeout or config.get("timeouts", {}).get(ex["name"], ex["timeout"]),
                           config.get("points", {}).get(ex["name"]), verbose)
            for ex in MANIFEST["exercises"] if not exercises or ex["name"] in exercises]
    return {"package": str(root / "minigen"), "points": round(sum(r["points"] for r in rows), 2),
            "max_points": round(sum(r["max_points"] for r in rows), 2), "exercises": rows,
            "autograder": {"minigen": MANIFEST["minigen"], "seed": MANIFEST["seed"],
                           "private": MANIFEST.get("private", False), "sha256": autograder_hash()},
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 2), "files": graded_files(root)}


def format_report(report):
    lines = [f"autograder report for {report['package']}", "", f"  {'exercise':32s} {'points':>7s}  status"]
    for r in report["exercises"]:
        lines.append(f"  {r['exercise']:32s} {r['points']:>3g}/{r['max_points']:<3g}  {r['status'].upper()}")
        if r["first_failure"]:
            first, *rest = r["first_failure"].splitlines()
            lines += [f"      {first}"] + [f"      {line}" for line in rest]
    lines += ["", f"  {'total':32s} {report['points']:>3g}/{report['max_points']:<3g}"]
    return "\n".join(line.rstrip() for line in lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=HERE.parent,
                        help="folder holding the minigen/ to grade (default: the one beside autograder/)")
    parser.add_argument("--json", type=Path, default=HERE / "report.json", help="where to write the JSON report")
    parser.add_argument("--exercises", default=None, help="comma-separated exercise names (default: all)")
    parser.add_argument("--config", type=Path, help="JSON: {\"points\": {exercise: n}, \"timeouts\": {exercise: s}}")
    parser.add_argument("--timeout", type=float, help="seconds each exercise may run (default: per exercise)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing; write the JSON report only")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the full traceback of each error")
    args = parser.parse_args(argv)
    known = [ex["name"] for ex in MANIFEST["exercises"]]
    exercises = [n.strip() for n in args.exercises.split(",") if n.strip()] if args.exercises else None
    if exercises and set(exercises) - set(known):
        parser.error(f"unknown exercise(s) {', '.join(sorted(set(exercises) - set(known)))}; "
                     f"this assignment has: {', '.join(known)}")
    root = args.package.resolve()
    if not (root / "minigen" / "__init__.py").is_file():
        parser.error(f"no minigen package in {root} (expected {root / 'minigen' / '__init__.py'})")
    config = json.loads(args.config.read_text(encoding="utf-8")) if args.config else None
    report = grade(root, exercises, config, args.timeout, args.verbose)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if not args.quiet:
        print(format_report(report))
        print(f"\n  (JSON report: {args.json})")
    return 0 if report["points"] == report["max_points"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
