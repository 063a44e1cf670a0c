"""WGAN-GP on MNIST (Gulrajani et al. 2017).

    python demos/wgan_gp_mnist.py                     # 20 epochs (82 s: README, GAN table)
    python demos/wgan_gp_mnist.py --sample --epochs 1 # the packaged sample: a smoke run

The WGAN critic, kept near 1-Lipschitz by a gradient penalty instead of clipping:
10 (|grad D(x_hat)| - 1)^2 on random interpolates x_hat of real and fake images
(a gradient of a gradient: autograd differentiates the penalty's own gradient).
5 critic steps per generator step, Adam(1e-4, betas (0.5, 0.9)), the paper's Algorithm 1.
curves.png shows the penalty (gp) beside the losses.
Writes runs/wgan-gp/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("wgan-gp", __doc__, epochs=20, batch_size=64)
