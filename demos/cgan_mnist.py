"""A conditional GAN on MNIST (Mirza & Osindero 2014): ask for a digit, get that digit.

    python demos/cgan_mnist.py                        # 10 minutes of training (README, GAN table)
    python demos/cgan_mnist.py --preset mlp           # the lecture's MLP nets, 40 epochs at lr 2e-4
    python demos/cgan_mnist.py --set smooth=0         # without label smoothing (the earlier default)
    python demos/cgan_mnist.py --sample --epochs 1 --minutes 1   # the packaged sample: a smoke run

By default DCGAN's nets (`--set arch=conv`, 32 channels wide, as demos/dcgan_mnist.py
trains them: lr 1e-3, samples from the averaged generator; and one-sided label smoothing,
`--set smooth=0.1`: D's target for real digits is 0.9): G reads [z, onehot(y)], D
reads the label as 10 constant planes beside the image, so D judges "a real image of
this class?" (minigen/models/cgan.py). `--preset mlp` is the lecture's MLP GAN, 256
units wide, with the one-hot label appended to G's z and to D's flattened input. The
sample grids have one class per column, 0 to 9. Besides FID and score, the demo reports
how often the shipped classifier reads a sample as the digit it was asked for, per digit.
--minutes is the budget; --epochs only an upper limit.
Writes runs/cgan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

BUDGET = ["--set", "arch=conv", "--set", "width=32", "--set", "ema=0.999", "--set", "smooth=0.1", "--minutes", "10"]
PRESETS = {"mlp": ["--set", "arch=mlp", "--set", "hidden=256", "--lr", "2e-4", "--epochs", "40"]}

if __name__ == "__main__":
    model_demo("cgan", __doc__, epochs=100, batch_size=64, lr=1e-3, options=BUDGET, presets=PRESETS)
