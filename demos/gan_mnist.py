"""An MLP GAN on MNIST (Goodfellow et al. 2014), readable digits in 5 minutes.

    python demos/gan_mnist.py                         # 5 minutes of training (README, GAN table)
    python demos/gan_mnist.py --preset lecture        # the lecture's one-layer nets, 20 epochs, no averaging
    python demos/gan_mnist.py --preset one-layer      # the lecture's nets for 5 minutes, averaged
    python demos/gan_mnist.py --preset deep           # these nets without the penalty, at lr 2e-4
    python demos/gan_mnist.py --sample --epochs 1     # the packaged sample: a smoke run

G: z (100) -> Dense 256, batch norm, ReLU -> Dense 512, batch norm, ReLU -> Dense 784 sigmoid;
D: 784 -> Dense 512 LeakyReLU -> Dense 256 LeakyReLU -> 1 logit.
D takes one step on -E[log D(x)] - E[log(1 - D(G(z)))] plus WGAN-GP's gradient penalty
10 E(|grad D(x_hat)| - 1)^2 on interpolates of real and fake digits (--set gp=10; Fedus
et al. 2018 train this loss with it), then G one step on the non-saturating
-E[log D(G(z))]; Adam(1e-3, beta1 = 0.5). In curves.png, watch D(x) and D(G(z)): a D
that wins outright (1 and 0) leaves G little to learn from, and the penalty is what
keeps this D from it: `--preset deep`, the same nets without it, collapses onto a few
digits. The lecture's nets (G 100-128-784, D 784-128-1) are `--preset lecture` and
`--preset one-layer`. The demo samples from the averaged generator (--set ema=0.999,
Yazıcı et al. 2019) and trains for 5 minutes (--epochs is only an upper limit).
Writes runs/gan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    nets = ["--set", "layers=2", "--set", "hidden=256", "--set", "g_norm=true"]
    budget = ["--set", "ema=0.999", "--minutes", "5"]
    model_demo("gan", __doc__, epochs=1000, batch_size=64, lr=1e-3, options=[*nets, "--set", "gp=10", *budget],
               presets={"lecture": ["--epochs", "20", "--lr", "2e-4"],
                        "one-layer": [*budget, "--lr", "2e-4"],
                        "deep": [*nets, *budget, "--lr", "2e-4"]})
