"""What telling D the label costs: the DCGAN demo's step with and without its 10 clusters.

    OPENBLAS_NUM_THREADS=1 python benchmarks/conditioning.py            # 120 steps of each, interleaved
    OPENBLAS_NUM_THREADS=1 python benchmarks/conditioning.py --steps 40

Both are built as `minigen demo dcgan` builds them (width 32, no batch norm in D, averaged G,
reused fakes), one with `clusters=10` (a SelfConditionedGAN: G reads [z, onehot(c)], D the
image with its cluster, minigen.models.selfcond) and one with `clusters=0`, on the same random
minibatch of 64. The steps alternate between the two in one process, so a machine whose speed
drifts (a VM's does) slows both alike; the first 10 of each are warm-up and not counted.
Prints the median and 20th percentile of each, and their ratio: the conditioning's overhead.
(D's label planes enter its first convolution as one map per label, ops.conv2d_label_planes;
built as 10 more input channels, before c7f3a6d, a step took ~1.4x the unconditional one.)
"""
import argparse
import time

import numpy as np

from minigen import models

RECIPE = {"width": "32", "norm": "none", "ema": "0.9995", "reuse": "true"}  # demos/dcgan_mnist.py's
WARMUP = 10


def step_times(trainables, batches, steps):
    """Seconds per step of each trainable, taking one step of each in turn."""
    times = {name: [] for name in trainables}
    for _ in range(WARMUP + steps):
        for name, trainable in trainables.items():
            began = time.perf_counter()
            trainable.step(batches[name])
            times[name].append(time.perf_counter() - began)
    return {name: np.array(t[WARMUP:]) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="timed steps of each (after 10 of warm-up)")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    rng = np.random.default_rng(0)
    images, clusters = rng.random((64, 1, 28, 28), dtype=np.float32), rng.integers(10, size=64)
    trainables = {f"clusters={k}": models.build("dcgan", {**RECIPE, "clusters": str(k)}, np.random.default_rng(1))
                  for k in (0, 10)}
    batches = {"clusters=0": (images,), "clusters=10": (images, clusters)}
    times = step_times(trainables, batches, args.steps)
    for name, t in times.items():
        print(f"{name:12s} median {1000 * np.median(t):6.1f} ms, 20th percentile {1000 * np.percentile(t, 20):6.1f} ms")
    ratio = np.median(times["clusters=10"]) / np.median(times["clusters=0"])
    print(f"self-conditioned / unconditional: {ratio:.2f} (medians of {args.steps} steps each)")


if __name__ == "__main__":
    main()
