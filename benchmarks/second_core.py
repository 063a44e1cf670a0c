"""Can Python threads give minigen's non-GEMM work the second core? Two probes, numpy's BLAS at one thread.

    python benchmarks/second_core.py [--reps 100]

At two threads torch runs its elementwise kernels and its optimiser on both cores; numpy runs
only its GEMMs on both (OpenBLAS's threads), and everything between them on one. numpy releases
the GIL inside each call, so Python threads could share that work. This script measures how
much they do:

1. numpy alone: the same calls (a 128 x 784 x 400 product, exp over 32k and 2M float32) in one
   thread, then split between two Python threads.
2. An MLP VAE step (run.py's first row, 784-400-20, batch 128, Adam): the gradient of the whole
   batch in one thread, against the gradients of its two halves in two threads, averaged, then
   the same Adam step (a data-parallel step; the halves' products are smaller, and each half
   traces its own forward pass, so Python's share of the work grows).

BLAS is held at one thread (OPENBLAS_NUM_THREADS=1) so the two Python threads have the two cores
to themselves. Times are medians, the variants in turns (common.interleaved_medians).
"""
import argparse
from concurrent.futures import ThreadPoolExecutor

from common import interleaved_medians, machine_header, mlp_vae_batch, pin_threads

if __name__ == "__main__":
    pin_threads(1)  # before numpy loads: its BLAS reads the thread count once

import numpy as np  # noqa: E402

from minigen.allocator import keep_freed_memory  # noqa: E402
from minigen.autodiff import value_and_grad  # noqa: E402
from minigen.models.vae import VAE  # noqa: E402
from minigen.optim import Adam  # noqa: E402
from minigen.tree import leaves  # noqa: E402

POOL = ThreadPoolExecutor(1)  # the second thread; the calling thread is the first


def in_two_threads(work, n):
    """work(n) split as work(n // 2) on the pool's thread and the rest on this one."""
    other = POOL.submit(work, n // 2)
    work(n - n // 2)
    other.result()


def numpy_probe(reps):
    rng = np.random.default_rng(0)
    a, w = rng.random((128, 784), dtype=np.float32), rng.random((784, 400), dtype=np.float32)
    big = rng.random(2_000_000, dtype=np.float32)
    small = big[:32768].copy()
    calls = {"matmul 128 x 784 x 400, 20 calls": (lambda n: [a @ w for _ in range(n)], 20),
             "exp over 2M float32, 10 calls": (lambda n: [np.exp(big) for _ in range(n)], 10),
             "exp over 32k float32, 200 calls": (lambda n: [np.exp(small) for _ in range(n)], 200)}
    print("| numpy calls | one thread ms | two threads ms | speed-up |\n|---|---|---|---|")
    for name, (work, n) in calls.items():
        one, two = interleaved_medians([lambda w=work, n=n: w(n), lambda w=work, n=n: in_two_threads(w, n)], reps)
        print(f"| {name} | {1000 * one:.2f} | {1000 * two:.2f} | {one / two:.2f}x |")


def vae_probe(reps):
    rng = np.random.default_rng(0)
    model = VAE()
    params = model.init(rng)
    opt = Adam(params)
    x, eps = mlp_vae_batch(rng)
    loss_and_grad = value_and_grad(model.loss)

    def whole_batch():
        opt.step(loss_and_grad(params, x, eps)[1])

    def two_halves():
        other = POOL.submit(loss_and_grad, params, x[:64], eps[:64])
        _, mine = loss_and_grad(params, x[64:], eps[64:])
        _, theirs = other.result()
        opt.step([0.5 * (a + b) for a, b in zip(leaves(mine), leaves(theirs))])  # the mean over both halves

    one, two = interleaved_medians([whole_batch, two_halves], reps)
    print(f"\n| MLP VAE step (batch 128) | ms |\n|---|---|\n| whole batch, one thread | {1000 * one:.2f} |\n"
          f"| two halves of 64 in two threads | {1000 * two:.2f} ({one / two:.2f}x the speed) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=100)
    reps = parser.parse_args().reps
    keep_freed_memory()  # as minigen's training loop does
    print(f"Python threads over numpy, median of {reps}\n{machine_header(1)}\n")
    numpy_probe(reps)
    vae_probe(reps)


if __name__ == "__main__":
    main()
