"""pytest set-up for the autograder: which minigen is graded, its modules, the reference data, markers.

The graded package is the minigen beside this folder (../minigen), or the one in
$MINIGEN_GRADE_PACKAGE (a folder holding minigen/), which grade.py --package sets.
"""
import importlib
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from .cases import MODULES

HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
PACKAGE_ROOT = Path(os.environ.get("MINIGEN_GRADE_PACKAGE") or HERE.parent).resolve()


def pytest_configure(config):
    for exercise in MANIFEST["exercises"]:  # one marker per exercise: pytest -m gaussian_kl
        config.addinivalue_line("markers", f"{exercise['name']}: {exercise['title']}")


@pytest.fixture(scope="session")
def pkg():
    """The graded minigen's modules, as pkg.losses, pkg.ops, ..."""
    sys.path.insert(0, str(PACKAGE_ROOT))  # first, before an installed minigen (and after pytest's own inserts)
    import minigen
    found = Path(minigen.__file__).resolve().parent.parent
    if found != PACKAGE_ROOT:
        pytest.exit(f"asked to grade {PACKAGE_ROOT / 'minigen'} but Python imported {minigen.__file__}", returncode=4)
    return SimpleNamespace(**{name: importlib.import_module(f"minigen.{name}") for name in MODULES})


@pytest.fixture(scope="session")
def reference():
    """exercise -> {key: array} from data/<exercise>.npz, loaded once."""
    cache = {}

    def load(exercise):
        if exercise not in cache:
            with np.load(HERE / "data" / f"{exercise}.npz", allow_pickle=False) as f:
                cache[exercise] = {key: f[key] for key in f.files}
        return cache[exercise]
    return load
