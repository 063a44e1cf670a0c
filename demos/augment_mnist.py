"""Data augmentation when labels are scarce: do a generator's digits help a classifier?

    python demos/augment_mnist.py                                  # N = 100 and 1,000, seeds 0-2, the CVAE
    python demos/augment_mnist.py --m2 runs/m2                     # also M2's generator (its run's N and seed)
    python demos/augment_mnist.py --cgan-steps 0                   # without the cGAN (the slowest to train)
    python demos/augment_mnist.py --sample                         # the packaged sample: a smoke run

For each labelled-set size N (N / 10 images per class, drawn with the seed as every demo
draws them) an MLP 784-400-10 learns from the N real images alone, or from the real
images repeated --factor times plus --factor generated images per real one (half of what
it sees is real), drawn by each generator:

  cvae-prior       a conditional VAE (Sohn et al. 2015) trained on the N images; z ~ N(0, I)
  cvae-posterior   the same CVAE; z ~ q(z | x_i, y) of a real image x_i of the wanted class y.
                   Trained on 10 images a class, the prior is mostly space the encoder never
                   used; the posterior of the class's own images is where its digits are
  cgan             a conditional GAN (Mirza & Osindero 2014) on DCGAN's nets, 32 wide, as
                   demos/cgan_mnist.py trains it (lr 1e-3, batch 64, averaged G; not its label
                   smoothing, which came after the augmentation figures), trained on the N
                   images for --cgan-steps steps; z ~ N(0, I)
  m2-prior         M2 (Kingma et al. 2014), trained on every unlabelled image and the same N
                   labels (demos/semisupervised_mnist.py); z ~ N(0, I)
  m2-style         the same M2; z ~ q(z | x_u, its predicted label) of a random unlabelled image
                   x_u, drawn as class y: the styles of 60,000 images (the paper's analogies)

Every classifier takes the same number of steps (--epochs passes' worth of the full
training set). The judge column is the share of the generated images that the shipped
classifier (minigen/weights/classifier.npz) reads as the class they were drawn for: a
generator whose digits disagree with their labels teaches the classifier wrong labels.
The distance column is the mean RMS pixel distance from a generated image to the nearest of
the N labelled images (for real only: from each test image): a generator whose images sit much
nearer the labelled ones than unseen digits do is copying them, and copies teach nothing new.
Prints a markdown table (mean ± sd over seeds of the accuracy and of its gain over real
only, each seed's gain paired with its own baseline) and writes OUT/metrics.json and
OUT/augment_samples.png (one row per generator: a digit of each class).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the CVAE demo's Runner: one CVAE and one classifier recipe
from cvae_mnist import Runner  # noqa: E402

from minigen import metrics, ops, viz  # noqa: E402
from minigen.checkpoint import load_params  # noqa: E402
from minigen.data import load_split  # noqa: E402
from minigen.models import cgan as cgan_lib  # noqa: E402
from minigen.models.m2 import M2, M2Config  # noqa: E402
from minigen.train import train_epochs  # noqa: E402

CGAN_BATCH = 64  # demos/cgan_mnist.py's batch


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000], help="labelled-set sizes N")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--factor", type=int, default=None, help="generated images per real one (default 50; "
                   "with --sample 10)")
    p.add_argument("--m2", nargs="*", default=[], metavar="RUN",
                   help="folders written by demos/semisupervised_mnist.py (m2.npz, metrics.json); each serves "
                        "the N and seed it was trained with")
    p.add_argument("--epochs", type=float, default=2,
                   help="training length of every model, in passes over the full training set")
    p.add_argument("--cgan-steps", type=int, default=None,
                   help="generator steps of the cGAN trained on each labelled set, rounded to whole passes "
                        "(default 2000; with --sample 5; 0: no cGAN)")
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--test-n", type=int, default=0, help="test images (0: all)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/augment")
    args = p.parse_args(argv)
    if args.factor is None:
        args.factor = 10 if args.sample else 50
    if args.cgan_steps is None:
        args.cgan_steps = 5 if args.sample else 2000
    if args.factor < 1 or args.cgan_steps < 0 or args.epochs <= 0 or any(n <= 0 or n % 10 for n in args.labels):
        p.error("--factor and --epochs must be positive, --cgan-steps at least 0, and each of --labels "
                "a positive multiple of 10")
    return args


# --- Where each generator's z comes from ----------------------------------------------------

def cvae_prior(model, params, rng, x_l, y_l, labels):
    """One image per wanted label (n,): z ~ N(0, I), x = E[x | z, y]."""
    return model.sample(params, rng, labels)


def cvae_posterior(model, params, rng, x_l, y_l, labels):
    """One image per wanted label: z ~ q(z | x_i, y) for a random labelled image x_i of class y."""
    source = np.array([rng.choice(np.flatnonzero(y_l == y)) for y in labels])
    mu, logvar = model.encode(params, x_l[source], labels)
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape, dtype=np.float32)
    return model.decode_mean(params, z.astype(np.float32), labels)


def m2_prior(model, params, rng, x_u, labels):
    """M2's p(x | y, z) with z ~ N(0, I): one image per wanted label (n,)."""
    z = rng.standard_normal((len(labels), model.cfg.latent), dtype=np.float32)
    return model.decode_mean(params, z, ops.one_hot(labels, model.cfg.n_classes, len(labels)))


def m2_style(model, params, rng, x_u, labels):
    """z ~ q(z | x_u, ŷ(x_u)) of random unlabelled images, redrawn as the wanted labels."""
    n, c = len(labels), model.cfg.n_classes
    x_src = x_u[rng.choice(len(x_u), n, replace=False)]
    mu, logvar = model.encode(params, x_src, ops.one_hot(model.predict(params, x_src), c, n))
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape, dtype=np.float32)
    return model.decode_mean(params, z.astype(np.float32), ops.one_hot(labels, c, n))


def in_batches(draw, labels, size=5000):
    """draw(labels) for labels (n,) in slices of `size`: (n, 1, 28, 28) float32."""
    return np.concatenate([draw(labels[i:i + size]) for i in range(0, len(labels), size)]).astype(np.float32)


def nearest_distance(images, x_l, chunk=2000):
    """Mean over images (n, 1, 28, 28) of the RMS pixel distance to the nearest labelled image
    in x_l (N, 1, 28, 28). Near 0, a generator copies the N images it learnt from; unseen real
    digits (the test images) set the scale of a new image."""
    a, b = images.reshape(len(images), -1), x_l.reshape(len(x_l), -1).astype(np.float32)
    b_sq = np.sum(b * b, axis=1)
    nearest = []
    for i in range(0, len(a), chunk):  # |a - b|^2 = |a|^2 - 2 a.b + |b|^2, one (chunk, N) matrix at a time
        c = a[i:i + chunk]
        sq = np.sum(c * c, axis=1)[:, None] - 2 * c @ b.T + b_sq[None, :]
        nearest.append(np.sqrt(np.maximum(sq.min(axis=1), 0) / a.shape[1]))
    return float(np.concatenate(nearest).mean())


def judge_agreement(images, labels):
    """Share of images the shipped classifier labels as the class they were drawn for."""
    _, probs = metrics.classifier_outputs(images)
    return float(np.mean(np.argmax(probs, axis=1) == labels))


# --- The generators trained here, and the M2 runs read from their folders ------------------

class CGANs:
    """One conditional GAN per labelled set (N, seed), trained on its N images and kept for
    every use (the table and the picture)."""

    def __init__(self, run):
        self.run, self.trained = run, {}

    def averaged_generator(self, n, seed):
        if (n, seed) not in self.trained:
            args, rng = self.run.args, np.random.default_rng(seed)
            gan = cgan_lib.build("cgan", {"arch": "conv", "width": 32, "ema": 0.999}, rng, lr=1e-3)
            # the tiled set, cut to the requested steps when they are fewer than one pass of it
            data = tuple(a[:args.cgan_steps * CGAN_BATCH] for a in self.run.tiled(*self.run.subset(n, seed)))
            batches_per_pass = -(-len(data[0]) // CGAN_BATCH)
            train_epochs(gan.step, data, max(1, round(args.cgan_steps / batches_per_pass)), rng, CGAN_BATCH,
                         desc=f"cgan n={n}")
            self.trained[n, seed] = gan.averaged
        return self.trained[n, seed]


def load_m2_runs(folders):
    """{(N, seed): (model, params)} from semisupervised-demo folders, read from their metrics.json."""
    runs = {}
    for folder in map(Path, folders):
        info_path, weights = folder / "metrics.json", folder / "m2.npz"
        if not (info_path.is_file() and weights.is_file()):
            raise FileNotFoundError(f"{folder}: expected m2.npz and metrics.json written by "
                                    "demos/semisupervised_mnist.py")
        info = json.loads(info_path.read_text())
        model = M2(M2Config(latent=info["latent"], hidden=info["hidden"]))
        params, _ = load_params(weights, model.init(np.random.default_rng(0)))
        runs[info["labels"], info["seed"]] = model, params
    return runs


def generators_for(run, n, seed, m2_runs, x_u, cgans):
    """name -> draw(labels) for the generators available at this (N, seed)."""
    x_l, y_l = run.subset(n, seed)
    cvae, cvae_params, _ = run.cvae(n, seed)
    rng = np.random.default_rng(seed + 1)
    draws = {"cvae-prior": lambda lb: cvae_prior(cvae, cvae_params, rng, x_l, y_l, lb),
             "cvae-posterior": lambda lb: cvae_posterior(cvae, cvae_params, rng, x_l, y_l, lb)}
    if run.args.cgan_steps:
        average = cgans.averaged_generator(n, seed)
        draws["cgan"] = lambda lb: average.sample(rng, len(lb), lb)  # the averaged G(z, y), z ~ N(0, I)
    if (n, seed) in m2_runs:
        m2, m2_params = m2_runs[n, seed]
        draws["m2-prior"] = lambda lb: m2_prior(m2, m2_params, rng, x_u, lb)
        draws["m2-style"] = lambda lb: m2_style(m2, m2_params, rng, x_u, lb)
    return draws


def one_seed(run, n, seed, m2_runs, x_u, test, cgans):
    """{name: (accuracy, judge agreement, distance to the nearest labelled image)} for real only
    (its distance: the test images') and each generator at this (N, seed)."""
    x_l, y_l = run.subset(n, seed)
    factor = run.args.factor
    rows = {"real only": (run.classifier_accuracy(x_l, y_l, seed, *test), None, nearest_distance(test[0], x_l))}
    for name, draw in generators_for(run, n, seed, m2_runs, x_u, cgans).items():
        labels = np.repeat(y_l, factor)
        fakes = in_batches(draw, labels)
        x_mix = np.concatenate([np.repeat(x_l, factor, axis=0), fakes])
        y_mix = np.concatenate([np.repeat(y_l, factor), labels])
        rows[name] = (run.classifier_accuracy(x_mix, y_mix, seed, *test), judge_agreement(fakes, labels),
                      nearest_distance(fakes, x_l))
        print(f"N={n} seed {seed} {name}: accuracy {rows[name][0]:.4f} (real only {rows['real only'][0]:.4f}), "
              f"judge agreement {rows[name][1]:.3f}, nearest labelled image {rows[name][2]:.3f} "
              f"(test images: {rows['real only'][2]:.3f})", flush=True)
    return rows


def summarise(per_seed):
    """{seed: {name: (acc, agree, distance)}} of one N -> {name: summary} with gains paired by seed."""
    summary = {}
    names = {name for rows in per_seed.values() for name in rows}
    for name in sorted(names, key=lambda s: (s != "real only", s)):
        seeds = [s for s, rows in per_seed.items() if name in rows]
        acc = np.array([per_seed[s][name][0] for s in seeds])
        gain = acc - np.array([per_seed[s]["real only"][0] for s in seeds])
        agree = [per_seed[s][name][1] for s in seeds if per_seed[s][name][1] is not None]
        distance = [per_seed[s][name][2] for s in seeds]
        summary[name] = {"seeds": seeds, "accuracy": acc.tolist(), "mean": float(acc.mean()),
                         "sd": float(acc.std()), "gain_mean": float(gain.mean()), "gain_sd": float(gain.std()),
                         "judge_agreement": float(np.mean(agree)) if agree else None,
                         "nearest_distance": float(np.mean(distance))}
    return summary


def markdown(table, args):
    lines = ["| N | data | seeds | test accuracy | gain over real only | judge agreement "
             "| distance to the nearest labelled image (real only: the test images') |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for n, summary in table.items():
        for name, s in summary.items():
            gain = "" if name == "real only" else f"{100 * s['gain_mean']:+.2f} ± {100 * s['gain_sd']:.2f} pts"
            agree = "" if s["judge_agreement"] is None else f"{100 * s['judge_agreement']:.1f} %"
            data = name if name == "real only" else f"real ×{args.factor} + {name}"
            lines.append(f"| {n} | {data} | {len(s['seeds'])} | {100 * s['mean']:.2f} ± {100 * s['sd']:.2f} % "
                         f"| {gain} | {agree} | {s['nearest_distance']:.3f} |")
    return "\n".join(lines)


def save_picture(run, m2_runs, x_u, cgans, path):
    """One row of ten digits (0-9) per generator of the first N and seed."""
    n, seed = run.args.labels[0], run.args.seeds[0]
    draws = generators_for(run, n, seed, m2_runs, x_u, cgans)
    viz.save_image_grid(np.concatenate([draw(np.arange(10)) for draw in draws.values()]), path, ncol=10)
    return list(draws)


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)
    (x, y), test = load("train"), load("test")
    if args.test_n:
        test = test[0][:args.test_n], test[1][:args.test_n]
    out, wall = Path(args.out), time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    run, m2_runs = Runner(args, x, y), load_m2_runs(args.m2)
    cgans = CGANs(run)
    table = {n: summarise({seed: one_seed(run, n, seed, m2_runs, x, test, cgans) for seed in args.seeds})
             for n in args.labels}
    rows = save_picture(run, m2_runs, x, cgans, out / "augment_samples.png")
    result = {"table": {str(n): s for n, s in table.items()}, "picture_rows": rows, "test_images": len(test[1]),
              "steps_per_classifier": run.steps, "wall_seconds": time.perf_counter() - wall, "args": vars(args)}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    sample_only = "\n(the packaged 3,000-image sample, tiny budgets: sample-only numbers)" if args.sample else ""
    print(f"\n{markdown(table, args)}{sample_only}\n\npicture (rows: {', '.join(rows)}) in {out}/augment_samples.png; "
          f"{result['wall_seconds']:.0f} s in all")
    return result


if __name__ == "__main__":
    main()
