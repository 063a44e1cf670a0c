"""The conditional VAE (Sohn, Lee & Yan 2015; the M2 model of Kingma et al. 2014 with y observed).

    encoder:  (x, y) -> (mu, logvar) of q(z|x,y) = N(mu, diag e^logvar)
    decoder:  (z, y) -> logits of p(x|z,y) = Bernoulli(sigmoid(logits)) per pixel
    ELBO(x|y) = E_q[log p(x|z,y)] - KL(q(z|x,y) || N(0, I))  <=  log p(x|y)

The label y enters both networks as a one-hot vector: appended to the flattened
image (MLP) or as ten constant image planes (conv), and appended to z.

For a fixed label the CVAE *is* a VAE over x. `CVAE.given(y)` returns exactly that
VAE, and every formula below (ELBO, loss, IWAE weights, sampling) is the VAE's own,
applied to it: the conditioning lives in encode/decode and nowhere else.

Because it models p(x|y), the CVAE is a generative classifier too: Bayes' rule
turns class-conditional likelihoods into p(y|x) ∝ p(x|y) p(y) (minigen.apps.bayes_classify).
"""
import autograd.numpy as np
import numpy as onp

from minigen import losses, nn
from minigen.data import binarize
from minigen.models.vae import VAE, VAEConfig
from minigen.ops import append_condition, one_hot


class CVAE:
    """VAEConfig's two networks, fed [x, y] and [z, y]. params = {"encoder": ..., "decoder": ...}.

    Labels y are integer class indices (N,) in [0, n_classes) everywhere in this API.
    """

    def __init__(self, cfg=None, n_classes=10):
        self.cfg, self.n_classes = cfg or VAEConfig(), n_classes
        self.vae = VAE(self.cfg)  # the same encoder and decoder stacks; only their inputs are wider

    def init(self, rng):
        c, h, w = self.cfg.image_shape
        image_and_label = (c + self.n_classes, h, w) if self.cfg.conv else (c * h * w + self.n_classes,)
        _, enc = self.vae.encoder.init(rng, image_and_label)
        _, dec = self.vae.decoder.init(rng, (self.cfg.latent + self.n_classes,))
        return {"encoder": enc, "decoder": dec}

    def encode(self, params, x, y):
        """x: (N, 1, 28, 28), y: (N,) int -> mu, logvar of q(z|x,y): (N, latent) each."""
        if tuple(onp.shape(x)[1:]) != tuple(self.cfg.image_shape):
            raise ValueError(f"CVAE.encode: expected images of shape (N, {', '.join(map(str, self.cfg.image_shape))})"
                             f", got {tuple(onp.shape(x))}")
        n = onp.shape(x)[0]
        features = x if self.cfg.conv else np.reshape(x, (n, -1))  # conv: the label as constant planes
        return self.vae.encode(params, append_condition(features, one_hot(y, self.n_classes, n)))

    def decode(self, params, z, y):
        """z: (N, latent), y: (N,) int -> logits of p(x|z,y): (N, 1, 28, 28)."""
        return self.vae.decode(params, append_condition(z, one_hot(y, self.n_classes, onp.shape(z)[0])))

    def given(self, y):
        """The VAE over x obtained by fixing the labels y (N,): p(x|y) as an ordinary VAE."""
        return LabelledVAE(self, y)

    # --- The VAE's formulas, one label per example -------------------------------

    def elbo(self, params, x, y, eps):
        """ELBO per example (N,), a lower bound on log p(x|y) in nats. eps: (N, latent)."""
        return self.given(y).elbo(params, x, eps)

    def noise_shape(self, n):
        """The shape of eps for one training step on n examples (see VAE.noise_shape)."""
        return self.vae.noise_shape(n)

    def loss(self, params, x, y, eps, seen=None):
        """Mean of -log p(x|z,y) + beta * KL over the batch (the IWAE bound when cfg.k > 1); seen: see VAE.loss."""
        return self.given(y).loss(params, x, eps, seen)

    def iwae_log_weights(self, params, x, y, eps):
        """log p(x, z_k|y) - log q(z_k|x,y): eps (K, N, latent) -> (K, N)."""
        return self.given(y).iwae_log_weights(params, x, eps)

    def decode_mean(self, params, z, y):
        """E[x|z,y] = sigmoid(logits): (N, 1, 28, 28) in [0, 1]."""
        return self.given(y).decode_mean(params, z)

    def reconstruct(self, params, x, y):
        """The decoder's mean at the encoder's mean, with the true labels: (N, 1, 28, 28)."""
        return self.given(y).reconstruct(params, x)

    def sample(self, params, rng, labels):
        """Class-conditional generation: one image per label (N,), z ~ N(0, I), x = E[x|z,y]
        (the z drawn as VAE.sample draws them, decoded a slice at a time: nn.in_chunks)."""
        labels = self.given(labels).y  # given() refuses labels that are not of shape (N,)
        z = rng.standard_normal((len(labels), self.cfg.latent), dtype=onp.float32)
        return nn.in_chunks(lambda z, y: self.decode_mean(params, z, y), z, labels)

    def class_log_likelihoods(self, params, x, k, rng):
        """Estimates of log p(x|y) for every class y: x (N, 1, 28, 28) -> (N, n_classes) float32.

        k = 1: the ELBO (closed-form KL); k > 1: the IWAE bound with k samples (Burda et al. 2016).
        All classes share the same noise eps (common random numbers), so the differences
        between classes, which is all that Bayes' rule uses, carry less sampling noise.
        """
        if int(k) != k or k < 1:
            raise ValueError(f"class_log_likelihoods: k must be a positive integer, got {k!r}")
        n = onp.shape(x)[0]
        eps = losses.sample_eps(rng, (int(k), n, self.cfg.latent))
        columns = []
        for c in range(self.n_classes):
            y = onp.full(n, c)
            columns.append(self.elbo(params, x, y, eps[0]) if k == 1
                           else losses.iwae_bound(self.iwae_log_weights(params, x, y, eps)))
        return onp.stack(columns, axis=1).astype(onp.float32)


class LabelledVAE(VAE):
    """A CVAE with its labels y (N,) fixed: a VAE over x whose encode/decode take no label.

    It inherits every VAE formula; only encode and decode differ, passing y along.
    """

    def __init__(self, cvae, y):
        if onp.ndim(y) != 1:
            raise ValueError(f"CVAE: expected integer labels of shape (N,), got shape {onp.shape(y)}")
        self.cfg, self.cvae, self.y = cvae.cfg, cvae, onp.asarray(y)

    def encode(self, params, x):
        return self.cvae.encode(params, x, self.y)

    def decode(self, params, z):
        # VAE.iwae_log_weights decodes K samples per example stacked k-major, (K*N, latent):
        # row k*N + i belongs to example i, so the labels repeat K times in the same order.
        # A z whose length is not a multiple of N fails the label-shape check in one_hot.
        reps = max(1, onp.shape(z)[0] // max(1, len(self.y)))
        return self.cvae.decode(params, z, onp.tile(self.y, reps))

    def sample(self, params, rng, n):
        # VAE.sample decodes z in slices, which would part z from these labels: CVAE.sample slices both
        if n != len(self.y):
            raise ValueError(f"CVAE: {len(self.y)} labels are fixed, so sample n = {len(self.y)}, got {n}")
        return self.cvae.sample(params, rng, self.y)


# --- For `minigen train` -------------------------------------------------------------------

VARIANTS = {"cvae": "conditional VAE: label-conditioned encoder and decoder (MLP 784+10-400-20)"}


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train cvae`: batches are (x, y); samples cycle through the digits."""
    from minigen.models.trainable import Trainable, configure
    from minigen.models.vae import make_train_step
    from minigen.optim import Adam

    model = CVAE(configure(VAEConfig(), options))
    params = model.init(rng)
    opt = Adam(params, lr=1e-3 if lr is None else lr)

    def test_metrics(x_test, y_test):  # -ELBO given the true label, on a fixed binarization of the test set
        x_bin = binarize(onp.random.default_rng(1234), x_test)
        eps = losses.sample_eps(onp.random.default_rng(1235), (len(x_bin), model.cfg.latent))
        return {"test_neg_elbo_given_y": -float(onp.mean(onp.concatenate(
            [model.elbo(params, x_bin[i:i + 1000], y_test[i:i + 1000], eps[i:i + 1000])
             for i in range(0, len(x_bin), 1000)])))}

    return Trainable(params={"cvae": params}, optimizers={"cvae": opt}, step=make_train_step(model, params, opt, rng),
                     sample=lambda sample_rng, n: model.sample(params, sample_rng, onp.arange(n) % model.n_classes),
                     remedies="lower --lr", test_metrics=test_metrics, needs_labels=True,
                     picture_columns=model.n_classes)
