import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# CI runs a fixed, derandomised set of examples so a red run can be reproduced;
# run with HYPOTHESIS_PROFILE=dev locally for fresh random examples.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir():
    """Full MNIST: $MINIGEN_DATA or ../shared/data/mnist beside the clone; skip if neither."""
    for candidate in (os.environ.get("MINIGEN_DATA"), SHARED_MNIST):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    pytest.skip("full MNIST not available (set MINIGEN_DATA)")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def semisupervised_demo():
    """demos/semisupervised_mnist.py as a module (demos/ is not a package)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))
    try:
        return importlib.import_module("semisupervised_mnist")
    finally:
        sys.path.pop(0)
