"""conv2d and conv_transpose2d, forward + backward, minigen against torch on the CPU.

    python benchmarks/conv_speed.py [--threads 2] [--reps 30] [--json FILE]

The layer sizes are those of a DCGAN on MNIST (batch 64). Both libraries get the
same inputs and the same number of threads; their steps are interleaved so that
drift in the machine's speed (turbo, other load) hits both alike, and each figure
is the median over the repetitions. The gradients are compared too, so a fast
wrong answer cannot pass.
"""
import argparse
import json
import os
import platform
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    return parser.parse_args()


ARGS = parse_args()
# BLAS reads its thread count when numpy is first imported: set it before that.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import autograd.numpy as anp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from autograd import grad  # noqa: E402

from minigen import ops  # noqa: E402

# (name, transposed?, input shape, weight shape, stride, padding)
CASES = [
    ("D conv1 1->64, 28->14", False, (64, 1, 28, 28), (64, 1, 4, 4), 2, 1),
    ("D conv2 64->128, 14->7", False, (64, 64, 14, 14), (128, 64, 4, 4), 2, 1),
    ("G convT1 128->64, 7->14", True, (64, 128, 7, 7), (128, 64, 4, 4), 2, 1),
    ("G convT2 64->1, 14->28", True, (64, 64, 14, 14), (64, 1, 4, 4), 2, 1),
]


def minigen_step(transposed, x, w, r, stride, padding):
    conv = ops.conv_transpose2d if transposed else ops.conv2d
    loss = lambda x, w: anp.sum(conv(x, w, None, stride, padding) * r)
    return grad(loss, (0, 1))(x, w)


def torch_step(transposed, x, w, r, stride, padding):
    conv = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    (conv(x, w, None, stride=stride, padding=padding) * r).sum().backward()
    return x.grad, w.grad


def median_ms(times):
    return 1000 * float(np.median(times))


def bench_case(name, transposed, xshape, wshape, stride, padding, reps):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xshape, dtype=np.float32), rng.standard_normal(wshape, dtype=np.float32)
    conv = ops.conv_transpose2d if transposed else ops.conv2d
    r = rng.standard_normal(conv(x, w, None, stride, padding).shape, dtype=np.float32)
    tx, tw, tr = torch.tensor(x), torch.tensor(w), torch.tensor(r)
    ours, theirs = [], []
    for i in range(reps + 3):  # the first 3 rounds warm caches and allocators up
        t0 = time.perf_counter()
        gx, gw = minigen_step(transposed, x, w, r, stride, padding)
        t1 = time.perf_counter()
        tgx, tgw = torch_step(transposed, tx, tw, tr, stride, padding)
        t2 = time.perf_counter()
        if i >= 3:
            ours.append(t1 - t0)
            theirs.append(t2 - t1)
    parity = max(_scaled_error(gx, tgx.numpy()), _scaled_error(gw, tgw.numpy()))
    return {"case": name, "minigen_ms": median_ms(ours), "torch_ms": median_ms(theirs),
            "ratio": median_ms(ours) / median_ms(theirs), "max_rel_error": parity}


def _scaled_error(a, b):
    """max|a - b| / max|b|: the float32 agreement of two whole gradients."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    torch.set_num_threads(ARGS.threads)
    header = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {ARGS.threads}; "
              f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}")
    rows = [bench_case(*case, ARGS.reps) for case in CASES]
    total_ours, total_theirs = sum(r["minigen_ms"] for r in rows), sum(r["torch_ms"] for r in rows)
    print(f"conv forward+backward (grads of x and w), batch 64, median of {ARGS.reps}\n{header}\n")
    print("| layer | minigen ms | torch ms | ratio | max rel. error |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['minigen_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} | "
              f"{r['max_rel_error']:.1e} |")
    print(f"| **all four** | {total_ours:.2f} | {total_theirs:.2f} | {total_ours / total_theirs:.2f} | |")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"machine": header, "reps": ARGS.reps, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
