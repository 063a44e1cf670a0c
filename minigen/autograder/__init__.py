"""The autograder that `minigen assign` writes beside a student copy, and what builds it.

Shipped to students (copied into OUT_DIR/autograder/, renamed where noted):
    cases.py                      the exercises, and the checks' machinery, with points
    cases_vae.py, cases_gan.py,   the checks, one file per model family
    cases_optim.py, cases_backprop.py
    compare.py                    comparisons and the messages that point at a mistake
    grade.py                      the runner: per-exercise report as text and JSON; the verdicts
    sandbox.py                    runs one exercise in an isolated Python process with a time limit
    child.py                      what that process runs: the probes, on the submission, no reference values
    grader_conftest.py            -> conftest.py: which minigen is graded, fixtures, markers
    grader_tests.py               -> test_exercises.py: one pytest test per check

Kept by the instructor (never copied):
    strip.py                      finds the solution markers and cuts the solutions out
    shipping.py                   the allow-list of shipped files and the byte-level leak check
    handout.py                    ASSIGNMENT.md
    mistakes.py, mistakes_optim.py, known wrong variants of each exercise, to name mistakes
    mistakes_backprop.py          (and other published right forms, to accept them)
    reference.py                  runs the checks on the reference, writes data/*.npz and manifest.json
    generic.py                    the backward checks' expected values, by autograd's generic derivative

The two renamed files carry other names here so that no pytest run over the library
collects them.
"""
