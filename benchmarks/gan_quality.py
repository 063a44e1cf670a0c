"""Quality per minute: the DCGAN recipe trained by minigen and by a plain-torch twin, FID against wall time.

    python benchmarks/gan_quality.py [--minutes 15] [--every 3] [--threads 2] [--seed 0] [--width 32]
                                     [--norm none] [--clusters 10] [--no-reuse] [--n 10000]
                                     [--out runs/gan_quality]

Both libraries train the DCGAN demo's recipe (demos/dcgan_mnist.py): the DCGAN of
minigen/models/dcgan.py at width 32 with no batch norm in D, self-conditioned on 10 k-means
clusters of the training images (--clusters; 0: unconditional, the demo's --preset unclustered),
Adam(1e-3, betas (0.5, 0.999)) for both nets, batch 64, the non-saturating loss, G's step
scoring the fakes of D's step again (--reuse), and samples from the averaged generator (decay
0.9995, Yazıcı et al. 2019; batch-norm statistics measured again for the averaged weights).
They start from the same weights (copied by minigen.interop), read the training images (and
their clusters, found once by minigen.clusters for both) in the same order and draw the same z,
so until float rounding parts them they take the same steps; what differs is how many steps
fit in a minute. The torch twin tells its D the cluster as a plain torch model would, with
constant planes concatenated to the image (benchmarks/twins.py); minigen adds one map per
cluster in D's first convolution instead (minigen.ops.conv2d_label_planes).

Each trains for --minutes of training time, one after the other (minigen first),
each in a fresh process, so that neither inherits the other's heap, caches or
thread pools, with the same threads for numpy's BLAS and torch. Every --every minutes of training
the clock stops and the averaged generator is scored by the shipped classifier
(minigen.metrics.sample_quality): FID of --n samples against the 10,000 test images,
and the score, each the mean ± sd over sample seeds 0, 1, 2 (the same z for both
libraries). Writes table.json and fid_vs_time.png to --out.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from common import machine_header, pin_threads

SAMPLE_SEEDS = (0, 1, 2)
CRITIC_NORMS = ("batch", "layer", "none")  # minigen.models.dcgan.CRITIC_NORMS, named here before numpy loads
LIBRARIES = ("minigen", "torch")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=15.0, help="training time of each library")
    p.add_argument("--every", type=float, default=3.0, help="minutes of training between scorings")
    p.add_argument("--threads", type=int, default=2, help="threads of numpy's BLAS and of torch, alike")
    p.add_argument("--seed", type=int, default=0, help="initial weights, data order and z of both runs")
    p.add_argument("--width", type=int, default=32, help="DCGAN channels (the demo's --set width)")
    p.add_argument("--norm", choices=CRITIC_NORMS, default="none",
                   help="D's normalisation (the demo's --set norm; batch: the paper's, the demo's before)")
    p.add_argument("--clusters", type=int, default=10,
                   help="k-means clusters both nets are told (the demo's --set clusters; 0: unconditional)")
    p.add_argument("--n", type=int, default=10000, help="samples per FID")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ema", type=float, default=0.9995, help="decay of the averaged generator (the demo's)")
    p.add_argument("--reuse", action=argparse.BooleanOptionalAction, default=True,
                   help="G's step scores the fakes of D's step again (the demo's --set reuse; before "
                        "3 Dec 2026 the demo drew a fresh z: --no-reuse)")
    p.add_argument("--out", default="runs/gan_quality")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MINIGEN_DATA, then the cache)")
    p.add_argument("--library", choices=LIBRARIES, help="train and score this one only (the parent runs each so)")
    args = p.parse_args(argv)
    if args.n < 2:
        raise SystemExit(f"--n must be at least 2 (FID fits a covariance to the samples), got {args.n}")
    if args.clusters == 1 or args.clusters < 0:
        raise SystemExit(f"--clusters must be 0 (unconditional) or at least 2, got {args.clusters}")
    if not 0 < args.every <= args.minutes:
        raise SystemExit(f"--every must be in (0, --minutes]; got --every {args.every}, --minutes {args.minutes}")
    return args


if __name__ == "__main__":
    pin_threads(parse_args().threads)  # before numpy and torch load their thread pools

import numpy as np  # noqa: E402
import torch  # noqa: E402
from twins import TorchAveragedGenerator, TorchGAN, statistics_inputs, torch_discriminator_loss, torch_nonsaturating  # noqa: E402

from minigen.allocator import keep_freed_memory  # noqa: E402
from minigen.averaging import AveragedGenerator  # noqa: E402
from minigen.data import batches, load_mnist  # noqa: E402
from minigen.metrics import mean_and_sd, sample_quality  # noqa: E402
from minigen.models.dcgan import dcgan  # noqa: E402
from minigen.models.gan import RECIPES  # noqa: E402


def minibatch_indices(seed, n, batch_size):
    """Endless minibatches of example indices, reshuffled every epoch by minigen.data.batches:
    each library makes its own from the same seed, so both read the images in one order."""
    rng = np.random.default_rng(seed)
    while True:
        for (idx,) in batches(rng, np.arange(n), batch_size=batch_size):
            yield idx


def minigen_contender(gan, params, recipe, ema, noise_seed):
    """(step(real, y=None) -> (d_loss, g_loss), generate(z, y=None) -> images) of minigen's recipe
    (y: a self-conditioned GAN's clusters, of the real images or asked of G): make_gan_step
    drawing z from a Generator seeded noise_seed, then the averaged generator's update. Like the
    demo's training loop, it first tells malloc to keep freed memory for the next step (minigen.allocator):
    race() calls the step itself, and without it every step faults in fresh pages (benchmarks/README.md,
    "Page faults"). The torch twin keeps malloc's defaults, as a torch user has them."""
    keep_freed_memory()  # as minigen.train.train_epochs (the demo's loop) does before its first step
    step, _, _ = recipe.train_step(gan, params, np.random.default_rng(noise_seed))
    average = AveragedGenerator(gan, params["generator"], ema)
    step = average.after_each(step)

    def train_step(real, y=None):
        metrics = step((real,) if y is None else (real, y))
        return metrics["d_loss"], metrics["g_loss"]

    def generate(z, y=None):
        return gan.generate(average.params, z, y, state=average.batch_norm_statistics())

    return train_step, generate


def torch_contender(gan, twin, recipe, ema, noise_seed):
    """The same pair for the torch twin (benchmarks/twins.py), drawing the same z as minigen_contender."""
    rng = np.random.default_rng(noise_seed)
    average = TorchAveragedGenerator(twin.G, ema, statistics_inputs(gan, twin))

    def train_step(real, y=None):
        losses = twin.step(torch.from_numpy(real), recipe, torch_discriminator_loss, torch_nonsaturating, rng=rng,
                           y=y)
        average.update()
        return losses

    def generate(z, y=None):
        return average.generate(twin.condition(torch.from_numpy(z), y)).numpy()

    return train_step, generate


def contender(library, x, seed, width, norm, lr, ema, reuse=False, clusters=0):
    """(gan, arrays, (train_step, generate)) of "minigen" or "torch" (see minigen_contender) for the
    training images x (N, 1, 28, 28). arrays: what the minibatches are cut from, (x,) or, with
    clusters, (x, each image's cluster) by k-means (minigen.models.selfcond, the same for both
    libraries; it also records the clusters' shares, by which sampling draws them). Both start from
    the weights of gan.init with `seed`, the twin's copied by interop; both draw their noise from seed + 2."""
    gan = dcgan(width=width, critic_norm=norm, clusters=clusters)
    arrays = gan.training_arrays(x, None) if gan.training_arrays else (x,)
    params = gan.init(np.random.default_rng(seed))
    recipe = replace(RECIPES["gan"], lr=lr, reuse_fakes=reuse)  # the non-saturating GAN, Adam betas (0.5, 0.999)
    if library == "minigen":
        return gan, arrays, minigen_contender(gan, params, recipe, ema, seed + 2)
    return gan, arrays, torch_contender(gan, TorchGAN(gan, params), recipe, ema, seed + 2)


def score(gan, generate, reference, n, chunk=1000):
    """FID and score of n samples (mean, sd over SAMPLE_SEEDS), drawn chunk by chunk: minigen's
    transposed convolution would hold about 1 GB of columns for 10,000 samples at once. A
    self-conditioned GAN's clusters are drawn by their shares after z, as its sample() draws them."""
    per_seed = []
    for seed in SAMPLE_SEEDS:
        rng = np.random.default_rng(seed)
        z, y = gan.sample_latent(rng, n), gan.sample_labels(rng, n)  # the same z (and clusters) for both
        samples = np.concatenate([generate(z[i:i + chunk], None if y is None else y[i:i + chunk])
                                  for i in range(0, n, chunk)])
        per_seed.append(sample_quality(samples, reference))
    return {**mean_and_sd(per_seed), "per_seed": per_seed}


def checkpoint_seconds(minutes, every):
    """Training times (s) at which to score: every `every` minutes, and at the end."""
    marks = [round(60 * every * k, 6) for k in range(1, int(minutes / every + 1e-9) + 1)]
    return marks if marks and abs(marks[-1] - 60 * minutes) < 1e-6 else marks + [60 * minutes]


def race(name, train_step, score_now, arrays, args):
    """Train one library until each checkpoint's training time (scoring excluded), score there.
    arrays: (images,) or (images, clusters), cut into the same minibatches."""
    order = minibatch_indices(args.seed + 1, len(arrays[0]), args.batch_size)
    trained, steps, rows = 0.0, 0, []
    for budget in checkpoint_seconds(args.minutes, args.every):
        while trained < budget:
            idx = next(order)
            start = time.perf_counter()
            train_step(*(a[idx] for a in arrays))
            trained += time.perf_counter() - start
            steps += 1
        rows.append({"library": name, "budget_s": budget, "train_s": trained, "steps": steps,
                     "load_average": os.getloadavg()[0], **score_now()})
        print(f"{name}: {trained:.0f} s, {steps} steps, FID {rows[-1]['fid']:.1f} ± {rows[-1]['fid_sd']:.1f}, "
              f"score {rows[-1]['is']:.2f} ± {rows[-1]['is_sd']:.2f}", flush=True)
    return rows


def table(rows):
    """A markdown table, one line per checkpoint, minigen and torch side by side."""
    cell = lambda r: f"{r['steps']} | {r['fid']:.1f} ± {r['fid_sd']:.1f} | {r['is']:.2f} ± {r['is_sd']:.2f}"
    by = {(r["library"], r["budget_s"]): r for r in rows}
    lines = ["| budget (min) | minigen steps | minigen FID | minigen score | torch steps | torch FID | torch score |",
             "|---|---|---|---|---|---|---|"]
    for budget in sorted({r["budget_s"] for r in rows}):
        lines.append(f"| {budget / 60:g} | {cell(by['minigen', budget])} | {cell(by['torch', budget])} |")
    return "\n".join(lines)


def save_plot(rows, path, title):
    """FID (mean ± sd over sample seeds) against minutes of training, one line per library."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.4))  # outside pyplot, as minigen.viz draws: no backend is chosen or changed
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name in ("minigen", "torch"):
        mine = [r for r in rows if r["library"] == name]
        ax.errorbar([r["train_s"] / 60 for r in mine], [r["fid"] for r in mine], [r["fid_sd"] for r in mine],
                    marker="o", capsize=3, label=name)
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("FID (shipped classifier)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run_library(args):
    """The child process: train and score one library, write its rows to --out/<library>.json."""
    machine_header(args.threads)  # sets torch.set_num_threads(args.threads)
    (x, _), (x_test, _) = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    gan, arrays, (train_step, generate) = contender(args.library, x, args.seed, args.width, args.norm, args.lr,
                                                    args.ema, args.reuse, args.clusters)
    rows = race(args.library, train_step, partial(score, gan, generate, x_test, args.n), arrays, args)
    with open(Path(args.out) / f"{args.library}.json", "w") as f:
        json.dump(rows, f, indent=2)


def main():
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.library:
        return run_library(args)
    header = machine_header(args.threads)
    rows = []
    for library in LIBRARIES:  # one after the other, each in a fresh process: no heap or state shared
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--library", library], check=True)
        rows += json.loads((out / f"{library}.json").read_text())
    conditioning = f"{args.clusters} clusters" if args.clusters else "unconditional"
    title = (f"DCGAN width {args.width}, {conditioning}, {args.threads} threads, "
             f"load {os.getloadavg()[0]:.1f} at the end")
    print(f"\n{title}\n{header}\n\n{table(rows)}")
    with open(out / "table.json", "w") as f:
        json.dump({"machine": header, "args": vars(args), "rows": rows}, f, indent=2)
    save_plot(rows, out / "fid_vs_time.png", title)
    print(f"wrote {out / 'table.json'} and {out / 'fid_vs_time.png'}")


if __name__ == "__main__":
    main()
