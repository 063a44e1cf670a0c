"""Progressive growing of GANs (Karras, Aila, Laine & Lehtinen 2018), sized for 28 x 28 MNIST.

Training starts with a G that draws 7 x 7 images and a D that judges 7 x 7 images;
once those are learned, a new block doubles the resolution of both, to 14 x 14, then
28 x 28. The coarse layout is learned where it is easy, and each new block only has
to add detail (the paper's §2 and Fig. 1).

A new block is faded in, not switched on (§2, Fig. 2). Over one phase α rises
linearly from 0 to 1 and

    G:  image = (1 - α) · upsample(toRGB_old(h)) + α · toRGB_new(block_new(h))
    D:  h     = (1 - α) · fromRGB_old(avgpool(x)) + α · block_new(fromRGB_new(x)),   then the old blocks

so at α = 0 both networks are exactly those of the resolution before. The phases,
each `phase_images` real images long (images shown to D: the paper's unit), are

    7 stable | 14 fade | 14 stable | 28 fade | 28 stable, to the end of training.

The count lives in `gan.state`, so a checkpoint keeps it and a resumed run carries on.

G and D always exchange 28 x 28 images: G's output is upsampled (nearest neighbour)
to 28 x 28 and D average-pools its input down to its current resolution, so the
GAN machinery (make_gan_step, sampling, `minigen sample/eval`, FID) works unchanged.
During a fade the real images are blended between resolutions before D sees them,

    real = (1 - α)·upsample(avgpool(x)) + α·x     (at the new resolution),

as their released code does to reals only (train.py's `process_reals`; here
`ProgressiveGAN.process_reals`, which make_gan_step calls). Fakes are not blended
again: G's output is already the fade between its two toRGB paths, so D compares
a blended real with a blended fake, each blended once.

    G: z -> Dense c0·7·7, LReLU -> (c0, 7, 7) -> Conv 3x3 c0, LReLU
         -> [upsample x2 -> Conv 3x3 c_k, LReLU] per grown level -> (c_k, 7·2^k, 7·2^k)
         -> toRGB (Conv 1x1 to 1 channel), blended, sigmoid -> upsample to (1, 28, 28)
    D: (1, 28, 28) -> avgpool -> fromRGB (Conv 1x1 c_k, LReLU)
         -> [Conv 3x3 c_(k-1), LReLU, avgpool /2] per grown level -> (c0, 7, 7)
         -> minibatch stddev (+1 channel), Conv 3x3 c0, LReLU -> Dense 1 (a logit)
    channels (c0, c1, c2) = (32, 16, 8) by default, halving as the resolution doubles, as in the paper.

Kept from the paper: the fade-in, growing G and D together, D's minibatch standard
deviation (§3), and Adam's moments reset at each new level (their released code's
`reset_opt_for_new_lod`; otherwise the new layers, whose moments start at zero while
Adam's bias correction is already ~1, would take first steps ~16 x the learning rate).
Optional, off by default: G's pixelwise feature normalisation (§4.2, `--set pixel_norm=true`,
after each LReLU). With it, our samples at 28 x 28 had a speckled background and D won
outright (not in the README's tables); it lifts the near-zero features of a
blank background to unit length, and 8 channels leave toRGB little room to map them all
to black. Without it the background stays clean. Left out, for a CPU: the
equalised learning rate (§4.1), and the WGAN-GP loss (Appendix A.1), whose penalty
costs a double backward pass through every convolution. The loss here is the
non-saturating GAN loss with Adam(2e-4, β1 = 0.5): minigen.models.gan.RECIPES["gan"].
"""
import dataclasses
from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp

from minigen import nn, ops
from minigen.models import gan as gan_family
from minigen.models.gan import GAN
from minigen.models.trainable import configure

IMAGE_SHAPE = (1, 28, 28)


# --- Changing resolution, in differentiable numpy ---------------------------------------

def upsample(x, factor):
    """Nearest-neighbour upsampling: (N, C, H, W) -> (N, C, factor·H, factor·W), each pixel a factor² block."""
    if factor == 1:
        return x
    n, c, h, w = onp.shape(x)
    blocks = np.reshape(x, (n, c, h, 1, w, 1)) * onp.ones((1, 1, 1, factor, 1, factor), onp.float32)
    return np.reshape(blocks, (n, c, h * factor, w * factor))


def avgpool(x, factor):
    """Average pooling over factor x factor blocks: (N, C, H, W) -> (N, C, H/factor, W/factor)."""
    if factor == 1:
        return x
    n, c, h, w = onp.shape(x)
    if h % factor or w % factor:
        raise ValueError(f"avgpool by {factor} needs H and W divisible by {factor}, got {(h, w)}")
    return np.mean(np.reshape(x, (n, c, h // factor, factor, w // factor, factor)), axis=(3, 5))


def fade(old, new, alpha):
    """(1 - α)·old + α·new; at α = 0 or 1 exactly one of them (the other need not be computed: pass None)."""
    if alpha == 0:
        return old
    if alpha == 1:
        return new
    return (1 - alpha) * old + alpha * new


def pixel_norm(x, eps=1e-8):
    """Each pixel's feature vector scaled to unit mean square (Karras et al. 2018, §4.2, Eq. 2)."""
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + eps)


def minibatch_stddev(x, eps=1e-8):
    """Append one channel holding the batch's mean feature standard deviation (Karras et al. 2018, §3):
    D sees how varied the batch is, so a G that repeats itself is easy to spot. (N, C, H, W) -> (N, C+1, H, W)."""
    variance = np.mean((x - np.mean(x, axis=0, keepdims=True)) ** 2, axis=0)
    spread = np.mean(np.sqrt(variance + eps))
    n, _, h, w = onp.shape(x)
    return np.concatenate([x, spread * onp.ones((n, 1, h, w), onp.float32)], axis=1)


def _shape_layer(name, fn, out_shape):
    """A parameter-free layer: x -> fn(x), with the output shape of one example given by out_shape(c, h, w)."""
    return nn.Layer(name, lambda rng, shape: (out_shape(*shape), {}), lambda params, x, **_: fn(x))


def Upsample(factor=2):
    return _shape_layer(f"Upsample({factor})", lambda x: upsample(x, factor),
                        lambda c, h, w: (c, factor * h, factor * w))


def AvgPool(factor=2):
    return _shape_layer(f"AvgPool({factor})", lambda x: avgpool(x, factor),
                        lambda c, h, w: (c, h // factor, w // factor))


def MinibatchStddev():
    return _shape_layer("MinibatchStddev()", minibatch_stddev, lambda c, h, w: (c + 1, h, w))


def PixelNorm():
    return nn.elementwise(pixel_norm, "PixelNorm()")


# --- The schedule -------------------------------------------------------------------

def schedule(images, phase_images, levels):
    """(level, α) after `images` real images: level k draws at 28 / 2^(levels-1-k) pixels.

    Phases of phase_images: level 0 stable, then for each new level a fade (α from 0
    to 1) and a stable phase (α = 1); the last level stays stable for good.
    """
    phase, into = divmod(int(images), int(phase_images))
    level = min((phase + 1) // 2, levels - 1)
    fading = phase % 2 == 1 and phase < 2 * (levels - 1)
    return level, (into / phase_images if fading else 1.0)


# --- The growing networks --------------------------------------------------------------

def generator_stages(latent, widths, with_pixel_norm=False):
    """(blocks, to_rgb): blocks[0] maps z to (c0, r0, r0), blocks[k] doubles the resolution to
    (c_k, r_k, r_k); to_rgb[k] reads level k's features as a 1-channel image (logits)."""
    act = [nn.LeakyReLU(0.2), *([PixelNorm()] if with_pixel_norm else [])]
    r0 = IMAGE_SHAPE[1] >> (len(widths) - 1)
    base = nn.Sequential(nn.Dense(widths[0] * r0 * r0), nn.Reshape((widths[0], r0, r0)), *act,
                         nn.Conv2d(widths[0], 3, padding=1), *act)
    grow = [nn.Sequential(Upsample(2), nn.Conv2d(c, 3, padding=1), *act) for c in widths[1:]]
    return [base, *grow], [nn.Conv2d(IMAGE_SHAPE[0], 1) for _ in widths]


def discriminator_stages(widths, with_batch_stddev=True):
    """(from_rgb, blocks): from_rgb[k] reads a level-k image into c_k features; blocks[k] (k > 0)
    halves the resolution to c_(k-1) features; blocks[0] gives the score."""
    from_rgb = [nn.Sequential(nn.Conv2d(c, 1), nn.LeakyReLU(0.2)) for c in widths]
    spread = [MinibatchStddev()] if with_batch_stddev else []
    base = nn.Sequential(*spread, nn.Conv2d(widths[0], 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Dense(1))
    shrink = [nn.Sequential(nn.Conv2d(c, 3, padding=1), nn.LeakyReLU(0.2), AvgPool(2)) for c in widths[:-1]]
    return from_rgb, [base, *shrink]


class ProgressiveGAN(GAN):
    """A GAN whose G and D grow from 7 x 7 to 28 x 28 (module docstring); both read and write (1, 28, 28).

    widths: channels (c0, c1, c2) at 7, 14, 28 pixels (fewer entries: start at 14 or 28).
    phase_images: real images per fade or stable phase. pixel_norm, batch_stddev: use G's
    pixelwise normalisation, D's minibatch standard deviation. The schedule's position is
    state["schedule"]["images"]; generate and score use the level and α it implies.
    params: {"generator": {"blocks", "to_rgb"}, "discriminator": {"from_rgb", "blocks"}},
    one entry per level, all created at init (a level not yet grown gets zero gradients).
    """

    def __init__(self, latent=64, widths=(32, 16, 8), phase_images=20000, pixel_norm=False, batch_stddev=True):
        widths = tuple(widths)
        if not 1 <= len(widths) <= 3 or not all(int(c) == c and c > 0 for c in widths):
            raise ValueError(f"widths must be 1 to 3 positive channel counts (for 7, 14, 28 pixels), got {widths!r}")
        if int(phase_images) != phase_images or phase_images < 1:
            raise ValueError(f"phase_images must be a positive int (real images per phase), got {phase_images!r}")
        self.widths, self.levels, self.phase_images = widths, len(widths), int(phase_images)
        self.g_blocks, self.to_rgb = generator_stages(latent, widths, pixel_norm)
        self.from_rgb, self.d_blocks = discriminator_stages(widths, batch_stddev)
        generator = nn.Layer("ProgressiveGenerator", self._init_generator,
                             lambda params, z, train=False, **_: self.generate_at(params, z, *self.progress(), train))
        discriminator = nn.Layer("ProgressiveDiscriminator", self._init_discriminator,
                                 lambda params, x, train=False, **_: self.score_at(params, x, *self.progress(), train))
        super().__init__(generator, discriminator, latent, IMAGE_SHAPE)
        self.state["schedule"] = {"images": onp.array(0, onp.int64), "level": onp.array(0, onp.int64)}

    def resolution(self, level):
        """Pixels per side at `level`: 28, 14, 7 for the last, last but one, ... level."""
        return IMAGE_SHAPE[1] >> (self.levels - 1 - level)

    def progress(self):
        """(level, α) of the schedule's current position."""
        return schedule(self.state["schedule"]["images"], self.phase_images, self.levels)

    def advance(self, n_images):
        """Move the schedule on by n_images real images shown to D."""
        self.state["schedule"]["images"] = onp.array(self.state["schedule"]["images"] + n_images, onp.int64)

    def _init_generator(self, rng, input_shape):
        """All levels' parameters; the output shape is (1, 28, 28) whatever the level."""
        blocks, shape = [], tuple(input_shape)
        for block in self.g_blocks:
            shape, p = block.init(rng, shape)
            blocks.append(p)
        to_rgb = [layer.init(rng, (c, self.resolution(k), self.resolution(k)))[1]
                  for k, (layer, c) in enumerate(zip(self.to_rgb, self.widths))]
        return IMAGE_SHAPE, {"blocks": blocks, "to_rgb": to_rgb}

    def _init_discriminator(self, rng, input_shape):
        """All levels' parameters; the output shape is the base block's, (1,)."""
        from_rgb, blocks = [], []
        for k, (layer, block) in enumerate(zip(self.from_rgb, self.d_blocks)):
            shape, p = layer.init(rng, (IMAGE_SHAPE[0], self.resolution(k), self.resolution(k)))
            out_shape, q = block.init(rng, shape)
            from_rgb.append(p)
            blocks.append(q)
            if k == 0:
                score_shape = out_shape
        return score_shape, {"from_rgb": from_rgb, "blocks": blocks}

    def image_logits(self, g_params, z, level, alpha, train=False):
        """G's pre-sigmoid image at level's resolution, new block faded in by α: (N, latent) -> (N, 1, r, r)."""
        self._check_progress(level, alpha)
        h = z
        for block, p in zip(self.g_blocks[:level], g_params["blocks"]):
            h = block.apply(p, h, train=train)
        new = None
        if alpha > 0:
            new = self.to_rgb[level].apply(g_params["to_rgb"][level],
                                           self.g_blocks[level].apply(g_params["blocks"][level], h, train=train))
        if level == 0:
            return new
        old = upsample(self.to_rgb[level - 1].apply(g_params["to_rgb"][level - 1], h), 2) if alpha < 1 else None
        return fade(old, new, alpha)

    def _check_progress(self, level, alpha):
        if not (0 <= level < self.levels and 0 <= alpha <= 1) or (level == 0 and alpha != 1):
            raise ValueError(f"expected a level in [0, {self.levels}) and α in [0, 1] (1 at level 0), "
                             f"got level {level}, α {alpha}")

    def generate_at(self, g_params, z, level, alpha, train=False):
        """G(z) at a given level and α, upsampled to (N, 1, 28, 28) in [0, 1]."""
        image = ops.sigmoid(self.image_logits(g_params, z, level, alpha, train))
        return upsample(image, IMAGE_SHAPE[1] // self.resolution(level))

    def process_reals(self, x):
        """Real images as D should see them at the schedule's (level, α): blend_reals. (N, 1, 28, 28)."""
        return self.blend_reals(x, *self.progress())

    def blend_reals(self, x, level, alpha):
        """(1 - α)·upsample(avgpool(x)) + α·x, the previous resolution faded into this one, as Karras
        et al.'s `process_reals` does to reals (not fakes: G blends its own output). x itself at α = 1.
        x: (N, 1, 28, 28) -> (N, 1, 28, 28); D pools the result down to its current resolution."""
        self._check_progress(level, alpha)
        if alpha == 1:
            return x
        coarse = IMAGE_SHAPE[1] // self.resolution(level - 1)  # the previous level's pixel size
        return fade(upsample(avgpool(x, coarse), coarse), x, alpha)

    def score_at(self, d_params, x, level, alpha, train=False):
        """D's logit at a given level and α: (N, 1, 28, 28) -> (N, 1). During a fade D blends its two
        input paths, (1 - α)·fromRGB_old(avgpool(x)) + α·block_new(fromRGB_new(x)) (networks.py of
        Karras et al.'s code); x is read as given: reals come blended by process_reals, fakes by G."""
        self._check_progress(level, alpha)
        here = IMAGE_SHAPE[1] // self.resolution(level)
        x_here = avgpool(x, here)
        if level == 0:
            h = self.from_rgb[0].apply(d_params["from_rgb"][0], x_here)
        else:
            old = None
            if alpha < 1:
                old = self.from_rgb[level - 1].apply(d_params["from_rgb"][level - 1], avgpool(x, 2 * here))
            new = None
            if alpha > 0:
                features = self.from_rgb[level].apply(d_params["from_rgb"][level], x_here)
                new = self.d_blocks[level].apply(d_params["blocks"][level], features, train=train)
            h = fade(old, new, alpha)
        for k in reversed(range(max(level, 1))):  # the older blocks, down to the base's score
            h = self.d_blocks[k].apply(d_params["blocks"][k], h, train=train)
        return h


# --- For `minigen train` -------------------------------------------------------------------

def reset_optimizer(opt):
    """Forget an optimiser's moments and step count (its learning rate stays), as at a fresh start."""
    fresh = {key: onp.zeros_like(value) for key, value in opt.state_dict().items() if key != "lr"}
    opt.load_state_dict(fresh)


def trainable(gan, recipe, rng, lr=None, reset_optimizers=True, ema=0.0):
    """The GAN's Trainable (minigen.models.gan.trainable), its step wrapped to follow the schedule:
    on reaching a new level the optimisers start afresh (module docstring); after each step the
    schedule advances by the batch's real images. Logs α and the resolution beside the GAN's metrics."""
    t = gan_family.trainable(gan, recipe, rng, lr, ema)  # the averaged G, if any, is updated inside t.step
    gan_step = t.step

    def step(batch):
        level, alpha = gan.progress()
        if level != int(gan.state["schedule"]["level"]):
            gan.state["schedule"]["level"] = onp.array(level, onp.int64)
            if reset_optimizers:
                for opt in t.optimizers.values():
                    reset_optimizer(opt)
        metrics = gan_step(batch)
        gan.advance(len(batch[0]))
        return {**metrics, "alpha": alpha, "resolution": float(gan.resolution(level))}

    return dataclasses.replace(t, step=step)


VARIANTS = {"progressive": "progressive GAN: G and D grow 7x7 -> 14x14 -> 28x28 with fade-in, minibatch "
                           "stddev; non-saturating loss, Adam(2e-4, 0.5)"}


@dataclass(frozen=True)
class ProgressiveConfig:
    latent: int = 64
    widths: tuple = (32, 16, 8)  # channels at 7, 14 and 28 pixels, halving as the paper's do
    phase_images: int = 20000  # a third of an MNIST epoch: 28 x 28 is fully grown after 80,000 images
    reset_optimizers: bool = True
    pixel_norm: bool = False  # see the module docstring: with so few channels it speckles the background
    batch_stddev: bool = True
    ema: float = 0.0  # decay of the averaged generator (minigen.averaging), as Karras et al. sample; 0: off


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train progressive`."""
    cfg = configure(ProgressiveConfig(), options)
    gan = ProgressiveGAN(cfg.latent, cfg.widths, cfg.phase_images, cfg.pixel_norm, cfg.batch_stddev)
    return trainable(gan, gan_family.RECIPES["gan"], rng, lr, cfg.reset_optimizers, cfg.ema)
