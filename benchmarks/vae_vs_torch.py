"""Train the MLP VAE in minigen and its torch twin alike; compare test losses.

    python benchmarks/vae_vs_torch.py [--epochs 10] [--threads 2] [--seed 0] [--data-dir DIR]

Same architecture (784-400-20), same initial weights, Adam(1e-3), batch 128,
MNIST intensities in [0, 1] as targets (as pytorch/examples does). The two runs
draw their own shuffles and noise, so their losses agree statistically, not bit
for bit: read the relative gap of the final test losses against each library's
own spread over seeds (--seed sets the initial weights and both runs' shuffles
and noise; the README's row runs seeds 0, 1 and 2).
"""
import argparse
import time

from common import pin_threads

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--data-dir", default=None)
ARGS = ap.parse_args()
pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from twins import TorchVAE  # noqa: E402

from minigen.data import batches, load_mnist  # noqa: E402
from minigen.models.vae import VAE, make_train_step  # noqa: E402
from minigen.optim import Adam  # noqa: E402
from minigen.train import mean_over_batches, train_epochs  # noqa: E402


def minigen_run(x, x_test, params, model):
    rng = np.random.default_rng(ARGS.seed + 1)
    step = make_train_step(model, params, Adam(params, lr=1e-3), rng, binarized=False)
    start = time.perf_counter()
    train_epochs(step, (x,), ARGS.epochs, rng, batch_size=128, desc="minigen")
    seconds = time.perf_counter() - start
    eps = np.random.default_rng(123).standard_normal((len(x_test), model.cfg.latent), dtype=np.float32)
    loss = mean_over_batches(lambda b: -model.elbo(params, b[0], b[1]), (x_test, eps))
    return loss, seconds


def torch_run(x, x_test, twin):
    torch.manual_seed(ARGS.seed)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    rng = np.random.default_rng(ARGS.seed + 2)
    start = time.perf_counter()
    for _ in range(ARGS.epochs):
        for (xb,) in batches(rng, x, batch_size=128):
            xb = torch.from_numpy(xb)
            loss = twin.loss(xb, torch.randn(len(xb), twin.latent))
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    eps = np.random.default_rng(123).standard_normal((len(x_test), twin.latent), dtype=np.float32)
    with torch.no_grad():
        loss = float(twin.loss(torch.from_numpy(x_test), torch.from_numpy(eps)))
    return loss, seconds


def main():
    torch.set_num_threads(ARGS.threads)
    (x, _), (x_test, _) = load_mnist("train", ARGS.data_dir), load_mnist("test", ARGS.data_dir)
    model = VAE()
    params = model.init(np.random.default_rng(ARGS.seed))
    twin = TorchVAE(model, params)  # copies the initial weights before minigen trains them in place
    ours, our_s = minigen_run(x, x_test, params, model)
    theirs, their_s = torch_run(x, x_test, twin)
    print(f"MLP VAE 784-400-20, Adam 1e-3, batch 128, {ARGS.epochs} epochs, {ARGS.threads} threads")
    print("| | test loss (nats, -ELBO) | training time |\n|---|---|---|")
    print(f"| minigen | {ours:.3f} | {our_s:.0f} s |\n| torch | {theirs:.3f} | {their_s:.0f} s |")
    print(f"relative gap {100 * (ours - theirs) / theirs:+.3f}%")


if __name__ == "__main__":
    main()
