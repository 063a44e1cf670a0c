"""The mode-collapse lab: GANs on 2-D mixtures whose modes can be counted.

    python demos/mode_collapse.py                     # quick (~5 min on one core): GAN / PacGAN / WGAN-GP
    python demos/mode_collapse.py --models gan gan-ema --steps 6000 --batch-size 250 --snapshots 6 \
        --seeds 2 --sweep-steps 2000                  # the README's figures (~13 min on one core)
    python demos/mode_collapse.py --smoke             # seconds: a check that everything runs

Data: the 2D-ring (8 Gaussians on a circle of radius 1, std 0.01) and the 2D-grid
(25 Gaussians at {-4, -2, 0, 2, 4}², std 0.05) with PacGAN's settings (Lin et al. 2018;
fjxmlzn/PacGAN, synthetic_data_experiments/*/config.py), so that its figures (GAN: 6.3/8
modes on the ring, 17.3/25 on the grid, after 400 epochs of 1,000 steps) are a reference.
The score is minigen.metrics.mode_coverage on 2,500 samples: modes covered, high-quality share.

Models, all with the same small MLPs (toy_gan, z of dimension 2 as in PacGAN): a GAN
(non-saturating loss), PacGAN (the same GAN, its discriminator judging `--pack` samples at
once, each minibatch holding batch_size packed inputs) and WGAN-GP (Gulrajani et al. 2017's
recipe). All use one learning rate, 1e-3 by default: the papers' 2e-4 and 1e-4 need many
more steps than a CPU lab affords. The fix, gan-ema and pacgan-ema: the same training,
but samples are drawn from an exponential moving average of G's weights (Yazıcı et al.
2019), not from the last G, which keeps circling the modes; `--lr-decay` optionally anneals
every lr to 0 at the end. Then a learning-rate sweep of the plain GAN.
Writes to OUT: scatter_ring.png and scatter_grid.png (rows: models, columns: training
steps), curves_<data>_<model>.png (D's outputs, losses and gradient norms per step),
lr_sweep.png, metrics.json; prints a table of modes covered and high-quality share (mean over seeds).
"""
import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from minigen import data, viz
from minigen.metrics import mode_coverage
from minigen.models.gan import RECIPES, toy_gan
from minigen.optim import update_average
from minigen.train import train_epochs

DATASETS = {  # PacGAN's mixtures (its config.py files)
    "ring": lambda rng, n: data.ring(rng, n, n_modes=8, radius=1.0, std=0.01),
    "grid": lambda rng, n: data.grid(rng, n, side=5, spacing=2.0, std=0.05),
}
MODELS = {  # name -> (recipe, pack, sample from an average of G's weights)
    "gan": ("gan", 1, False),
    "pacgan": ("gan", None, False),  # pack from --pack
    "wgan-gp": ("wgan-gp", 1, False),
    "gan-ema": ("gan", 1, True),
    "pacgan-ema": ("gan", None, True),
}
EVAL_SAMPLES = 2500  # as in VEEGAN and PacGAN


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    p.add_argument("--snapshots", type=int, default=5, help="scatter-plot columns (evenly spaced in training)")
    p.add_argument("--seeds", type=int, default=1, help="runs per model (the table reports the mean)")
    p.add_argument("--batch-size", type=int, default=100, help="discriminator inputs per minibatch")
    p.add_argument("--lr", type=float, default=1e-3,
                   help="learning rate of every model (the papers' 2e-4 and 1e-4 need far more steps)")
    p.add_argument("--pack", type=int, default=2, help="samples per PacGAN discriminator input")
    p.add_argument("--ema", type=float, default=0.999,
                   help="decay of the *-ema variants' moving average of G's weights (Yazıcı et al. 2019)")
    p.add_argument("--lr-decay", type=float, default=0.0,
                   help="share of the steps, at the end, over which every lr falls linearly to 0 (0: constant)")
    p.add_argument("--latent", type=int, default=2, help="dimension of z (PacGAN: 2)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--depth", type=int, default=3, help="hidden layers in G and in D")
    p.add_argument("--sweep-lrs", type=float, nargs="*", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                   help="learning rates for the plain GAN's sweep (none: skip the sweep)")
    p.add_argument("--sweep-steps", type=int, default=None, help="generator steps per sweep run (default --steps)")
    p.add_argument("--sweep-seeds", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="a few steps of everything, to check it runs")
    p.add_argument("--out", default="runs/mode_collapse")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.snapshots, args.sweep_lrs, args.sweep_steps = 20, 2, args.sweep_lrs[:2], 10
        args.hidden, args.depth = 32, 2
    if args.steps < args.snapshots or args.snapshots < 1:
        raise SystemExit(f"--steps ({args.steps}) must be at least --snapshots ({args.snapshots}) >= 1")
    return args


def train_run(data_name, model_name, args, seed, steps, snapshots, lr=None):
    """Train one model on one mixture; returns (coverage per snapshot, samples per snapshot, per-step metrics)."""
    rng = np.random.default_rng(seed)
    recipe_name, pack, ema = MODELS[model_name]
    recipe = RECIPES[recipe_name]
    gan = toy_gan(latent=args.latent, hidden=args.hidden, depth=args.depth, pack=pack or args.pack)
    params = gan.init(rng)
    step, g_opt, d_opt = recipe.train_step(gan, params, rng, lr=lr or args.lr)
    step = scheduled(step, (g_opt, d_opt), steps, args.lr_decay)
    if ema:
        step, params = averaged(step, params, args.ema)
    # One "epoch" of train_epochs = one snapshot interval: steps/snapshots generator steps,
    # each taking n_critic minibatches of fresh samples from the mixture. As in PacGAN, a
    # minibatch holds batch_size discriminator inputs, so pack·batch_size samples when packed.
    per_snapshot, batch = steps // snapshots, args.batch_size * gan.pack_size
    x = DATASETS[data_name](rng, per_snapshot * recipe.n_critic * batch).x
    eval_rng = np.random.default_rng(10_000 + seed)
    mixture = DATASETS[data_name](eval_rng, 1)
    coverages, samples = [], []

    def snapshot(epoch, metrics):
        fake = np.asarray(gan.sample(params, eval_rng, EVAL_SAMPLES))
        samples.append(fake)
        coverages.append(mode_coverage(fake, mixture.centres, mixture.std))

    trace = []  # every step's metrics: train_epochs only keeps means per snapshot interval

    def logged_step(batch):
        trace.append(step(batch))
        return trace[-1]

    train_epochs(logged_step, (x,), snapshots, rng, recipe.n_critic * batch,
                 desc=f"{model_name} on {data_name}", log=snapshot)
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

    The returned params are sampled from; the training step keeps updating the raw G. Early on
    the decay is min(decay, (1 + t) / (10 + t)) (TensorFlow's ExponentialMovingAverage with
    num_updates), so that the random initial weights do not linger in a short run.
    """
    average = copy.deepcopy(params["generator"])
    taken = [0]

    def step_and_average(batch):
        metrics = step(batch)
        taken[0] += 1
        update_average(average, params["generator"], min(decay, (1 + taken[0]) / (10 + taken[0])))
        return metrics
    return step_and_average, {**params, "generator": average}


def scatter_grid(results, data_name, args, path):
    """Rows: models; columns: snapshots. Samples in black, mode centres as red crosses."""
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
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {(c + 1) * per_snapshot}: {cov.modes}/{len(centres)}, "
                         f"{100 * cov.high_quality:.0f}% HQ", fontsize=7)
            if c == 0:
                ax.set_ylabel(model, fontsize=9)
    fig.suptitle(f"2D-{data_name}: samples over training (seed {args.seed0})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_plot(sweep, n_modes, path):
    """Modes covered and high-quality share against the plain GAN's learning rate, one panel per
    mixture: dots are runs, lines their means. Both matter: spread-out samples can "cover" many
    modes with a few stray points each while almost none of them is high quality."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sweep), figsize=(4.4 * len(sweep), 3.2), squeeze=False)
    for ax, (data_name, by_lr) in zip(axes[0], sweep.items()):
        lrs = sorted(by_lr)
        quality = ax.twinx()
        for lr in lrs:
            ax.scatter([lr] * len(by_lr[lr]), [m for m, _ in by_lr[lr]], c="black", s=10)
            quality.scatter([lr] * len(by_lr[lr]), [100 * q for _, q in by_lr[lr]], c="tab:blue", s=10)
        ax.plot(lrs, [np.mean([m for m, _ in by_lr[lr]]) for lr in lrs], marker="o", c="black", label="modes")
        quality.plot(lrs, [np.mean([100 * q for _, q in by_lr[lr]]) for lr in lrs], marker="s", ls="--",
                     c="tab:blue", label="high quality %")
        ax.axhline(n_modes[data_name], ls=":", c="red", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0, n_modes[data_name] + 1)
        quality.set_ylim(0, 105)
        ax.set_xlabel("learning rate (Adam, β1 = 0.5)")
        ax.set_ylabel(f"modes covered (of {n_modes[data_name]}, red)")
        quality.set_ylabel("high-quality samples %", color="tab:blue")
        ax.set_title(f"GAN on 2D-{data_name}")
        (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), quality.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    args.seed0 = 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report, start = {"args": vars(args).copy(), "runs": [], "sweep": []}, time.perf_counter()
    for data_name in args.data:
        shown = {}
        for model in args.models:
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                coverage, samples, trace = train_run(data_name, model, args, seed, args.steps, args.snapshots)
                final = coverage[-1]
                report["runs"].append({"data": data_name, "model": model, "seed": seed, "modes": final.modes,
                                       "high_quality": final.high_quality, "seconds": time.perf_counter() - t0,
                                       "counts": final.counts.tolist(),
                                       "coverage": [(c.modes, c.high_quality) for c in coverage]})
                print(f"{data_name:4s} {model:10s} seed {seed}: {final.modes} modes, "
                      f"{100 * final.high_quality:.1f}% high quality ({time.perf_counter() - t0:.0f} s)", flush=True)
                if seed == args.seed0:
                    shown[model] = {"coverage": coverage, "samples": samples}
                    viz.save_training_panels(trace, out / f"curves_{data_name}_{model}.png",
                                             f"{model} on 2D-{data_name}")
        if shown:
            scatter_grid(shown, data_name, args, out / f"scatter_{data_name}.png")

    sweep, n_modes = {}, {d: len(DATASETS[d](np.random.default_rng(0), 1).centres) for d in args.data}
    for data_name in args.data if args.sweep_lrs else []:
        sweep[data_name] = {}
        for lr in args.sweep_lrs:
            for seed in range(args.sweep_seeds):
                coverage, _, _ = train_run(data_name, "gan", args, 100 + seed, args.sweep_steps or args.steps, 1, lr)
                sweep[data_name].setdefault(lr, []).append((coverage[-1].modes, coverage[-1].high_quality))
                report["sweep"].append({"data": data_name, "lr": lr, "seed": 100 + seed,
                                        "modes": coverage[-1].modes, "high_quality": coverage[-1].high_quality})
            print(f"sweep {data_name} lr {lr:g}: (modes, high quality) {sweep[data_name][lr]}", flush=True)
    if sweep:
        sweep_plot(sweep, n_modes, out / "lr_sweep.png")

    report["seconds"] = time.perf_counter() - start
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    if report["runs"]:
        print_table(report["runs"], n_modes)
    print(f"{report['seconds']:.0f} s in all; pictures and metrics.json in {out}/")


def print_table(runs, n_modes):
    print(f"\n{'data':5s} {'model':10s} {'modes (mean)':>13s} {'high quality':>13s}  seeds")
    for key in dict.fromkeys((r["data"], r["model"]) for r in runs):
        rs = [r for r in runs if (r["data"], r["model"]) == key]
        modes, hq = np.mean([r["modes"] for r in rs]), np.mean([r["high_quality"] for r in rs])
        print(f"{key[0]:5s} {key[1]:10s} {modes:9.1f}/{n_modes[key[0]]:<3d} {100 * hq:12.1f}%  {len(rs)}")


if __name__ == "__main__":
    main()
