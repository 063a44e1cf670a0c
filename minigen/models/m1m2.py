"""M1+M2, the stacked model of Kingma, Rezende, Mohamed & Welling (2014, §3.2, Table 1's
best MNIST column): M2 (minigen.models.m2) trained not on pixels but on the latent
variables z1 of M1, a VAE trained first on every training image, labels unused.

    M1:  x -> q(z1|x) = N(mean(x), diag e^logvar(x))       (a VAE; minigen.models.vae)
    M2:  z1 -> q(y|z1), q(z2|z1,y);  p(z1|y,z2) Gaussian   (M2Config(likelihood="gaussian"))

Why it helps: in z1 a class is a compact cloud, so M2's classifier q(y|z1) has an
easier job than on 784 pixels, and its decoder models 10-20 numbers, not strokes.

Three details follow the paper's released code for this experiment (dpkingma/nips14-ssl,
learn_yz_x_ss.py, "mnist_2layer"): M2 sees a fresh draw z1 ~ q(z1|x) at every step (as
pixels are binarized afresh), the classifier is tested on the means, and only M1's
active units are kept, those whose mean moves with the image: std_x(E_q[z1]) > 0.1,
i.e. Burda et al. (2016)'s activity Cov_x(E_q[u]) > 10^-2. The other units stay at the
prior whatever the image, so they carry nothing but noise.
"""
import numpy as onp


def posterior_features(vae, params, x, batch=1000):
    """The mean and log-variance of M1's q(z1|x), stacked: x (N, 1, 28, 28) -> (N, 2, latent).

    Grey-level x, as every test image is scored: the mean of q for the expected binary image.
    """
    chunks = [onp.stack(vae.encode(params, x[i:i + batch]), axis=1) for i in range(0, len(x), batch)]
    return onp.concatenate(chunks).astype(onp.float32)


def active_units(features, threshold=0.1):
    """Which latent units M1 uses: features (N, 2, latent) -> (latent,) bool.

    A unit is active when the mean of q(z1|x) varies across images by more than
    `threshold` in standard deviation (the prior's is 1).
    """
    return onp.std(features[:, 0], axis=0) > threshold


def draw_features(rng, features):
    """One draw z1 ~ q(z1|x) per row: features (N, 2, D) -> (N, D) float32."""
    mean, logvar = features[:, 0], features[:, 1]
    return (mean + onp.exp(0.5 * logvar) * rng.standard_normal(mean.shape, dtype=onp.float32)).astype(onp.float32)


def full_latent(z_active, active):
    """Put the active units' values back into M1's whole latent vector, the others at the
    prior's mean 0, so M1's decoder can draw them: (N, n_active), (latent,) bool -> (N, latent)."""
    z = onp.zeros((len(z_active), len(active)), dtype=onp.float32)
    z[:, active] = z_active
    return z
