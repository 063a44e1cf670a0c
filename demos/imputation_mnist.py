"""Fill in missing pixels with a VAE: the bottom half of each test digit, or half its pixels at random.

    python demos/imputation_mnist.py                             # train 10 epochs, then impute
    python demos/imputation_mnist.py --params runs/vae/vae.npz   # reuse vae_mnist.py's weights
    python demos/imputation_mnist.py --sample --epochs 1         # the packaged sample: a smoke run

The missing pixels start at 0.5 (or at the training mean); each step encodes the
current image, decodes the encoder mean and writes the reconstruction into the
missing pixels only (apps.impute). The stochastic variant draws z ~ q(z|x) and the
pixels from p(x|z) instead (Rezende, Mohamed & Wierstra 2014): one draw of binary
pixels, whose squared error is larger even for a perfect model (about twice the
conditional variance) since it is a sample, not a mean.

Errors are over the missing pixels only, against the true grey-level test images,
beside the baseline "each missing pixel is its training-set mean". Squared error
rewards hedging: where the missing part is ambiguous (the bottom half of a digit) a
sharp, plausible completion can score worse than the blurry mean; where it is not
(scattered missing pixels) the model wins by far. Writes OUT/metrics.json,
OUT/vae.npz (when trained) and OUT/imputation.png: for each mask, rows of originals,
masked, the training-mean baseline, 1 and N steps from 0.5, N steps from the mean,
one stochastic chain after N steps.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from minigen import apps, viz
from minigen.checkpoint import load_params, save_params
from minigen.data import load_split
from minigen.metrics import missing_pixel_bce, missing_pixel_mse
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam
from minigen.train import train_epochs


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n-iter", type=int, default=20, help="imputation steps")
    p.add_argument("--params", default=None, help="a vae.npz from vae_mnist.py (same --latent/--hidden): no training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/imputation")
    return p.parse_args(argv)


def get_params(model, x, args, rng):
    """Load --params, or train on all training digits (dynamically binarized)."""
    params = model.init(rng)
    if args.params:
        return load_params(args.params, params)[0]
    step = make_train_step(model, params, Adam(params, lr=args.lr), rng, binarized=True)
    history = train_epochs(step, (x,), args.epochs, rng, args.batch_size, desc="vae")
    print(f"train loss {history[-1]['loss']:.2f} after {args.epochs} epochs", flush=True)
    return params


def errors(x_true, x_hat, mask):
    return {"mse": missing_pixel_mse(x_true, x_hat, mask), "bce": missing_pixel_bce(x_true, x_hat, mask)}


def run_chain(model, params, x, mask, fill, n_iter):
    """Follow the deterministic chain from `fill`: the error of every step, and the images after 1 and n steps."""
    chain, per_step, kept = apps.imputation_chain(model, params, x, mask, fill=fill), [], {}
    for t in range(n_iter + 1):
        current = next(chain)
        per_step.append(errors(x, current, mask))
        if t in (1, n_iter):
            kept[t] = current
    return per_step, kept


def compare(model, params, x, mask, mean_image, n_iter):
    """The table of errors for one mask, the per-step MSE of both chains, and rows of pictures."""
    from_half, half = run_chain(model, params, x, mask, 0.5, n_iter)
    from_mean, mean = run_chain(model, params, x, mask, mean_image, n_iter)
    stochastic = apps.impute(model, params, x, mask, n_iter, rng=np.random.default_rng(1), sample=True)
    baseline = np.where(mask, x, mean_image)
    table = {"fill 0.5 (step 0)": from_half[0],
             "training mean (baseline; step 0 of the next)": from_mean[0],
             "VAE from 0.5, 1 step": from_half[1],
             f"VAE from 0.5, {n_iter} steps": from_half[-1],
             "VAE from the mean, 1 step": from_mean[1],
             f"VAE from the mean, {n_iter} steps": from_mean[-1],
             # binary pixels: its BCE would be log(1/clip) per wrong pixel, a number that says little
             f"VAE stochastic chain from 0.5, {n_iter} steps": {"mse": missing_pixel_mse(x, stochastic, mask)}}
    show = slice(0, 12)
    rows = [x[show], np.where(mask, x, 0.5)[show], baseline[show], half[1][show], half[n_iter][show],
            mean[n_iter][show], stochastic[show]]
    curves = {"from 0.5": [e["mse"] for e in from_half], "from the mean": [e["mse"] for e in from_mean]}
    return table, curves, rows


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)
    (x, _), (x_test, _) = load("train"), load("test")
    rng = np.random.default_rng(args.seed)
    model = VAE(VAEConfig(latent=args.latent, hidden=args.hidden))
    start = time.perf_counter()
    params = get_params(model, x, args, rng)
    train_seconds = time.perf_counter() - start
    out = Path(args.out)
    if not args.params:
        save_params(out / "vae.npz", params)

    start = time.perf_counter()
    mean_image = x.mean(axis=0)  # (1, 28, 28): the per-pixel training mean, the baseline guess
    masks = {"bottom half": apps.bottom_half_mask(x_test.shape),
             "random 50% of pixels": apps.random_pixel_mask(np.random.default_rng(7), x_test.shape, 0.5)}
    metrics = {"images": len(x_test), "masks": {}, "settings": vars(args)}
    pictures = []
    for name, mask in masks.items():
        table, curves, rows = compare(model, params, x_test, mask, mean_image, args.n_iter)
        metrics["masks"][name] = {"table": table, "mse_per_step": curves}
        pictures += rows
        print(f"\n{name} missing, {len(x_test)} test images; error on the missing pixels")
        print(f"{'':48s} {'MSE':>7s} {'BCE (nats/pixel)':>17s}")
        for row, e in table.items():
            print(f"{row:48s} {e['mse']:7.4f} " + (f"{e['bce']:17.4f}" if "bce" in e else f"{'-':>17s}"))
    metrics.update(train_seconds=train_seconds, impute_seconds=time.perf_counter() - start)
    viz.save_image_grid(np.concatenate(pictures), out / "imputation.png", ncol=12)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"pictures and metrics in {out}/")


if __name__ == "__main__":
    main()
