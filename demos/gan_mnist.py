"""The lecture's MLP GAN on MNIST (Goodfellow et al. 2014).

    python demos/gan_mnist.py                         # 5 minutes of training (README, GAN table)
    python demos/gan_mnist.py --preset lecture        # 20 epochs, no averaging: the lecture's run
    python demos/gan_mnist.py --sample --epochs 1     # the packaged sample: a smoke run

G: z (100) -> Dense 128 ReLU -> Dense 784 sigmoid; D: 784 -> Dense 128 LeakyReLU -> 1 logit.
D takes one step on -E[log D(x)] - E[log(1 - D(G(z)))], then G one step on the
non-saturating -E[log D(G(z))]; Adam(2e-4, beta1 = 0.5). In curves.png, watch D(x) and
D(G(z)): a D that wins outright (1 and 0) leaves G little to learn from. The demo
samples from the averaged generator (--set ema=0.999, Yazıcı et al. 2019) and trains
for 5 minutes (--epochs is only an upper limit). `--preset deep` trains two-layer nets,
G 100-256-512-784 with batch norm, D 784-512-256-1: in 5 minutes they do worse (the
README's GAN table).
Writes runs/gan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("gan", __doc__, epochs=1000, batch_size=64, options=["--set", "ema=0.999", "--minutes", "5"],
               presets={"lecture": ["--epochs", "20"],
                        "deep": ["--set", "layers=2", "--set", "hidden=256", "--set", "g_norm=true",
                                 "--set", "ema=0.999", "--minutes", "5"]})
