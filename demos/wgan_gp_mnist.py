"""WGAN-GP on MNIST (Gulrajani et al. 2017).

    python demos/wgan_gp_mnist.py                     # 10 minutes of training (README, GAN table)
    python demos/wgan_gp_mnist.py --preset paper      # the same nets at the paper's lr 1e-4
    python demos/wgan_gp_mnist.py --preset lecture    # the lecture's one-layer MLPs, 20 epochs, lr 1e-4
    python demos/wgan_gp_mnist.py --sample --epochs 1 # the packaged sample: a smoke run

The WGAN critic, kept near 1-Lipschitz by a gradient penalty instead of clipping:
10 (|grad D(x_hat)| - 1)^2 on random interpolates x_hat of real and fake images
(a gradient of a gradient: autograd differentiates the penalty's own gradient).
5 critic steps per generator step, Adam with betas (0.5, 0.9): the paper's Algorithm 1,
but at lr 1e-3, not its 1e-4 (`--preset paper`): in 10 minutes the paper's rate leaves
blobs (FID 166), ten times it gives digits (README, GAN table). The nets are two-layer
MLPs (G 100-256-512-784 with batch norm, which the penalty allows in G; the critic
784-512-256-1 without, which it does not: Gulrajani et al. §4), sampled from the
averaged generator (--set ema=0.999, Yazıcı et al. 2019); --minutes is the budget,
--epochs only an upper limit.
curves.png shows the penalty (gp) beside the losses.
Writes runs/wgan-gp/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    defaults = ["--set", "layers=2", "--set", "hidden=256", "--set", "g_norm=true", "--set", "ema=0.999",
                "--minutes", "10"]
    model_demo("wgan-gp", __doc__, epochs=1000, batch_size=64, lr=1e-3, options=defaults,
               presets={"paper": [*defaults, "--lr", "1e-4"], "lecture": ["--epochs", "20", "--lr", "1e-4"]})
