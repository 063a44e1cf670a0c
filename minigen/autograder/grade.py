"""Grade a minigen against this assignment: a report per exercise, as text and as JSON.

    python -m autograder                          from the assignment's folder
    python autograder/grade.py                    the same, from anywhere
    python autograder/grade.py --exercises gaussian_kl,adam_step -v

Each exercise's points are the sum of the checks it passes (see cases.py); the
report names each failing exercise's first failure. Exit status 0 on full marks.
"""
import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)  # run as a script: this folder's modules are not top-level modules

import pytest  # noqa: E402 (after the path fix)


class Outcomes:
    """A pytest plugin that records, per check id, whether it passed and its first failure."""

    def __init__(self, package_root):
        self.package_root, self.passed, self.failed = package_root, set(), {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        check = item.callspec.id if hasattr(item, "callspec") else item.nodeid
        if report.failed and check not in self.failed:
            self.failed[check] = self.describe(call.excinfo)
        elif report.when == "call" and report.passed:
            self.passed.add(check)

    def describe(self, excinfo):
        if excinfo is None:
            return "failed"
        text = f"{excinfo.typename}: {excinfo.value}".rstrip()
        if excinfo.typename in ("AssertionError", "NotImplementedError"):
            return text
        # Where in the graded package it went wrong, for errors raised by the student's code.
        inside = [e for e in excinfo.traceback if str(e.path).startswith(str(self.package_root / "minigen"))]
        if inside:
            text += f"\n  (raised at {Path(str(inside[-1].path)).relative_to(self.package_root)}, " \
                    f"line {inside[-1].lineno + 1})"
        return text


def run_checks(package_root, exercises=None, verbose=False):
    """Run the tests with pytest in this process; the Outcomes."""
    os.environ["MINIGEN_GRADE_PACKAGE"] = str(package_root)
    outcomes = Outcomes(package_root)
    args = [str(HERE), "-c", str(HERE / "pytest.ini"), "--rootdir", str(HERE), "-p", "no:cacheprovider"]
    args += ["--tb=short", "-q"] if verbose else ["--tb=no", "-qq", "--no-header", "--no-summary"]
    if exercises:
        args += ["-m", " or ".join(exercises)]
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        code = pytest.main(args, plugins=[outcomes])
    if code not in (0, 1, 5):  # 5: nothing selected
        raise SystemExit(f"autograder: pytest stopped with exit code {code} (run with -v to see why)")
    return outcomes


def build_report(manifest, outcomes, package_root, exercises=None):
    """The report as a dict: per exercise, its checks with points and messages, and the totals."""
    rows = []
    for ex in manifest["exercises"]:
        if exercises and ex["name"] not in exercises:
            continue
        tests = []
        for c in ex["checks"]:
            ok = c["id"] in outcomes.passed and c["id"] not in outcomes.failed
            message = None if ok else outcomes.failed.get(c["id"], "not run")
            tests.append({"check": c["name"], "what": c["what"], "passed": ok, "points": c["points"] if ok else 0,
                          "max_points": c["points"], "message": message})
        earned = sum(t["points"] for t in tests)
        first = next((f"{t['check']}: {t['message']}" for t in tests if not t["passed"]), None)
        rows.append({"exercise": ex["name"], "title": ex["title"], "where": ex["where"], "points": earned,
                     "max_points": ex["points"], "status": "pass" if first is None else "partial" if earned else "fail",
                     "first_failure": first, "checks": tests})
    return {"package": str(package_root / "minigen"), "points": sum(r["points"] for r in rows),
            "max_points": sum(r["max_points"] for r in rows), "exercises": rows}


def format_report(report):
    lines = [f"autograder report for {report['package']}", "",
             f"  {'exercise':32s} {'points':>7s}  status"]
    for r in report["exercises"]:
        lines.append(f"  {r['exercise']:32s} {r['points']:>3d}/{r['max_points']:<3d}  {r['status'].upper()}")
        if r["first_failure"]:
            first, *rest = r["first_failure"].splitlines()
            lines += [f"      {first}"] + [f"      {line}" for line in rest]
    lines += ["", f"  {'total':32s} {report['points']:>3d}/{report['max_points']:<3d}"]
    return "\n".join(line.rstrip() for line in lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=HERE.parent,
                        help="folder holding the minigen/ to grade (default: the one beside autograder/)")
    parser.add_argument("--json", type=Path, default=HERE / "report.json", help="where to write the JSON report")
    parser.add_argument("--exercises", default=None, help="comma-separated exercise names (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output and tracebacks")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
    known = [ex["name"] for ex in manifest["exercises"]]
    exercises = [n.strip() for n in args.exercises.split(",") if n.strip()] if args.exercises else None
    if exercises and set(exercises) - set(known):
        parser.error(f"unknown exercise(s) {', '.join(sorted(set(exercises) - set(known)))}; "
                     f"this assignment has: {', '.join(known)}")
    package_root = args.package.resolve()
    if not (package_root / "minigen" / "__init__.py").is_file():
        parser.error(f"no minigen package in {package_root}")
    report = build_report(manifest, run_checks(package_root, exercises, args.verbose), package_root, exercises)
    print(format_report(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n  (JSON report: {args.json})")
    return 0 if report["points"] == report["max_points"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
