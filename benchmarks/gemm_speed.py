"""float32 GEMM in numpy and in torch at a DCGAN's sizes: which BLAS kernels numpy runs shows here first.

    python benchmarks/gemm_speed.py [--threads 1] [--reps 10]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm_speed.py   # OpenBLAS's own kernels

The header names the kernels numpy's OpenBLAS runs (benchmarks/README.md, "Which BLAS
kernels"). Each figure is the best of --reps products, the two libraries in turns.
"""

from common import interleaved_times, machine_header, pin_threads, timing_parser

# (m, k, n, what): D's second convolution at width 64 as its three GEMMs, and a square reference.
SIZES = [
    (2048, 2048, 2048, "square"),
    (128, 1024, 3136, "D conv2 forward: W @ cols"),
    (1024, 128, 3136, "D conv2 input gradient: W^T @ G"),
    (128, 3136, 1024, "D conv2 weight gradient: G @ cols^T"),
]


def main():
    parser = timing_parser(__doc__, reps=10, threads=1)
    args = parser.parse_args()
    pin_threads(args.threads)
    import numpy as np
    import torch
    print(machine_header(args.threads))
    print("\n| m x k x n | what | numpy GFLOP/s | torch GFLOP/s |\n|---|---|---|---|")
    rng = np.random.default_rng(0)
    for m, k, n, what in SIZES:
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        products = [lambda a=a, b=b: a @ b, lambda a=ta, b=tb: a @ b]  # defaults bind this size's arrays
        ours, theirs = (min(t) for t in interleaved_times(products, args.reps, warmup=2))
        flops = 2 * m * k * n / 1e9
        print(f"| {m} x {k} x {n} | {what} | {flops / ours:.0f} | {flops / theirs:.0f} |")


if __name__ == "__main__":
    main()
