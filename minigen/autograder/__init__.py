"""The autograder that `minigen assign` writes beside a student copy, and what builds it.

Shipped to students (copied into OUT_DIR/autograder/, renamed where noted):
    cases.py                      the exercises and their checks, with points
    compare.py                    comparisons and the messages that point at a mistake
    grade.py                      the runner: per-exercise report as text and JSON
    grader_conftest.py            -> conftest.py: which minigen is graded, fixtures, markers
    grader_tests.py               -> test_exercises.py: one pytest test per check

Kept by the instructor (never copied):
    strip.py                      finds the solution markers and cuts the solutions out
    mistakes.py                   known wrong variants of each exercise, to name mistakes
    reference.py                  runs the checks on the reference, writes data/*.npz and manifest.json

The two renamed files carry other names here so that no pytest run over the library
collects them.
"""
