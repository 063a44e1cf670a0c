"""The learning path, notebooks/NN_*.ipynb: each runs top to bottom in quick mode, so it cannot rot.

Quick mode (MINIGEN_QUICK=1) shrinks every budget and uses the packaged MNIST sample, so these
tests need no data. The kernel imports the minigen of this checkout (its root goes first on the
kernel's PYTHONPATH) and runs in notebooks/, as a reader's would. nbformat, nbclient and ipykernel
are optional (pip install -e ".[notebooks]"): without them the tests skip.
Run one: python -m pytest -q tests/test_learning_notebooks.py -k 02
"""
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
# A quick-mode notebook aims at 60 s on 2 cores; the limit leaves room for a busy CI machine
# (two notebooks at once under pytest -n 2). Override with MINIGEN_NOTEBOOK_LIMIT (seconds).
LIMIT = float(os.environ.get("MINIGEN_NOTEBOOK_LIMIT", "300"))
MAX_BYTES = 1_500_000  # a stored notebook must still open quickly on a repository page
QUICK_SWITCH = 'QUICK = os.environ.get("MINIGEN_QUICK") == "1"'


def ids(paths):
    return [p.stem for p in paths]


def code_cells(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_the_learning_path_exists():
    assert NOTEBOOKS, f"no notebooks/NN_*.ipynb in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_stored_notebook_is_executed_small_and_has_the_quick_switch(path):
    """Stored with outputs (it must read on a repository page), without errors, under 1.5 MB; its first
    code cell holds the quick-mode switch every later budget reads."""
    cells = code_cells(path)
    assert cells and QUICK_SWITCH in source(cells[0]), f"{path.name}: first code cell lacks {QUICK_SWITCH!r}"
    assert all(c.get("execution_count") for c in cells), f"{path.name}: stored with unexecuted cells"
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored with an error output: {errors[0].get('ename')}"
    assert any("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", [])), \
        f"{path.name}: no picture"
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_notebook_runs_in_quick_mode(path, monkeypatch):
    """Every cell runs without an error in a fresh kernel on this checkout's minigen, within LIMIT seconds,
    writing nothing into notebooks/."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # The kernel inherits this process's environment: quick mode, this checkout's minigen, one BLAS
    # thread (pytest -n 2 runs two kernels on two cores).
    monkeypatch.setenv("MINIGEN_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import minigen; print(minigen.__file__)"))
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=LIMIT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    seconds = time.perf_counter() - start
    assert seconds <= LIMIT, f"{path.name} took {seconds:.0f} s in quick mode (limit {LIMIT:.0f} s)"
    imported = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    assert Path(imported).resolve().is_relative_to(ROOT), f"the kernel imported {imported}, not this checkout's"
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, f"{path.name} wrote into notebooks/"
