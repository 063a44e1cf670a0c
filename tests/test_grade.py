"""Grading for real: isolation, attacks, private inputs, shipped bytes, and a class into grades.csv.

The submissions here are written as students would write them (in the student copy's
stubs), independently of the library's solutions; each attack is one a student could
hand in. Builds are kept to two exercises, so that grading stays quick.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_assign import fill  # one student-writes-a-stub helper for both grader test files

from minigen import assign, gradebook

REPO_PACKAGE = Path(assign.__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
EXERCISES = ["gaussian_kl", "adam_step"]

KL = "return 0.5 * np.sum(mu * mu + np.exp(logvar) - 1.0 - logvar, axis=-1)"
ADAM = """b1, b2 = self.betas
m *= b1
m += (1 - b1) * g
v *= b2
v += (1 - b2) * g * g
m_hat = m / (1 - b1 ** self.t)
v_hat = v / (1 - b2 ** self.t)
p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)"""


def student(public, dest, kl=None, adam=None, init=""):
    """A copy of the public student folder with the given answers (None: left as the stub)."""
    shutil.copytree(public, dest, ignore=shutil.ignore_patterns("autograder", "__pycache__"))
    if kl:
        fill(dest, "losses.py", "gaussian_kl", kl)
    if adam:
        fill(dest, "optim.py", "Adam.update", adam)
    if init:
        with open(dest / "minigen" / "__init__.py", "a") as f:
            f.write(init)
    return dest


def grade(build, package, *args):
    """Run build/autograder/grade.py on `package` as the teacher would; (its JSON report, stdout)."""
    report = package.parent / f"{package.name}-report.json"
    result = subprocess.run([sys.executable, str(build / "autograder" / "grade.py"), "--package", str(package),
                             "--json", str(report), *args], env=ENV, capture_output=True, text=True, timeout=300)
    assert report.is_file(), result.stdout + result.stderr
    return json.loads(report.read_text()), result.stdout


def rows(report):
    return {r["exercise"]: r for r in report["exercises"]}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """(public student copy, private grader) of the two exercises, both with seed 0."""
    tmp = tmp_path_factory.mktemp("builds")
    assign.build(tmp / "public", exercises=EXERCISES)
    assign.build(tmp / "private", exercises=EXERCISES, private=True)
    return tmp / "public", tmp / "private"


# --- Isolation: each attack now fails, the honest answer keeps its points -------------------------

def test_honest_answers_score_full_marks_on_the_private_grader(builds, tmp_path):
    public, private = builds
    report, text = grade(private, student(public, tmp_path / "honest", KL, ADAM))
    assert report["points"] == report["max_points"] == 20, text
    assert report["autograder"]["private"] is True and len(report["autograder"]["sha256"]) == 64


def test_a_missing_module_is_not_taken_from_the_installed_minigen(builds, tmp_path):
    """Only losses.py and what it imports handed in: optim must not come from the instructor's package."""
    public, private = builds
    sub = student(public, tmp_path / "partial", KL)
    for path in (sub / "minigen").iterdir():
        if path.name not in ("__init__.py", "losses.py", "ops.py", "autograd_patches.py", "backprop.py", "im2col.py"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    report, _ = grade(private, sub)
    assert rows(report)["gaussian_kl"]["points"] == 10
    adam = rows(report)["adam_step"]
    assert adam["points"] == 0 and "No module named 'minigen.optim'" in adam["first_failure"]


CHEAT_NOOP = """
import sys as _sys
for _module in list(_sys.modules.values()):  # every check the grader holds becomes a no-op that passes
    for _name in ("verify", "judge", "difference", "problem", "consistency", "known_mistake"):
        if hasattr(_module, _name):
            setattr(_module, _name, lambda *args, **kwargs: None)
    for _check in list(getattr(_module, "CHECKS", None) or []):
        if hasattr(_check, "probe"):
            object.__setattr__(_check, "probe", lambda pkg, inputs: {})
"""


def test_code_appended_to_init_cannot_turn_the_checks_off(builds, tmp_path):
    public, private = builds
    report, _ = grade(private, student(public, tmp_path / "noop", init=CHEAT_NOOP))
    assert report["points"] == 0  # (100% on the grader that ran the checks in the student's process)
    messages = [c["message"] for r in report["exercises"] for c in r["checks"]]
    assert all(m.startswith("NotImplementedError") or re.match(r"AssertionError: \w+: no result", m)
               for m in messages), messages
    assert any("no result" in m for m in messages)  # the probes were replaced, in the child, to no avail


def test_path_insert_of_the_instructors_package_scores_zero_and_says_so(builds, tmp_path):
    public, private = builds
    sub = student(public, tmp_path / "pathhack", init=f"\n__path__.insert(0, {str(REPO_PACKAGE)!r})\n")
    report, _ = grade(private, sub)
    assert report["points"] == 0
    modules = {"gaussian_kl": "losses", "adam_step": "optim"}
    for row in report["exercises"]:
        assert row["outcome"] == "foreign_modules"
        name = modules[row["exercise"]]
        assert f"minigen.{name} was imported from {REPO_PACKAGE / name}.py" in row["first_failure"]


def test_os_exit_loses_only_its_own_exercise(builds, tmp_path):
    public, private = builds
    sub = student(public, tmp_path / "exit", "import os\nos._exit(0)", ADAM)
    report, text = grade(private, sub)
    kl, adam = rows(report)["gaussian_kl"], rows(report)["adam_step"]
    assert kl["points"] == 0 and kl["outcome"] == "no_results"
    assert "ended the process (exit status 0) before it returned any results" in kl["first_failure"]
    assert adam["points"] == 10 and "total" in text


# --- Inputs: drawn from the seed, public and private disjoint -----------------------------------

LOOKUP = """import glob as _glob
import numpy as _np
table = {{}}
for _file in _glob.glob({data!r} + "/*.npz"):
    with _np.load(_file) as _f:
        for _key in _f.files:
            if _key.endswith("/in/{arg}"):
                _check = _key[: -len("/in/{arg}")]
                if _check + "/out/{out}" in _f.files:
                    table[_f[_key].tobytes()] = _f[_check + "/out/{out}"]
if {arg}.tobytes() in table:
    return table[{arg}.tobytes()]
raise ValueError("not in the table")"""


def test_a_lookup_table_of_the_public_build_scores_nothing_on_the_private_one(tmp_path):
    names = ["gaussian_kl", "bce_with_logits"]
    public, private = tmp_path / "public", tmp_path / "private"
    assign.build(public, exercises=names)
    assign.build(private, exercises=names, private=True)  # the same seed, 0: still other inputs
    pub, priv = ({k: v for ex in names for k, v in np.load(b / "autograder" / "data" / f"{ex}.npz").items()
                  if "/in/" in k} for b in (public, private))
    assert pub.keys() == priv.keys()
    assert not [k for k in pub if np.array_equal(pub[k], priv[k])]
    data = str(public / "autograder" / "data")
    sub = student(public, tmp_path / "lookup", LOOKUP.format(data=data, arg="mu", out="kl"))
    fill(sub, "ops.py", "bce_with_logits", LOOKUP.format(data=data, arg="logits", out="bce"))
    on_public, _ = grade(public, sub)
    on_private, _ = grade(private, sub)
    assert on_public["points"] >= 11  # the value checks, the ±1e4 logits among them
    assert on_private["points"] == 0


def test_edge_values_sit_at_seeded_places(builds, tmp_path):
    from minigen.autograder import cases, reference
    check = next(c for c in cases.CHECKS if c.id == "bce_with_logits.large_logits")
    drawn = [check.inputs(reference.input_rng(check, seed, private)) for seed, private in ((0, False), (1, False),
                                                                                           (0, True))]
    for inputs in drawn:
        logits = inputs["logits"]
        assert logits.max() > 5e3 and logits.min() < -5e3 and np.all(np.isfinite(logits))
    places = [tuple(np.argwhere(np.abs(d["logits"]) > 5e3).ravel()) for d in drawn]
    assert len(set(places)) == 3


# --- What ships -----------------------------------------------------------------------------

ADAM_SOLUTION_LINE = "s *= self.lr / (1 - b1 ** self.t)"


def test_only_allow_listed_files_ship_and_swap_files_stay_home(tmp_path):
    src = tmp_path / "src" / "minigen"
    shutil.copytree(REPO_PACKAGE, src, ignore=shutil.ignore_patterns("__pycache__"))
    swap = b"b0VIM 9.0\x00\x00\x10\x00" + b"\xff\xfe" * 20 + f"        {ADAM_SOLUTION_LINE}\n".encode()
    (src / ".optim.py.swp").write_bytes(swap)
    (src / "losses.py~").write_text((src / "losses.py").read_text())
    (src / "scratch.txt").write_text("# BEGIN SOLUTION\n")
    assign.build(tmp_path / "out", exercises="adam_step", src=src)
    shipped = {p.relative_to(tmp_path / "out" / "minigen").as_posix() for p in (tmp_path / "out" / "minigen").rglob("*")
               if p.is_file()}
    assert not {".optim.py.swp", "losses.py~", "scratch.txt"} & shipped
    assert {"optim.py", "models/vae.py", "mnist_sample/README.md", "weights/classifier.npz"} <= shipped


def test_leak_check_reads_binary_and_compressed_files(tmp_path):
    (tmp_path / "minigen").mkdir()
    (tmp_path / "minigen" / ".optim.py.swp").write_bytes(b"b0VIM\x00\xff\xfe" + ADAM_SOLUTION_LINE.encode())
    np.savez_compressed(tmp_path / "notes.npz", text=np.frombuffer(b"#  END SOLUTION", dtype=np.uint8))
    leaks = assign.find_leaks(tmp_path, {ADAM_SOLUTION_LINE}, [])
    assert any(".optim.py.swp: binary file holds solution text" in leak for leak in leaks)
    assert any("notes.npz: binary file holds marker text" in leak for leak in leaks)


def test_siblings_that_compute_an_exercise_are_stripped_with_it(tmp_path):
    assign.build(tmp_path, exercises="gaussian_kl,bce_with_logits,generator_loss_nonsaturating")
    code = ("import numpy as np\nfrom minigen import losses, ops\n"
            "for f, args in ((losses.gaussian_kl_between, [np.zeros((1, 2))] * 4), (ops.log_sigmoid, [np.zeros(2)]),"
            " (losses.generator_loss_minimax, [np.zeros(2)])):\n"
            "    try:\n        f(*args)\n    except NotImplementedError as err:\n        print(err)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.count("not implemented yet") == 3, result.stdout + result.stderr
    shipped = (tmp_path / "minigen" / "ops.py").read_text() + (tmp_path / "minigen" / "losses.py").read_text()
    for line in ("return -softplus(-x)", "return -np.mean(ops.softplus(fake_logits))", "log_ratio = logvar_q"):
        assert line not in shipped


def test_calling_a_sibling_that_computes_the_exercise_is_refused(tmp_path):
    assign.build(tmp_path, exercises="discriminator_loss")
    fill(tmp_path, "losses.py", "discriminator_loss",
         "return -generator_loss_minimax(-real_logits) - generator_loss_minimax(fake_logits)")
    report, _ = grade(tmp_path, tmp_path)
    assert report["points"] == 0
    assert "calling losses.generator_loss_minimax" in report["exercises"][0]["first_failure"]


def test_assignment_md_says_how_to_hand_in(builds):
    text = (builds[0] / "ASSIGNMENT.md").read_text()
    for words in ("from this folder", "zip", "python -m autograder -v", "traceback", "Algorithm 1",
                  "efficient", "√v̂ + eps", "student id"):
        assert words in text, words


# --- A class into grades.csv --------------------------------------------------------------------

def test_grade_a_class_into_a_csv_gradebook(builds, tmp_path):
    public, private = builds
    subs = tmp_path / "submissions"
    subs.mkdir()
    student(public, subs / "s1_correct", KL, ADAM)
    student(public, subs / "s2_stub")
    partial = student(public, tmp_path / "s3_partial", KL, ADAM.replace(" / (1 - b1 ** self.t)", "")
                      .replace(" / (1 - b2 ** self.t)", ""))
    with zipfile.ZipFile(subs / "s3_partial.zip", "w") as z:  # handed in as a zip of the folder
        for path in partial.rglob("*"):
            z.write(path, Path("hw") / path.relative_to(partial))
    student(public, subs / "s4_cheating", init=CHEAT_NOOP + f"\n__path__.insert(0, {str(REPO_PACKAGE)!r})\n")
    student(public, subs / "s5_hanging", "while True:\n    pass", ADAM)
    config = tmp_path / "points.json"
    config.write_text(json.dumps({"points": {"gaussian_kl": 20, "adam_step": 5}, "timeouts": {"gaussian_kl": 2}}))
    out = tmp_path / "grades.csv"
    result = subprocess.run([sys.executable, "-m", "minigen", "grade", str(subs), "--autograder", str(private),
                             "--out", str(out), "--config", str(config)], env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "graded 5 submission(s)" in result.stdout and "s5_hanging: timeout: gaussian_kl" in result.stdout
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["student", "gaussian_kl", "adam_step", "total", "status", "time_s"]
    expected = {  # adam without bias correction keeps only its moments: 2 of 10 points, 1 of 5 re-weighted
        "s1_correct": (20, 5, 25, "ok"), "s2_stub": (0, 0, 0, "ok"), "s3_partial": (20, 1, 21, "ok"),
        "s4_cheating": (0, 0, 0, "foreign_modules: gaussian_kl adam_step"),
        "s5_hanging": (0, 5, 5, "timeout: gaussian_kl")}
    assert [r["student"] for r in table] == sorted(expected)
    for r in table:
        kl, adam, total, status = expected[r["student"]]
        assert (float(r["gaussian_kl"]), float(r["adam_step"]), float(r["total"]), r["status"]) == \
               (kl, adam, total, status), r
        assert float(r["time_s"]) > 0
    reports = tmp_path / "grades-reports"
    report = json.loads((reports / "s1_correct.json").read_text())
    assert report["autograder"]["seed"] == 0 and report["autograder"]["private"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", report["timestamp"])
    import hashlib
    losses = subs / "s1_correct" / "minigen" / "losses.py"
    assert report["files"]["minigen/losses.py"] == hashlib.sha256(losses.read_bytes()).hexdigest()
    hanging = json.loads((reports / "s5_hanging.json").read_text())["exercises"][0]
    assert "time limit of 2 s of CPU time" in hanging["first_failure"]
    # Idempotent: the same submissions give the same gradebook, without grading anyone again.
    before = out.read_bytes(), {p.name: p.read_bytes() for p in reports.iterdir()}
    gradebook.grade_class(subs, private, out, config)
    assert (out.read_bytes(), {p.name: p.read_bytes() for p in reports.iterdir()}) == before


def test_grade_refuses_a_public_autograder(builds, tmp_path):
    with pytest.raises(ValueError, match="public build"):
        gradebook.grade_class(tmp_path, builds[0], tmp_path / "g.csv")


# --- conv2d_im2col: the structure asked for, and forward errors named as such ---------------------

WINDOWS = """(ph, pw), (sh, sw) = padding, stride
xp = onp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
rows = (onp.arange(out_hw[0]) * sh)[:, None] + onp.arange(kernel[0])[None, :]  # (Ho, kh)
cols = (onp.arange(out_hw[1]) * sw)[:, None] + onp.arange(kernel[1])[None, :]  # (Wo, kw)
return xp[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, Ho, Wo, kh, kw)"""
CONV_FLIPPED = """windows = _im2col_windows(x, (kh, kw), stride, padding, out_hw)
y = onp.tensordot(windows, w[:, :, ::-1, ::-1], axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
return onp.ascontiguousarray(y.transpose(0, 3, 1, 2))"""
CONV_LOOPS = """windows = _im2col_windows(x, (kh, kw), stride, padding, out_hw)
y = onp.zeros((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
for n in range(y.shape[0]):
    for o in range(y.shape[1]):
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                y[n, o, i, j] = onp.sum(windows[n, :, i, j] * w[o])
return y"""


@pytest.mark.parametrize("conv", ["loops", "flipped"])
def test_conv2d_needs_im2col_and_one_gemm_and_its_forward_errors_are_named(tmp_path, conv):
    assign.build(tmp_path, exercises="conv2d_im2col")
    fill(tmp_path, "ops.py", "_im2col_windows", WINDOWS)
    fill(tmp_path, "ops.py", "_conv2d", CONV_LOOPS if conv == "loops" else CONV_FLIPPED)
    report, _ = grade(tmp_path, tmp_path)
    checks = {c["check"]: c for c in report["exercises"][0]["checks"]}
    assert checks["windows"]["passed"]
    if conv == "loops":  # right numbers, but not the exercise: 8 of 10 points
        assert report["points"] == 8 and not checks["structure"]["passed"]
        assert "one GEMM" in checks["structure"]["message"]
    else:
        assert checks["structure"]["passed"] and "the kernel is flipped" in checks["forward"]["message"]
        gradient = checks["gradient"]["message"]
        assert "your forward pass does not compute" in gradient and "hidden from autograd" not in gradient
