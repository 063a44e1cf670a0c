"""Grade a class: every submission, with the teacher's private autograder, into one CSV gradebook.

    minigen grade SUBMISSIONS_DIR --autograder PRIVATE_BUILD --out grades.csv [--config points.json]

SUBMISSIONS_DIR holds one entry per student, named by student id: a folder (holding
minigen/, directly or one or two levels down) or a .zip of one. PRIVATE_BUILD is a
`minigen assign --private` build (its autograder/ folder). Each submission is graded by
that autograder's own runner (each exercise in an isolated process with a time limit,
see autograder/sandbox.py), several students at a time. Written:

    grades.csv             student, points per exercise, total, status, time (s)
    grades-reports/ID.json  the full report: every check and message, the autograder's
                           version, SHA-256 and seed, a timestamp, the SHA-256 of every graded file

Re-running is idempotent: a student whose files, autograder and config are unchanged
keeps their report (and timestamp) and is not graded again; the CSV is rewritten whole.
config (JSON, optional): {"points": {exercise: points}, "timeouts": {exercise: seconds}}
re-weights exercises (the same fraction of other points) and changes their time limits.
"""
import csv
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MAX_UNZIPPED = 200 * 2**20  # bytes a submission's zip may unpack to


def load_grader(build):
    """The grade module of the autograder in `build` (a build folder holding autograder/, or autograder/ itself)."""
    folder = Path(build).resolve()
    folder = folder / "autograder" if (folder / "autograder" / "manifest.json").is_file() else folder
    if not (folder / "manifest.json").is_file() or not (folder / "grade.py").is_file():
        raise ValueError(f"{build} is not an autograder build (no autograder/manifest.json); "
                         f"make one with `minigen assign PRIVATE_DIR --private --seed N`")
    name = "_minigen_grader_" + hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return importlib.import_module(f"{name}.grade")


def submissions(folder):
    """{student id: folder or .zip} for the entries of `folder` (hidden entries and other files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no such folder of submissions: {folder}")
    found = {}
    for entry in sorted(folder.iterdir()):
        student = entry.stem if entry.suffix == ".zip" else entry.name
        if entry.name.startswith(".") or not (entry.is_dir() or entry.suffix == ".zip"):
            continue
        if student in found:
            raise ValueError(f"student {student} handed in twice: {found[student].name} and {entry.name}")
        found[student] = entry
    return found


def unpack(archive, dest):
    """Extract a submission's zip into dest, refusing absolute paths, '..' and oversized contents."""
    with zipfile.ZipFile(archive) as z:
        members = z.infolist()
        if sum(m.file_size for m in members) > MAX_UNZIPPED:
            raise ValueError(f"{archive.name} unpacks to more than {MAX_UNZIPPED >> 20} MB")
        for m in members:
            if Path(m.filename).is_absolute() or ".." in Path(m.filename).parts:
                raise ValueError(f"{archive.name}: refusing the member {m.filename!r}")
        z.extractall(dest)
    return dest


def package_root(folder):
    """The folder holding minigen/__init__.py: `folder` itself or one or two levels down; None if none."""
    for depth in ("", "*/", "*/*/"):
        hits = sorted(p.parent.parent for p in Path(folder).glob(f"{depth}minigen/__init__.py")
                      if "__MACOSX" not in p.parts)
        if hits:
            return hits[0]
    return None


def _status(report):
    """'ok', or what went wrong, per kind: 'timeout: gaussian_kl; foreign_modules: adam_step'."""
    bad = {}
    for row in report["exercises"]:
        if row["outcome"] != "ok":
            bad.setdefault(row["outcome"], []).append(row["exercise"])
    return "; ".join(f"{kind}: {' '.join(names)}" for kind, names in bad.items()) or "ok"


def grade_student(grader, student, source, reports, config, timeout):
    """The student's report: graded now, or kept from an earlier run of the same files and grader."""
    path = reports / f"{student}.json"
    with tempfile.TemporaryDirectory(prefix=f"minigen-{student}-") as tmp:
        try:
            root = package_root(unpack(source, Path(tmp)) if source.is_file() else source)
        except (ValueError, zipfile.BadZipFile, OSError) as err:
            root, problem = None, f"error: {err}"
        else:
            problem = None if root else "missing: no minigen/__init__.py in the submission"
        if root is None:
            report = {"student": student, "status": problem, "points": 0, "exercises": [], "seconds": 0}
        else:
            files, key = grader.graded_files(root), {"sha256": grader.autograder_hash(), "config": config}
            old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            if old.get("files") == files and old.get("cache_key") == key and timeout is None:
                return old
            try:
                report = {"student": student, **grader.grade(root, config=config, timeout=timeout), "cache_key": key}
                report["status"] = _status(report)
            except Exception as err:  # noqa: BLE001 (one odd submission must not stop the class)
                report = {"student": student, "status": f"error: {type(err).__name__}: {err}", "points": 0,
                          "exercises": [], "seconds": 0}
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def grade_class(submissions_dir, build, out_csv, config=None, jobs=None, timeout=None, allow_public=False):
    """Grade every submission in submissions_dir with the autograder in `build`; write out_csv and the
    reports beside it. config: a dict or a JSON file. Returns the CSV's rows (dicts)."""
    grader = load_grader(build)
    if not grader.MANIFEST.get("private") and not allow_public:
        raise ValueError("this autograder is a public build: its inputs and reference values went to the students. "
                         "Grade with a private one: `minigen assign PRIVATE_DIR --private --seed N`")
    if config is not None and not isinstance(config, dict):
        config = json.loads(Path(config).read_text(encoding="utf-8"))
    exercises = [ex["name"] for ex in grader.MANIFEST["exercises"]]
    unknown = set((config or {}).get("points", {})) | set((config or {}).get("timeouts", {}))
    if unknown - set(exercises):
        raise ValueError(f"config names unknown exercise(s) {', '.join(sorted(unknown - set(exercises)))}; "
                         f"this autograder has: {', '.join(exercises)}")
    out_csv = Path(out_csv)
    reports = out_csv.with_name(out_csv.stem + "-reports")
    reports.mkdir(parents=True, exist_ok=True)
    todo = submissions(submissions_dir)
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        done = pool.map(lambda item: grade_student(grader, *item, reports, config, timeout), todo.items())
        rows = [_row(report, exercises) for report in done]
    tmp = out_csv.with_name(f".{out_csv.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["student", *exercises, "total", "status", "time_s"])
        writer.writeheader()
        writer.writerows(rows)
    shutil.move(tmp, out_csv)
    return rows


def _row(report, exercises):
    points = {row["exercise"]: row["points"] for row in report["exercises"]}
    return {"student": report["student"], **{ex: points.get(ex, 0) for ex in exercises},
            "total": report["points"], "status": report["status"], "time_s": report["seconds"]}


def summary(rows, out_csv):
    """A few lines for the terminal: how many were graded, how many need a look, where the CSV is."""
    odd = [f"  {r['student']}: {r['status']}" for r in rows if r["status"] != "ok"]
    return "\n".join([f"graded {len(rows)} submission(s) into {out_csv}"]
                     + ([f"{len(odd)} need a look:"] + odd if odd else []))
