"""VAE-GAN on MNIST (Larsen, Sønderby, Larochelle & Winther 2016): a VAE whose decoder is
also a GAN's generator, its reconstructions judged in the discriminator's features.

    python demos/vaegan_mnist.py                       # conv Enc/Dec/Dis, 7 minutes (README, GAN table)
    python demos/vaegan_mnist.py --preset mlp          # the MLP VAE's Enc/Dec (784-400-20), 20 epochs at
                                                       # RMSprop 3e-4, no penalty: the first default
    python demos/vaegan_mnist.py --set gamma=1         # the decoder leans more on reconstruction
    python demos/vaegan_mnist.py --sample --epochs 1 --minutes 1   # the packaged sample: a smoke run

Each minibatch: Enc steps on KL + L_llike, Dec on gamma·L_llike + its (non-saturating) GAN loss
on reconstructions and prior samples, Dis on telling real digits from both; RMSprop for all
three, as in the authors' code, here at lr 1e-3. The nets are the conv VAE's encoder and
decoder and a conv Dis (--set conv=true). Two additions make the samples sharp within a
CPU budget: WGAN-GP's gradient penalty on Dis between real digits and prior samples
(--set gp=10; the lever that turned the MLP GAN demo around), and samples drawn from the
averaged decoder (--set ema=0.999). --minutes is the budget, --epochs only an upper limit.
In curves.png, d_real / d_recon / d_fake are Dis's mean outputs on the three kinds of images.
Writes runs/vaegan/ (or --out): samples/ per epoch, curves.png, samples.png, eval.json, and
reconstructions.png (test digits above their reconstructions, Dec at the encoder's mean).
"""
import numpy as np

from minigen import cli, train, viz
from minigen.demo import model_demo
from minigen.models.trainable import configure
from minigen.models.vaegan import VAEGAN, VAEGANConfig


def save_reconstructions(trainable, out, n=16):
    """Two rows of n: test digits, then the model's reconstructions of them."""
    config = train.read_config(out)
    model = VAEGAN(configure(VAEGANConfig(), config["options"]))
    x_test = cli.load_data("test", config)[0][:n]
    viz.save_image_grid(np.concatenate([x_test, model.reconstruct(trainable.params, x_test)]),
                        out / "reconstructions.png", ncol=n)
    print(f"reconstructions.png in {out}/")


if __name__ == "__main__":
    defaults = ["--set", "conv=true", "--set", "gp=10", "--set", "ema=0.999", "--minutes", "7"]
    save_reconstructions(*model_demo("vaegan", __doc__, epochs=1000, batch_size=64, lr=1e-3, options=defaults,
                                     presets={"mlp": ["--epochs", "20", "--lr", "3e-4"]}))
