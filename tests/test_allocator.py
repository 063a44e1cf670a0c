"""minigen.allocator: freed memory is reused by the next step, not faulted in again."""
import subprocess
import sys

import pytest

from minigen import allocator

# A stand-in for training steps: each allocates arrays that together are many times the
# largest (so at glibc's defaults the freed top of the heap is trimmed), writes them, frees them.
STEPS = """
import resource, sys
import numpy as np
from minigen.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():
    arrays = [np.ones(250_000, np.float32) for _ in range(12)]  # 12 arrays of 1 MB
    return sum(float(a[-1]) for a in arrays)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_over_steps(mode):
    """Minor page faults of 50 stand-in steps in a fresh interpreter, with or without keep_freed_memory."""
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(allocator.glibc() is None, reason="mallopt is glibc's")
def test_kept_memory_is_not_faulted_in_again():
    default, kept = faults_over_steps("default"), faults_over_steps("keep")
    # 50 steps of 12 MB are ~150,000 page faults if every step gets fresh pages; kept: the same pages
    assert default > 50 * 12 * 256 // 2, default
    assert kept < default / 20, (kept, default)


def test_no_glibc_changes_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    assert allocator.keep_freed_memory() is False


def test_keep_must_be_positive():
    with pytest.raises(ValueError, match="keep_mb must be positive"):
        allocator.keep_freed_memory(0)
