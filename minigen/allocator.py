"""Keep the memory numpy frees for the next training step, instead of giving it back to the kernel.

A training step allocates and frees the same large arrays every time: activations,
gradients, a convolution's im2col columns. glibc's malloc, at its defaults, hands that
memory back to the kernel as soon as it is freed: a block above M_MMAP_THRESHOLD is its own
mmap(), unmapped when freed, and the top of the heap is cut back (trimmed) whenever more
than M_TRIM_THRESHOLD bytes there are free. The next step's arrays then land on fresh
pages, and the first write to each 4 KiB page is a page fault that the kernel serves by
zeroing the page. For the DCGAN demo's nets that was about 9,000 faults per step, and
the setting below made 300 steps about a fifth faster (benchmarks/README.md, "Page faults").

keep_freed_memory() raises both thresholds with glibc's mallopt(3): blocks up to 32 MB
come from the heap, and up to `keep_mb` of free heap stays mapped, so every step reuses
the pages of the step before. The peak resident memory does not grow (a step's arrays
need the same pages either way); between steps, up to `keep_mb` more stays resident.
minigen.train.train_epochs calls it; a loop of your own that calls a step directly should
call it once before the first step (benchmarks/gan_quality.py does). It is process-wide, so
torch code in the same process is affected too. Without glibc (macOS, musl) it changes nothing.
"""
import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2 ** 20  # the largest M_MMAP_THRESHOLD glibc accepts on 64-bit machines


@functools.cache  # find_library runs ldconfig, ~20 ms; train_epochs asks on every call
def glibc():
    """The C library as a ctypes handle if it is glibc (it has mallopt), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory(keep_mb=256):
    """Raise glibc's trim threshold to keep_mb and its mmap threshold to 32 MB (module docstring).

    Returns True if both were set, False if this C library is not glibc (nothing changed).
    Calling it again sets the same values: harmless.
    """
    if keep_mb <= 0:
        raise ValueError(f"keep_mb must be positive, got {keep_mb}")
    libc = glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success, 0 if it refused the value
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
                and libc.mallopt(M_TRIM_THRESHOLD, int(keep_mb * 2 ** 20)))
