"""conv2d and conv_transpose2d, forward + backward, minigen against torch on the CPU.

    python benchmarks/conv_speed.py [--threads 2] [--reps 6] [--width 64] [--json FILE]

The layer sizes are those of a DCGAN on MNIST (batch 64): --width 64 is the paper's
(run.py's conv row), --width 32 the DCGAN demo's. Both libraries get the
same inputs and the same number of threads; their steps are interleaved, five of one
library's then five of the other's (--reps such turns), so that drift in the machine's speed
(turbo, other load) hits both alike, and each figure is the median over its steps. Five in a
row, not one: at two threads each library leaves a worker thread spinning after its step,
which slowed the other's next one (torch's four layers 115 ms one step at a time, 67-87 ms
five at a time). Even so, at two threads torch's layers ran slower here than in a process of
their own (74-77 ms against 56): for the ratio at two threads, read run.py's conv rows, which
time each library in processes of its own. The gradients are compared too, so a fast
wrong answer cannot pass.
"""
import json

from common import interleaved_medians, machine_header, pin_threads, scaled_error, timing_parser

STEPS_PER_TURN = 5  # one library's steps in a row before the other's (the docstring says why)


def parse_args():
    parser = timing_parser(__doc__, reps=6)
    parser.add_argument("--width", type=int, default=64, help="the DCGAN's width (the demo's: 32)")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    return parser.parse_args()


if __name__ == "__main__":
    pin_threads(parse_args().threads)

import autograd.numpy as anp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from minigen import ops  # noqa: E402
from minigen.allocator import keep_freed_memory  # noqa: E402
from minigen.autodiff import value_and_grad  # noqa: E402


def cases(width=64):
    """(name, transposed?, input shape, weight shape, stride, padding) of the four convolutions of
    minigen.models.dcgan at this width on MNIST, batch 64: D's two, then G's two transposed ones."""
    w = width
    return [(f"D conv1 1->{w}, 28->14", False, (64, 1, 28, 28), (w, 1, 4, 4), 2, 1),
            (f"D conv2 {w}->{2 * w}, 14->7", False, (64, w, 14, 14), (2 * w, w, 4, 4), 2, 1),
            (f"G convT1 {2 * w}->{w}, 7->14", True, (64, 2 * w, 7, 7), (2 * w, w, 4, 4), 2, 1),
            (f"G convT2 {w}->1, 14->28", True, (64, w, 14, 14), (w, 1, 4, 4), 2, 1)]



def minigen_step(transposed, x, w, r, stride, padding):
    """Both gradients as minigen's training steps take them: minigen.autodiff traces each array
    on its own. (autograd's grad(loss, (0, 1)) traces the pair as one tuple, and on the way back
    starts its gradient as zeros the size of x and w and adds each piece in: 4 ms of D conv2's
    42 ms at one thread, a cost no training step pays.)"""
    conv = ops.conv_transpose2d if transposed else ops.conv2d
    loss = lambda arrays: anp.sum(conv(arrays["x"], arrays["w"], None, stride, padding) * r)
    grads = value_and_grad(loss)({"x": x, "w": w})[1]
    return grads["x"], grads["w"]


def torch_step(transposed, x, w, r, stride, padding):
    conv = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    (conv(x, w, None, stride=stride, padding=padding) * r).sum().backward()
    return x.grad, w.grad


def bench_case(name, transposed, xshape, wshape, stride, padding, reps):
    """Median ms of one forward+backward in each library, and the gradients' agreement."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xshape, dtype=np.float32), rng.standard_normal(wshape, dtype=np.float32)
    conv = ops.conv_transpose2d if transposed else ops.conv2d
    r = rng.standard_normal(conv(x, w, None, stride, padding).shape, dtype=np.float32)
    tx, tw, tr = torch.tensor(x), torch.tensor(w), torch.tensor(r)
    steps = [lambda: minigen_step(transposed, x, w, r, stride, padding),
             lambda: torch_step(transposed, tx, tw, tr, stride, padding)]
    ours, theirs = interleaved_medians(steps, reps, per_turn=STEPS_PER_TURN)
    (gx, gw), (tgx, tgw) = minigen_step(transposed, x, w, r, stride, padding), \
        torch_step(transposed, tx, tw, tr, stride, padding)
    parity = max(scaled_error(gx, tgx.numpy()), scaled_error(gw, tgw.numpy()))
    return {"case": name, "minigen_ms": 1000 * ours, "torch_ms": 1000 * theirs, "ratio": ours / theirs,
            "max_rel_error": parity}


def main():
    args = parse_args()
    header = machine_header(args.threads)
    keep_freed_memory()  # as minigen.train.train_epochs does, and run.py's children (its conv row)
    rows = [bench_case(*case, args.reps) for case in cases(args.width)]
    total_ours, total_theirs = sum(r["minigen_ms"] for r in rows), sum(r["torch_ms"] for r in rows)
    print(f"conv forward+backward (grads of x and w), DCGAN width {args.width}, batch 64, "
          f"median of {STEPS_PER_TURN * args.reps} steps, {STEPS_PER_TURN} at a time\n{header}\n")
    print("| layer | minigen ms | torch ms | ratio | max rel. error |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['minigen_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} | "
              f"{r['max_rel_error']:.1e} |")
    print(f"| **all four** | {total_ours:.2f} | {total_theirs:.2f} | {total_ours / total_theirs:.2f} | |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": header, "reps": args.reps, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
