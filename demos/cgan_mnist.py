"""A conditional GAN on MNIST (Mirza & Osindero 2014): ask for a digit, get that digit.

    python demos/cgan_mnist.py                        # 40 epochs, batch 64 (326 s: README, GAN table)
    python demos/cgan_mnist.py --sample --epochs 1    # the packaged sample: a smoke run

The lecture's MLP GAN, 256 units wide, with the one-hot label appended to G's z and to
D's input, so D judges "a real image of this class?". `--set arch=conv` (with e.g.
`--set width=32 --lr 5e-4`) uses DCGAN's nets instead, D reading the label as 10 constant
planes beside the image (minigen/models/cgan.py). The sample grids have one class per column,
0 to 9. Besides FID and score, the demo reports how often the shipped classifier reads
a sample as the digit it was asked for.
Writes runs/cgan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("cgan", __doc__, epochs=40, batch_size=64)
