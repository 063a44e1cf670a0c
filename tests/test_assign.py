"""`minigen assign`: solution markers, the student copy, and its autograder.

The student copy and the autograder are built once per module into a temporary
folder; the autograder runs in subprocesses, as students run it.
"""
import argparse
import ast
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minigen import assign, cli_assign
from minigen.autograder import cases
from minigen.autograder.strip import MarkerError, find_regions, locate, strip_source

REPO_PACKAGE = Path(assign.__file__).resolve().parent
SOURCE_ROOT = REPO_PACKAGE.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def grade(out, *args, package=None):
    """Run out/autograder/grade.py as a script; (its JSON report, its stdout)."""
    report = out / f"report-{len(list(out.glob('report-*.json')))}.json"
    extra = [*args, "--json", str(report)] + (["--package", str(package)] if package else [])
    result = subprocess.run([sys.executable, str(out / "autograder" / "grade.py"), *extra], cwd=out, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert report.is_file(), result.stdout + result.stderr
    return json.loads(report.read_text()), result.stdout


def fill(out, relfile, qualname, code):
    """Write `code` where the stub of `qualname` is in the student copy, as a student would."""
    path = out / "minigen" / relfile
    text = path.read_text()
    stub = re.compile(r"^( *)# YOUR CODE HERE\n\1raise NotImplementedError\('[^']*\(write "
                      + re.escape(qualname) + r" in [^']*'\)\n", re.M)
    found = stub.search(text)
    assert found, f"no stub for {qualname} in {path}"
    body = "".join(found.group(1) + line + "\n" for line in code.strip("\n").splitlines())
    path.write_text(text[:found.start()] + body + text[found.end():])


def naive_regions(text):
    """Rows of BEGIN..END blocks, found line by line (the library's markers are all plain blocks)."""
    rows, start = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() == "# BEGIN SOLUTION":
            start = number
        elif line.strip() == "# END SOLUTION":
            rows.append((start, number))
    return rows


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignment")
    assign.build(out)
    return out


@pytest.fixture(scope="module")
def self_test(assignment):
    """The autograder on the student copy (python -m autograder) and on the reference (grade.py --package)."""
    return assign.self_test(assignment)


@pytest.fixture(scope="module")
def student_report(self_test):
    return self_test[0]["student"]


@pytest.fixture(scope="module")
def reference_report(self_test):
    return self_test[0]["reference"]


# --- Markers ---------------------------------------------------------------------------

SOURCE = '''import numpy as np

NOTE = """a string holding '# BEGIN SOLUTION' is not a marker"""


class Model:
    def loss(self, x):
        """The loss. x: (N,) -> scalar."""
        scale = 2.0
        # BEGIN SOLUTION
        y = x * scale
        return np.mean(y)
        # END SOLUTION


def helper(a):
    b = a + 1  # SOLUTION
    return b
'''


def regions_of(text, path="pkg/mod.py"):
    regions = find_regions(text, path)
    locate(regions, text, path, "mod")
    return regions


def test_block_becomes_a_stub_at_its_indentation():
    regions = regions_of(SOURCE)
    assert [(r.kind, r.site) for r in regions] == [("block", "mod.Model.loss"), ("line", "mod.helper")]
    out = strip_source(SOURCE, regions, {"mod.Model.loss": "loss_ex", "mod.helper": "help_ex"})
    ast.parse(out)
    assert "        # YOUR CODE HERE\n        raise NotImplementedError('loss_ex: not implemented yet (write " \
           "Model.loss in pkg/mod.py)')\n" in out
    assert "    raise NotImplementedError('help_ex:" in out and "b = a + 1" not in out
    # Signature, docstring, the code around the solution and the string that mentions a marker are kept.
    for kept in ('def loss(self, x):', '"""The loss. x: (N,) -> scalar."""', "scale = 2.0", "return b", "NOTE ="):
        assert kept in out
    assert "y = x * scale" not in out and "END SOLUTION" not in out


def test_unselected_solution_keeps_its_code_and_loses_its_markers():
    out = strip_source(SOURCE, regions_of(SOURCE), {})
    assert "y = x * scale" in out and "    b = a + 1\n" in out
    assert "# END SOLUTION" not in out and "# SOLUTION" not in out
    assert "# BEGIN SOLUTION" not in out.replace("'# BEGIN SOLUTION'", "")


def test_ellipsis_stub_and_no_prompt():
    text = SOURCE.replace("b = a + 1  # SOLUTION", "b = a + 1  # SOLUTION\n    c = 3  # SOLUTION NO PROMPT")
    out = strip_source(text, regions_of(text), {"mod.Model.loss": "e", "mod.helper": "h"}, stub="ellipsis")
    ast.parse(out)
    assert "    b = ...\n" in out and "c = 3" not in out and "c = ..." not in out
    assert "        # YOUR CODE HERE\n        ...\n" in out


@pytest.mark.parametrize("change, line, words", [
    (("        # END SOLUTION\n", ""), 16, "'# SOLUTION' inside the block opened at line 10"),
    ([("        # END SOLUTION\n", ""), ("  # SOLUTION", "")], 10, "never closed"),
    (("        # BEGIN SOLUTION\n", ""), 12, "without a '# BEGIN SOLUTION'"),
    (("        y = x * scale\n", "        # BEGIN SOLUTION\n        y = x * scale\n"), 11, "nested"),
    (("# BEGIN SOLUTION", "### BEGIN SOLUTION"), 10, "looks like a solution marker"),
    (("# END SOLUTION", "#end solution"), 13, "looks like a solution marker"),
    (("        return np.mean(y)\n        # END", "        return np.mean(y)  # END"), 12, "line of its own"),
    (("        # END SOLUTION", "    # END SOLUTION"), 13, "indented differently"),
    (("    return b\n", "    return b  # SOLUTION\n"), 18, None),
    (("b = a + 1  # SOLUTION", "b = (a +  # SOLUTION\n         1)"), 17, "one-line statement"),
    (("NOTE =", "# BEGIN SOLUTION\nx = 1\n# END SOLUTION\nNOTE ="), 3, "outside any function"),
])
def test_bad_markers_are_errors_naming_file_and_line(change, line, words):
    text = SOURCE
    for old, new in change if isinstance(change, list) else [change]:
        text = text.replace(old, new)
    assert text != SOURCE
    if words is None:  # two one-line solutions in a row are fine
        regions_of(text)
        return
    with pytest.raises(MarkerError, match=re.escape(f"pkg/mod.py:{line}:") + ".*" + re.escape(words)):
        regions_of(text)


def test_markers_inside_brackets_are_errors():
    text = "def f():\n    return g(\n        # BEGIN SOLUTION\n        1,\n        # END SOLUTION\n    )\n"
    with pytest.raises(MarkerError, match="mod.py:3: .*inside brackets"):
        regions_of(text)


def test_every_marked_region_belongs_to_a_registered_exercise():
    scanned = assign.scan_package()
    assign.check_registry(scanned, cases.EXERCISES)  # the library as it is: consistent
    without_kl = [ex for ex in cases.EXERCISES if ex.name != "gaussian_kl"]
    with pytest.raises(MarkerError, match=r"minigen/losses.py:\d+: a solution in losses.gaussian_kl belongs to no"):
        assign.check_registry(scanned, without_kl)


def test_at_least_fifteen_exercises_with_points():
    enabled = [ex for ex in cases.EXERCISES if ex.enabled]
    assert len(enabled) >= 15
    for ex in enabled:
        checks = cases.checks_for(ex.name)
        assert len(checks) >= 2 and sum(c.points for c in checks) > 0, ex.name


def test_list_and_bad_names(capsys):
    parser = argparse.ArgumentParser()
    cli_assign.add_parser(parser.add_subparsers())
    assert cli_assign.run(parser.parse_args(["assign", "--list"])) == 0
    listed = capsys.readouterr().out
    for ex in cases.EXERCISES:
        assert re.search(rf"{ex.name}\s+\d+", listed)
    alone = sum(c.points for c in cases.CHECKS)
    together = sum(c.points for c in cases.CHECKS if not c.needs)
    assert together < alone  # some checks run another exercise's code: left out when that one is assigned too
    assert re.search(rf"total\s+{alone}\s+\({together} with all of them assigned", listed)
    with pytest.raises(ValueError, match="unknown exercise.*kl_divergence.*choose from: gaussian_kl"):
        assign.select("gaussian_kl,kl_divergence")


def test_refuses_to_write_over_the_instructors_package(tmp_path):
    with pytest.raises(ValueError, match="refusing"):
        assign.build(SOURCE_ROOT)
    with pytest.raises(ValueError, match="refusing"):
        assign.build(REPO_PACKAGE / "models")


# --- The student copy -------------------------------------------------------------------

def test_student_copy_is_the_whole_package_and_imports(assignment):
    shipped = {p.relative_to(REPO_PACKAGE) for p in REPO_PACKAGE.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
               and p.relative_to(REPO_PACKAGE).parts[0] != "autograder"}
    copied = {p.relative_to(assignment / "minigen") for p in (assignment / "minigen").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert copied == shipped  # every module and the packaged MNIST sample
    modules = sorted(".".join(p.with_suffix("").parts) for p in copied if p.suffix == ".py" and p.stem != "__main__")
    code = ("import importlib, minigen\n"
            f"for m in {modules!r}: importlib.import_module('minigen.' + m if m != '__init__' else 'minigen')\n"
            "from minigen import data\n"
            "x, y = data.load_mnist_sample()\n"
            "print(minigen.__file__, x.shape)")
    result = subprocess.run([sys.executable, "-c", code], cwd=assignment, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(assignment / "minigen" / "__init__.py"))


def test_exactly_the_marked_regions_are_removed(assignment):
    stub = re.compile(r"^ *# YOUR CODE HERE\n *raise NotImplementedError\('([a-z0-9_]+): [^\n]*\n", re.M)
    total = 0
    for path in REPO_PACKAGE.rglob("*.py"):
        rel = path.relative_to(REPO_PACKAGE)
        if rel.parts[0] == "autograder" or rel.name == "assign.py":
            continue
        original = path.read_text().splitlines(keepends=True)
        cut = {row for first, last in naive_regions("".join(original)) for row in range(first, last + 1)}
        expected = "".join(line for number, line in enumerate(original, 1) if number not in cut)
        student = (assignment / "minigen" / rel).read_text()
        total += len(stub.findall(student))
        assert stub.sub("", student) == expected, rel
    assert total == sum(len(ex.sites) for ex in cases.EXERCISES if ex.enabled)


def test_exercise_functions_keep_signature_and_docstring(assignment):
    for ex in (e for e in cases.EXERCISES if e.enabled):
        for site in ex.sites:
            module, qualname = site.split(".", 1)
            bodies = []
            for root in (REPO_PACKAGE, assignment / "minigen"):
                node = ast.parse((root / f"{module}.py").read_text())
                for part in qualname.split("."):
                    node = next(n for n in ast.walk(node) if getattr(n, "name", None) == part)
                bodies.append(node)
            original, student = bodies
            assert ast.dump(original.args) == ast.dump(student.args)
            assert ast.get_docstring(original) == ast.get_docstring(student)
            raised = student.body[-1]
            assert isinstance(raised, ast.Raise) and raised.exc.func.id == "NotImplementedError"
            assert raised.exc.args[0].value.startswith(f"{ex.name}: "), site


def test_no_marker_and_no_solution_line_anywhere_in_out_dir(assignment):
    """grep, independently of the build's own check: marker text and the stripped lines."""
    solutions, outside = set(), Counter()
    for path in REPO_PACKAGE.rglob("*.py"):
        if path.relative_to(REPO_PACKAGE).parts[0] == "autograder" or path.name == "assign.py":
            continue
        lines = path.read_text().splitlines()
        cut = set()
        for first, last in naive_regions("\n".join(lines)):
            cut.update(range(first, last + 1))
            solutions.update(line.strip() for line in lines[first:last - 1] if line.strip())
        outside.update(line.strip() for number, line in enumerate(lines, 1) if number not in cut)
    assert len(solutions) > 30
    found = Counter()
    for path in assignment.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md", ".json", ".ini", ".txt"):
            text = path.read_text()
            assert not re.search(r"BEGIN SOLUTION|END SOLUTION|# SOLUTION", text), path
            found.update(line.strip() for line in text.splitlines() if line.strip() in solutions)
    # A solution line may appear only as often as the library has it outside the solutions
    # (a shared idiom such as RMSprop's `denom += self.eps`), never more.
    assert {line: n for line, n in found.items() if n > outside[line]} == {}
    for never in ("mistakes.py", "reference.py", "strip.py"):
        assert not list(assignment.rglob(never))


def test_leak_check_catches_a_solution_line(tmp_path):
    line = "return 0.5 * np.sum(mu * mu + np.expm1(logvar) - logvar, axis=-1)"
    (tmp_path / "minigen").mkdir()
    (tmp_path / "minigen" / "losses.py").write_text(f"def kl(mu, logvar):\n    {line}\n")
    assert assign.find_leaks(tmp_path, {line}, []) == [f"minigen/losses.py:2: {line}"]
    assert assign.find_leaks(tmp_path, {line}, [line]) == []  # once in the library outside a solution: shared
    (tmp_path / "notes.md").write_text(f"see `{line}` in the notes\n")  # outside minigen/, even inside a line
    assert assign.find_leaks(tmp_path, {line}, [line]) == [f"notes.md:1: see `{line}` in the notes"]
    (tmp_path / "notes.md").unlink()
    (tmp_path / "losses.py~").write_text("    # END SOLUTION\n")  # any text file, whatever its name
    (tmp_path / "data.npz").write_bytes(b"PK\x03\x04\xff\xfe")
    assert assign.find_leaks(tmp_path, {line}, [line]) == ["losses.py~:1: # END SOLUTION"]


def test_assign_in_a_student_copy_says_it_needs_the_instructors(assignment):
    for argv in (["--list"], ["out", "--exercises", "gaussian_kl", "--check"]):  # the stand-in's list_text, build
        code = f"from minigen import cli; raise SystemExit(cli.main(['assign', *{argv!r}]))"
        result = subprocess.run([sys.executable, "-c", code], cwd=assignment, env=ENV, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 1 and "needs the instructor's copy" in result.stderr, result.stderr


def test_existing_assignment_needs_force(assignment):
    with pytest.raises(ValueError, match="--force"):
        assign.build(assignment, exercises="gaussian_kl")


def test_autograder_is_never_collected_from_the_library():
    names = [p.name for p in (REPO_PACKAGE / "autograder").iterdir()]
    assert not [n for n in names if n.startswith("test_") or n.endswith("_test.py") or n == "conftest.py"]


# --- The autograder ---------------------------------------------------------------------------

def manifest_total(assignment):
    manifest = json.loads((assignment / "autograder" / "manifest.json").read_text())
    return sum(c["points"] for ex in manifest["exercises"] for c in ex["checks"])


def test_student_copy_fails_every_exercise_with_not_implemented(assignment, student_report):
    report, text = student_report
    total = manifest_total(assignment)
    assert report["points"] == 0 and report["max_points"] == total
    assert {r["exercise"] for r in report["exercises"]} == {ex.name for ex in cases.EXERCISES if ex.enabled}
    for row in report["exercises"]:
        assert row["status"] == "fail"
        for check in row["checks"]:
            assert check["message"].startswith("NotImplementedError: " + row["exercise"] + ": not implemented yet")
    assert re.search(r"gaussian_kl\s+0/10\s+FAIL", text) and re.search(rf"total\s+0/{total}\n", text)


def test_self_test_finds_no_problem(self_test):
    assert self_test[1] == []


def test_reference_passes_every_check(assignment, reference_report):
    report, text = reference_report
    total = manifest_total(assignment)
    failing = {r["exercise"]: r["first_failure"] for r in report["exercises"] if r["status"] != "pass"}
    assert failing == {} and report["points"] == report["max_points"] == total
    assert re.search(rf"total\s+{total}/{total}\n", text)


def stored(assignment, exercise, check):
    """The stored inputs and expected outputs of one check: ({name: array}, {name: array})."""
    data = np.load(assignment / "autograder" / "data" / f"{exercise}.npz")
    prefix = f"{exercise}.{check}/"
    part = lambda kind: {k[len(prefix) + len(kind) + 1:]: data[k] for k in data.files if k.startswith(prefix + kind)}
    return part("in"), part("out")


def torch_adam(inp, steps):
    params = {k: torch.tensor(inp[k], requires_grad=True) for k in ("w", "b")}
    opt = torch.optim.Adam(params.values(), lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    for t in range(steps):
        params["w"].grad, params["b"].grad = torch.tensor(inp["gw"][t]), torch.tensor(inp["gb"][t])
        opt.step()
    return {k: v.detach().numpy() for k, v in params.items()}


def test_stored_expected_values_are_the_formulas_not_just_the_references_output(assignment):
    """The autograder's expected outputs were made by running the reference; grading the reference
    against them (test_reference_passes_every_check) cannot fail. Here they meet formulas and torch."""
    inp, out = stored(assignment, "gaussian_kl", "value")
    mu, lv = inp["mu"], inp["logvar"]
    np.testing.assert_allclose(out["kl"], 0.5 * np.sum(mu ** 2 + np.exp(lv) - 1 - lv, axis=1), rtol=1e-12)
    inp, out = stored(assignment, "reparameterize", "samples")
    np.testing.assert_allclose(out["z"], inp["mu"] + np.exp(0.5 * inp["logvar"]) * inp["eps"], rtol=1e-12)
    inp, out = stored(assignment, "elbo", "beta_vae_loss")
    for beta in (1, 4):
        assert out[f"loss_beta{beta}"] == pytest.approx(np.mean(beta * inp["kl"] - inp["log_likelihood"]), rel=1e-12)
    inp, out = stored(assignment, "bce_with_logits", "large_logits")
    expected = F.binary_cross_entropy_with_logits(torch.tensor(inp["logits"]), torch.tensor(inp["targets"]),
                                                  reduction="none").numpy()
    # atol: torch keeps a 1e-158 that the stable formula rounds to 0 at a seeded huge logit
    np.testing.assert_allclose(out["bce"], expected, rtol=1e-12, atol=1e-150)
    inp, out = stored(assignment, "discriminator_loss", "value")
    log_sig = lambda v: -np.logaddexp(0, -v)
    assert out["loss"] == pytest.approx(-np.mean(log_sig(inp["real"])) - np.mean(log_sig(-inp["fake"])), rel=1e-12)
    inp, out = stored(assignment, "conv2d_im2col", "forward")
    for i, (stride, padding) in enumerate((((1, 1), (0, 0)), ((2, 2), (1, 1)), ((2, 1), (0, 2)))):
        np.testing.assert_allclose(out[f"y_{i}"], F.conv2d(torch.tensor(inp["x"]), torch.tensor(inp["w"]),
                                                           stride=stride, padding=padding).numpy(), rtol=1e-10)
    inp, out = stored(assignment, "adam_step", "three_steps")
    for k, v in torch_adam(inp, 3).items():
        np.testing.assert_allclose(out[k], v, rtol=1e-12)
    inp, out = stored(assignment, "gradient_penalty", "value")  # critic tanh(x W1 + b1) W2: slopes by hand
    x_hat = inp["eps"][:, None] * inp["real"] + (1 - inp["eps"][:, None]) * inp["fake"]
    slopes = ((1 - np.tanh(x_hat @ inp["w1"] + inp["b1"]) ** 2) * inp["w2"][:, 0]) @ inp["w1"].T  # (N, d)
    assert out["penalty"] == pytest.approx(10 * np.mean((np.linalg.norm(slopes, axis=1) - 1) ** 2), rel=1e-9)


@pytest.fixture(scope="module")
def wrong_answers(tmp_path_factory):
    """A student's copy with three exercises attempted, each with a classic mistake."""
    out = tmp_path_factory.mktemp("wrong")
    assign.build(out, exercises=["gaussian_kl", "elbo", "gradient_penalty"])
    fill(out, "losses.py", "gaussian_kl", "return np.sum(mu * mu + np.exp(logvar) - 1 - logvar, axis=-1)")
    fill(out, "losses.py", "elbo", "return log_likelihood - kl")
    # Right value, but the KL is hidden from autograd: the loss's gradient in it is lost.
    fill(out, "losses.py", "beta_vae_loss", "return np.mean(beta * getval(kl) - log_likelihood)")
    fill(out, "losses.py", "gradient_penalty", """
x_hat = eps * real + (1 - eps) * fake
slopes = grad(lambda x: np.sum(critic(params, x)))(x_hat)
norms = np.sqrt(np.sum(np.reshape(slopes * slopes, (real.shape[0], -1)), axis=1))
return -weight * np.mean((norms - 1) ** 2)""")
    return out, grade(out)


def test_subset_keeps_the_other_solutions(wrong_answers):
    out, (report, _) = wrong_answers
    assert [r["exercise"] for r in report["exercises"]] == ["gaussian_kl", "elbo", "gradient_penalty"]
    losses_py = (out / "minigen" / "losses.py").read_text()
    assert "return mu + np.exp(0.5 * logvar) * eps" in losses_py and "SOLUTION" not in losses_py
    assert not (out / "autograder" / "data" / "reparameterize.npz").exists()


def test_wrong_solutions_get_messages_that_point_at_the_mistake(wrong_answers):
    _, (report, text) = wrong_answers
    rows = {r["exercise"]: r for r in report["exercises"]}
    kl = rows["gaussian_kl"]
    assert kl["points"] == 0
    assert "factor of 2" in kl["first_failure"] and "the ½ is missing" in kl["first_failure"]
    expected, got = map(float, re.search(r"expected ([\d.]+), got ([\d.]+)", kl["first_failure"]).groups())
    assert got == pytest.approx(2 * expected)
    gp = rows["gradient_penalty"]["first_failure"]
    assert "sign error" in gp and "known mistake" in gp
    # Partial credit: the value is right, the gradient is not, and the message says why.
    elbo = {c["check"]: c for c in rows["elbo"]["checks"]}
    assert elbo["elbo"]["passed"] and elbo["beta_vae_loss"]["passed"] and not elbo["gradient"]["passed"]
    assert rows["elbo"]["status"] == "partial" and rows["elbo"]["points"] == 6
    assert "hidden from autograd" in elbo["gradient"]["message"]
    assert "the ½ is missing" in text


def test_private_seed_regrades_a_submission_on_unseen_inputs(wrong_answers, tmp_path):
    submission, _ = wrong_answers
    private = tmp_path / "private"
    assign.build(private, exercises="gaussian_kl", seed=7)
    public_inputs = dict(np.load(submission / "autograder" / "data" / "gaussian_kl.npz"))
    private_inputs = dict(np.load(private / "autograder" / "data" / "gaussian_kl.npz"))
    assert not np.array_equal(public_inputs["gaussian_kl.value/in/mu"], private_inputs["gaussian_kl.value/in/mu"])
    report, _ = grade(private, package=submission)
    assert report["package"] == str(submission.resolve() / "minigen")
    assert report["points"] == 0 and "the ½ is missing" in report["exercises"][0]["first_failure"]


def test_one_exercise_by_marker(wrong_answers):
    out, _ = wrong_answers
    result = subprocess.run([sys.executable, "-m", "pytest", "autograder", "-m", "gaussian_kl", "-q",
                             "-p", "no:cacheprovider"], cwd=out, env=ENV, capture_output=True, text=True, timeout=300)
    assert "3 failed" in result.stdout and "passed" not in result.stdout, result.stdout[-2000:]
