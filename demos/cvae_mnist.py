"""A conditional VAE on MNIST: digits on demand, and a generative classifier.

    python demos/cvae_mnist.py                                  # quick: a few minutes
    python demos/cvae_mnist.py --epochs 10                      # longer runs, steadier numbers
    python demos/cvae_mnist.py --sample --epochs 1 --labels 100  # the packaged sample: a smoke run

1. A CVAE (784-400-20 MLP, label appended to x and to z) on the full training set;
   OUT/cvae_samples.png: row d = digit d, column j = one z shared by all the digits.
2. Generative vs discriminative (Ng & Jordan 2002). For each labelled-set size n in
   --labels (balanced random subsets), a CVAE trained on the n images classifies by
   Bayes' rule, argmax_y log p(x|y) + log p(y), with the IWAE bound (--k samples) for
   log p(x|y); an MLP 784-400-10 of the same width learns p(y|x) from the same images.
   Every model gets the same number of steps whatever n: --epochs passes' worth of the
   full training set.
Augmenting a small labelled set with this CVAE's samples (and M2's) is demos/augment_mnist.py,
which trains its models with the Runner below.

Training images are dynamically binarized for the CVAE; the Bayes classifier scores the
grey test images (the Bernoulli likelihood with soft targets). Writes OUT/cvae_samples.png,
OUT/metrics.json and prints the results as markdown tables.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from minigen import apps, nn, viz
from minigen.data import balanced_indices, binarize, load_split
from minigen.demo import train_classifier
from minigen.models.classifier import accuracy
from minigen.models.cvae import CVAE
from minigen.models.vae import VAEConfig, make_train_step
from minigen.optim import Adam
from minigen.train import mean_over_batches, train_epochs


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=float, default=2,
                   help="training length of EVERY model, in passes over the full training set (default: %(default)s)")
    p.add_argument("--labels", type=int, nargs="*", default=[100, 1000, 10000, 60000],
                   help="labelled-set sizes for the Bayes-classifier sweep (default: %(default)s)")
    p.add_argument("--k", type=int, default=10, help="importance samples per class for log p(x|y)")
    p.add_argument("--test-n", type=int, default=0, help="test images to classify (0: all)")
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/cvae")
    args = p.parse_args(argv)
    if args.epochs <= 0 or args.k < 1 or args.test_n < 0:
        p.error("--epochs and --k must be positive; --test-n non-negative")
    return args


def balanced_subset(rng, y, n, n_classes=10):
    """Indices of n examples, n / n_classes of each class drawn at random; all of y if n >= len(y)."""
    return np.arange(len(y)) if n >= len(y) else balanced_indices(rng, y, n, n_classes)


def mlp_classifier(hidden):
    """The discriminative twin of the MLP CVAE: 784-hidden-10, dropout as in build_classifier."""
    return nn.Sequential(nn.Flatten(), nn.Dense(hidden), nn.ReLU(), nn.Dropout(0.3), nn.Dense(10))


class Runner:
    """Trains the models of the experiments on subsets of (x, y), each for the same number of steps."""

    def __init__(self, args, x, y):
        self.args, self.x, self.y = args, x, y
        self.steps = max(1, round(args.epochs * len(x) / args.batch_size))
        self.cvaes = {}  # (n, seed) -> (model, params, seconds): trained once, used by every experiment

    def subset(self, n, seed):
        idx = balanced_subset(np.random.default_rng(seed), self.y, n)
        return self.x[idx], self.y[idx]

    def epochs_for(self, n):
        """Passes over n images that make about self.steps minibatches."""
        return max(1, round(self.steps / -(-n // self.args.batch_size)))

    def tiled(self, *arrays):
        """Small sets repeated so that one pass holds at least 50 minibatches: with 100 images,
        one pass per step, the training loop's per-pass work would cost more than the steps."""
        copies = max(1, -(-50 * self.args.batch_size // len(arrays[0])))
        return tuple(np.concatenate([a] * copies) for a in arrays)

    def cvae(self, n, seed):
        """(model, params, training seconds) of the CVAE on the n-image subset drawn with seed."""
        n = min(n, len(self.y))  # sizes beyond the training set all mean the whole set
        if (n, seed) not in self.cvaes:
            x, y = self.subset(n, seed)
            rng = np.random.default_rng(seed)
            model = CVAE(VAEConfig(latent=self.args.latent, hidden=self.args.hidden))
            params = model.init(rng)
            step = make_train_step(model, params, Adam(params, lr=self.args.lr), rng, binarized=True)
            start = time.perf_counter()
            data = self.tiled(x, y)
            train_epochs(step, data, self.epochs_for(len(data[0])), rng, min(self.args.batch_size, len(x)),
                         desc=f"cvae n={len(x)}")
            self.cvaes[n, seed] = model, params, time.perf_counter() - start
        return self.cvaes[n, seed]

    def classifier_accuracy(self, x, y, seed, x_test, y_test):
        """Test accuracy of the MLP trained on (x, y) for self.steps steps."""
        x, y = self.tiled(x, y)
        net, params, _ = train_classifier(x, y, epochs=self.epochs_for(len(x)), lr=self.args.lr,
                                          batch_size=min(self.args.batch_size, len(x)), seed=seed,
                                          net=mlp_classifier(self.args.hidden))
        return accuracy(net, params, x_test, y_test)


def bayes_vs_discriminative(run, x_test, y_test):
    """One row per labelled-set size: the CVAE + Bayes' rule and the MLP, same images, same steps."""
    rows, seed = [], run.args.seed
    for n in run.args.labels:
        x, y = run.subset(n, seed)
        model, params, seconds = run.cvae(n, seed)
        log_prior = np.log(np.bincount(y, minlength=10) / len(y)).astype(np.float32)
        start = time.perf_counter()
        pred = apps.bayes_classify(model, params, x_test, log_prior, run.args.k, np.random.default_rng(seed))
        rows.append({"n": len(x), "cvae_bayes_accuracy": float(np.mean(pred == y_test)),
                     "mlp_accuracy": run.classifier_accuracy(x, y, seed, x_test, y_test),
                     "cvae_train_seconds": seconds,
                     "bayes_classify_seconds": time.perf_counter() - start})
        print(f"n={len(x)}: CVAE + Bayes {rows[-1]['cvae_bayes_accuracy']:.4f}, "
              f"MLP {rows[-1]['mlp_accuracy']:.4f}", flush=True)
    return rows


def save_digit_grid(model, params, rng, path, per_digit=10):
    """Row d holds digit d; column j decodes the same z_j ~ N(0, I) with every label, so that
    a column keeps one style (slant, thickness) across the digits (Kingma et al. 2014, fig. 1)."""
    z = rng.standard_normal((per_digit, model.cfg.latent), dtype=np.float32)
    images = model.decode_mean(params, np.tile(z, (10, 1)), np.repeat(np.arange(10), per_digit))
    viz.save_image_grid(images, path, ncol=per_digit)


def markdown(sweep, args, n_test):
    lines = [f"| labelled n | CVAE + Bayes rule (IWAE k={args.k}) | MLP p(y|x) |", "|---:|---:|---:|"]
    lines += [f"| {r['n']} | {100 * r['cvae_bayes_accuracy']:.2f}% | {100 * r['mlp_accuracy']:.2f}% |"
              for r in sweep]
    lines += ["", f"Test accuracy on {n_test} test images; every model {args.epochs:g} epochs' worth of steps "
              f"of the full training set (batch {args.batch_size})."]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)
    (x, y), (x_test, y_test) = load("train"), load("test")
    if args.test_n:
        x_test, y_test = x_test[:args.test_n], y_test[:args.test_n]
    out, wall = Path(args.out), time.perf_counter()
    run = Runner(args, x, y)

    model, params, seconds = run.cvae(len(x), args.seed)  # the full training set: the picture and the test -ELBO
    save_digit_grid(model, params, np.random.default_rng(args.seed), out / "cvae_samples.png")
    eval_rng = np.random.default_rng(1234)
    x_bin = binarize(eval_rng, x_test)
    eps = eval_rng.standard_normal((len(x_bin), args.latent), dtype=np.float32)
    neg_elbo = mean_over_batches(lambda b: -model.elbo(params, *b), (x_bin, y_test, eps))

    sweep = bayes_vs_discriminative(run, x_test, y_test)
    table = markdown(sweep, args, len(x_test))
    metrics = {"test_neg_elbo_given_y": neg_elbo, "full_cvae_train_seconds": seconds,
               "steps_per_model": run.steps, "test_images": len(x_test), "bayes_vs_discriminative": sweep,
               "wall_seconds": time.perf_counter() - wall, "args": vars(args)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"\ntest -ELBO given the label {neg_elbo:.2f} nats (full training set)\n\n{table}\n\n"
          f"samples in {out}/cvae_samples.png; {metrics['wall_seconds']:.0f} s in all")
    return metrics


if __name__ == "__main__":
    main()
