"""Batch norm's statistics measured once or in every place: the layer alone, and a DCGAN step.

    python benchmarks/batch_norm_speed.py [--threads 1] [--reps 60]

The BatchNorm layer measures its batch's statistics once (minigen.backprop.batch_statistics)
and hands them to the primitive ops.batch_norm_train, whose forward and backward passes then
read them. Without them (`stats=None`, how the primitive is called by anything else) each
pass measures them again, as the layer did before 38b3e67 (whose forward pass then also took
one pass more for the affine part, which both variants here share). Both variants run here in one
process, in turns (a, b, a, b, ...), so that drift in the machine's speed hits both alike:
the layer's forward + backward pass on the outputs of a convolution (in their channel-rows
memory order, as minigen's convolutions return them) and run.py's DCGAN step (width 64,
batch norm in both nets). Each figure is the median over the repetitions; the gradients of
the two variants are compared bit for bit.
"""
from contextlib import contextmanager

from common import interleaved_medians, machine_header, pin_threads, timing_parser


def parse_args():
    return timing_parser(__doc__, reps=60).parse_args()


if __name__ == "__main__":
    pin_threads(parse_args().threads)

import numpy as np  # noqa: E402

from minigen import nn, ops  # noqa: E402
from minigen.allocator import keep_freed_memory  # noqa: E402
from minigen.autodiff import value_and_vjp  # noqa: E402
from minigen.im2col import batch_first  # noqa: E402
from minigen.tree import leaves  # noqa: E402

HANDED_IN = ops.batch_norm_train


def measured_inside(x, gamma, beta, eps=1e-5, stats=None):
    """The primitive without the layer's statistics: its forward and backward pass measure them."""
    return HANDED_IN(x, gamma, beta, eps)


@contextmanager
def statistics(handed_in):
    """Run the BatchNorm layer (which calls ops.batch_norm_train) with its statistics handed in or not."""
    ops.batch_norm_train = HANDED_IN if handed_in else measured_inside
    try:
        yield
    finally:
        ops.batch_norm_train = HANDED_IN


def layer_step(shape, rng):
    """The BatchNorm layer in train mode, forward and backward, on a conv output of `shape` (N, C, H, W)."""
    n, c, h, w = shape
    x = batch_first(rng.standard_normal((c, h * w * n), dtype=np.float32), n, (h, w))
    g = batch_first(rng.standard_normal((c, h * w * n), dtype=np.float32), n, (h, w))
    layer = nn.BatchNorm()
    _, params = layer.init(rng, shape[1:])
    state = {}

    def step(handed_in):
        with statistics(handed_in):
            _, vjp = value_and_vjp(lambda arrays: layer.apply(arrays["p"], arrays["x"], train=True, state=state))(
                {"p": params, "x": x})
            return vjp(g)

    return step


def dcgan_step(rng):
    """run.py's DCGAN step workload (width 64, batch norm in D and G, batch 64), minigen's side."""
    import run
    step = run.dcgan_step(rng)[0]

    def one(handed_in):
        with statistics(handed_in):
            return step()

    return one


def in_turns(step, reps):
    """Median seconds of step(False) and of step(True), the two called in turns."""
    return interleaved_medians([lambda: step(False), lambda: step(True)], reps)


def main():
    args = parse_args()
    header = machine_header(args.threads)
    keep_freed_memory()  # as the training loop does
    rng = np.random.default_rng(0)
    print(f"batch norm's statistics handed in by the layer, or measured inside (forward and backward), "
          f"median of {args.reps}\n{header}\n")
    print("| workload | measured inside ms | handed in ms | ratio |\n|---|---|---|---|")
    for shape in ((64, 64, 14, 14), (64, 128, 7, 7)):
        step = layer_step(shape, rng)
        inside_grads, handed_grads = (leaves(step(handed_in)) for handed_in in (False, True))
        same = all(np.array_equal(a, b) for a, b in zip(inside_grads, handed_grads))
        inside, handed = in_turns(step, args.reps)
        print(f"| BatchNorm layer forward + backward, conv output {shape} (gradients: "
              f"{'the same bits' if same else 'DIFFERENT'}) | {1000 * inside:.2f} | {1000 * handed:.2f} | "
              f"{handed / inside:.3f} |")
    step = dcgan_step(rng)
    inside, handed = in_turns(step, args.reps)
    print(f"| DCGAN step, D then G (width 64, batch norm in both nets, batch 64) | {1000 * inside:.1f} | "
          f"{1000 * handed:.1f} | {handed / inside:.3f} |")


if __name__ == "__main__":
    main()
