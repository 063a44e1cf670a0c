"""A progressive GAN on MNIST (Karras, Aila, Laine & Lehtinen 2018): G and D grow 7x7 -> 14x14 -> 28x28.

    python demos/progressive_gan_mnist.py             # 15 minutes of batch 64 (README, GAN table)
    python demos/progressive_gan_mnist.py --preset batch-128  # the same with batch 128, the earlier default
    python demos/progressive_gan_mnist.py --preset before   # the first default: 3 epochs at lr 2e-4, last weights
    python demos/progressive_gan_mnist.py --set phase_images=60000 --epochs 5   # a whole epoch per phase
    python demos/progressive_gan_mnist.py --sample --epochs 2 --set phase_images=1000   # a smoke run

Both networks start at 7 x 7; every `phase_images` real images (20,000 by default) a new
block is faded in (α from 0 to 1) and then trained alone: 7 | fade 14 | 14 | fade 28 | 28.
The samples/ grid of epoch 1 is still 14 x 14 (blocky); from epoch 2 on it is 28 x 28.
curves.png shows α and the resolution beside D(x), D(G(z)), the losses and the gradient norms.
Adam(1e-3, beta1 = 0.5): Karras et al.'s learning rate (with their betas 0 and 0.99), five
times the DCGAN rate `minigen train progressive` takes; in 15 minutes it makes the digits
that 2e-4 leaves malformed (the README's GAN table). Batch 64, not 128: a step of
64 images takes about half as long as one of 128, so the budget buys about twice the
steps, and in a fixed budget the steps are what count (FID 69 at batch 128: README). The demo samples
from the averaged generator (--set ema=0.999), as Karras et al. do; its decay ramps up
(minigen.averaging), so the 28 x 28 block, born after 60,000 images, is not averaged
with its initial weights. --minutes is the budget, --epochs only an upper limit.
See minigen/models/progressive.py for what is kept from the
paper and what is left out.
Writes runs/progressive/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    budget = ["--set", "ema=0.999", "--minutes", "15"]
    model_demo("progressive", __doc__, epochs=1000, batch_size=64, lr=1e-3, options=budget,
               presets={"batch-128": [*budget, "--batch-size", "128"],
                        "before": ["--epochs", "3", "--lr", "2e-4", "--minutes", "15", "--batch-size", "128"]})
