"""Semi-supervised MNIST with the M2 model (Kingma et al. 2014): 100 labels and 59,900 unlabelled images.

    python demos/semisupervised_mnist.py                 # 100 labels, 20 CPU-minutes: the README's run
    python demos/semisupervised_mnist.py --alpha-scale 0.1 --epochs 30 --cpu-minutes 0   # the paper's α
    python demos/semisupervised_mnist.py --labels 600    # more labels (a multiple of 10)
    python demos/semisupervised_mnist.py --sample        # the packaged sample, tiny settings: a smoke run
    python demos/semisupervised_mnist.py --m1-cpu-minutes 30 --cpu-minutes 25   # M1+M2: the README's run

The labelled images are --labels / 10 per class, drawn with --seed from the training
set; every other training image is used without its label. Images are dynamically
binarized. The same classifier network is also trained on the labelled images alone,
so the gain from the unlabelled ones is visible. Writes to OUT: m2_samples.png (row y:
class y drawn with the same ten styles z), m2_analogies.png (test digits, then their
style redrawn as 0-9), loss.png, m2.npz and metrics.json; prints the test error after
every epoch (all test images) and both final errors.

Training stops after --cpu-minutes of this process's CPU time (a busy machine slows the
clock on the wall, not this one), the learning rate decaying exponentially in that time
from --lr to --lr-final. α = 10 N by default, not the paper's 0.1 N: minigen/models/m2.py
says why. Kingma et al. (2014, Table 1) report 11.97% (± 1.71) for M2 with 100 labels.

With --m1-cpu-minutes M the demo is the paper's M1+M2 (minigen/models/m1m2.py): first
M1, a VAE of two 500-unit softplus layers and a 50-d z (the released code's M1 for this
experiment), trains on all training images for M CPU-minutes; then M2, with a Gaussian
p(z1|y,z2) and one hidden layer of --hidden units (default 300, the released code's width
for 100 labels), trains on draws from M1's q(z1|x) of its active units. The baseline is
then the same classifier on the labelled images' features. Kingma et al. (2014, Table 1)
report 3.33% (± 0.14) for M1+M2 with 100 labels. The pictures are M2's draws passed
through M1's decoder.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from minigen import viz
from minigen.checkpoint import load_params, save_params
from minigen.data import binarize, load_split
from minigen.models import vae as vae_lib
from minigen.models.m1m2 import active_units, draw_features, full_latent, posterior_features
from minigen.models.m2 import M2, M2Config
from minigen.models.semisupervised import labelled_subset, make_supervised_step, make_train_step
from minigen.optim import Adam, geometric_decay
from minigen.train import mean_over_batches, train_epochs

SMOKE = {"epochs": 1, "hidden": 32, "latent": 4, "baseline_epochs": 1, "test_images": 500, "cpu_minutes": 0}
FULL = {"epochs": 1000, "hidden": 500, "latent": 50, "baseline_epochs": 20, "test_images": 0, "cpu_minutes": 20}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=int, default=100, help="labelled training images, a multiple of 10")
    p.add_argument("--epochs", type=int, default=None,
                   help="at most this many passes over the unlabelled images (default 1000: the budget decides)")
    p.add_argument("--hidden", type=int, default=None, help="units of each MLP's hidden layer (default 500)")
    p.add_argument("--latent", type=int, default=None, help="dimension of z (default 50)")
    p.add_argument("--alpha-scale", type=float, default=10.0, help="alpha = ALPHA_SCALE * N (the paper: 0.1)")
    p.add_argument("--labelled-copies", type=int, default=1,
                   help="count each labelled image this many times in J (the paper: 1; 0: N_u / N_l, balanced)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=None,
                   help="decay the learning rate exponentially in CPU time to this at the budget's end (default 1e-4)")
    p.add_argument("--cpu-minutes", type=float, default=None,
                   help="budget of this process's CPU time for M2's training, 0 for none (default 20); "
                        "--epochs stays the upper limit")
    p.add_argument("--batch-size", type=int, default=100, help="unlabelled images per step")
    p.add_argument("--labelled-batch", type=int, default=100, help="labelled images per step")
    p.add_argument("--baseline-epochs", type=int, default=None,
                   help="baseline training, in units of 100 passes over the labelled images (default 20)")
    p.add_argument("--test-images", type=int, default=None, help="test images to score (0: all)")
    p.add_argument("--m1-cpu-minutes", type=float, default=0,
                   help="M1+M2: train M1 (a VAE) on every training image for this CPU time first, then M2 on "
                        "its features (default 0: M2 on pixels)")
    p.add_argument("--m1-weights", default=None, metavar="M1.npz",
                   help="M1+M2 with the M1 a previous run saved (its OUT/m1.npz) instead of training one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="the small packaged sample and tiny networks")
    p.add_argument("--out", default="runs/m2")
    args = p.parse_args(argv)
    if args.m1_cpu_minutes < 0:
        p.error(f"--m1-cpu-minutes must be >= 0, got {args.m1_cpu_minutes}")
    if args.m1_weights and args.m1_cpu_minutes:
        p.error("give --m1-cpu-minutes (train M1) or --m1-weights (load it), not both")
    if (args.m1_cpu_minutes or args.m1_weights) and args.hidden is None and not args.sample:
        args.hidden = 300  # the released code's M2 width on M1's features with 100 labels
    for key, value in (SMOKE if args.sample else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.lr_final is None and args.cpu_minutes:
        args.lr_final = 1e-4  # a budget's default schedule: a tenth of the default --lr at its end
    if args.lr_final is not None and not args.cpu_minutes:
        p.error("--lr-final decays the learning rate over the budget: give --cpu-minutes too")
    return args


def classification_error(model, params, x, y):
    """Share of images whose argmax q(y|x) is wrong, on grey-level (expected binary) pixels."""
    return mean_over_batches(lambda b: model.predict(params, b[0]) != b[1], (x, y))


def train_m1(x, args, rng):
    """M1: a VAE (500-500 softplus, 50-d z) on all training images x for args.m1_cpu_minutes of CPU time,
    or loaded from args.m1_weights. Returns the model, its params and the CPU seconds it took."""
    hidden, latent = ((500, 500), 50) if not args.sample else ((32,), 8)
    trained = vae_lib.trainable(vae_lib.VAEConfig(latent=latent, hidden=hidden, activation="softplus"), rng, args.lr)
    model, params = trained.likelihood
    if args.m1_weights:
        loaded, extra = load_params(args.m1_weights, params)
        return model, loaded, float(extra.get("cpu_seconds", 0.0))
    start = time.process_time()

    def log(epoch, m):
        print(f"M1 epoch {epoch}: -ELBO {m['loss']:.2f} ({time.process_time() - start:.0f} CPU s)", flush=True)

    train_epochs(trained.step, (x,), 100_000, rng, args.batch_size, desc="m1", log=log,
                 max_seconds=60 * args.m1_cpu_minutes, clock=time.process_time, stop_mid_epoch=True)
    seconds = time.process_time() - start
    save_params(Path(args.out) / "m1.npz", params, cpu_seconds=seconds)  # for --m1-weights
    return model, params, seconds


def m1_stage(x, x_test, args, rng):
    """Train M1 and describe every image by its q(z1|x): train features (N, 2, D) of the
    D active units, test means (N_test, D), and a function from features to images."""
    m1, m1_params, seconds = train_m1(x, args, rng)
    features = posterior_features(m1, m1_params, x)
    active = active_units(features)
    print(f"M1: {active.sum()} of {len(active)} latent units active ({seconds:.0f} CPU s)", flush=True)
    to_images = lambda z1: m1.decode_mean(m1_params, full_latent(z1, active))
    return (features[:, :, active], posterior_features(m1, m1_params, x_test)[:, 0, active], to_images,
            {"m1_cpu_seconds": seconds, "m1_active_units": int(active.sum())})


def train_baseline(model, x_l, y_l, args, rng, draw):
    """The classifier alone on the labelled images, same network and optimiser: error on x_test."""
    params = model.init(rng)
    step = make_supervised_step(model, params, Adam(params, lr=args.lr), rng, draw)
    repeats = 100  # an "epoch" here = 100 passes over the few labelled images
    history = train_epochs(step, (np.repeat(x_l, repeats, 0), np.repeat(y_l, repeats, 0)), args.baseline_epochs,
                           rng, args.labelled_batch, desc="baseline")
    return params, history


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)
    (x, y), (x_test, y_test) = load("train"), load("test")
    if args.test_images:
        x_test, y_test = x_test[:args.test_images], y_test[:args.test_images]
    rng = np.random.default_rng(args.seed)
    labelled, unlabelled = labelled_subset(y, args.labels, rng)
    out = Path(args.out)
    print(f"{len(labelled)} labelled and {len(unlabelled)} unlabelled training images, {len(x_test)} test images",
          flush=True)
    x_pictures = x_test[:8]
    stacked = bool(args.m1_cpu_minutes or args.m1_weights)  # M1+M2
    if stacked:  # from here on an "image" is its M1 features
        x, x_test, to_images, m1_metrics = m1_stage(x, x_test, args, rng)
        draw, shape, likelihood = draw_features, x_test.shape[1:], "gaussian"
    else:
        to_images, m1_metrics, draw, shape, likelihood = (lambda images: images), {}, binarize, x.shape[1:], "bernoulli"
    x_l, y_l, x_u = x[labelled], y[labelled], x[unlabelled]  # the labels of x_u are never used

    model = M2(M2Config(latent=args.latent, hidden=args.hidden, alpha_scale=args.alpha_scale,
                        image_shape=shape, likelihood=likelihood))
    start = time.perf_counter()
    base_params, _ = train_baseline(model, x_l, y_l, args, rng, draw)
    baseline_error = classification_error(model, base_params, x_test, y_test)
    baseline_seconds = time.perf_counter() - start
    print(f"baseline (classifier on the {len(x_l)} labelled images only): test error {100 * baseline_error:.2f}% "
          f"({baseline_seconds:.0f} s)", flush=True)

    params = model.init(rng)
    copies = args.labelled_copies or max(1, round(len(x_u) / len(x_l)))
    opt = Adam(params, lr=args.lr)
    step = make_train_step(model, params, opt, rng, x_l, y_l, len(x_u), args.labelled_batch, copies, draw)
    clock = time.process_time if args.cpu_minutes else time.perf_counter
    budget = 60 * args.cpu_minutes or None
    start = clock()

    def scheduled_step(batch):
        if args.lr_final is not None:  # geometric in the budget's elapsed share, as in demos/vae_mnist.py
            opt.lr = geometric_decay(args.lr, args.lr_final, (clock() - start) / budget)
        return step(batch)

    errors = []

    def log(epoch, m):
        errors.append(classification_error(model, params, x_test, y_test))
        print(f"epoch {epoch}: J^alpha/N {m['loss']:.2f}, test error {100 * errors[-1]:.2f}% "
              f"({m['seconds']:.0f} s, {clock() - start:.0f} s on the clock, lr {opt.lr:.2g})", flush=True)

    history = train_epochs(scheduled_step, (x_u,), args.epochs, rng, args.batch_size, desc="m2", log=log,
                           max_seconds=budget, clock=clock, stop_mid_epoch=True)
    seconds = clock() - start
    final_error = classification_error(model, params, x_test, y_test)

    z = np.random.default_rng(1234).standard_normal((10, model.cfg.latent), dtype=np.float32)
    viz.save_image_grid(to_images(model.class_grid(params, z)), out / "m2_samples.png", ncol=10)
    analogies = to_images(model.analogies(params, x_test[:8]))
    if stacked:  # the first column: the test digit itself, not M1's rendering of its features
        analogies[::11] = x_pictures
    viz.save_image_grid(analogies, out / "m2_analogies.png", ncol=11)
    viz.save_curves(history, out / "loss.png", ["loss"], "M2 training objective J^alpha / N (nats)")
    save_params(out / "m2.npz", params)
    n_total = copies * len(x_l) + len(x_u)
    metrics = {"test_error": final_error, "baseline_test_error": baseline_error, "test_error_per_epoch": errors,
               "n_total": n_total, "labelled_copies_used": copies, "alpha": args.alpha_scale * n_total,
               "whole_epochs": len(history), "train_seconds": seconds, "baseline_seconds": baseline_seconds,
               "test_images": len(x_test), **m1_metrics, **vars(args)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"{'M1+M2' if stacked else 'M2'} test error {100 * final_error:.2f}% with {len(x_l)} labels "
          f"after {len(history)} whole epochs "
          f"({seconds:.0f} {'CPU ' if budget else ''}s); the classifier alone: {100 * baseline_error:.2f}%\n"
          f"pictures and weights in {out}/")
    return metrics


if __name__ == "__main__":
    main()
