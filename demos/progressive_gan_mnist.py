"""A progressive GAN on MNIST (Karras, Aila, Laine & Lehtinen 2018): G and D grow 7x7 -> 14x14 -> 28x28.

    python demos/progressive_gan_mnist.py             # 15 minutes of batch 128 (README, GAN table)
    python demos/progressive_gan_mnist.py --preset before   # the old default: 3 epochs at lr 2e-4, last weights
    python demos/progressive_gan_mnist.py --set phase_images=60000 --epochs 5   # a whole epoch per phase
    python demos/progressive_gan_mnist.py --sample --epochs 2 --set phase_images=1000   # a smoke run

Both networks start at 7 x 7; every `phase_images` real images (20,000 by default) a new
block is faded in (α from 0 to 1) and then trained alone: 7 | fade 14 | 14 | fade 28 | 28.
The samples/ grid of epoch 1 is still 14 x 14 (blocky); from epoch 2 on it is 28 x 28.
curves.png shows α and the resolution beside D(x), D(G(z)), the losses and the gradient norms.
Adam(1e-3, beta1 = 0.5): Karras et al.'s learning rate (with their betas 0 and 0.99), five
times the DCGAN rate `minigen train progressive` takes; in 15 minutes it makes the digits
that 2e-4 leaves malformed (the README's GAN table). The demo samples
from the averaged generator (--set ema=0.999), as Karras et al. do; its decay ramps up
(minigen.averaging), so the 28 x 28 block, born two thirds into the run, is not averaged
with its initial weights. --minutes is the budget, --epochs only an upper limit.
See minigen/models/progressive.py for what is kept from the
paper and what is left out.
Writes runs/progressive/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("progressive", __doc__, epochs=1000, batch_size=128, lr=1e-3,
               options=["--set", "ema=0.999", "--minutes", "15"],
               presets={"before": ["--epochs", "3", "--lr", "2e-4", "--minutes", "15"]})
