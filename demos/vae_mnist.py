"""Train a VAE on MNIST and draw what it learned.

    python demos/vae_mnist.py                      # MLP VAE 784-400-20, 10 epochs
    python demos/vae_mnist.py --latent 2           # adds the 2-d latent manifold picture
    python demos/vae_mnist.py --conv --beta 4      # a convolutional beta-VAE
    python demos/vae_mnist.py --sample --epochs 1  # the packaged sample: a smoke run
    python demos/vae_mnist.py --hidden 200 200 --activation tanh --latent 50 --batch-size 100 \
        --epochs 100000 --minutes 60 --lr-decay 0.995 --nll-k 5000 --nll-n 0  # one hour, then the NLL
    # Burda et al. 2016's comparison: the same one CPU-hour budget, the VAE (k=1) and the IWAE (k=5)
    OMP_NUM_THREADS=1 python demos/vae_mnist.py --hidden 200 200 --activation tanh --latent 50 \
        --batch-size 100 --epochs 100000 --cpu-minutes 60 --lr-final 1e-4 --nll-k 5000 --nll-n 0 --k 5

Training data are dynamically binarized (each pixel drawn as Bernoulli(intensity)
every time it is used), the convention under which MNIST likelihoods are compared.
Writes to OUT: samples.png, reconstructions.png, interpolation.png, loss.png,
(manifold.png,) vae.npz and metrics.json; prints test -ELBO and the IWAE NLL.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from minigen import apps, viz
from minigen.checkpoint import save_params
from minigen.data import load_split
from minigen.metrics import vae_test_metrics
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam, geometric_decay
from minigen.train import train_epochs


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="+", default=[400], help="hidden widths, e.g. 200 200")
    p.add_argument("--activation", choices=["relu", "tanh", "softplus"], default="relu")
    p.add_argument("--minutes", type=float, default=None, help="time budget: stop starting epochs after it")
    p.add_argument("--cpu-minutes", type=float, default=None,
                   help="the budget in this process's CPU time instead (fair between runs sharing a machine)")
    p.add_argument("--k", type=int, default=1, help="importance samples in training: 1 the ELBO (VAE), >1 the IWAE")
    p.add_argument("--conv", action="store_true", help="convolutional encoder and decoder")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (beta-VAE)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", type=float, default=1.0, help="multiply the learning rate by this after each epoch")
    p.add_argument("--lr-final", type=float, default=None,
                   help="with a budget: decay the learning rate exponentially in elapsed time to this value, so "
                        "runs of different speeds follow the same schedule")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nll-k", type=int, default=1000, help="importance samples for the NLL (5000 in papers)")
    p.add_argument("--nll-n", type=int, default=1000, help="test images for the NLL estimate (0: all)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/vae")
    return p.parse_args(argv)


def save_pictures(model, params, x_test, out, rng):
    viz.save_image_grid(model.sample(params, rng, 64), out / "samples.png")
    originals = x_test[:16]
    viz.save_image_grid(np.concatenate([originals, model.reconstruct(params, originals)]),
                        out / "reconstructions.png", ncol=16)
    a, b = x_test[0], x_test[1]  # a 7 and a 2
    strips = [apps.interpolate(model, params, a, b, 10, spherical=s) for s in (False, True)]
    viz.save_image_grid(np.concatenate(strips), out / "interpolation.png", ncol=10)
    if model.cfg.latent == 2:
        viz.save_image_grid(apps.latent_manifold(model, params, 15), out / "manifold.png", ncol=15)


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)
    (x, _), (x_test, _) = load("train"), load("test")
    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    model = VAE(VAEConfig(latent=args.latent, hidden=tuple(args.hidden), activation=args.activation,
                          conv=args.conv, beta=args.beta, k=args.k))
    params = model.init(rng)
    opt = Adam(params, lr=args.lr)
    step = make_train_step(model, params, opt, rng, binarized=True)

    clock = time.process_time if args.cpu_minutes is not None else time.perf_counter
    budget = 60 * (args.cpu_minutes if args.cpu_minutes is not None else args.minutes or 0) or None
    if args.lr_final is not None and budget is None:
        raise SystemExit("--lr-final needs a budget (--minutes or --cpu-minutes)")
    start = clock()

    def log(epoch, m):
        print(f"epoch {epoch}: train loss {m['loss']:.2f} ({m['seconds']:.1f} s, lr {opt.lr:.2g})", flush=True)
        # A slowly shrinking step lets a long run settle into a minimum.
        if args.lr_final is None:
            opt.lr *= args.lr_decay
        else:  # by the budget's elapsed fraction, so a slower model is not left at a larger step
            opt.lr = geometric_decay(args.lr, args.lr_final, (clock() - start) / budget)

    history = train_epochs(step, (x,), args.epochs, rng, args.batch_size, desc="vae" if args.k == 1 else "iwae",
                           log=log, max_seconds=budget, clock=clock)
    seconds = clock() - start

    scores = vae_test_metrics(model, params, x_test, args.nll_k, args.nll_n)
    neg_elbo, nll, n = scores["test_neg_elbo"], scores["test_nll_iwae"], scores["nll_images"]

    save_pictures(model, params, x_test, out, rng)
    viz.save_curves(history, out / "loss.png", ["loss"], "VAE training loss (-ELBO, nats)")
    save_params(out / "vae.npz", params)
    metrics = {**scores, "train_seconds": seconds, **vars(args), "epochs": len(history)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"test -ELBO {neg_elbo:.2f} nats; IWAE NLL (k={args.nll_k}, {n} images) {nll:.2f} nats; "
          f"{seconds:.0f} {'CPU ' if args.cpu_minutes is not None else ''}s of training, {len(history)} epochs"
          f"\npictures and weights in {out}/")


if __name__ == "__main__":
    main()
