"""What every benchmark here shares: pinned threads, interleaved timing, parity measures.

pin_threads must run before numpy (or torch) is first imported: BLAS reads its
thread count once, at load time.
"""
import os
import platform
import sys
import time

# The MLP VAE of run.py's first row (784-400-20, batch 128), which several scripts here time:
# its dense layers as (in, out, what), and the batch it trains on.
MLP_VAE_BATCH = 128
MLP_VAE_LAYERS = [(784, 400, "encoder hidden"), (400, 40, "encoder out (mu, logvar)"),
                  (20, 400, "decoder hidden"), (400, 784, "decoder out")]


def mlp_vae_batch(rng):
    """(x, eps) for one MLP VAE step: binary images (128, 1, 28, 28) with 30 % ones, then the
    reparameterization's noise (128, 20), both float32 and drawn from `rng` in that order."""
    import numpy as np
    x = (rng.random((MLP_VAE_BATCH, 1, 28, 28), dtype=np.float32) < 0.3).astype(np.float32)
    return x, rng.standard_normal((MLP_VAE_BATCH, 20), dtype=np.float32)


def timing_parser(doc, reps, threads=None):
    """The arguments every timing script here takes: --threads (default: every core) and --reps.
    A script adds its own to the parser this returns."""
    import argparse
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=threads or os.cpu_count())
    parser.add_argument("--reps", type=int, default=reps)
    return parser


def pin_threads(n):
    """Give numpy's BLAS and torch the same number of threads (call before importing either)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def openblas_kernels():
    """Which kernels numpy's OpenBLAS runs ("Haswell": AVX2, "SkylakeX": AVX-512), asked of the
    loaded library, or "?" if numpy uses another BLAS. OpenBLAS picks them once, as numpy loads,
    unless OPENBLAS_CORETYPE names them: on an AVX-512 CPU the pin to Haswell halves float32 GEMM
    (benchmarks/README.md, "Which BLAS kernels"), so a table must say which ran."""
    import ctypes

    import numpy  # noqa: F401  (loads the library, so that it appears in the process's memory map)
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return "?"
    for path in paths:
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            get_corename = getattr(library, symbol, None)
            if get_corename is not None:
                get_corename.restype = ctypes.c_char_p
                return get_corename().decode()
    return "?"


def machine_header(threads):
    """One line naming the machine, the threads, the BLAS kernels and the versions, for a table's header."""
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    pin = os.environ.get("OPENBLAS_CORETYPE")
    kernels = openblas_kernels() + (f" (pinned: OPENBLAS_CORETYPE={pin})" if pin else " (OpenBLAS's own choice)")
    return (f"{platform.machine()}, {os.cpu_count()} cores; threads {threads} (numpy BLAS and torch); "
            f"numpy's OpenBLAS kernels {kernels}; "
            f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}")


def interleaved_times(fns, reps, warmup=3, per_turn=1):
    """Seconds of each call of each of `fns` ([[...] per fn], reps * per_turn each), run in turns
    (a, b, a, b, ...) so that drift in the machine's load hits all alike; the first `warmup` turns
    are not kept. per_turn > 1 makes each turn that many calls in a row: at two threads, numpy's
    OpenBLAS and torch each leave worker threads spinning after a call, which slow the other
    library's next call (a torch product of 20 µs took 3.9 ms right after a numpy one)."""
    times = [[] for _ in fns]
    for i in range(warmup + reps):
        for fn, out in zip(fns, times):
            for _ in range(per_turn):
                t0 = time.perf_counter()
                fn()
                if i >= warmup:
                    out.append(time.perf_counter() - t0)
    return times


def interleaved_medians(fns, reps, warmup=3, per_turn=1):
    """Median seconds of each of `fns`, run in turns (interleaved_times)."""
    import numpy as np
    return [float(np.median(t)) for t in interleaved_times(fns, reps, warmup, per_turn)]


def scaled_error(a, b):
    """max|a - b| / max|b|: the float32 agreement of two whole arrays (0 when b is all zero and a == b)."""
    import numpy as np
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.abs(b).max(initial=0.0)
    return float(np.abs(a - b).max(initial=0.0) / scale) if scale > 0 else float(np.abs(a).max(initial=0.0))
