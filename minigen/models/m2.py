"""The M2 model of Kingma, Rezende, Mohamed & Welling (2014), "Semi-Supervised Learning
with Deep Generative Models" (arXiv:1406.5298): the label y is a latent variable that
happens to be observed for a few images.

    generative model (eq. 2):  p(y) = Cat(1/C, ..., 1/C),  p(z) = N(0, I),
                               p(x|y,z) = Bernoulli(sigmoid(decoder(z, y))) per pixel
    inference model (eq. 4):   q(y|x) = Cat(softmax(classifier(x))),
                               q(z|x,y) = N(mu(x, y), diag e^logvar(x, y))

    labelled bound (eq. 6):    log p(x, y) >= E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)]
                                            =: -L(x, y)
    unlabelled bound (eq. 7):  log p(x) >= Σ_y q(y|x) (-L(x, y)) + H(q(y|x))  =: -U(x)
    objective (eqs. 8-9):      J^α = Σ_labelled L(x, y) + Σ_unlabelled U(x) + α E_labelled[-log q(y|x)]

The classifier q(y|x) enters J only through U, so on its own it would never see a
label: eq. 9's α term is what teaches it, and the paper takes α = 0.1 N (§3.1.2).
Here N is the number of training images, labelled plus unlabelled (60,000 on MNIST).

M2 is slow to start. The 50-d z can carry the class as well as the style, and early
on it does: the decoder ignores y, so -L(x, y) is the same for every y and U pulls
q(y|x) only towards uniform (its entropy). Only once the decoder uses y does U say
which label explains x best. And with α = 0.1 N the labels pull weakly: in J^α / N the
α term weighs 0.1 against the unlabelled bound's 1, so early on the entropy in U, pulling
q(y|x) towards uniform on 59,900 images, outweighs the cross-entropy on 100 labelled ones.
The paper's released code (dpkingma/nips14-ssl, run_2layer_ssl.py) trains for 3,000 passes.
models/semisupervised.py and demos/semisupervised_mnist.py depart from the paper here and
take α = 10 N (alpha_scale = 10): the classifier learns the labels first, its guesses on
the unlabelled images teach the decoder to use y, and U then refines the classifier. The
README's M2 row gives both: the paper's α for 30 epochs, and α = 10 N in CPU minutes.

With y observed everywhere, the generative half is the conditional VAE (models/cvae.py);
here the encoder's first layer is split in two so that U can sum over ten labels cheaply.
Defaults: MLPs of one hidden layer of 500 softplus units and a 50-d z, as the paper's
experiments (§4) describe M2. Its released code (dpkingma/nips14-ssl) has no script for
this case, M2 alone on pixels with few labels: run_2layer_ssl.py trains M2 on the features
of a trained M1 (the paper's M1+M2, minigen.models.m1m2; 500 hidden units, 300 with 100 labels), and
run_gpulearn_yz_x.py trains M2 on pixels with every label observed (two layers of 500).
"""
import math
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp

from minigen import losses, nn, ops


@dataclass(frozen=True)
class M2Config:
    latent: int = 50
    hidden: int = 500
    n_classes: int = 10
    alpha_scale: float = 0.1  # α = alpha_scale * N, the paper's choice (§3.1.2, "α = 0.1 · N"); see above
    image_shape: tuple = (1, 28, 28)  # the shape of one x: an image, or (D,) for M1's features
    likelihood: str = "bernoulli"  # p(x|y,z) for binary pixels; "gaussian" for M1's features (M1+M2)


# --- The paper's formulas, one number per example -------------------------------------

def labelled_bound(log_px_given_yz, log_py, kl_z):
    """-L(x, y), eq. 6, per example: (N,), a number or (N,), (N,) -> (N,).

        -L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) + E_q(z|x,y)[log p(z) - log q(z|x,y)]
                 = E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z))

    The last expectation is minus a KL between Gaussians, taken in closed form
    (losses.gaussian_kl) rather than from the sample z: same mean, less noise.
    """
    if onp.shape(log_px_given_yz) != onp.shape(kl_z):
        raise ValueError(f"labelled_bound: expected log_px_given_yz and kl_z of the same shape (N,), "
                         f"got {onp.shape(log_px_given_yz)} and {onp.shape(kl_z)}")
    if onp.ndim(log_py) == 0:  # a Python float: a numpy float64 scalar would promote float32 to float64
        log_py = float(log_py)
    return log_px_given_yz + log_py - kl_z


def categorical_entropy(log_q):
    """H(q) = -Σ_y q(y) log q(y) per row. log_q: (N, C) log-probabilities -> (N,).

    From log q (not q): a class with q = 0 has a finite log q from log_softmax,
    so 0 * log 0 never turns into nan.
    """
    return -np.sum(np.exp(log_q) * log_q, axis=-1)


def unlabelled_bound(log_qy, neg_L_every_label):
    """-U(x), eq. 7, per example: the labelled bound averaged over q(y|x), plus its entropy.

        -U(x) = Σ_y q(y|x) (-L(x, y)) + H(q(y|x))

    log_qy: (N, C) log q(y|x); neg_L_every_label: (N, C), column y = -L(x, y) -> (N,).
    """
    if onp.shape(log_qy) != onp.shape(neg_L_every_label) or onp.ndim(log_qy) != 2:
        raise ValueError(f"unlabelled_bound: expected log_qy and neg_L_every_label of the same shape (N, C), "
                         f"got {onp.shape(log_qy)} and {onp.shape(neg_L_every_label)}")
    return np.sum(np.exp(log_qy) * neg_L_every_label, axis=-1) + categorical_entropy(log_qy)


def classification_loss(log_qy, labels):
    """-log q(y|x) at the true label, per example: log_qy (N, C), labels (N,) int -> (N,)."""
    return -np.sum(ops.one_hot(labels, onp.shape(log_qy)[-1]) * log_qy, axis=-1)


def semi_supervised_objective(neg_L, neg_U, nll_y, n_labelled, n_unlabelled, alpha):
    """J^α / N (eq. 9 per training image), estimated from one labelled and one unlabelled batch.

        J^α = Σ_{N_l labelled} L(x, y) + Σ_{N_u unlabelled} U(x) + α E_labelled[-log q(y|x)]

    Each sum is N_l (or N_u) times a batch mean, so the estimate is unbiased whatever
    the batch sizes; dividing by N = N_l + N_u keeps its scale that of one image's bound.
    neg_L, nll_y: (B_l,) on the labelled batch; neg_U: (B_u,) on the unlabelled batch.
    """
    n = n_labelled + n_unlabelled
    # Python ints and floats: a numpy scalar weight would promote the float32 loss to float64.
    return (int(n_labelled) * np.mean(-neg_L) + int(n_unlabelled) * np.mean(-neg_U)
            + float(alpha) * np.mean(nll_y)) / int(n)


# --- The model ---------------------------------------------------------------------------

class M2:
    """Classifier q(y|x), encoder q(z|x,y), decoder p(x|y,z). params is a dict of the four stacks.

    A Dense layer on [x, y] is W_x x + W_y y + b, so the encoder's first layer is two
    stacks: encoder_x (run once per image) and encoder_y (once per label). U(x) needs
    q(z|x,y) for all C labels: the 784-wide product is then done once, not C times.
    """

    def __init__(self, cfg=M2Config()):
        if cfg.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"M2: likelihood must be 'bernoulli' (pixels) or 'gaussian' (M1's features), "
                             f"got {cfg.likelihood!r}")
        self.cfg = cfg
        h = cfg.hidden
        # A Gaussian p(x|y,z) needs a mean and a log-variance per feature: two of x's shape.
        out = tuple(cfg.image_shape) if cfg.likelihood == "bernoulli" else (2, *cfg.image_shape)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dense(h), nn.Softplus(), nn.Dense(cfg.n_classes))
        self.encoder_x = nn.Sequential(nn.Flatten(), nn.Dense(h))
        self.encoder_y = nn.Sequential(nn.Dense(h))  # its bias duplicates encoder_x's: harmless
        self.encoder_head = nn.Sequential(nn.Softplus(), nn.Dense(2 * cfg.latent))
        self.decoder = nn.Sequential(nn.Dense(h), nn.Softplus(), nn.Dense(int(onp.prod(out))), nn.Reshape(out))
        self.log_py = -math.log(cfg.n_classes)  # uniform p(y): a constant in every bound

    def init(self, rng):
        c, shape = self.cfg.n_classes, self.cfg.image_shape
        return {"classifier": self.classifier.init(rng, shape)[1],
                "encoder_x": self.encoder_x.init(rng, shape)[1],
                "encoder_y": self.encoder_y.init(rng, (c,))[1],
                "encoder_head": self.encoder_head.init(rng, (self.cfg.hidden,))[1],
                "decoder": self.decoder.init(rng, (self.cfg.latent + c,))[1]}

    # --- the networks ---

    def log_qy(self, params, x):
        """log q(y|x): x (N, 1, 28, 28) -> (N, C) log-probabilities."""
        return ops.log_softmax(self.classifier.apply(params["classifier"], x))

    def predict(self, params, x):
        """The classifier's label, argmax_y q(y|x): (N,) int."""
        return onp.argmax(self.classifier.apply(params["classifier"], x), axis=1)

    def _posterior(self, params, pre_activation):
        """First-layer pre-activations (K, hidden) -> mu, logvar of q(z|x,y): (K, latent) each."""
        out = self.encoder_head.apply(params["encoder_head"], pre_activation)
        return out[:, :self.cfg.latent], out[:, self.cfg.latent:]

    def encode(self, params, x, y):
        """x (N, 1, 28, 28), y (N, C) one-hot -> mu, logvar of q(z|x,y): (N, latent) each."""
        return self._posterior(params, self.encoder_x.apply(params["encoder_x"], x)
                               + self.encoder_y.apply(params["encoder_y"], y))

    def decode(self, params, z, y):
        """z (N, latent), y (N, C) one-hot -> the parameters of p(x|y,z): logits (N, *image_shape)
        for Bernoulli pixels; for a Gaussian, (mean, logvar), each (N, *image_shape)."""
        out = self.decoder.apply(params["decoder"], np.concatenate([z, y], axis=1))
        return out if self.cfg.likelihood == "bernoulli" else (out[:, 0], out[:, 1])

    def log_px(self, params, x, z, y):
        """log p(x|y,z) per example: x (N, *image_shape), z (N, latent), y (N, C) one-hot -> (N,)."""
        if self.cfg.likelihood == "bernoulli":
            return losses.bernoulli_log_likelihood(x, self.decode(params, z, y))
        return losses.gaussian_log_likelihood(x, *self.decode(params, z, y))

    def decode_mean(self, params, z, y):
        """E[x|y,z]: sigmoid(logits) in [0, 1] for pixels, the Gaussian's mean for features. (N, *image_shape)."""
        if self.cfg.likelihood == "bernoulli":
            return ops.sigmoid(self.decode(params, z, y))
        return self.decode(params, z, y)[0]

    # --- the bounds ---

    def _neg_L(self, params, x, y, mu, logvar, eps):
        """-L(x, y) per example (N,) from the posterior's parameters and noise eps (N, latent)."""
        log_px = self.log_px(params, x, losses.reparameterize(mu, logvar, eps), y)
        return labelled_bound(log_px, self.log_py, losses.gaussian_kl(mu, logvar))

    def neg_L(self, params, x, labels, eps):
        """-L(x, y), one z sample per image: x (N, 1, 28, 28), labels (N,) int, eps (N, latent) -> (N,)."""
        y = ops.one_hot(labels, self.cfg.n_classes, onp.shape(x)[0])
        return self._neg_L(params, x, y, *self.encode(params, x, y), eps)

    def neg_L_every_label(self, params, x, eps):
        """-L(x, y) for every label y: x (N, 1, 28, 28), eps (C, N, latent) -> (N, C).

        The batch is tiled C times, label-major: row y*N + i pairs image i with label y.
        """
        c, n = self.cfg.n_classes, onp.shape(x)[0]
        if onp.shape(eps) != (c, n, self.cfg.latent):
            raise ValueError(f"neg_L_every_label: expected eps of shape ({c}, {n}, {self.cfg.latent}), "
                             f"one draw per (label, image), got {onp.shape(eps)}")
        labels = onp.eye(c, dtype=onp.float32)
        h = (self.encoder_x.apply(params["encoder_x"], x)[None]              # (1, N, hidden)
             + self.encoder_y.apply(params["encoder_y"], labels)[:, None])   # (C, 1, hidden)
        mu, logvar = self._posterior(params, np.reshape(h, (c * n, -1)))
        x_tiled = onp.broadcast_to(x[None], (c, *onp.shape(x))).reshape(c * n, *onp.shape(x)[1:])
        neg_L = self._neg_L(params, x_tiled, onp.repeat(labels, n, axis=0), mu, logvar,
                            np.reshape(eps, (c * n, -1)))
        return np.transpose(np.reshape(neg_L, (c, n)))

    def neg_U(self, params, x, eps):
        """-U(x), eq. 7: x (N, 1, 28, 28), eps (C, N, latent) -> (N,)."""
        return unlabelled_bound(self.log_qy(params, x), self.neg_L_every_label(params, x, eps))

    def loss(self, params, x_l, labels, x_u, eps_l, eps_u, n_labelled, n_unlabelled):
        """J^α / N (eq. 9) from a labelled batch (x_l, labels, eps_l) and an unlabelled one (x_u, eps_u).

        n_labelled, n_unlabelled: sizes of the whole labelled and unlabelled sets, which
        weigh the two sums of J; α = alpha_scale * (n_labelled + n_unlabelled).
        """
        if onp.shape(labels) != (onp.shape(x_l)[0],):
            raise ValueError(f"M2.loss: expected one label per labelled image, shape ({onp.shape(x_l)[0]},), "
                             f"got labels of shape {onp.shape(labels)}")
        alpha = self.cfg.alpha_scale * (n_labelled + n_unlabelled)
        return semi_supervised_objective(self.neg_L(params, x_l, labels, eps_l), self.neg_U(params, x_u, eps_u),
                                         classification_loss(self.log_qy(params, x_l), labels),
                                         n_labelled, n_unlabelled, alpha)

    def supervised_loss(self, params, x, labels):
        """Mean of -log q(y|x): the classifier trained on the labelled images alone (a baseline)."""
        return np.mean(classification_loss(self.log_qy(params, x), labels))

    # --- pictures ---

    def sample(self, params, rng, labels):
        """x ~ E[x|y,z], z ~ p(z) = N(0, I), for the given labels (n,) int -> (n, 1, 28, 28) in [0, 1]."""
        z = losses.sample_eps(rng, (len(labels), self.cfg.latent))
        return self.decode_mean(params, z, ops.one_hot(labels, self.cfg.n_classes, len(labels)))

    def class_grid(self, params, z):
        """The same styles z (n, latent) drawn as every class: (C*n, 1, 28, 28), row y = class y."""
        c, n = self.cfg.n_classes, len(z)
        labels = onp.repeat(onp.eye(c, dtype=onp.float32), n, axis=0)
        return self.decode_mean(params, onp.tile(z, (c, 1)), labels)

    def analogies(self, params, x):
        """Each image's style, z = mean of q(z|x, y = its predicted label), redrawn as every class.

        x (n, 1, 28, 28) -> (n*(C+1), 1, 28, 28): per image, the image then its C redrawings
        (the analogies of the paper's Fig. 1).
        """
        n, c = len(x), self.cfg.n_classes
        mu, _ = self.encode(params, x, ops.one_hot(self.predict(params, x), self.cfg.n_classes, n))
        redrawn = onp.stack(onp.split(self.class_grid(params, mu), c), axis=1)  # (n, C, 1, 28, 28)
        return onp.concatenate([x[:, None], redrawn], axis=1).reshape(n * (c + 1), *x.shape[1:])
