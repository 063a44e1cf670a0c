"""A progressive GAN on MNIST (Karras, Aila, Laine & Lehtinen 2018): G and D grow 7x7 -> 14x14 -> 28x28.

    python demos/progressive_gan_mnist.py             # 3 epochs of batch 128, at most 15 minutes (README, GAN table)
    python demos/progressive_gan_mnist.py --set phase_images=60000 --epochs 5   # a whole epoch per phase
    python demos/progressive_gan_mnist.py --sample --epochs 2 --set phase_images=1000   # a smoke run

Both networks start at 7 x 7; every `phase_images` real images (20,000 by default) a new
block is faded in (α from 0 to 1) and then trained alone: 7 | fade 14 | 14 | fade 28 | 28.
The samples/ grid of epoch 1 is still 14 x 14 (blocky); from epoch 2 on it is 28 x 28.
curves.png shows α and the resolution beside D(x), D(G(z)), the losses and the gradient norms.
--minutes caps the wall time. Karras et al. sample from an averaged generator; here it
is off (--set ema=0), since in 1,407 steps a 1,000-step average still holds much of the
28 x 28 block's initial weights (born two thirds into the run): it scored FID 461 where
the last weights score 193 (the README's GAN table). See minigen/models/progressive.py for what is kept from the
paper and what is left out.
Writes runs/progressive/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("progressive", __doc__, epochs=3, batch_size=128, options=["--minutes", "15"])
