"""DCGAN on MNIST (Radford, Metz & Chintala 2016), sized for a laptop CPU.

    python demos/dcgan_mnist.py                   # 15 minutes of training (README, GAN table)
    python demos/dcgan_mnist.py --preset long     # an hour with a lazy gradient penalty on D (README)
    python demos/dcgan_mnist.py --preset unclustered   # the default before clusters: unconditional
    python demos/dcgan_mnist.py --preset fresh    # the default before reuse: a fresh z for G's step
    python demos/dcgan_mnist.py --preset before   # the default before that: batch norm in D too
    python demos/dcgan_mnist.py --preset paper    # the paper's settings: 64 channels, lr 2e-4, no averaging
    python demos/dcgan_mnist.py --sample --epochs 1 --minutes 1   # the packaged sample: a smoke run

Strided convolutions in D, transposed convolutions in G, batch norm in G, weights
from N(0, 0.02), Adam with beta1 = 0.5; see minigen/models/dcgan.py. Five changes to
the paper's recipe buy quality per CPU minute (the README's GAN section measures them):
half the channels (width 32: a quarter of the multiply-adds in the middle layers),
lr 1e-3 instead of 2e-4 (on MNIST the digits form in a third of the steps), no batch
norm in D (--set norm=none: FID 40-43 in three one-thread runs, where every variant with
it scored 49-53; Xiang & Li 2017 also found batch norm in D degrades samples),
samples drawn from the averaged generator (--set ema=0.9995, Yazıcı et al. 2019), and
G's step scoring the fakes of D's step again, as PyTorch's DCGAN example does (--set
reuse=true: one pass through G a step instead of two; FID 49 against 55 over three
training seeds, 15 one-thread minutes each). A sixth makes it a self-conditioned GAN
(--set clusters=10, Liu et al. 2020; minigen/models/selfcond.py): k-means splits the
training images into 10 clusters (no labels), both nets are told an image's cluster as a
conditional GAN is told its class, and samples draw a cluster by its share (README, GANs).
--minutes is the budget; --epochs only an upper limit.
Writes runs/dcgan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json.
"""
from minigen.demo import model_demo

UNCLUSTERED = ["--set", "width=32", "--set", "norm=none", "--set", "ema=0.9995", "--set", "reuse=true"]
RECIPE = [*UNCLUSTERED, "--set", "clusters=10"]
BUDGET = [*RECIPE, "--minutes", "15"]
PRESETS = {
    # over an hour D gains on G; a gradient penalty on every 8th critic step holds it (README, GANs)
    "long": [*RECIPE, "--set", "gp=10", "--set", "gp_every=8", "--minutes", "60"],
    "unclustered": [*UNCLUSTERED, "--minutes", "15"],
    "before": ["--set", "width=32", "--set", "ema=0.999", "--minutes", "15"],
    "fresh": ["--set", "width=32", "--set", "norm=none", "--set", "ema=0.9995", "--minutes", "15"],
    "paper": ["--set", "width=64", "--lr", "2e-4", "--epochs", "3"],
}

if __name__ == "__main__":
    model_demo("dcgan", __doc__, epochs=100, batch_size=64, lr=1e-3, options=BUDGET, presets=PRESETS)
