"""One Adam step on the MLP VAE's parameters: minigen's blocks against one pass, and torch's Adam.

    python benchmarks/optim_speed.py [--threads 1] [--reps 200]

minigen's optimisers run their update over the flat parameter buffer in blocks of
minigen.optim.BLOCK elements, so that the five arrays one pass touches stay in the
L2 cache (optim.py says why); `block = size` makes the same update one pass over the
whole buffer, as it was before. torch's Adam is timed as a user gets it (its default
on the CPU: a loop over the parameters) and with foreach=True. Each figure is the
median over the repetitions, all four run in turns; the final parameters of
minigen's two variants are compared bit for bit.
"""

from common import interleaved_medians, machine_header, pin_threads, timing_parser


def parse_args():
    return timing_parser(__doc__, reps=200).parse_args()


if __name__ == "__main__":
    pin_threads(parse_args().threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from minigen.allocator import keep_freed_memory  # noqa: E402
from minigen.models.vae import VAE  # noqa: E402
from minigen.optim import Adam  # noqa: E402
from minigen.tree import leaves  # noqa: E402


def main():
    args = parse_args()
    header = machine_header(args.threads)
    keep_freed_memory()  # as the training loop does
    initial = lambda: VAE().init(np.random.default_rng(0))  # the same weights for every optimiser
    opts = {"minigen, blocks": Adam(initial()), "minigen, one pass": Adam(initial())}
    opts["minigen, one pass"].block = opts["minigen, one pass"].flat.size
    grads = [np.random.default_rng(1).standard_normal(p.shape, dtype=np.float32) * 1e-2 for p in leaves(initial())]
    tensors = [torch.from_numpy(p).requires_grad_() for p in leaves(initial())]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g)
    torch_default, torch_foreach = torch.optim.Adam(tensors, lr=1e-3), torch.optim.Adam(tensors, lr=1e-3, foreach=True)
    fns = [lambda opt=opt: opt.step(grads) for opt in opts.values()] + [torch_default.step, torch_foreach.step]
    medians = interleaved_medians(fns, args.reps)
    a, b = (opt.flat for opt in opts.values())
    print(f"Adam step on the MLP VAE's {a.size:,} parameters (784-400-20), median of {args.reps}\n{header}\n")
    print("| update | ms |\n|---|---|")
    names = [*opts, "torch.optim.Adam (its CPU default)", "torch.optim.Adam, foreach=True"]
    for name, seconds in zip(names, medians):
        print(f"| {name} | {1000 * seconds:.2f} |")
    print(f"\nminigen's blocks and one pass, parameters after {args.reps + 3} steps: "
          f"{'the same bits' if np.array_equal(a, b) else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
