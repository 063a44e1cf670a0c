"""pytest set-up for the autograder: which minigen is graded, one marker per exercise, outcomes cached.

The graded package is the minigen beside this folder (../minigen), or the one in
$MINIGEN_GRADE_PACKAGE (a folder holding minigen/). Each exercise still runs in a
process of its own (see sandbox.py); pytest only reports.
"""
import os
from pathlib import Path

import pytest

from .grade import MANIFEST, run_exercise

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = Path(os.environ.get("MINIGEN_GRADE_PACKAGE") or HERE.parent).resolve()


def pytest_configure(config):
    for exercise in MANIFEST["exercises"]:  # one marker per exercise: pytest -m gaussian_kl
        config.addinivalue_line("markers", f"{exercise['name']}: {exercise['title']}")


@pytest.fixture(scope="session")
def outcome():
    """exercise name -> (sandbox.Outcome, its data), run once per exercise."""
    cache = {}

    def get(name):
        if name not in cache:
            timeout = next(ex["timeout"] for ex in MANIFEST["exercises"] if ex["name"] == name)
            cache[name] = run_exercise(PACKAGE_ROOT, name, timeout)
        return cache[name]
    return get
