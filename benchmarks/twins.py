"""torch twins of minigen's models: the same architecture, weights copied across by minigen.interop.

A minigen Dense stores W as (in, out); torch's Linear stores (out, in): interop
transposes on the way over and back. The loss is the same formula, written in torch.
"""
import numpy as np
import torch

from minigen import interop
from minigen.averaging import ramped_decay, statistics_draws


def grads_as_minigen(net, module, input_shape):
    """The .grad of a torch twin's parameters, laid out as minigen params (for one-to-one comparison)."""
    ghost = torch.nn.Sequential(*module)  # new container, same layers: swap weights for grads, then restore
    saved = [p.detach().clone() for p in ghost.parameters()]
    with torch.no_grad():
        for p in ghost.parameters():
            p.copy_(p.grad if p.grad is not None else torch.zeros_like(p))  # no gradient: zero
        grads = interop.from_torch(net, ghost, input_shape)
        for p, value in zip(ghost.parameters(), saved):
            p.copy_(value)
    return grads


class TorchVAE(torch.nn.Module):
    """minigen's VAE (models/vae.py) in torch: encoder and decoder rebuilt by interop, the same -ELBO."""

    def __init__(self, model, params):
        super().__init__()
        self.model, self.latent = model, model.cfg.latent
        self.encoder = interop.to_torch(model.encoder, params["encoder"], model.cfg.image_shape)
        self.decoder = interop.to_torch(model.decoder, params["decoder"], (model.cfg.latent,))

    def loss(self, x, eps):
        """Mean over the batch of the negative ELBO: BCE summed over pixels, plus the Gaussian KL."""
        h = self.encoder(x)
        mu, logvar = h[:, :self.latent], h[:, self.latent:]
        logits = self.decoder(mu + torch.exp(0.5 * logvar) * eps)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        return (bce + kl).mean()

    def grads(self):
        """Gradients after loss().backward(), as a minigen params tree."""
        return {"encoder": grads_as_minigen(self.model.encoder, self.encoder, self.model.cfg.image_shape),
                "decoder": grads_as_minigen(self.model.decoder, self.decoder, (self.latent,))}


# --- GANs -------------------------------------------------------------------------------------

def draws_like_minigen(rng, n, latent, reuse_fakes=False):
    """The noise of one minigen GAN step (make_gan_step with n_critic = 1, no labels, no packing),
    drawn from the numpy Generator `rng` in make_gan_step's order: z for D's fakes, then ε for a
    gradient penalty (drawn even when the recipe has none, so it is drawn and dropped here too),
    then z for G's step. Returns (z_d, z_g), each an (n, latent) float32 tensor; z_g is None
    with reuse_fakes, when G's step scores D's fakes again."""
    z_d = rng.standard_normal((n, latent), dtype=np.float32)
    rng.random(n, dtype=np.float32)  # make_gan_step's ε
    if reuse_fakes:
        return torch.from_numpy(z_d), None
    z_g = rng.standard_normal((n, latent), dtype=np.float32)
    return torch.from_numpy(z_d), torch.from_numpy(z_g)


def torch_discriminator_loss(real_logits, fake_logits):
    """-E[log D(x)] - E[log(1 - D(G(z)))] from logits."""
    return torch.nn.functional.softplus(-real_logits).mean() + torch.nn.functional.softplus(fake_logits).mean()


def torch_nonsaturating(fake_logits):
    """-E[log D(G(z))] from logits."""
    return torch.nn.functional.softplus(-fake_logits).mean()


def torch_wgan_critic_loss(real_scores, fake_scores):
    return fake_scores.mean() - real_scores.mean()


def torch_wgan_generator_loss(fake_scores):
    return -fake_scores.mean()


class TorchGAN(torch.nn.Module):
    """A minigen GAN's generator and discriminator in torch (training mode: batch norm on batch statistics).

    For a ConditionalGAN (gan.n_classes > 0) both nets read the one-hot label appended to their
    input, as minigen.ops.append_condition does: G [z, onehot(y)]; D [flatten(x), onehot(y)], or
    for label_input "planes" (a conditional or self-conditioned DCGAN) x with n_classes constant
    planes, built and concatenated as a plain torch model would (minigen adds one map per label
    in D's first convolution instead: the same numbers).
    """

    def __init__(self, gan, params):
        super().__init__()
        if gan.pack_size != 1:
            raise ValueError(f"TorchGAN twins unpacked GANs only, got pack={gan.pack_size}")
        self.gan = gan
        self.G = interop.to_torch(gan.generator, params["generator"], (gan.latent + gan.n_classes,)).train()
        self.D = interop.to_torch(gan.discriminator, params["discriminator"], gan.d_input_shape()).train()
        self.opts = None

    def condition(self, x, y):
        """x with the one-hot labels y appended: z (N, latent) -> (N, latent + K); images as planes
        (N, C, H, W) -> (N, C + K, H, W) for label_input "planes", else flattened (N, F) -> (N, F + K)."""
        if not self.gan.n_classes:
            return x
        y1 = torch.nn.functional.one_hot(torch.as_tensor(y), self.gan.n_classes).to(x.dtype)
        if x.dim() == 4 and self.gan.label_input == "planes":
            return torch.cat([x, y1[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return torch.cat([x.flatten(1), y1], dim=1)

    def generate(self, z, y=None):
        """G(z) (or G(z, y)): (N, latent) -> (N, *data_shape)."""
        return self.G(self.condition(z, y))

    def score(self, x, y=None):
        """D's logit per example, (N, 1)."""
        return self.D(self.condition(x, y))

    def critic_loss(self, real, fake, loss, gp_eps=None, weight=10.0, y=None):
        """The critic's loss on real and fake batches, plus WGAN-GP's penalty if gp_eps (N,) is given."""
        value = loss(self.score(real, y), self.score(fake, y))
        if gp_eps is not None:
            eps = torch.from_numpy(gp_eps).reshape(-1, *([1] * (real.dim() - 1)))
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_()
            (slopes,) = torch.autograd.grad(self.score(x_hat, y).sum(), x_hat, create_graph=True)
            value = value + weight * ((slopes.flatten(1).norm(dim=1) - 1) ** 2).mean()
        return value

    def step(self, real, recipe, d_loss, g_loss, z=None, y=None, g_y=None, rng=None):
        """One D step then one G step, with the recipe's Adam settings (as minigen's make_gan_step).

        z: optional (z_critic, z_generator), numpy (N, latent) arrays: the very draws minigen's
        step made, so that both libraries see the same noise. Or rng: a numpy Generator to draw z
        from exactly as make_gan_step draws it (draws_like_minigen). Neither: fresh torch.randn.
        y: the real minibatch's labels, which the fakes of D's step share; g_y: G's step's labels.
        recipe.reuse_fakes: G's step scores D's fakes again, through the graph of D's step (as
        PyTorch's DCGAN example does), and z_g (then None) is not used.
        Returns (D's loss, G's loss).
        """
        if self.opts is None:
            self.opts = [torch.optim.Adam(m.parameters(), lr=recipe.lr, betas=recipe.betas) for m in (self.D, self.G)]
        d_opt, g_opt = self.opts
        if z is None:
            z = (draws_like_minigen(rng, len(real), self.gan.latent, recipe.reuse_fakes) if rng is not None
                 else (torch.randn(len(real), self.gan.latent), torch.randn(len(real), self.gan.latent)))
        z_d, z_g = z
        fake = self.generate(torch.as_tensor(z_d), y)
        d_opt.zero_grad()
        d_value = self.critic_loss(real, fake.detach(), d_loss, y=y)
        d_value.backward()
        d_opt.step()
        g_opt.zero_grad()
        if not recipe.reuse_fakes:
            fake, y = self.generate(torch.as_tensor(z_g), g_y), g_y
        g_value = g_loss(self.score(fake, y))
        g_value.backward()
        g_opt.step()
        return d_value.item(), g_value.item()

    def grads(self):
        """Gradients after backward(), as minigen params trees."""
        return {"generator": grads_as_minigen(self.gan.generator, self.G, (self.gan.latent + self.gan.n_classes,)),
                "discriminator": grads_as_minigen(self.gan.discriminator, self.D, self.gan.d_input_shape())}


def statistics_inputs(gan, twin):
    """The inputs on which minigen's AveragedGenerator measures batch norm's statistics
    (minigen.averaging.statistics_draws), as the twin's G reads them: (N, latent [+ K]) tensors."""
    return [twin.condition(torch.from_numpy(z), y) for z, y in statistics_draws(gan)]


class TorchAveragedGenerator:
    """minigen.averaging.AveragedGenerator in torch: a moving average of G's weights with the same
    ramp β_t (torch.optim.swa_utils.AveragedModel with that average as its avg_fn), batch-norm
    statistics measured again for the averaged weights by update_bn over the same fresh inputs
    as minigen's (Izmailov et al. 2018, §3.2).

    generator: the live torch G, trained elsewhere; update() after each of its steps.
    stat_inputs: G's inputs to measure the statistics on (statistics_inputs).
    """

    def __init__(self, generator, decay, stat_inputs):
        from torch.optim.swa_utils import AveragedModel

        def ramped_ema(average, param, num_averaged):  # at the t-th update num_averaged is t (the copy was 0)
            beta = ramped_decay(decay, int(num_averaged))
            return beta * average + (1 - beta) * param

        self.live = generator
        self.average = AveragedModel(generator, avg_fn=ramped_ema)
        # AveragedModel's first update copies the weights instead of averaging: taken now, before any
        # step, the average starts at G's initial weights, as minigen's does
        self.average.update_parameters(generator)
        self.stat_inputs = stat_inputs
        self.measured = False

    def update(self):
        """θ_avg ← β_t θ_avg + (1 − β_t) θ for the live G's current weights θ."""
        self.average.update_parameters(self.live)
        self.measured = False

    @torch.no_grad()
    def generate(self, g_input):
        """The averaged G on its input (N, latent [+ K]) -> (N, *data_shape), in eval mode with its
        own statistics (measured again only if the average has changed since they were last measured)."""
        from torch.optim.swa_utils import update_bn
        if not self.measured:
            update_bn(self.stat_inputs, self.average)  # train-mode passes, plain means over the batches
            self.measured = True
        return self.average.eval()(g_input)
