"""Lit background pixels: does a GAN light pixels that real digits leave dark, and does torch's twin too?

    python benchmarks/lit_pixels.py [--model gan|cgan] [--epochs 20] [--seed 0] [--samples 10000]

A background pixel is one that is > 0.5 in fewer than 1 % of the real training
images (MNIST's border and corners). A sample is "lit" if any of its background
pixels is > 0.5. Both libraries train the same GAN (the demo's: batch 64,
Adam(2e-4, β1 = 0.5), non-saturating G loss) from the same initial weights
(copied by minigen.interop), on the same minibatches in the same order, with the
same noise: the torch twin replays the draws minigen's step makes from the run's
numpy Generator (checked after every epoch: both streams must end in the same
state). After each epoch both draw --samples images from the same z (and labels),
and so do running averages of each one's generator weights (--ema, the averaged
generator of Yazıcı et al. 2019). The table gives, per generator, the fraction of
lit samples and the pixel lit most often, as (row, column) with the fraction of
samples lit there; then how far the two libraries' weights have drifted apart
(float32 rounding, amplified by training). The header gives real test digits'
own lit fraction, the floor to compare with: each background pixel is rare in
reals, but over a few hundred of them some image or other has one.
"""
import argparse
import copy

from common import machine_header, pin_threads, scaled_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["gan", "cgan"], default="gan", help="the MLP GAN or the conditional GAN")
    p.add_argument("--epochs", type=int, default=20, help="the demo's budget: 20 (gan), 40 (cgan)")
    p.add_argument("--seed", type=int, default=0, help="initial weights, shuffles and noise")
    p.add_argument("--samples", type=int, default=10_000, help="samples scored per library after each epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ema", type=float, default=0.999, help="decay of the averaged generators also scored")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MINIGEN_DATA, then the cache)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.samples < 1 or args.batch_size < 1:
        p.error("--epochs, --samples and --batch-size must be positive")
    if not 0 <= args.ema < 1:
        p.error(f"--ema is a decay in [0, 1), got {args.ema}")
    return args


if __name__ == "__main__":
    pin_threads(parse_args().threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from twins import TorchGAN, torch_discriminator_loss, torch_nonsaturating  # noqa: E402

from minigen import interop  # noqa: E402
from minigen.data import batches, load_mnist  # noqa: E402
from minigen.models.cgan import mlp_cgan  # noqa: E402
from minigen.models.gan import RECIPES, mlp_gan  # noqa: E402
from minigen.optim import update_average  # noqa: E402
from minigen.tree import leaves  # noqa: E402


def background_mask(reals, threshold=0.5, rare=0.01):
    """Pixels that are > threshold in fewer than `rare` of the real images: (N, 1, H, W) -> (H, W) bool."""
    return (reals[:, 0] > threshold).mean(axis=0) < rare


def lit_background_fraction(samples, reals, threshold=0.5, rare=0.01):
    """(fraction of samples with any background pixel > threshold, (H, W) fraction lit per pixel).

    samples, reals: (N, 1, H, W) in [0, 1]. The per-pixel map is 0 off the background.
    """
    lit = (samples[:, 0] > threshold) & background_mask(reals, threshold, rare)  # (N, H, W)
    return float(lit.any(axis=(1, 2)).mean()), lit.mean(axis=0)


def most_lit(per_pixel, k=3):
    """The k pixels lit most often, as "(row, col) fraction" text."""
    flat = np.argsort(per_pixel, axis=None)[::-1][:k]
    rows, cols = np.unravel_index(flat, per_pixel.shape)
    return " ".join(f"({r},{c}) {per_pixel[r, c]:.2f}" for r, c in zip(rows, cols) if per_pixel[r, c] > 0) or "-"


def replay_draws(gan, rng, n):
    """The noise minigen's make_gan_step draws for one minibatch of n, in its order, from the same stream:
    D's z, the gradient penalty's ε (drawn even when unused), G's z and G's labels (a conditional GAN)."""
    z_d = gan.sample_latent(rng, n)
    rng.random(n, dtype=np.float32)  # ε of the penalty; the plain GAN ignores it
    return z_d, gan.sample_latent(rng, n), gan.sample_labels(rng, n)


def train_epoch_minigen(step, x, y, order, batch_size, after_step):
    for batch in batches(None, *((x,) if y is None else (x, y)), batch_size=batch_size, order=order):
        step(batch)
        after_step()


def train_epoch_torch(twin, gan, rng, x, y, order, batch_size, after_step):
    recipe = RECIPES["gan"]
    for batch in batches(None, *((x,) if y is None else (x, y)), batch_size=batch_size, order=order):
        z_d, z_g, g_y = replay_draws(gan, rng, len(batch[0]))
        twin.step(torch.from_numpy(batch[0]), recipe, torch_discriminator_loss, torch_nonsaturating,
                  z=(z_d, z_g), y=None if y is None else batch[1], g_y=g_y)
        after_step()


def train_epoch_both(step, rng, twin, torch_rng, gan, x, y, batch_size, after_steps=(lambda: None, lambda: None)):
    """One epoch of minigen's step (drawing from rng) and of the twin (replaying the same draws from
    torch_rng, a copy of rng's state): one shuffle, the same minibatches, the same noise.
    after_steps: what to run after each step of (minigen, torch), e.g. update an averaged generator."""
    order = rng.permutation(len(x))
    if not np.array_equal(order, torch_rng.permutation(len(x))):
        raise RuntimeError("the twin's stream no longer follows minigen's")
    train_epoch_minigen(step, x, y, order, batch_size, after_steps[0])
    train_epoch_torch(twin, gan, torch_rng, x, y, order, batch_size, after_steps[1])
    if rng.bit_generator.state != torch_rng.bit_generator.state:
        raise RuntimeError("the twin drew other noise than minigen's step: update replay_draws")


def averaged_generators(params, twin, decay):
    """Running averages of G's weights (Yazıcı et al. 2019) in both libraries, and the after-step updates
    for train_epoch_both: a <- decay·a + (1 - decay)·w, minigen.optim.update_average's formula."""
    ours = copy.deepcopy(params["generator"])
    theirs = copy.deepcopy(twin.G)

    def update_theirs():
        with torch.no_grad():
            for a, w in zip(theirs.parameters(), twin.G.parameters()):
                a.mul_(decay).add_(w, alpha=1 - decay)

    return ours, theirs, (lambda: update_average(ours, params["generator"], decay), update_theirs)


def weights_apart(params, twin):
    """max over the weight arrays of max|minigen - torch| / max|torch|: how far the twins have drifted."""
    theirs = {"generator": interop.from_torch(twin.gan.generator, twin.G, (twin.gan.latent + twin.gan.n_classes,)),
              "discriminator": interop.from_torch(twin.gan.discriminator, twin.D, twin.gan.d_input_shape())}
    return max(scaled_error(a, b) for a, b in zip(leaves(params), leaves(theirs)))


def twins(gan, seed):
    """(params, minigen step, its rng, torch twin, the twin's rng): both at the same weights and stream state."""
    rng = np.random.default_rng(seed)
    params = gan.init(rng)
    step, _, _ = RECIPES["gan"].train_step(gan, params, rng)
    torch_rng = np.random.default_rng()
    torch_rng.bit_generator.state = rng.bit_generator.state
    return params, step, rng, TorchGAN(gan, params), torch_rng


def summarise(lit, names):
    """The lit fractions over all epochs, (epochs, len(names)): one epoch's snapshot is a coin flip."""
    print(f"\nover {len(lit)} epochs, per generator: mean lit fraction; epochs with most samples lit")
    for name, column in zip(names, lit.T):
        print(f"  {name:18s} {column.mean():.2f}  {int((column > 0.5).sum()):3d}")


def main():
    args = parse_args()
    print(machine_header(args.threads))
    (x, y), (x_test, _) = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    gan = mlp_gan() if args.model == "gan" else mlp_cgan()
    labels = y if gan.n_classes else None
    params, step, rng, twin, torch_rng = twins(gan, args.seed)
    avg_ours, avg_theirs, after_steps = averaged_generators(params, twin, args.ema)
    look = np.random.default_rng(args.seed + 1)
    z, y_look = gan.sample_latent(look, args.samples), gan.sample_labels(look, args.samples)
    real, real_map = lit_background_fraction(x_test, x)
    print(f"{args.model}, seed {args.seed}, batch {args.batch_size}; background: {int(background_mask(x).sum())} "
          f"pixels > 0.5 in < 1 % of the {len(x)} training images; real test digits: {real:.3f} lit, "
          f"most lit {most_lit(real_map, 1)}")
    names = ["minigen", "torch", f"minigen EMA {args.ema}", f"torch EMA {args.ema}"]
    print(f"lit fraction (most lit pixel (row,col) and its fraction) after each epoch\n"
          f"| epoch | {' | '.join(names)} | weights apart |\n|{'---|' * (len(names) + 2)}")
    lit = []
    for epoch in range(1, args.epochs + 1):
        train_epoch_both(step, rng, twin, torch_rng, gan, x, labels, args.batch_size, after_steps)
        with torch.no_grad():
            t_z = torch.from_numpy(z)
            samples = [gan.generate(params["generator"], z, y_look), twin.generate(t_z, y_look).numpy(),
                       gan.generate(avg_ours, z, y_look), avg_theirs(twin.condition(t_z, y_look)).numpy()]
        scores = [lit_background_fraction(s, x) for s in samples]
        print(f"| {epoch} | " + " | ".join(f"{f:.3f} {most_lit(m, 1)}" for f, m in scores)
              + f" | {weights_apart(params, twin):.1e} |", flush=True)
        lit.append([f for f, _ in scores])
    summarise(np.array(lit), names)


if __name__ == "__main__":
    main()
