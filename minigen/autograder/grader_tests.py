"""The autograder's tests: one per check (see cases.py), each marked with its exercise.

    pytest autograder                   every exercise
    pytest autograder -m gaussian_kl    one exercise
"""
import pytest

from .grade import MANIFEST, judge

CHECKS = [(ex["name"], c) for ex in MANIFEST["exercises"] for c in ex["checks"]]


@pytest.mark.parametrize("exercise, check", [pytest.param(name, c, id=c["id"], marks=getattr(pytest.mark, name))
                                             for name, c in CHECKS])
def test_check(exercise, check, outcome):
    result, data = outcome(exercise)
    message = judge(check, data, result)
    if message:
        pytest.fail(message, pytrace=False)
