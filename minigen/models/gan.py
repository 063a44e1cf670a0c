"""Generative adversarial networks (Goodfellow et al. 2014) and their alternating training.

    generator      G: z ~ N(0, I) -> a fake example G(z)
    discriminator  D: an example -> one score (a logit, D(x) = σ(score); or a WGAN critic value)
    training       repeat: n_critic steps of D on real and fake minibatches, then one step of G

One step builder serves the family; what differs is a Recipe (losses and the optimiser
settings of each paper):

    gan        -E[log D(x)] - E[log(1 - D(G(z)))] for D, non-saturating -E[log D(G(z))] for G
    wgan       critic E[D(G(z))] - E[D(x)], weights clipped to [-0.01, 0.01], RMSprop 5e-5, 5 critic steps
    wgan-gp    the same critic loss + 10·(‖∇D(x̂)‖ - 1)², no clipping, Adam 1e-4 (0.5, 0.9), 5 critic steps

Packing (PacGAN, Lin et al. 2018) lets D judge m samples at once, all real or all fake,
so a generator that repeats itself is easy to spot: `GAN(..., pack=m)`.
"""
from collections.abc import Callable
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minigen import losses, nn, ops
from minigen.autodiff import value_and_grad, value_and_vjp  # autograd's, minus the cost of differentiating containers
from minigen.averaging import AveragedGenerator
from minigen.models import gan_options
from minigen.models.trainable import apply_gradients, check_finite
from minigen.optim import Adam, RMSprop
from minigen.tree import leaves


class GAN:
    """A generator and a discriminator. params = {"generator": ..., "discriminator": ...}.

    generator: a Layer from (latent,) to data_shape; discriminator: a Layer from the packed
    data shape (pack * data_shape[0], *data_shape[1:]) to one score per packed example.
    n_classes: 0 here; a ConditionalGAN (minigen.models.cgan) feeds both networks the class
    too, so its generator reads (latent + n_classes,) and its D what d_input makes.
    `state` holds the running statistics of any BatchNorm layers (not parameters).
    """

    def __init__(self, generator, discriminator, latent, data_shape, pack=1, n_classes=0):
        if int(pack) != pack or pack < 1:
            raise ValueError(f"pack must be a positive int (samples per discriminator input), got {pack!r}")
        self.generator, self.discriminator = generator, discriminator
        self.latent, self.data_shape, self.pack_size = int(latent), tuple(data_shape), int(pack)
        self.n_classes = int(n_classes)
        self.state = {"generator": {}, "discriminator": {}}

    def init(self, rng):
        g_shape, g = self.generator.init(rng, (self.latent + self.n_classes,))
        if tuple(g_shape) != self.data_shape:
            raise ValueError(f"the generator makes examples of shape {tuple(g_shape)}, expected {self.data_shape}")
        d_shape, d = self.discriminator.init(rng, self.d_input_shape())
        if tuple(d_shape) != (1,):
            raise ValueError(f"the discriminator must give one score per input, (1,), it gives {tuple(d_shape)}")
        return {"generator": g, "discriminator": d}

    def sample_latent(self, rng, n):
        """z ~ N(0, I): (n, latent) float32."""
        return rng.standard_normal((n, self.latent), dtype=onp.float32)

    @property
    def uses_labels(self):
        """Whether the model is told the dataset's labels (a ConditionalGAN's are; a SelfConditionedGAN
        finds its own clusters instead): its samples then cycle through the classes."""
        return self.n_classes > 0

    # What training draws minibatches from, when the model makes it itself (Trainable.split_data):
    # None here, so the images (and, if uses_labels, their labels) as they are; a SelfConditionedGAN
    # pairs the images with their clusters.
    training_arrays = None

    def sample_labels(self, rng, n):
        """The classes to ask a conditional generator for; None here (see ConditionalGAN), no draw."""
        return None

    def generate(self, g_params, z, y=None, train=False, state=None):
        """G(z): (N, latent) -> (N, *data_shape). y: labels, used only by a ConditionalGAN.
        state: G's batch-norm statistics, by default the live G's (an averaged G brings its own)."""
        state = self.state["generator"] if state is None else state
        return self.generator.apply(g_params, z, train=train, state=state)

    def pack(self, x):
        """PacGAN's packing: m consecutive examples side by side along the first feature axis,
        (N, c, ...) -> (N/m, m·c, ...). The identity for pack=1."""
        m = self.pack_size
        if m == 1:
            return x
        if onp.shape(x)[0] % m:
            raise ValueError(f"packing {m} samples per input needs a batch divisible by {m}, got {onp.shape(x)[0]}")
        return np.reshape(x, (onp.shape(x)[0] // m, m * onp.shape(x)[1], *onp.shape(x)[2:]))

    def d_input_shape(self):
        """The shape of one of D's inputs, found by building one from zeros."""
        x = onp.zeros((self.pack_size, *self.data_shape), onp.float32)
        y = onp.zeros(self.pack_size, onp.int64) if self.n_classes else None
        return onp.shape(self.d_input(x, y))[1:]

    def d_input(self, x, y=None):
        """What D reads: the examples, packed. (A ConditionalGAN also appends the labels.)"""
        return self.pack(x)

    def process_reals(self, x):
        """Real examples as D should see them; unchanged here. (A ProgressiveGAN blends them between
        resolutions during a fade, as Karras et al.'s `process_reals` does.) make_gan_step calls it."""
        return x

    def critic_inputs(self, x, y=None):
        """(d_in, condition): what the critic is given, d_input(x, y) and no condition here. (A
        ConditionalGAN whose labels are planes gives the images and the labels apart, for speed.)"""
        return self.d_input(x, y), None

    def critic(self, d_params, d_in, condition=None, train=False):
        """D on inputs made by critic_inputs: (M, ...) -> (M, 1). condition: labels D's first layer
        reads as planes (nn.Conv2d), or None."""
        return self.discriminator.apply(d_params, d_in, train=train, state=self.state["discriminator"],
                                        condition=condition)

    def score(self, d_params, x, y=None, train=False):
        """D's raw output per (packed) input: (N, *data_shape) -> (N/pack, 1)."""
        return self.critic(d_params, *self.critic_inputs(x, y), train=train)

    def sample(self, params, rng, n, y=None, state=None):
        """n fakes G(z), z ~ N(0, I): (n, *data_shape). y: (n,) labels for a ConditionalGAN.
        All n latents are drawn first, then G runs on a slice at a time (nn.in_chunks)."""
        return nn.in_chunks(lambda z, y: self.generate(params["generator"], z, y, state=state),
                            self.sample_latent(rng, n), y)


# --- Architectures ---------------------------------------------------------------------

def mlp_gan(latent=100, hidden=128, image_shape=(1, 28, 28), layers=1, g_norm=False):
    """The lecture's MLP GAN for MNIST (layers=1), and deeper ones.

    G: z (100) -> Dense 128 ReLU -> Dense 784 Sigmoid -> (1, 28, 28) in [0, 1]
    D: 784 -> Dense 128 LeakyReLU(0.2) -> Dense 1 (a logit)
    Each further layer doubles G's width, hidden·2^i, and D mirrors G, widest first:
    layers=2, hidden=256 gives G 100-256-512-784 and D 784-512-256-1. g_norm: batch norm
    before each of G's ReLUs, DCGAN's advice (Radford et al. 2016) that holds for an MLP G too.
    """
    pixels, widths = int(onp.prod(image_shape)), [hidden * 2 ** i for i in range(layers)]
    g = [layer for w in widths for layer in (nn.Dense(w), *([nn.BatchNorm()] if g_norm else []), nn.ReLU())]
    d = [layer for w in reversed(widths) for layer in (nn.Dense(w), nn.LeakyReLU(0.2))]
    return GAN(nn.Sequential(*g, nn.Dense(pixels), nn.Sigmoid(), nn.Reshape(image_shape)),
               nn.Sequential(nn.Flatten(), *d, nn.Dense(1)), latent, image_shape)


def toy_gan(latent=2, hidden=128, depth=3, pack=1, dim=2):
    """Small MLPs for the 2-D mode-collapse lab (the ring and grid mixtures of minigen.data).

    G: z (latent) -> depth x (Dense hidden, ReLU) -> Dense dim
    D: pack·dim -> depth x (Dense hidden, LeakyReLU 0.2) -> Dense 1
    PacGAN's own nets are wider (G: 4 x 400 with batch norm; D: 3 maxout layers of 200);
    these are smaller so that a run takes a minute on one CPU core.
    """
    g = nn.Sequential(*[layer for _ in range(depth) for layer in (nn.Dense(hidden), nn.ReLU())], nn.Dense(dim))
    d = nn.Sequential(*[layer for _ in range(depth) for layer in (nn.Dense(hidden), nn.LeakyReLU(0.2))],
                      nn.Dense(1))
    return GAN(g, d, latent, (dim,), pack=pack)


# --- Alternating training ------------------------------------------------------------------

def clip_weights(params, c):
    """WGAN's weight clipping (Arjovsky et al. 2017): every entry into [-c, c], in place."""
    for p in leaves(params):
        onp.clip(p, -c, c, out=p)


def has_batch_norm(layer):
    """Whether a Layer holds a BatchNorm, at any depth of Sequential nesting (read from its spec)."""
    kind, settings = (layer.spec or (None, {}))
    return kind == "BatchNorm" or any(has_batch_norm(sub) for sub in settings.get("layers", ()))


def check_penalty_critic(gan):
    """Refuse a critic with batch norm under a gradient penalty (Gulrajani et al. 2017, §4, "No critic
    batch normalization"): the penalty asks each example's own gradient ∇_x D(x) to have norm 1, but
    with batch statistics each score depends on the whole batch, so there is no per-example gradient
    to penalise (and in eval mode the penalty would differentiate another function than the loss)."""
    if has_batch_norm(gan.discriminator):
        raise ValueError("a gradient penalty needs a critic without batch norm: the penalty is on each "
                         "example's own gradient, and batch norm makes every score depend on the whole "
                         "batch (Gulrajani et al. 2017, §4). Use layer norm (nn.LayerNorm; DCGAN: "
                         "--set norm=layer) or no normalisation (--set norm=none)")


def make_gan_step(gan, params, g_opt, d_opt, rng, d_loss=losses.discriminator_loss,
                  g_loss=losses.generator_loss_nonsaturating, n_critic=1, clip=None, gp_weight=0.0, logits=True,
                  gp_every=1, reuse_fakes=False):
    """step(batch) -> metrics: one generator iteration of alternating training.

    batch[0]: (n_critic·B, *data_shape) real examples (and batch[1]: their labels (n_critic·B,)
    for a ConditionalGAN). They are split into n_critic minibatches of B; for each, D takes
    one step on d_loss(D(real), D(G(z))) (+ the gradient penalty if gp_weight > 0, then
    weights clipped to [-clip, clip] if clip); then G takes one step on g_loss(D(G(z))) with
    a fresh z. So feed train_epochs batch_size = n_critic·B, and an epoch is one pass over
    the data by the critic. A conditional critic sees the fakes with the real minibatch's
    labels, so both halves of its loss see the same classes; G's step draws fresh labels.

    logits=True: D outputs logits, and D(x), D(G(z)) are logged as probabilities σ(score);
    False (WGAN, hinge): they are the raw critic values. Logged per call, means over
    its critic steps: d_real = mean D(x), d_fake = mean D(G(z)) (before D's update),
    d_loss, gp (the penalty, if any), d_grad_norm; and g_loss, g_grad_norm of G's step.

    gp_every > 1: lazy regularisation (Karras et al. 2020, StyleGAN2, Appendix B): the penalty
    enters D's loss only on every gp_every-th critic step, at weight gp_every·gp_weight, so that
    on average it weighs the same at a fraction of the cost of its second derivatives. The steps
    are counted by D's optimiser, which a checkpoint keeps, so a resumed run keeps the schedule;
    between penalised steps the log repeats the last penalty measured (at weight gp_weight).

    reuse_fakes (n_critic = 1 only): G's step scores the fakes of D's step again, under D's updated
    weights, instead of drawing a fresh z (and, conditional, fresh labels), as PyTorch's DCGAN example
    does: G's forward pass runs once a step, traced in D's step and differentiated in G's
    (autodiff.value_and_vjp), where the default runs it twice. G's gradient is then that of the
    same loss at the same z; what changes is which minibatch of z each G step sees.
    """
    if int(n_critic) != n_critic or n_critic < 1:
        raise ValueError(f"n_critic must be a positive int, got {n_critic!r}")
    if clip is not None and clip <= 0:
        raise ValueError(f"clip must be positive (weights are clipped to [-clip, clip]), got {clip}")
    if gp_weight:
        check_penalty_critic(gan)
    if int(gp_every) != gp_every or gp_every < 1:
        raise ValueError(f"gp_every must be a positive integer, got {gp_every!r}")
    if reuse_fakes and n_critic != 1:
        raise ValueError(f"reuse_fakes lets G's step score the fakes of D's one step; with n_critic={n_critic} "
                         "there are several")
    g_params, d_params = params["generator"], params["discriminator"]
    show = ops.sigmoid if logits else (lambda s: s)
    seen = {}  # scores and penalty of the last critic evaluation, kept out of the autograd trace

    def critic(d_params, d_in):  # D on d_input's arrays, for the penalty (critic_objective)
        return gan.critic(d_params, d_in, train=True)

    def critic_objective(d_params, real, fake, y, eps, penalty_weight):
        (real_in, condition), (fake_in, _) = gan.critic_inputs(real, y), gan.critic_inputs(fake, y)
        real_scores = gan.critic(d_params, real_in, condition, train=True)
        fake_scores = gan.critic(d_params, fake_in, condition, train=True)
        seen["real"], seen["fake"] = getval(real_scores), getval(fake_scores)
        loss = d_loss(real_scores, fake_scores)
        if penalty_weight:  # the gradient over all D reads, as d_input builds it: a conditional D's planes too
            penalty = losses.gradient_penalty(critic, d_params, gan.d_input(real, y), gan.d_input(fake, y), eps,
                                              penalty_weight)
            seen["gp"] = float(getval(penalty)) * gp_weight / penalty_weight  # logged at weight gp_weight
            loss = loss + penalty
        return loss

    def generate(g_params, z, y):
        return gan.generate(g_params, z, y, train=True)

    def objective_of_fakes(fake, y):
        return g_loss(gan.score(d_params, fake, y, train=True))

    def generator_objective(g_params, z, y):
        return objective_of_fakes(generate(g_params, z, y), y)

    critic_value_and_grad = value_and_grad(critic_objective)
    generator_value_and_grad = value_and_grad(generator_objective)
    generate_and_vjp, fakes_value_and_grad = value_and_vjp(generate), value_and_grad(objective_of_fakes)

    def critic_step(real, y, fake):
        """D's step on a real minibatch and as many fakes (made by G, held fixed here)."""
        real = gan.process_reals(real)
        eps = rng.random(len(real) // gan.pack_size, dtype=onp.float32)  # one ε per packed input
        penalty_weight = gp_weight * gp_every if gp_weight and d_opt.t % gp_every == 0 else 0.0
        value, grads = critic_value_and_grad(d_params, real, fake, y, eps, penalty_weight)
        d_norm = apply_gradients(d_opt, grads, "discriminator")  # the NaN guard, then the step
        if clip is not None:
            clip_weights(d_params, clip)
        return {"d_real": float(onp.mean(show(seen["real"]))), "d_fake": float(onp.mean(show(seen["fake"]))),
                "d_loss": check_finite("d_loss", value), "d_grad_norm": d_norm,
                **({"gp": seen["gp"]} if gp_weight else {})}

    def step(batch):
        if gan.n_classes and len(batch) < 2:
            raise ValueError("a conditional GAN trains on minibatches of (images, labels); got images alone")
        real, labels = batch[0], batch[1] if gan.n_classes else None
        if len(real) < n_critic:
            raise ValueError(f"a step with n_critic={n_critic} needs at least {n_critic} real examples, "
                             f"got {len(real)}")
        label_chunks = [None] * n_critic if labels is None else onp.array_split(labels, n_critic)
        chunks = list(zip(onp.array_split(real, n_critic), label_chunks))
        if reuse_fakes:  # one forward pass through G, traced: D's step reads its values, G's step its VJP
            (chunk, y), = chunks
            fake, g_vjp = generate_and_vjp(g_params, gan.sample_latent(rng, len(chunk)), y)
            critic_logs = [critic_step(chunk, y, fake)]
            value, grad_fake = fakes_value_and_grad(fake, y)  # under D's updated weights
            grads = g_vjp(grad_fake)
        else:
            critic_logs = [critic_step(chunk, y, generate(g_params, gan.sample_latent(rng, len(chunk)), y))
                           for chunk, y in chunks]
            n = len(real) // n_critic
            value, grads = generator_value_and_grad(g_params, gan.sample_latent(rng, n), gan.sample_labels(rng, n))
        metrics = {key: sum(log[key] for log in critic_logs) / n_critic for key in critic_logs[0]}
        g_norm = apply_gradients(g_opt, grads, "generator")
        return {**metrics, "g_loss": check_finite("g_loss", value), "g_grad_norm": g_norm}

    return step


# --- The papers' settings -------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """Losses and optimiser settings of one GAN variant, as its paper gives them."""
    d_loss: Callable
    g_loss: Callable
    optimizer: str  # "adam" or "rmsprop"
    lr: float
    betas: tuple = (0.5, 0.999)
    n_critic: int = 1
    clip: float | None = None
    gp_weight: float = 0.0
    logits: bool = True  # D's outputs are logits (False: critic values)
    gp_every: int = 1  # critic steps per gradient penalty (lazy regularisation, make_gan_step)
    reuse_fakes: bool = False  # G's step scores D's step's fakes again (make_gan_step)

    def optimizers(self, params, lr=None):
        """(g_opt, d_opt) for params {"generator", "discriminator"}; lr overrides the recipe's."""
        lr = self.lr if lr is None else lr
        make = {"adam": lambda p: Adam(p, lr=lr, betas=self.betas), "rmsprop": lambda p: RMSprop(p, lr=lr)}
        if self.optimizer not in make:
            raise ValueError(f"optimizer must be one of {sorted(make)}, got {self.optimizer!r}")
        return make[self.optimizer](params["generator"]), make[self.optimizer](params["discriminator"])

    def train_step(self, gan, params, rng, lr=None):
        """(step, g_opt, d_opt): make_gan_step with this recipe's losses and settings."""
        g_opt, d_opt = self.optimizers(params, lr)
        step = make_gan_step(gan, params, g_opt, d_opt, rng, self.d_loss, self.g_loss, self.n_critic,
                             self.clip, self.gp_weight, self.logits, self.gp_every, self.reuse_fakes)
        return step, g_opt, d_opt


RECIPES = {
    # Adam(2e-4, β1 = 0.5): DCGAN's settings (Radford et al. 2016), the usual choice since.
    "gan": Recipe(losses.discriminator_loss, losses.generator_loss_nonsaturating, "adam", 2e-4),
    "gan-minimax": Recipe(losses.discriminator_loss, losses.generator_loss_minimax, "adam", 2e-4),
    # Arjovsky et al. 2017, Algorithm 1: momentum-free RMSprop, since Adam made the critic unstable.
    "wgan": Recipe(losses.wgan_critic_loss, losses.wgan_generator_loss, "rmsprop", 5e-5,
                   n_critic=5, clip=0.01, logits=False),
    # Gulrajani et al. 2017, Algorithm 1: λ = 10, n_critic = 5, Adam(1e-4, β = (0.5, 0.9)).
    "wgan-gp": Recipe(losses.wgan_critic_loss, losses.wgan_generator_loss, "adam", 1e-4, betas=(0.5, 0.9),
                      n_critic=5, gp_weight=10.0, logits=False),
    "hinge": Recipe(losses.hinge_discriminator_loss, losses.hinge_generator_loss, "adam", 2e-4, logits=False),
}


# --- For `minigen train` -------------------------------------------------------------------

VARIANTS = {
    "gan": "the lecture's MLP GAN (G 100-128-784, D 784-128-1), non-saturating loss, Adam(2e-4, 0.5)",
    "gan-minimax": "the same with the saturating minimax generator loss, to watch it stall",
    "wgan": "the MLP GAN as a WGAN: weight clipping 0.01, RMSprop 5e-5, 5 critic steps",
    "wgan-gp": "the MLP GAN as a WGAN-GP: gradient penalty 10, Adam(1e-4, (0.5, 0.9)), 5 critic steps",
}


@dataclass(frozen=True)
class GANConfig:
    latent: int = 100
    hidden: int = 128  # the width of G's first (and D's last) hidden layer
    layers: int = 1  # hidden layers per network, each of G's twice as wide as the one before
    g_norm: bool = False  # batch norm in G
    ema: float = 0.0  # decay of the averaged generator (minigen.averaging), e.g. 0.999; 0: off
    smooth: float = 0.0  # one-sided label smoothing: D's target for real digits is 1 - smooth; 0: off
    gp: float = 0.0  # the gradient penalty's weight λ on D (minigen.models.gan_options); 0: the recipe's (wgan-gp: 10)
    gp_every: int = 1  # critic steps per penalty: lazy regularisation (gan_options.with_gradient_penalty)
    clip: float = 0.0  # WGAN's clipping bound c (minigen.models.gan_options); 0: the recipe's (wgan: 0.01)
    reuse: bool = False  # G's step scores the fakes of D's step again (gan_options.with_reused_fakes)


def configured_recipe(name, cfg):
    """RECIPES[name] with a model config's `smooth`, `gp`, `gp_every`, `reuse` and (if it has them) `clip` and
    `beta1` options applied."""
    recipe = gan_options.with_label_smoothing(RECIPES[name], cfg.smooth)
    recipe = gan_options.with_gradient_penalty(recipe, cfg.gp, cfg.gp_every)
    recipe = gan_options.with_weight_clipping(recipe, getattr(cfg, "clip", 0.0))
    recipe = gan_options.with_reused_fakes(recipe, cfg.reuse)
    return gan_options.with_adam_beta1(recipe, getattr(cfg, "beta1", None))


def trainable(gan, recipe, rng, lr=None, ema=0.0):
    """A GAN, its two optimisers and its alternating step, for minigen.train's loop. ema > 0: sample
    from the averaged generator (minigen.averaging; decay ema), kept as params["generator_average"]."""
    from minigen.models.trainable import Trainable

    params = gan.init(rng)
    step, g_opt, d_opt = recipe.train_step(gan, params, rng, lr)
    average = AveragedGenerator(gan, params["generator"], ema) if ema else None
    if average is not None:
        params["generator_average"] = average.params  # checkpointed with the weights; no optimiser
        step = average.after_each(step)
    return Trainable(
        params=params, optimizers={"generator": g_opt, "discriminator": d_opt}, step=step,
        sample=average.sample if average else lambda sample_rng, n: gan.sample(params, sample_rng, n), state=gan.state,
        remedies="lower --lr; for a GAN, a WGAN-GP (minigen train wgan-gp) is the usual fix for instability",
        needs_labels=gan.uses_labels, split_data=gan.training_arrays, minibatches_per_step=recipe.n_critic,
        picture_columns=gan.n_classes if gan.uses_labels else 8, averaged=average)


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train NAME` (name in VARIANTS), options applied to GANConfig."""
    from minigen.models.trainable import configure
    cfg = configure(GANConfig(), options)
    return trainable(mlp_gan(cfg.latent, cfg.hidden, layers=cfg.layers, g_norm=cfg.g_norm),
                     configured_recipe(name, cfg), rng, lr, cfg.ema)
