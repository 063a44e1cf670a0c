"""The autograder's tests: one per check (see cases.py), each marked with its exercise.

    pytest autograder                   every exercise
    pytest autograder -m gaussian_kl    one exercise
"""
import json
from pathlib import Path

import pytest

from .cases import CHECKS
from .compare import verify

MANIFEST = json.loads((Path(__file__).resolve().parent / "manifest.json").read_text(encoding="utf-8"))
HINTS = {c["id"]: c["mistakes"] for ex in MANIFEST["exercises"] for c in ex["checks"]}


def part(data, prefix):
    """The arrays stored under "<prefix>/<name>", by name."""
    return {key[len(prefix) + 1:]: value for key, value in data.items() if key.startswith(prefix + "/")}


@pytest.mark.parametrize("check", [pytest.param(c, id=c.id, marks=getattr(pytest.mark, c.exercise))
                                   for c in CHECKS if c.id in HINTS])
def test_check(check, pkg, reference):
    data = reference(check.exercise)
    inputs, expected = part(data, f"{check.id}/in"), part(data, f"{check.id}/out")
    mistakes = {name: (hint, part(data, f"{check.id}/mistake/{name}")) for name, hint in HINTS[check.id].items()}
    got = check.probe(pkg, inputs)
    verify(got, expected, check.rtol, mistakes, check.hint, gradient=check.gradient)
