"""Anomaly detection with a VAE: the one-class MNIST benchmark, and the case where likelihood fails.

    python demos/anomaly_mnist.py                          # 10 one-class tasks, then digit 9 held out
    python demos/anomaly_mnist.py --seeds 0 1 2            # mean ± sd over three seeds
    python demos/anomaly_mnist.py --normal --held-out 9 1  # only the leave-one-class-out part
    python demos/anomaly_mnist.py --sample                 # the packaged sample: a smoke run

1. One class normal (Ruff et al. 2018, "Deep One-Class Classification", ICML; their
   code: lukasruff/Deep-SVDD-PyTorch, src/datasets/mnist.py). For each digit d a fresh
   MLP VAE is trained on the training images of d alone; all 10,000 test images are
   scored, the nine other digits being the anomalies, and the AUROC of the score is
   reported per digit and averaged over the ten tasks. Scores: -ELBO, -IWAE bound
   (K = --k) and the reconstruction term alone, -log p(x | z = E[z|x]). The table puts
   them beside the paper's Table 1 (DCAE: a convolutional autoencoder's reconstruction
   error, its best autoencoder baseline; One-Class Deep SVDD: the paper's method).
   Ruff et al. normalise the images (global contrast, min-max); here the images are
   dynamically binarized as in vae_mnist.py, and the test set binarized once, seed 1234.

2. One class held out (train on the other nine; is a test image the held-out digit?).
   Likelihood fails here: a held-out 1, mostly background, is *more* likely than the
   digits trained on, and a 9 as likely as the 4s and 7s. Two published remedies:
   - likelihood ratio (Ren et al. 2019, "Likelihood ratios for out-of-distribution
     detection", NeurIPS): a second VAE is trained on the same images with a share
     --mutation of their pixels replaced by noise; score = -(log p_model - log p_background);
   - typicality (Nalisnick et al. 2019, "Detecting out-of-distribution inputs to deep
     generative models using typicality"): |-log p(x) - its mean on 1,000 held-back
     training images|, with one test image at a time.

Every model is seeded from (seed, digit, part), so a figure does not depend on which
other digits or seeds are in the run. Writes OUT/metrics.json (after every model) and
OUT/anomaly.png (AUROC per class against the anchors; score histograms of the first
held-out digit, raw and as a likelihood ratio).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from minigen import apps
from minigen.data import binarize, load_split
from minigen.metrics import auroc
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam
from minigen.train import train_epochs

# Ruff et al. (2018), Table 1, MNIST: mean AUROC in % over 10 seeds, one column per method.
DCAE = [97.6, 98.3, 85.4, 86.7, 86.5, 78.2, 94.6, 92.3, 86.5, 90.4]
DEEP_SVDD = [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5]
ONE_CLASS_SCORES = {"elbo": "-ELBO", "iwae": "-IWAE", "reconstruction": "recon."}
HELD_OUT_SCORES = {"elbo": "-ELBO", "iwae": "-IWAE", "likelihood_ratio": "likelihood ratio",
                   "typicality": "typicality"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--normal", type=int, nargs="*", default=list(range(10)),
                   help="one-class tasks: the normal digit of each (none: skip the part)")
    p.add_argument("--held-out", type=int, nargs="*", default=[9],
                   help="leave-one-class-out tasks: the held-out digit of each (none: skip)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=10, help="epochs of each one-class VAE (about 6,000 images)")
    p.add_argument("--loo-epochs", type=int, default=10, help="epochs of each leave-one-out VAE (about 53,000)")
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--k", type=int, default=100, help="importance samples of the -IWAE score (1: no IWAE)")
    p.add_argument("--mutation", type=float, default=0.2, help="share of pixels the background model sees as noise")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/anomaly")
    args = p.parse_args(argv)
    if not all(0 <= d <= 9 for d in args.normal + args.held_out):
        p.error(f"digits are 0-9, got --normal {args.normal} --held-out {args.held_out}")
    return args


def train_vae(x, args, seed, epochs, desc, mutation=0.0):
    """A VAE trained on x (dynamically binarized; with mutation > 0 on mutated copies, drawn anew each step)."""
    rng = np.random.default_rng(seed)
    model = VAE(VAEConfig(latent=args.latent, hidden=args.hidden))
    params = model.init(rng)
    step = make_train_step(model, params, Adam(params, lr=args.lr), rng, binarized=True)
    if mutation:
        plain = step
        step = lambda batch: plain((apps.mutate(rng, batch[0], mutation),))  # noqa: E731
    history = train_epochs(step, (x,), epochs, rng, args.batch_size, desc=desc)
    print(f"{desc}: train loss {history[-1]['loss']:.2f} after {epochs} epochs", flush=True)
    return model, params


def likelihood_score(model, params, x, args, seed):
    """-IWAE bound with K = args.k, or -ELBO if k = 1: the -log p(x) estimate the held-out part uses."""
    return apps.anomaly_scores(model, params, x, np.random.default_rng(seed), k=max(1, args.k))


def one_class(digit, seed, data, args):
    """Train on digit's training images; AUROC of each score for "not digit" over the test set."""
    (x, y), x_test, y_test = data
    model, params = train_vae(x[y == digit], args, [seed, digit, 1], args.epochs, f"seed {seed}, only {digit}")
    scores = {"elbo": apps.anomaly_scores(model, params, x_test, np.random.default_rng([seed, digit, 2])),
              "reconstruction": apps.reconstruction_scores(model, params, x_test)}
    if args.k > 1:
        scores["iwae"] = likelihood_score(model, params, x_test, args, [seed, digit, 3])
    return {name: auroc(s, y_test != digit) for name, s in scores.items()}


def held_out(digit, seed, data, args):
    """Train on the other digits (and a background model); AUROCs for "is digit", and the scores."""
    (x, y), x_test, y_test = data
    rest = x[y != digit][np.random.default_rng([seed, digit]).permutation(int((y != digit).sum()))]
    reference, rest = rest[:1000], rest[1000:]  # held back from training: the typical -log p
    model, params = train_vae(rest, args, [seed, digit, 4], args.loo_epochs, f"seed {seed}, all but {digit}")
    background = train_vae(rest, args, [seed, digit, 5], args.loo_epochs, f"seed {seed}, background",
                           mutation=args.mutation)
    raw = likelihood_score(model, params, x_test, args, [seed, digit, 6])
    ratio = raw - likelihood_score(*background, x_test, args, [seed, digit, 7])
    typical = likelihood_score(model, params, binarize(np.random.default_rng(seed), reference), args, [seed, digit, 8])
    scores = {"elbo": apps.anomaly_scores(model, params, x_test, np.random.default_rng([seed, digit, 9])),
              "iwae": raw, "likelihood_ratio": ratio, "typicality": apps.typicality_scores(raw, typical)}
    return {name: auroc(s, y_test == digit) for name, s in scores.items()}, {"raw": raw, "ratio": ratio}


def mean_sd(values):
    values = np.asarray(values, float)
    return f"{100 * values.mean():5.1f} ± {100 * values.std(ddof=1):3.1f}" if len(values) > 1 else \
        f"{100 * values[0]:5.1f}      "


def print_tables(metrics, args):
    note = "  [SAMPLE ONLY: 3,000 training images; not comparable with the paper]" if args.sample else ""
    seeds = f"mean ± sd over seeds {args.seeds}" if len(args.seeds) > 1 else f"seed {args.seeds[0]}"
    if metrics["one_class"]:
        k = f" K={args.k}" if args.k > 1 else ""
        names = [n for n in ONE_CLASS_SCORES if n != "iwae" or args.k > 1]
        print(f"\nOne class normal: AUROC % for 'another digit' ({seeds}){note}")
        print(f"{'normal':>6s}  " + "  ".join(f"{ONE_CLASS_SCORES[n] + (k if n == 'iwae' else ''):>12s}"
                                              for n in names) + f"  {'DCAE':>6s}  {'Deep SVDD':>9s}")
        per_name = {n: [] for n in names}
        for digit, runs in metrics["one_class"].items():
            cells = []
            for n in names:
                values = [r[n] for r in runs.values()]
                per_name[n].append(values)
                cells.append(f"{mean_sd(values):>12s}")
            print(f"{digit:>6s}  " + "  ".join(cells) + f"  {DCAE[int(digit)]:6.1f}  {DEEP_SVDD[int(digit)]:9.1f}")
        digits = [int(d) for d in metrics["one_class"]]
        means = {n: np.mean(v, axis=0) for n, v in per_name.items()}  # the 10-task mean, per seed
        print(f"{'mean':>6s}  " + "  ".join(f"{mean_sd(means[n]):>12s}" for n in names)
              + f"  {np.mean([DCAE[d] for d in digits]):6.2f}  {np.mean([DEEP_SVDD[d] for d in digits]):9.2f}"
              + ("" if len(digits) == 10 else f"   (anchors averaged over digits {digits} only)"))
        print("anchors: Ruff et al. (2018), Table 1: DCAE (autoencoder) and One-Class Deep SVDD, 10 seeds")
    if metrics["held_out"]:
        print(f"\nOne class held out: AUROC % for 'is the held-out digit' ({seeds}){note}")
        print(f"{'held out':>8s}  " + "  ".join(f"{label:>16s}" for label in HELD_OUT_SCORES.values()))
        for digit, runs in metrics["held_out"].items():
            print(f"{digit:>8s}  " + "  ".join(f"{mean_sd([r[n] for r in runs.values()]):>16s}"
                                               for n in HELD_OUT_SCORES))
        print(f"likelihood ratio: background VAE on images with {100 * args.mutation:.0f}% of pixels noise "
              f"(Ren et al. 2019); typicality: Nalisnick et al. (2019), one image at a time")


def save_figure(metrics, histograms, y_test, path):
    """AUROC per normal digit against the two anchors; histograms of the first held-out digit's scores."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={"width_ratios": [1.6, 1, 1]})
    if metrics["one_class"]:
        digits = [int(d) for d in metrics["one_class"]]
        ours = np.array([[r["elbo"] for r in metrics["one_class"][str(d)].values()] for d in digits]) * 100
        at = np.arange(len(digits))
        axes[0].bar(at - 0.27, ours.mean(1), 0.27, yerr=ours.std(1), label="VAE, -ELBO (this demo)")
        axes[0].bar(at, [DCAE[d] for d in digits], 0.27, label="DCAE (Ruff et al. 2018)")
        axes[0].bar(at + 0.27, [DEEP_SVDD[d] for d in digits], 0.27, label="Deep SVDD (Ruff et al. 2018)")
        axes[0].set(xticks=at, xticklabels=digits, ylim=(50, 100), xlabel="normal digit", ylabel="AUROC %",
                    title="one class normal, the nine others anomalous")
        axes[0].legend(fontsize=7, loc="lower left")
    else:
        axes[0].axis("off")
    for ax, key, label in ((axes[1], "raw", "-log p(x), IWAE bound (nats)"),
                           (axes[2], "ratio", "-log p_model(x) + log p_background(x)")):
        if not histograms:
            ax.axis("off")
            continue
        digit, scores = next(iter(histograms.items()))
        s = scores[key]
        bins = np.linspace(*np.percentile(s, [0.5, 99.5]), 50)
        ax.hist(s[y_test != digit], bins, density=True, alpha=0.6, label="digits trained on")
        ax.hist(s[y_test == digit], bins, density=True, alpha=0.6, label=f"held-out {digit}")
        ax.set(xlabel=label, title=f"{digit} held out: AUROC {auroc(s, y_test == digit):.3f}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)  # noqa: E731
    (x, y), (x_test, y_test) = load("train"), load("test")
    data = ((x, y), binarize(np.random.default_rng(1234), x_test), y_test)  # one fixed binarization for all
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics, histograms, start = {"settings": vars(args), "one_class": {}, "held_out": {}}, {}, time.perf_counter()
    # Seed by seed, so that a run stopped early has whole seeds (every digit) to show.
    tasks = [("one_class", d, s) for s in args.seeds for d in args.normal]
    tasks += [("held_out", d, s) for s in args.seeds for d in args.held_out]
    for part, digit, seed in tasks:
        if part == "one_class":
            result = one_class(digit, seed, data, args)
        else:
            result, scores = held_out(digit, seed, data, args)
            histograms.setdefault(digit, scores)
        metrics[part].setdefault(str(digit), {})[str(seed)] = result
        metrics["seconds"] = time.perf_counter() - start
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))  # after each model: a long run keeps its part
        print(f"{part.replace('_', ' ')} {digit}, seed {seed}: "
              + ", ".join(f"{n} {v:.4f}" for n, v in result.items()), flush=True)
    print_tables(metrics, args)
    save_figure(metrics, histograms, y_test, out / "anomaly.png")
    print(f"\n{metrics['seconds']:.0f} s; figure and metrics in {out}/")


if __name__ == "__main__":
    main()
