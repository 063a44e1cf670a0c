"""Teaching: a student copy of minigen with the solutions cut out, and its autograder.

The library's own source stays the single source of truth. Inside the body of each
exercise function the reference solution sits between two comment lines,
`BEGIN SOLUTION` and `END SOLUTION` after a single '#' (the plain-Python form that
nbgrader and otter-grader also read); the library runs normally with them in place.
`minigen assign OUT_DIR` writes

    OUT_DIR/minigen/       the whole package, each selected solution replaced by
                           "# YOUR CODE HERE" and raise NotImplementedError("<exercise>: ...")
    OUT_DIR/autograder/    pytest tests with points, reference *values* (.npz), a runner
    OUT_DIR/ASSIGNMENT.md  what to implement, where, for how many points
    OUT_DIR/notebooks/     with --format notebook: a Jupyter notebook per part

Fail closed, because released course material has leaked solutions through a
mistyped or unbalanced marker: markers are found with `tokenize` (text inside a
string is not a marker), anything that looks like a marker but is not exactly one
is an error, as are nested or unclosed blocks and marked code that belongs to no
registered exercise; every written module must `ast.parse`; and no marker text and
no line of a stripped solution may appear anywhere in OUT_DIR.
"""
import ast
import shutil
from pathlib import Path

from minigen.autograder.handout import assignment_text
from minigen.autograder.notebooks import write_notebooks
from minigen.autograder.shipping import find_leaks, package_files
from minigen.autograder.strip import MarkerError, find_regions, locate, strip_source

__all__ = ["assignment_text", "build", "find_leaks", "self_test"]
STUDENT_ASSIGN_PY = '''"""`minigen assign` builds assignments from the instructor's copy, not from a student copy."""


def instructors_only(*args, **kwargs):
    raise ValueError("`minigen assign` needs the instructor's copy of minigen; this is a student copy")


build = self_test = list_text = instructors_only  # what minigen.cli_assign calls
'''


# --- The package as a whole ---------------------------------------------------------

def package_dir():
    """The instructor's minigen: the installed (or checked-out) package this module belongs to."""
    return Path(__file__).resolve().parent


def scan_package(src=None):
    """{relative path: (text, regions with sites)} for every module that would be shipped."""
    src = Path(src or package_dir())
    found = {}
    for rel in package_files(src):
        if rel.suffix != ".py":
            continue
        text = (src / rel).read_text(encoding="utf-8")
        regions = find_regions(text, f"minigen/{rel.as_posix()}")
        module = ".".join(rel.with_suffix("").parts)
        locate(regions, text, f"minigen/{rel.as_posix()}", module)
        found[rel.as_posix()] = (text, regions)
    return found


def check_registry(scanned, exercises):
    """Every marked region belongs to an exercise and every exercise has its markers."""
    sites = {site: ex.name for ex in exercises for site in ex.sites}
    marked = set()
    for rel, (_, regions) in scanned.items():
        for region in regions:
            if region.site not in sites:
                raise MarkerError(f"minigen/{rel}:{region.first}: a solution in {region.site} belongs to no "
                                  f"exercise; register it in minigen/autograder/cases.py (EXERCISES)")
            marked.add(region.site)
    for site, name in sites.items():
        if site not in marked:
            raise MarkerError(f"exercise {name}: {site} has no solution markers")


def select(names=None):
    """The enabled exercises named in `names` (a list or a comma-separated string), all if None."""
    from minigen.autograder.cases import EXERCISES
    enabled = [ex for ex in EXERCISES if ex.enabled]
    if names is None:
        return enabled
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    known = {ex.name: ex for ex in enabled}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown exercise(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from: {', '.join(known)}")
    return [known[n] for n in dict.fromkeys(names)]


def _solution_lines(text, regions, selected):
    """(the stripped lines of the selected solutions, every other line of the file), for the leak check."""
    lines, inside = text.splitlines(), set()
    solutions = []
    for region in regions:
        if region.site in selected:
            rows = range(region.first, region.last + 1)
            inside.update(rows)
            body = ([lines[region.first - 1][:region.code_end]] if region.kind == "line"
                    else lines[region.first:region.last - 1])
            solutions += [line.strip() for line in body if sum(ch.isalnum() for ch in line) >= 3]
    return solutions, [line.strip() for row, line in enumerate(lines, 1) if row not in inside]


def _check_destination(out, src, force):
    target = out / "minigen"
    if target == src or target in src.parents or out == src or src in out.parents:
        raise ValueError(f"refusing to write a student copy over the instructor's package {src}; "
                         f"choose an OUT_DIR outside it")
    ours = [out / name for name in OUTPUTS if (out / name).exists()]
    if ours and not force:
        raise ValueError(f"{out} already holds {', '.join(p.name for p in ours)}; pass --force to replace them")
    return ours


OUTPUTS = ("minigen", "autograder", "ASSIGNMENT.md", "notebooks")  # what build() writes into OUT_DIR


def build(out_dir, exercises=None, stub="raise", force=False, seed=0, private=False, src=None, notebooks=False):
    """Write the student copy, its autograder and ASSIGNMENT.md to out_dir; return the exercises.

    exercises: names to strip (a list or "a,b"); None for all. The others keep their
    solution (markers removed) and are not graded. stub: "raise" (NotImplementedError)
    or "ellipsis" (otter's `...`). seed and private pick the checks' inputs: a private
    build (the teacher's, for `minigen grade`) draws them from another stream than any
    public one, so the inputs students have seen are never those their grades come from.
    src: the package to copy (default: this one); only its allow-listed files ship.
    notebooks: also write OUT_DIR/notebooks/, one Jupyter notebook per part (needs nbformat).
    """
    import tempfile

    from minigen.autograder import reference
    from minigen.autograder.cases import EXERCISES
    if stub not in ("raise", "ellipsis"):
        raise ValueError(f"stub must be 'raise' or 'ellipsis', got {stub!r}")
    chosen, src, out = select(exercises), Path(src or package_dir()).resolve(), Path(out_dir).resolve()
    old = _check_destination(out, src, force)
    scanned = scan_package(src)
    check_registry(scanned, EXERCISES)
    selected = {site: ex.name for ex in chosen for site in ex.sites}
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assign-", dir=out))  # all checks pass before anything is in place
    try:
        solutions, elsewhere = [], []
        for rel in package_files(src):  # an allow-list: .py files and the data the code loads
            path, dest = src / rel, staging / "minigen" / rel
            if rel.as_posix() in scanned:
                text, regions = scanned[rel.as_posix()]
                student = strip_source(text, regions, selected, stub)
                try:
                    ast.parse(student, str(rel))
                except SyntaxError as err:
                    raise MarkerError(f"minigen/{rel}: the student copy does not parse at its line {err.lineno} "
                                      f"({err.msg}); check the solution markers around there") from err
                cut, kept = _solution_lines(text, regions, selected)
                solutions, elsewhere = solutions + cut, elsewhere + kept
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(student, encoding="utf-8")
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
        (staging / "minigen" / "assign.py").write_text(STUDENT_ASSIGN_PY, encoding="utf-8")
        manifest = reference.write_autograder(staging / "autograder", chosen, stub, seed, private)
        written = write_notebooks(staging, manifest) if notebooks else []
        (staging / "ASSIGNMENT.md").write_text(assignment_text(manifest, stub, [p.name for p in written]),
                                               encoding="utf-8")
        leaks = find_leaks(staging, set(solutions), elsewhere)
        if leaks:
            raise MarkerError("the student copy would leak solutions (marker text or solution lines):\n  "
                              + "\n  ".join(leaks[:20]))
        for path in old:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for name in OUTPUTS:
            if (staging / name).exists():
                (staging / name).rename(out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return chosen


def self_test(out_dir):
    """Grade the student copy in out_dir and the instructor's package with out_dir's autograder.

    Returns ({"student": (report, text), "reference": (report, text)}, problems): the
    problems list every reference check that fails and every student check that fails
    other than with the stub's NotImplementedError (an import error, say). The student copy
    runs as students run it (python -m autograder), the reference through grade.py --package.
    """
    import json
    import subprocess
    import sys
    import tempfile
    out = Path(out_dir).resolve()
    grade_py = str(out / "autograder" / "grade.py")
    commands = {"student": [sys.executable, "-m", "autograder"],
                "reference": [sys.executable, grade_py, "--package", str(package_dir().parent)]}
    reports, problems = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in commands.items():
            report = Path(tmp) / f"{name}.json"
            result = subprocess.run(command + ["--json", str(report)], cwd=out, capture_output=True, text=True)
            if not report.is_file():
                raise RuntimeError(f"the autograder did not run on the {name}:\n{result.stdout}{result.stderr}")
            reports[name] = (json.loads(report.read_text(encoding="utf-8")), result.stdout)
    manifest = json.loads((out / "autograder" / "manifest.json").read_text(encoding="utf-8"))
    stubbed = manifest.get("stub") == "raise"  # otter's `...` stubs fail in other ways
    for row in reports["reference"][0]["exercises"]:
        problems += [f"reference fails {row['exercise']}.{c['check']}: {c['message']}" for c in row["checks"]
                     if not c["passed"]]
    for row in reports["student"][0]["exercises"]:
        problems += [f"student copy: {row['exercise']}.{c['check']} " + ("passes" if c["passed"] else
                     f"fails with {c['message'].splitlines()[0]}") for c in row["checks"]
                     if c["passed"] or (stubbed and not c["message"].startswith("NotImplementedError"))]
    return reports, problems


# --- The exercises, listed -----------------------------------------------------------

def list_text():
    """The exercises, their points, concepts and sites, and the total: what `minigen assign --list` prints."""
    from minigen.autograder.cases import EXERCISES, checks_for
    lines = [f"  {'exercise':30s} {'points':>6s}  concept  [where]"]
    for ex in EXERCISES:
        points = sum(c.points for c in checks_for(ex.name))
        state = "" if ex.enabled else "  (not enabled)"
        lines.append(f"  {ex.name:30s} {points:>6d}  {ex.title}  [{', '.join(ex.sites)}]{state}")
    from minigen.autograder.reference import graded_checks
    enabled = [ex for ex in EXERCISES if ex.enabled]
    total = sum(c.points for ex in enabled for c in checks_for(ex.name))
    together = sum(c.points for ex in enabled for c in graded_checks(ex, [e.name for e in enabled]))
    return "\n".join(lines + [f"  {'total':30s} {total:>6d}  ({together} with all of them assigned: a check that "
                                f"runs another assigned exercise's code is left out)"])
