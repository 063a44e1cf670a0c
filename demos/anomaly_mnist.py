"""Anomaly detection with a VAE: train on all digits but one, flag the held-out digit.

    python demos/anomaly_mnist.py                          # digit 9 held out, 10 epochs, k = 1 and 100
    python demos/anomaly_mnist.py --anomaly 0 1 2 3 4 5 6 7 8 9   # each digit in turn (10 models)
    python demos/anomaly_mnist.py --sample --epochs 1      # the packaged sample: a smoke run

For each held-out digit d a fresh MLP VAE (784-400-20) is trained on the training
images of the other nine digits (dynamically binarized, as in vae_mnist.py). Every
test image, binarized once with a fixed seed, is then scored by how unlikely the
model finds it (apps.anomaly_scores: -ELBO for k = 1, -IWAE bound for k > 1), and
the AUROC of that score for "is digit d" is reported (metrics.auroc; 0.5 = chance).
Each digit's model is seeded from (--seed, d), so its figures do not depend on which
other digits are in the list.

Expect a lesson rather than a detector: the score is dominated by how much ink an
image has, not by whether its class was seen. A held-out 1 (few pixels on) is
*more* likely than the digits trained on (AUROC far below 0.5), the failure that
Nalisnick et al. (2019) report between whole data sets; a 9 is about as likely as
the 4s and 7s it resembles. Writes OUT/metrics.json and OUT/anomaly_scores.png
(histograms of the score, normal digits against the held-out one).
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


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--anomaly", type=int, nargs="+", default=[9], help="held-out digit(s), one model each")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--k", type=int, default=100, help="importance samples for the -IWAE score (1: only -ELBO)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/anomaly")
    args = p.parse_args(argv)
    if not all(0 <= d <= 9 for d in args.anomaly):
        p.error(f"--anomaly takes digits 0-9, got {args.anomaly}")
    return args


def train_without(digit, x, y, args):
    """A VAE trained on the images whose label is not `digit`; returns (model, params, seconds)."""
    rng = np.random.default_rng([args.seed, digit])
    model = VAE(VAEConfig(latent=args.latent, hidden=args.hidden))
    params = model.init(rng)
    step = make_train_step(model, params, Adam(params, lr=args.lr), rng, binarized=True)
    start = time.perf_counter()
    history = train_epochs(step, (x[y != digit],), args.epochs, rng, args.batch_size, desc=f"vae without {digit}")
    print(f"digit {digit} held out: train loss {history[-1]['loss']:.2f} after {args.epochs} epochs", flush=True)
    return model, params, time.perf_counter() - start


def score_and_rank(model, params, x_bin, is_anomaly, ks, seed):
    """For each k: AUROC and the mean score of either class; also the scores themselves."""
    results, scores = {}, {}
    for k in ks:
        s = apps.anomaly_scores(model, params, x_bin, np.random.default_rng(seed), k=k)
        scores[k] = s
        results[f"k{k}"] = {"auroc": auroc(s, is_anomaly), "mean_score_normal": float(s[~is_anomaly].mean()),
                            "mean_score_anomaly": float(s[is_anomaly].mean())}
    return results, scores


def save_histograms(scores_by_digit, y_test, k, path):
    """One panel per held-out digit: the score of normal test digits against the held-out one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(scores_by_digit)
    cols = min(n, 5)
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(3.2 * cols, 2.6 * -(-n // cols)), squeeze=False)
    for ax, (digit, s) in zip(axes.flat, scores_by_digit.items()):
        bins = np.linspace(*np.percentile(s, [0.5, 99.5]), 50)
        ax.hist(s[y_test != digit], bins, density=True, alpha=0.6, label="other digits")
        ax.hist(s[y_test == digit], bins, density=True, alpha=0.6, label=f"digit {digit}")
        ax.set_title(f"held out {digit}: AUROC {auroc(s, y_test == digit):.3f}", fontsize=9)
        ax.set_xlabel("-ELBO (nats)" if k == 1 else f"-IWAE bound, k={k} (nats)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)
    (x, y), (x_test, y_test) = load("train"), load("test")
    x_bin = binarize(np.random.default_rng(1234), x_test)  # one fixed binarization for every model
    ks = sorted({1, args.k})
    out = Path(args.out)
    metrics, last_scores = {"settings": vars(args), "digits": {}}, {}
    for digit in args.anomaly:
        model, params, seconds = train_without(digit, x, y, args)
        start = time.perf_counter()
        results, scores = score_and_rank(model, params, x_bin, y_test == digit, ks, seed=1234 + digit)
        metrics["digits"][str(digit)] = {**results, "train_seconds": seconds,
                                         "score_seconds": time.perf_counter() - start}
        last_scores[digit] = scores[max(ks)]
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))  # after each digit: a long run keeps its part
        print(f"digit {digit} held out: " + ", ".join(f"AUROC (k={k}) {results[f'k{k}']['auroc']:.3f}"
                                                      for k in ks), flush=True)
    save_histograms(last_scores, y_test, max(ks), out / "anomaly_scores.png")
    print("\nheld-out digit  " + "  ".join(f"AUROC k={k:<4d}" for k in ks))
    for digit, r in metrics["digits"].items():
        print(f"{digit:>14s}  " + "  ".join(f"{r[f'k{k}']['auroc']:11.3f}" for k in ks))
    print(f"histograms and metrics in {out}/")


if __name__ == "__main__":
    main()
