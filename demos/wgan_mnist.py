"""WGAN with weight clipping on MNIST (Arjovsky, Chintala & Bottou 2017).

    python demos/wgan_mnist.py                        # 20 epochs (about 2 min on one core)
    python demos/wgan_mnist.py --sample --epochs 1    # the packaged sample: a smoke run

The lecture's MLP nets, D now a critic with no sigmoid: 5 critic steps on
E[D(G(z))] - E[D(x)] per generator step on -E[D(G(z))], every critic weight clipped
to [-0.01, 0.01] after each step (a crude way to keep D Lipschitz), RMSprop(5e-5) as
in the paper's Algorithm 1. d_real - d_fake in curves.png estimates the Wasserstein
distance (up to the clip's scale): it should fall as the samples improve.
Writes runs/wgan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("wgan", __doc__, epochs=20, batch_size=64)
