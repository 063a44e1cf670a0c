"""Each benchmark workload's loss and gradients equal its torch twin's (float32, relative 1e-5).

The workloads are those of benchmarks/run.py, imported from there, so the table and
this test check the same thing; the timings stay in the benchmark.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import run as bench  # noqa: E402


@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_workload_matches_its_torch_twin(name):
    *_, parity, _ = bench.WORKLOADS[name](np.random.default_rng(0))
    assert parity < 1e-5
