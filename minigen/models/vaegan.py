"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a
learned similarity metric", arXiv 1512.09300): a VAE whose decoder is also a GAN's generator,
and whose reconstruction error is measured in the discriminator's features, not in pixels.

    Enc:    x -> q(z|x) = N(mu, diag e^logvar)             (minigen.models.vae's encoder)
    Dec:    z -> x~ = Dec(z), an image in [0, 1]           (the VAE's decoder = the generator)
    Dis:    image -> Dis_l(image) (a middle layer) -> a logit, Dis = σ(logit)

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -E_q[log N(Dis_l(x); Dis_l(Dec(z)), σ² I)]                (σ² = 1 in the paper)
            = E_q ½‖Dis_l(x) - Dis_l(Dec(z))‖² / σ² + a constant
    L_GAN   = log Dis(x) + log(1 - Dis(Dec(z))) + log(1 - Dis(Dec(z_p))),  z ~ q(z|x), z_p ~ N(0, I)

Algorithm 1's updates, every minibatch, all three gradients taken at the same parameters:

    Enc  <- ∇ (L_prior + L_llike)
    Dec  <- ∇ (γ L_llike - L_GAN)    here with the non-saturating generator loss:
                                     -E log Dis(Dec(z)) - E log Dis(Dec(z_p)) instead of -L_GAN
    Dis  <- ∇ (-L_GAN)               reconstructions and prior samples are both fakes

Two rules of the paper's training, which limits each error signal to the networks it is
for: L_llike never trains Dis (else Dis could shrink its features until every reconstruction looks perfect), and
L_GAN never trains Enc (the encoder's z is held fixed in the GAN terms). γ weights the
decoder's two jobs, reconstructing (in features) and fooling Dis.

Sizes for one CPU core: Enc and Dec are the MLP VAE's (784-400-20, minigen.models.vae), so
samples compare directly with that VAE's; --set conv=true takes the conv VAE's and a conv Dis.

    Dis_l:  784 -> Dense 16w, LeakyReLU(0.2)        (w = 16: 256 features)
    head:   Dense 128, LeakyReLU(0.2) -> Dense 1    (a logit)

Kept from the paper: the losses, Algorithm 1's updates, RMSprop (as in the authors' code), here
with learning rate 3e-4 and batch 64. Changed: no batch norm, small nets; the non-saturating
generator loss; and σ² = 0.1 for the feature-space Gaussian instead of 1 (VAEGANConfig.feature_var says why). γ is not
fixed by the paper's equations; its authors' code weights reconstruction against the GAN loss
by ~1e-5 on sums over ~16k features of 64 x 64 faces; 0.1 here, chosen by a short sweep.
"""
import math
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minigen import averaging, losses, nn, ops
from minigen.autodiff import value_and_grad
from minigen.models.trainable import Trainable, apply_gradients, check_finite, configure
from minigen.models.vae import VAE, VAEConfig
from minigen.optim import RMSprop
from minigen.tree import leaves


@dataclass(frozen=True)
class VAEGANConfig:
    latent: int = 20
    hidden: int = 400  # Enc and Dec are the MLP VAE's, 784-400-20 (minigen.models.vae), unless conv
    conv: bool = False  # conv Enc/Dec (the conv VAE's) and a conv Dis
    width: int = 16  # Dis_l's size: 16w units (MLP), or w then 2w channels (conv)
    d_hidden: int = 128  # Dis's dense layer after Dis_l
    gamma: float = 0.1  # γ: the decoder's weight on L_llike against the GAN loss
    # σ² of the Gaussian in feature space, N(Dis_l(x); Dis_l(x~), σ² I): 1 in the paper, whose
    # batch-normalised features are O(1). This small D's features vary far less across digits; with
    # σ² = 1 the likelihood was too weak to pay for a code, and the encoder fell back to the prior
    # (not in the README's tables: `minigen train vaegan --set feature_var=1 --set gamma=1` repeats it).
    feature_var: float = 0.1
    ema: float = 0.0  # decay of the averaged decoder (minigen.averaging), sampled from when > 0; 0: off
    gp: float = 0.0  # λ of WGAN-GP's gradient penalty on Dis, between real digits and prior samples; 0: off


def discriminator_layers(cfg):
    """(Dis_l, head) as two Sequentials, so the middle layer's features can be read on their own.

    conv:  Dis_l = Conv w, 4x4 s2, LReLU -> Conv 2w, 4x4 s2, LReLU -> (2w, 7, 7)
    MLP:   Dis_l = Flatten -> Dense 16w, LReLU (w = 16: 256 features)
    head:  Flatten -> Dense d_hidden, LReLU -> Dense 1 (a logit)
    """
    w = cfg.width
    if cfg.conv:
        features = nn.Sequential(nn.Conv2d(w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
    else:
        features = nn.Sequential(nn.Flatten(), nn.Dense(16 * w), nn.LeakyReLU(0.2))
    head = nn.Sequential(nn.Flatten(), nn.Dense(cfg.d_hidden), nn.LeakyReLU(0.2), nn.Dense(1))
    return features, head


class VAEGAN:
    """Enc, Dec (a VAE's) and Dis. params = {"encoder": ..., "decoder": ..., "discriminator":
    {"features": ..., "head": ...}}; x: (N, 1, 28, 28) float32 in [0, 1] throughout."""

    def __init__(self, cfg=VAEGANConfig()):
        if cfg.gamma < 0:
            raise ValueError(f"gamma weights the decoder's reconstruction loss and must be >= 0, got {cfg.gamma}")
        if cfg.gp < 0:
            raise ValueError(f"gp (the gradient penalty's weight) must be >= 0, e.g. 10; got {cfg.gp}")
        if not cfg.feature_var > 0:
            raise ValueError(f"feature_var is a variance and must be positive, got {cfg.feature_var}")
        self.cfg = cfg
        self.vae = VAE(VAEConfig(latent=cfg.latent, hidden=cfg.hidden, conv=cfg.conv))
        self.features, self.head = discriminator_layers(cfg)

    def init(self, rng):
        params = self.vae.init(rng)
        shape, features = self.features.init(rng, self.vae.cfg.image_shape)
        _, head = self.head.init(rng, shape)
        return {**params, "discriminator": {"features": features, "head": head}}

    def encode(self, enc_params, x):
        """q(z|x): x (N, 1, 28, 28) -> mu, logvar, (N, latent) each."""
        return self.vae.encode({"encoder": enc_params}, x)

    def decode(self, dec_params, z):
        """Dec(z): (N, latent) -> images (N, 1, 28, 28) in [0, 1] (the decoder's Bernoulli means)."""
        return self.vae.decode_mean({"decoder": dec_params}, z)

    def dis_l(self, d_params, x):
        """Dis_l(x): the discriminator's middle layer, (N, 1, 28, 28) -> (N, 16w), or (N, 2w, 7, 7) if conv."""
        return self.features.apply(d_params["features"], x)

    def dis(self, d_params, x):
        """Dis's logit, log D/(1 - D): (N, 1, 28, 28) -> (N, 1)."""
        return self.head.apply(d_params["head"], self.dis_l(d_params, x))

    def sample(self, params, rng, n):
        """n images Dec(z), z ~ N(0, I): (n, 1, 28, 28) in [0, 1] (a slice at a time: nn.in_chunks)."""
        return nn.in_chunks(lambda z: self.decode(params["decoder"], z),
                            rng.standard_normal((n, self.cfg.latent), dtype=onp.float32))

    def reconstruct(self, params, x):
        """Dec at the encoder's mean: (N, 1, 28, 28) -> (N, 1, 28, 28)."""
        return self.decode(params["decoder"], self.encode(params["encoder"], x)[0])


# --- The paper's three losses ------------------------------------------------------------

def prior_loss(mu, logvar):
    """L_prior = KL(q(z|x) || N(0, I)), batch mean. mu, logvar: (N, latent)."""
    return np.mean(losses.gaussian_kl(mu, logvar))


def feature_llike_loss(real_features, recon_features, variance=1.0):
    """L_llike^{Dis_l} = -log N(Dis_l(x); Dis_l(x~), variance·I) (variance 1 in the paper),
    batch mean: the VAE's reconstruction error moved from pixels into Dis's features.
    real_features, recon_features: (N, ...) -> a scalar."""
    if not variance > 0:
        raise ValueError(f"the feature-space Gaussian's variance must be positive, got {variance}")
    return -np.mean(losses.gaussian_log_likelihood(real_features, recon_features, math.log(variance)))


def discriminator_gan_loss(real_logits, recon_logits, prior_logits):
    """-L_GAN = -E log Dis(x) - E log(1 - Dis(x~)) - E log(1 - Dis(Dec(z_p))): both kinds of
    fakes rejected. -log(1 - σ(l)) = softplus(l). Each (N, 1) -> a scalar."""
    return losses.discriminator_loss(real_logits, recon_logits) + np.mean(ops.softplus(prior_logits))


def generator_gan_loss(recon_logits, prior_logits):
    """The decoder's GAN loss, non-saturating (Goodfellow et al. 2014, §3): -E log Dis(x~) -
    E log Dis(Dec(z_p)) in place of the paper's log(1 - Dis(.)) terms, which stall while Dis wins."""
    return losses.generator_loss_nonsaturating(recon_logits) + losses.generator_loss_nonsaturating(prior_logits)


# --- Algorithm 1 ------------------------------------------------------------------------------

def make_vaegan_step(model, params, opts, rng):
    """step(batch) -> metrics: Algorithm 1 on batch[0], x (B, 1, 28, 28) in [0, 1].

    opts: {"encoder", "decoder", "discriminator"} optimisers. Three gradients at the current
    parameters, then three guarded steps. Logged: kl, feature_recon (L_llike without its
    constant, ½‖Dis_l(x) - Dis_l(x~)‖²/σ²), d_real, d_recon, d_fake (mean Dis probabilities on x,
    x~ and Dec(z_p), before the step), d_loss (-L_GAN, plus the penalty if cfg.gp), gp (the
    gradient penalty, if cfg.gp > 0), g_loss (the decoder's GAN loss), and the three gradient norms.
    """
    seen = {}  # values from inside the traces, kept out of autograd (as in make_gan_step)

    def vae_objective(enc_dec, x, real_features, eps, d_params):
        # One pass gives Enc its ∇(L_prior + L_llike) and Dec its ∇L_llike (L_prior has no Dec in it).
        mu, logvar = model.encode(enc_dec["encoder"], x)
        z = losses.reparameterize(mu, logvar, eps)
        seen["z"] = getval(z)
        recon_features = model.dis_l(d_params, model.decode(enc_dec["decoder"], z))
        kl = prior_loss(mu, logvar)
        llike = feature_llike_loss(real_features, recon_features, model.cfg.feature_var)
        seen["kl"], seen["llike"] = float(getval(kl)), float(getval(llike))
        return kl + llike

    def decoder_gan_objective(dec_params, z, z_prior, d_params):
        # z from the encoder, as a constant: L_GAN does not train Enc.
        recon, fake = model.decode(dec_params, z), model.decode(dec_params, z_prior)
        seen["recon"], seen["fake"] = getval(recon), getval(fake)
        return generator_gan_loss(model.dis(d_params, recon), model.dis(d_params, fake))

    def discriminator_objective(d_params, x, recon, fake, eps_mix):
        logits = [model.dis(d_params, images) for images in (x, recon, fake)]
        seen["d_probs"] = [float(onp.mean(ops.sigmoid(getval(s)))) for s in logits]
        if not model.cfg.gp:
            return discriminator_gan_loss(*logits)
        # As for the GANs (minigen.models.gan_options.with_gradient_penalty): Dis kept from sharp edges
        # between real digits and the decoder's prior samples, where it would win outright.
        penalty = losses.gradient_penalty(model.dis, d_params, x, fake, eps_mix, model.cfg.gp)
        seen["gp"] = float(getval(penalty))
        return discriminator_gan_loss(*logits) + penalty

    vae_grad, gan_grad = value_and_grad(vae_objective), value_and_grad(decoder_gan_objective)
    dis_grad = value_and_grad(discriminator_objective)

    def step(batch):
        x, d_params = batch[0], params["discriminator"]
        eps = rng.standard_normal((len(x), model.cfg.latent), dtype=onp.float32)
        z_prior = rng.standard_normal((len(x), model.cfg.latent), dtype=onp.float32)
        real_features = model.dis_l(d_params, x)  # Dis_l(x) enters as a constant: L_llike never trains Dis
        vae_value, vae_grads = vae_grad({"encoder": params["encoder"], "decoder": params["decoder"]},
                                        x, real_features, eps, d_params)
        g_value, gan_grads = gan_grad(params["decoder"], seen["z"], z_prior, d_params)
        eps_mix = rng.random((len(x), 1, 1, 1), dtype=onp.float32) if model.cfg.gp else None
        d_value, d_grads = dis_grad(d_params, x, seen["recon"], seen["fake"], eps_mix)
        # The decoder's gradient of γ L_llike + its GAN loss, array by array (optimisers take a list of leaves).
        gamma = float(model.cfg.gamma)  # a Python float: a numpy float64 would promote the float32 gradients
        dec_grads = [gamma * a + b for a, b in zip(leaves(vae_grads["decoder"]), leaves(gan_grads))]
        check_finite("L_prior + L_llike", vae_value)
        feature_recon = seen["llike"] - gaussian_constant(real_features, model.cfg.feature_var)
        return {"kl": seen["kl"], "feature_recon": feature_recon,
                **dict(zip(("d_real", "d_recon", "d_fake"), seen["d_probs"])),
                **({"gp": seen["gp"]} if model.cfg.gp else {}),
                "d_loss": check_finite("d_loss", d_value), "g_loss": check_finite("g_loss", g_value),
                "enc_grad_norm": apply_gradients(opts["encoder"], vae_grads["encoder"], "encoder"),
                "dec_grad_norm": apply_gradients(opts["decoder"], dec_grads, "decoder"),
                "d_grad_norm": apply_gradients(opts["discriminator"], d_grads, "discriminator")}

    return step


def gaussian_constant(features, variance):
    """-log N(f; f, σ² I) per example, (D/2) log 2πσ² for D features: L_llike at a perfect reconstruction."""
    return 0.5 * float(onp.prod(onp.shape(features)[1:])) * (losses.LOG_2PI + math.log(variance))


# --- For `minigen train` -------------------------------------------------------------------

VARIANTS = {"vaegan": "VAE-GAN (Larsen et al. 2016): the MLP VAE's decoder as a GAN generator, reconstruction "
                      "judged in D's features; RMSprop(3e-4); --set gamma=, feature_var=, conv=true, gp="}


def trainable(cfg=VAEGANConfig(), rng=None, lr=3e-4):
    """A VAE-GAN, its three RMSprops and Algorithm 1's step, for minigen.train's loop."""
    model = VAEGAN(cfg)
    params = model.init(rng)
    # RMSprop, as in the authors' code, for all three networks.
    opts = {name: RMSprop(params[name], lr=lr) for name in ("encoder", "decoder", "discriminator")}
    step, sampled, state = make_vaegan_step(model, params, opts, rng), params, {}
    if cfg.ema:  # the decoder is the generator: average it as a GAN's (no batch norm here to measure again)
        average = averaging.MovingAverage(params["decoder"], cfg.ema)
        params["decoder_average"], state["average"] = average.params, average.state
        step = average.after_each(step)
        sampled = {"decoder": params["decoder_average"]}  # reconstructions keep the live decoder
    return Trainable(params=params, optimizers=opts, step=step, state=state,
                     sample=lambda sample_rng, n: model.sample(sampled, sample_rng, n),
                     remedies="lower --lr; a smaller gamma if Dis wins at once, a larger one if samples are noise",
                     test_metrics=lambda x_test, _: reconstruction_error(model, params, x_test))


def reconstruction_error(model, params, x_test):
    """{"recon_mse": the mean squared pixel error of the test digits' reconstructions}: the VAE half,
    does it still autoencode? (`minigen eval` adds the FID and score of samples, as for the GANs.)"""
    recon = onp.concatenate([model.reconstruct(params, x_test[i:i + 1000]) for i in range(0, len(x_test), 1000)])
    return {"recon_mse": float(onp.mean((recon - x_test) ** 2))}


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train vaegan --set gamma=... latent=...`."""
    return trainable(configure(VAEGANConfig(), options), rng, 3e-4 if lr is None else lr)
