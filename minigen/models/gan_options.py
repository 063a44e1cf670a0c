"""A GAN recipe's options (`minigen train ... --set smooth|gp|clip|beta1`): each a function
Recipe -> Recipe that changes one setting of a paper's recipe (minigen.models.gan.RECIPES), or
refuses, naming why, when the recipe has no such setting. minigen.models.gan.configured_recipe
applies them in turn; a value of 0 (beta1: None) leaves the recipe as it is.
"""
import dataclasses
import functools

from minigen import losses


def with_label_smoothing(recipe, smooth):
    """The recipe with D's loss losses.discriminator_loss_smoothed(real_label = 1 - smooth); smooth
    0 leaves it as it is. Only the cross-entropy GANs have labels to smooth."""
    if not smooth:
        return recipe
    if recipe.d_loss is not losses.discriminator_loss:
        raise ValueError("smooth applies to the cross-entropy GAN losses (gan, gan-minimax), "
                         "not to a critic's loss such as WGAN's or the hinge loss")
    if not 0 < smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), e.g. 0.1; got {smooth}")
    return dataclasses.replace(recipe, d_loss=functools.partial(losses.discriminator_loss_smoothed,
                                                                real_label=1 - smooth))


def with_gradient_penalty(recipe, weight, every=1):
    """The recipe with WGAN-GP's penalty λ·E(|∇D(x̂)| − 1)² (losses.gradient_penalty) added to D's loss
    at weight λ; 0 keeps the recipe's. The penalty helps the cross-entropy GAN as well: Fedus et al.
    2018 ("Many Paths to Equilibrium") train the non-saturating GAN with it, and Kurach et al. 2019
    ("A Large-Scale Study of Regularization and Normalization in GANs") recommend it beside
    spectral normalisation.

    every > 1: lazy regularisation (Karras et al. 2020, "Analyzing and Improving the Image Quality
    of StyleGAN", Appendix B): the penalty only on every `every`-th critic step, at weight every·λ
    (make_gan_step's gp_every)."""
    if weight < 0:
        raise ValueError(f"gp (the gradient penalty's weight) must be >= 0, e.g. 10; got {weight}")
    if int(every) != every or every < 1:
        raise ValueError(f"gp_every (critic steps per penalty) must be a positive integer, e.g. 8; got {every}")
    recipe = dataclasses.replace(recipe, gp_weight=weight) if weight else recipe
    if every != 1 and not recipe.gp_weight:
        raise ValueError(f"gp_every={every} spaces out a gradient penalty, but this recipe has none: set gp too")
    return dataclasses.replace(recipe, gp_every=int(every))


def with_weight_clipping(recipe, c):
    """The recipe with WGAN's critic weights clipped to [-c, c] instead of the recipe's bound; 0 keeps
    it. Only a recipe that clips has a bound to change.

    Why change it: Arjovsky et al. 2017's c = 0.01 sits at the scale of DCGAN's N(0, 0.02)
    initial weights. An MLP critic's Glorot weights are larger (up to ±0.07 in a 784-512 layer),
    so c = 0.01 clips almost all of them at the first step, and the critic trains as weights
    piled up at ±c, the too-simple functions Gulrajani et al. 2017 (§3, Fig. 1) show for clipping.
    A c above the initial scale keeps the initial weights and bounds only those that grow."""
    if not c:
        return recipe
    if recipe.clip is None:
        raise ValueError("clip applies to WGAN's weight-clipped critic (minigen train wgan, or dcgan "
                         "with --set loss=wgan), not to a recipe that does not clip")
    if c < 0:
        raise ValueError(f"clip must be > 0 (the critic's weights are clipped to [-clip, clip]), got {c}")
    return dataclasses.replace(recipe, clip=c)


def with_reused_fakes(recipe, reuse):
    """The recipe with G's step scoring the fakes of D's step again, under D's updated weights
    (make_gan_step's reuse_fakes: one pass through G a step instead of two, as PyTorch's DCGAN example
    trains); False leaves it as it is. Only a recipe with one critic step per G step has one set of fakes."""
    if not reuse:
        return recipe
    if recipe.n_critic != 1:
        raise ValueError(f"reuse applies to recipes with one critic step per G step; this one takes "
                         f"{recipe.n_critic} (n_critic), each on fakes of its own")
    return dataclasses.replace(recipe, reuse_fakes=True)


def with_adam_beta1(recipe, beta1):
    """The recipe with Adam's β1 (the momentum of its first moment) set to beta1; None keeps it.
    Radford et al. 2016 lowered it from 0.9 to 0.5 for GANs; many later recipes drop the momentum
    altogether, β1 = 0 (Brock et al. 2019 for BigGAN, Karras et al. 2019 for StyleGAN): each net
    then steps on the current gradient against the other's current weights, not on a memory of
    gradients taken against weights that have since moved."""
    if beta1 is None or beta1 == recipe.betas[0]:
        return recipe
    if recipe.optimizer != "adam":
        raise ValueError(f"beta1 applies to Adam; this recipe trains with {recipe.optimizer}")
    if not 0 <= beta1 < 1:
        raise ValueError(f"beta1 must be in [0, 1), e.g. 0 or 0.5; got {beta1}")
    return dataclasses.replace(recipe, betas=(beta1, recipe.betas[1]))
