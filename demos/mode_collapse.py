"""The mode-collapse lab: GANs on 2-D mixtures whose modes can be counted.

    python demos/mode_collapse.py --smoke             # seconds: a check that everything runs
    python demos/mode_collapse.py                     # GAN, PacGAN2/4, WGAN-GP, small nets, one seed
    (the README's table gives the commands that made it)

Data: the 2D-ring (8 Gaussians on a circle of radius 1, std 0.01) and the 2D-grid
(25 Gaussians at {-4, -2, 0, 2, 4}², std 0.05) with PacGAN's settings (Lin et al. 2018;
fjxmlzn/PacGAN, synthetic_data_experiments/*/config.py), so that its table (GAN 17.3/25 on the
grid, PacGAN4 24.8/25, after 400 epochs of 1,000 steps) is a reference.
The score is minigen.metrics.mode_coverage on 2,500 samples: modes covered by the strict rule
(1 % of the samples, high quality, nearest to the mode), by the papers' one-sample rule, and
the high-quality share. Every run is scored twice: samples from the last G, and from an
exponential moving average of G's weights (Yazıcı et al. 2019), which damps G's circling.

Models: gan, pacgan2/3/4 (the same GAN, its D reading m samples side by side, a minibatch
holding 100 such packed inputs as in PacGAN's code) and wgan-gp, with gan_toy.py's toy
settings (Gulrajani et al. 2017's code: λ = 0.1, 5 critic steps, data scaled to unit std).
--arch small (the default): small MLPs for G and D (toy_gan, 3 x 128), alternating steps,
Adam(1e-3, β1 = 0.5) for every model (WGAN-GP: β = (0.5, 0.9)), so that a run takes a minute.
--arch paper: each model as its paper's released code trains it (minigen.models.toy): PacGAN's
nets (G 4 x 400 with batch norm, D 3 maxout layers of 200 x 5) updated simultaneously with
Adam(1e-4, β1 = 0.8); WGAN-GP's 3 x 512 ReLU nets, Adam(1e-4, (0.5, 0.9)), batches of 256.
The papers train them 400,000 and 100,000 steps, hours per run on one CPU core; the README's
paper-net table takes ten times their learning rate for 20,000 steps (WGAN-GP: 3,000), --lr 1e-3.
Then an optional learning-rate sweep of the plain GAN (--sweep-lrs).
Writes to OUT: scatter_<data>.png (rows: models, columns: training steps), curves_<data>_<model>.png
(D's outputs, losses and gradient norms per step), lr_sweep.png, metrics.json; prints a table.
"""
import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from minigen import data, viz
from minigen.averaging import MovingAverage
from minigen.metrics import mode_coverage
from minigen.models.gan import RECIPES, toy_gan
from minigen.models.toy import make_simultaneous_step, pacgan_nets, wgan_gp_nets
from minigen.train import train_epochs

DATASETS = {  # PacGAN's mixtures (its config.py files)
    "ring": lambda rng, n: data.ring(rng, n, n_modes=8, radius=1.0, std=0.01),
    "grid": lambda rng, n: data.grid(rng, n, side=5, spacing=2.0, std=0.05),
}
MODELS = {"gan": 1, "pacgan2": 2, "pacgan3": 3, "pacgan4": 4, "wgan-gp": 1}  # name -> samples per D input
# gan_toy.py trains on data of unit std: its 8 Gaussians (radius 2) / 1.414, its 25 (spacing 2) / 2.828.
# Ours have radius 1 and spacing 2, so the WGAN-GP sees them scaled by these factors (--wgan-data unit)
# (scores are unchanged by scaling: centres and std are scaled alike).
WGAN_GP_SCALE = {"ring": 2 / 1.414, "grid": 1 / 2.828}
EVAL_SAMPLES = 2500  # as in VEEGAN and PacGAN


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--models", nargs="*", default=["gan", "pacgan2", "pacgan4", "wgan-gp"], choices=list(MODELS))
    p.add_argument("--arch", default="small", choices=["small", "paper"],
                   help="paper: each model's paper's nets and settings; small: small MLPs, alternating steps")
    p.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    p.add_argument("--snapshots", type=int, default=5, help="scatter-plot columns (evenly spaced in training)")
    p.add_argument("--seeds", type=int, default=1, help="runs per model (the table: mean and min-max)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="the runs' seeds are FIRST_SEED, FIRST_SEED + 1, ...: split the seeds over processes")
    p.add_argument("--batch-size", type=int, default=None,
                   help="D inputs per minibatch (default: 100; wgan-gp with --arch paper: 256)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of every model (default: the paper's with --arch paper, 1e-3 with small)")
    p.add_argument("--ema", type=float, default=0.999, help="decay of the moving average of G's weights")
    p.add_argument("--lr-decay", type=float, default=0.0,
                   help="share of the steps, at the end, over which every lr falls linearly to 0 (0: constant)")
    p.add_argument("--gp-weight", type=float, default=0.1,
                   help="WGAN-GP's λ (gan_toy.py's 0.1 for toy data; the paper's image experiments use 10)")
    p.add_argument("--wgan-data", default="unit", choices=["unit", "raw"],
                   help="WGAN-GP's data: scaled to unit std as gan_toy.py does (unit), or as the other models see it")
    p.add_argument("--latent", type=int, default=2, help="dimension of z (PacGAN, WGAN-GP: 2)")
    p.add_argument("--hidden", type=int, default=128, help="--arch small: units per hidden layer")
    p.add_argument("--depth", type=int, default=3, help="--arch small: hidden layers in G and in D")
    p.add_argument("--sweep-lrs", type=float, nargs="*", default=[],
                   help="learning rates for a sweep of the plain GAN (none: no sweep)")
    p.add_argument("--sweep-steps", type=int, default=None, help="generator steps per sweep run (default --steps)")
    p.add_argument("--sweep-seeds", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="a few steps of everything, to check it runs")
    p.add_argument("--out", default="runs/mode_collapse")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.snapshots, args.sweep_lrs, args.sweep_steps = 4, 2, [1e-4, 1e-3], 2
        args.hidden, args.depth = 32, 2
    if args.steps < args.snapshots or args.snapshots < 1:
        raise SystemExit(f"--steps ({args.steps}) must be at least --snapshots ({args.snapshots}) >= 1")
    return args


def build(data_name, model_name, args, rng, lr=None):
    """(gan, params, step, optimisers, data scale, minibatch size in samples) of one model."""
    pack, wgan, paper = MODELS[model_name], model_name == "wgan-gp", args.arch == "paper"
    if not paper:
        gan = toy_gan(latent=args.latent, hidden=args.hidden, depth=args.depth, pack=pack)
        recipe = RECIPES["wgan-gp" if wgan else "gan"]
    elif wgan:
        gan, recipe = wgan_gp_nets(latent=args.latent), RECIPES["wgan-gp"]
    else:
        gan = pacgan_nets(pack=pack, latent=args.latent)
        recipe = dataclasses.replace(RECIPES["gan"], lr=1e-4, betas=(0.8, 0.999))  # PacGAN's config.py
    if wgan:
        recipe = dataclasses.replace(recipe, gp_weight=args.gp_weight)
    lr = lr or args.lr or (recipe.lr if paper else 1e-3)
    params = gan.init(rng)
    if paper and not wgan:
        g_opt, d_opt = recipe.optimizers(params, lr)
        step = make_simultaneous_step(gan, params, g_opt, d_opt, rng)
    else:
        step, g_opt, d_opt = recipe.train_step(gan, params, rng, lr=lr)
    batch = args.batch_size or (256 if paper and wgan else 100)
    scale = WGAN_GP_SCALE[data_name] if wgan and args.wgan_data == "unit" else 1.0
    return gan, params, step, (g_opt, d_opt), scale, recipe.n_critic * batch * pack


def train_run(data_name, model_name, args, seed, steps, snapshots, lr=None):
    """Train one model on one mixture. Returns ({"last": [coverage per snapshot], "average": [...]},
    samples of the last G per snapshot, per-step metrics)."""
    rng = np.random.default_rng(seed)
    gan, params, step, optimizers, scale, minibatch = build(data_name, model_name, args, rng, lr)
    step = scheduled(step, optimizers, steps, args.lr_decay)
    step, averaged_params = averaged(step, params, args.ema)
    # One "epoch" of train_epochs = one snapshot interval: steps/snapshots generator steps, each
    # taking `minibatch` fresh samples of the mixture (n_critic minibatches of pack·batch_size).
    per_snapshot = steps // snapshots
    x = DATASETS[data_name](rng, per_snapshot * minibatch).x * np.float32(scale)
    eval_rng = np.random.default_rng(10_000 + seed)
    mixture = DATASETS[data_name](eval_rng, 1)
    coverages, samples = {"last": [], "average": []}, []

    def snapshot(epoch, metrics):
        z = gan.sample_latent(eval_rng, EVAL_SAMPLES)
        last = np.asarray(gan.generate(params["generator"], z)) / scale  # batch norm: running statistics
        # The average of G's weights has no running statistics of its own: it normalises with the
        # statistics of these 2,500 samples (for nets without batch norm, train mode changes nothing).
        average = np.asarray(gan.generator.apply(averaged_params["generator"], z, train=True)) / scale
        samples.append(last)
        for name, fake in (("last", last), ("average", average)):
            coverages[name].append(mode_coverage(fake, mixture.centres, mixture.std))

    trace = []  # every step's metrics: train_epochs only keeps means per snapshot interval

    def logged_step(batch):
        trace.append(step(batch))
        return trace[-1]

    train_epochs(logged_step, (x,), snapshots, rng, minibatch, desc=f"{model_name} on {data_name}", log=snapshot)
    return coverages, samples, trace


def scheduled(step, optimizers, steps, share):
    """step with every optimiser's lr falling linearly to 0 over the last `share` of `steps`."""
    if not share:
        return step
    lr0, start, taken = [opt.lr for opt in optimizers], steps * (1 - share), [0]

    def step_with_decay(batch):
        taken[0] += 1
        for opt, lr in zip(optimizers, lr0):
            opt.lr = lr * min(1.0, (steps - taken[0] + 1) / (steps - start)) if taken[0] > start else lr
        return step(batch)
    return step_with_decay


def averaged(step, params, decay):
    """(step that also updates the average, params whose generator is the average of G's weights).

    The returned params are sampled from; the training step keeps updating the raw G. The
    average is minigen.averaging's, whose decay ramps up early on, so that the random initial
    weights do not linger in a short run.
    """
    average = MovingAverage(params["generator"], decay)
    return average.after_each(step), {**params, "generator": average.params}


def score(cov):
    """'strict/one-sample, HQ %' of one ModeCoverage."""
    return f"{cov.modes}/{cov.modes_one_sample} modes, {100 * cov.high_quality:.1f}% HQ"


def scatter_grid(results, data_name, args, path):
    """Rows: models; columns: snapshots. Samples of the last G in black, mode centres as red crosses."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = DATASETS[data_name](np.random.default_rng(0), 1).centres
    models = list(results)
    cols = len(results[models[0]]["samples"])
    fig, axes = plt.subplots(len(models), cols, figsize=(2.2 * cols, 2.3 * len(models)), squeeze=False)
    lim = np.abs(centres).max() * 1.6
    per_snapshot = args.steps // args.snapshots
    for r, model in enumerate(models):
        for c, (fake, cov) in enumerate(zip(results[model]["samples"], results[model]["coverage"])):
            ax = axes[r, c]
            ax.scatter(fake[:, 0], fake[:, 1], s=1, c="black", alpha=0.25, linewidths=0)
            ax.scatter(centres[:, 0], centres[:, 1], s=12, c="red", marker="x", linewidths=0.8)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"step {(c + 1) * per_snapshot}: {score(cov)}", fontsize=6)
            if c == 0:
                ax.set_ylabel(model, fontsize=9)
    fig.suptitle(f"2D-{data_name}: last G's samples over training, modes strict/one-sample (seed {args.first_seed})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_plot(sweep, n_modes, path):
    """Modes covered (strict and one-sample) and high-quality share against the plain GAN's learning
    rate, one panel per mixture: dots are runs, lines their means. A generator that scatters its
    samples reaches many modes once each (one-sample count) with few high-quality samples."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sweep), figsize=(4.4 * len(sweep), 3.2), squeeze=False)
    for ax, (data_name, by_lr) in zip(axes[0], sweep.items()):
        lrs, quality = sorted(by_lr), ax.twinx()
        lines = (("modes, strict", "black", ax, 1), ("modes, one sample", "grey", ax, 1),
                 ("high quality %", "tab:blue", quality, 100))
        for i, (label, colour, axis, scale) in enumerate(lines):
            runs = [[scale * cov[i] for cov in by_lr[lr]] for lr in lrs]
            for lr, values in zip(lrs, runs):
                axis.scatter([lr] * len(values), values, c=colour, s=10)
            axis.plot(lrs, [np.mean(v) for v in runs], marker="o", c=colour, ls="--" if i == 2 else "-", label=label)
        ax.axhline(n_modes[data_name], ls=":", c="red", lw=0.8)
        ax.set(xscale="log", ylim=(0, n_modes[data_name] + 1), xlabel="learning rate", title=f"GAN on 2D-{data_name}",
               ylabel=f"modes covered (of {n_modes[data_name]}, red)")
        quality.set_ylim(0, 105)
        quality.set_ylabel("high-quality samples %", color="tab:blue")
        (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), quality.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def record(data_name, model, seed, coverages, seconds):
    """One run's entry of metrics.json: final scores of both samplers, and every snapshot's."""
    entry = {"data": data_name, "model": model, "seed": seed, "seconds": seconds}
    for name, covs in coverages.items():
        final = covs[-1]
        entry[name] = {"modes": final.modes, "modes_one_sample": final.modes_one_sample,
                       "high_quality": final.high_quality, "counts": final.counts.tolist(),
                       "snapshots": [(c.modes, c.modes_one_sample, c.high_quality) for c in covs]}
    return entry


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report, start = {"args": vars(args).copy(), "runs": [], "sweep": []}, time.perf_counter()
    n_modes = {d: len(DATASETS[d](np.random.default_rng(0), 1).centres) for d in args.data}
    for data_name in args.data:
        shown = {}
        for model in args.models:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                t0 = time.perf_counter()
                coverages, samples, trace = train_run(data_name, model, args, seed, args.steps, args.snapshots)
                report["runs"].append(record(data_name, model, seed, coverages, time.perf_counter() - t0))
                print(f"{data_name:4s} {model:8s} seed {seed}: last G {score(coverages['last'][-1])}; average "
                      f"{score(coverages['average'][-1])} ({time.perf_counter() - t0:.0f} s)", flush=True)
                if seed == args.first_seed:
                    shown[model] = {"coverage": coverages["last"], "samples": samples}
                    viz.save_training_panels(trace, out / f"curves_{data_name}_{model}.png",
                                             f"{model} on 2D-{data_name}")
        if shown:
            scatter_grid(shown, data_name, args, out / f"scatter_{data_name}.png")

    sweep = {}
    for data_name in args.data if args.sweep_lrs else []:
        sweep[data_name] = {}
        for lr in args.sweep_lrs:
            for seed in range(args.sweep_seeds):
                coverages, _, _ = train_run(data_name, "gan", args, 100 + seed, args.sweep_steps or args.steps, 1, lr)
                final = coverages["last"][-1]
                sweep[data_name].setdefault(lr, []).append(final[:3])
                report["sweep"].append({"data": data_name, "lr": lr, "seed": 100 + seed, "modes": final.modes,
                                        "modes_one_sample": final.modes_one_sample, "high_quality": final.high_quality})
            print(f"sweep {data_name} lr {lr:g}: (strict, one-sample, high quality) {sweep[data_name][lr]}", flush=True)
    if sweep:
        sweep_plot(sweep, n_modes, out / "lr_sweep.png")

    report["seconds"] = time.perf_counter() - start
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    if report["runs"]:
        print_table(report["runs"], n_modes)
    print(f"{report['seconds']:.0f} s in all; pictures and metrics.json in {out}/")


def print_table(runs, n_modes):
    """Per mixture, model and sampler: mean [min-max] over seeds of both counts and the high-quality share."""
    print("\nmodes strict (≥ 1 % of samples) | modes one-sample | high quality %: mean [min-max] over seeds")
    for key in dict.fromkeys((r["data"], r["model"]) for r in runs):
        rs = [r for r in runs if (r["data"], r["model"]) == key]
        for sampler in ("last", "average"):
            cells = []
            for field, scale in (("modes", 1), ("modes_one_sample", 1), ("high_quality", 100)):
                v = [scale * r[sampler][field] for r in rs]
                cells.append(f"{np.mean(v):.1f} [{min(v):.3g}-{max(v):.3g}]")
            print(f"{key[0]:4s} {key[1]:8s} {sampler:7s} /{n_modes[key[0]]:<3d} " + " | ".join(cells)
                  + f"  ({len(rs)} seeds)")


if __name__ == "__main__":
    main()
