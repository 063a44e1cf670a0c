"""DCGAN on MNIST (Radford, Metz & Chintala 2016).

    python demos/dcgan_mnist.py                       # 3 epochs, batch 64 (13 min: README, GAN table)
    python demos/dcgan_mnist.py --set width=32        # half the channels, so fewer multiply-adds
    python demos/dcgan_mnist.py --sample --epochs 1   # the packaged sample: a smoke run

Strided convolutions in D, transposed convolutions in G, batch norm in both, weights
from N(0, 0.02), Adam(2e-4, beta1 = 0.5); see minigen/models/dcgan.py.
Writes runs/dcgan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

if __name__ == "__main__":
    model_demo("dcgan", __doc__, epochs=3, batch_size=64)
