"""WGAN with weight clipping on MNIST (Arjovsky, Chintala & Bottou 2017).

    python demos/wgan_mnist.py                        # 20 epochs (87 s: README, GAN table)
    python demos/wgan_mnist.py --sample --epochs 1    # the packaged sample: a smoke run

The lecture's MLP nets, D now a critic with no sigmoid: 5 critic steps on
E[D(G(z))] - E[D(x)] per generator step on -E[D(G(z))], every critic weight clipped
to [-0.01, 0.01] after each step (a crude way to keep D Lipschitz), RMSprop as in
the paper's Algorithm 1 -- but at lr 5e-4, not its 5e-5: in 20 epochs the paper's
rate left blurred average digits, 10x that rate gives digits (FID 844.5 against
248.7: README, GAN table). `--lr 5e-5` shows the slow version. d_real - d_fake in
curves.png estimates the Wasserstein distance (up to the clip's scale).
Writes runs/wgan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("wgan", __doc__, epochs=20, batch_size=64, lr=5e-4)
