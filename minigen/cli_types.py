"""argparse types for the command line: a bad value is refused with what was expected."""
import argparse
import math


def _int_at_least(text, minimum, what):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1 (a count or a size)."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text):
    """argparse type: an integer >= 0 (a seed)."""
    return _int_at_least(text, 0, "an integer >= 0")


def positive_number(text):
    """argparse type: a finite number > 0 (nan, inf and 0 refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value
