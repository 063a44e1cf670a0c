"""float32 GEMM in numpy and in torch at a DCGAN's sizes, and the MLP VAE step's eleven products.

    python benchmarks/gemm_speed.py [--threads 1] [--reps 10]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm_speed.py   # OpenBLAS's own kernels

The header names the kernels numpy's OpenBLAS runs (benchmarks/README.md, "Which BLAS
kernels"). Each figure is the best of the products timed, the two libraries in turns: --reps
turns of 3 products each at DCGAN sizes, of 10 in the MLP VAE's table (see
common.interleaved_times for why a turn is several products).

The second table times the products of one MLP VAE step (run.py's first row) the way each
library lays them out: minigen's Dense stores W as (in, out) and hands matmul transposed
views, torch's Linear stores (out, in). It shows how much of that row's ratio is the BLAS
alone: no autograd, no elementwise work, only the GEMMs.
"""

from common import MLP_VAE_BATCH as BATCH
from common import MLP_VAE_LAYERS, interleaved_times, machine_header, pin_threads, timing_parser

# (m, k, n, what): D's second convolution at width 64 as its three GEMMs, and a square reference.
SIZES = [
    (2048, 2048, 2048, "square"),
    (128, 1024, 3136, "D conv2 forward: W @ cols"),
    (1024, 128, 3136, "D conv2 input gradient: W^T @ G"),
    (128, 3136, 1024, "D conv2 weight gradient: G @ cols^T"),
]

def dense_products(n_in, n_out, rng, first):
    """The products of one dense layer's forward and backward pass, (what, numpy's, torch's) each:
    y = x W, dX = G Wᵀ (not for the first layer: nothing differentiates the images), dW = Xᵀ G."""
    import numpy as np
    import torch
    x, g = rng.random((BATCH, n_in), dtype=np.float32), rng.random((BATCH, n_out), dtype=np.float32)
    w = rng.random((n_in, n_out), dtype=np.float32)  # minigen's layout; torch's is its transpose
    tx, tg, tw = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(np.ascontiguousarray(w.T))
    products = [("forward", lambda: x @ w, lambda: tx @ tw.T),
                ("input gradient", lambda: g @ w.T, lambda: tg @ tw),
                ("weight gradient", lambda: x.T @ g, lambda: tg.T @ tx)]
    return [p for p in products if not (first and p[0] == "input gradient")]


def print_vae_products(reps, rng):
    print(f"\n| MLP VAE layer (batch {BATCH}) | product | numpy µs | torch µs |\n|---|---|---|---|")
    totals = [0.0, 0.0]
    for i, (n_in, n_out, what) in enumerate(MLP_VAE_LAYERS):
        for product, ours, theirs in dense_products(n_in, n_out, rng, first=i == 0):
            best = [min(t) for t in interleaved_times([ours, theirs], reps, warmup=2, per_turn=10)]
            totals = [total + b for total, b in zip(totals, best)]
            print(f"| {n_in} -> {n_out} ({what}) | {product} | {1e6 * best[0]:.0f} | {1e6 * best[1]:.0f} |")
    print(f"| all eleven | | {1e6 * totals[0]:.0f} | {1e6 * totals[1]:.0f} "
          f"(numpy / torch = {totals[0] / totals[1]:.2f}) |")


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
        ours, theirs = (min(t) for t in interleaved_times(products, args.reps, warmup=2, per_turn=3))
        flops = 2 * m * k * n / 1e9
        print(f"| {m} x {k} x {n} | {what} | {flops / ours:.0f} | {flops / theirs:.0f} |")
    print_vae_products(args.reps, rng)


if __name__ == "__main__":
    main()
