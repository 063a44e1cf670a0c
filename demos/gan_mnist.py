"""The lecture's MLP GAN on MNIST (Goodfellow et al. 2014).

    python demos/gan_mnist.py                         # 20 epochs, batch 64 (228 s: README, GAN table)
    python demos/gan_mnist.py --set hidden=256        # wider nets
    python demos/gan_mnist.py --sample --epochs 1     # the packaged sample: a smoke run

G: z (100) -> Dense 128 ReLU -> Dense 784 sigmoid; D: 784 -> Dense 128 LeakyReLU -> 1 logit.
D takes one step on -E[log D(x)] - E[log(1 - D(G(z)))], then G one step on the
non-saturating -E[log D(G(z))]; Adam(2e-4, beta1 = 0.5). In curves.png, watch D(x) and
D(G(z)): a D that wins outright (1 and 0) leaves G little to learn from.
Writes runs/gan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("gan", __doc__, epochs=20, batch_size=64)
