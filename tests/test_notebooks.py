"""`minigen assign --format notebook`: one notebook per part, run against the student's own minigen/.

nbformat, nbclient and ipykernel are optional (pip install 'minigen[notebook]'): without
them these tests skip, except the one that checks the error saying so.
"""
import shutil
import sys

import pytest

from minigen import assign
from minigen.autograder.shipping import package_files

EXERCISES = ["gaussian_kl", "reparameterize", "elbo", "dense_backward"]


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    pytest.importorskip("nbformat")
    out = tmp_path_factory.mktemp("notebooks")
    assign.build(out, exercises=EXERCISES, notebooks=True)
    return out


def read(path):
    import nbformat
    return nbformat.read(str(path), as_version=4)


def test_one_notebook_per_part_with_a_check_per_exercise_and_no_solution(handout):
    import nbformat
    assert sorted(p.name for p in (handout / "notebooks").iterdir()) == ["backprop.ipynb", "vae.ipynb"]
    for name, exercises in (("vae", EXERCISES[:3]), ("backprop", EXERCISES[3:])):
        nb = read(handout / "notebooks" / f"{name}.ipynb")
        nbformat.validate(nb)
        checks = [c.source for c in nb.cells if c.cell_type == "code" and c.source.startswith("check(")]
        assert checks == [f'check("{ex}")' for ex in exercises]
    text = (handout / "notebooks" / "vae.ipynb").read_text()
    assert "mu, logvar: (N, D) -> (N,)" in text  # the docstring, with its formula
    assert "np.expm1(logvar) - logvar" not in text and "SOLUTION" not in text
    assert "notebooks/" in (handout / "ASSIGNMENT.md").read_text()


def test_without_nbformat_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nbformat", None)  # import nbformat now raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'minigen\[notebook\]'"):
        assign.build(tmp_path, exercises="gaussian_kl", notebooks=True)
    assert not (tmp_path / "minigen").exists()  # nothing half-written


def execute(path, **options):
    """Run a notebook (with its training shortened) in a fresh kernel; its code cells' outputs, in order."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = read(path)
    for cell in nb.cells:  # one epoch: the test checks that it runs, not how well it trains
        cell.source = cell.source.replace("EPOCHS = 10", "EPOCHS = 1")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, **options).execute()
    return [c.get("outputs", []) for c in nb.cells if c.cell_type == "code"]


def text_of(outputs):
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in outputs)


def test_the_notebook_grades_and_trains_the_students_copy(handout, tmp_path):
    """Stubs: every check fails and the VAE cell stops at the stub. The reference's code in their place: every
    check passes and the VAE draws its samples."""
    cells = execute(handout / "notebooks" / "vae.ipynb", allow_errors=True)
    checks = [text_of(c) for c in cells if "autograder report" in text_of(c)]
    assert len(checks) == 3 and all("FAIL" in t for t in checks)
    assert "NotImplementedError" in text_of(cells[-1])

    solved = tmp_path / "solved"
    shutil.copytree(handout, solved, ignore=shutil.ignore_patterns("minigen"))
    for rel in package_files(assign.package_dir()):
        (solved / "minigen" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(assign.package_dir() / rel, solved / "minigen" / rel)
    cells = execute(solved / "notebooks" / "vae.ipynb")
    checks = [text_of(c) for c in cells if "autograder report" in text_of(c)]
    assert len(checks) == 3 and all("PASS" in t and "FAIL" not in t for t in checks), checks
    assert str(solved / "minigen") in checks[0]  # graded the copy beside the notebook, not the installed one
    assert any("image/png" in o.get("data", {}) for o in cells[-1])
