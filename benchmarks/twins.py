"""torch twins of minigen's models: the same architecture, weights copied across by minigen.interop.

A minigen Dense stores W as (in, out); torch's Linear stores (out, in): interop
transposes on the way over and back. The loss is the same formula, written in torch.
"""
import torch

from minigen import interop


def grads_as_minigen(net, module, input_shape):
    """The .grad of a torch twin's parameters, laid out as minigen params (for one-to-one comparison)."""
    ghost = torch.nn.Sequential(*module)  # new container, same layers: swap weights for grads, then restore
    saved = [p.detach().clone() for p in ghost.parameters()]
    with torch.no_grad():
        for p in ghost.parameters():
            p.copy_(p.grad)
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
