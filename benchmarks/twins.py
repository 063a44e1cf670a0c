"""torch twins of minigen's models: the same architecture, weights copied across.

A minigen Dense stores W as (in, out); torch's Linear stores (out, in), so
weights are transposed on the way over. Nothing else differs.
"""
import numpy as np
import torch
from torch import nn


def linear_from(dense_params):
    """A torch Linear holding a minigen Dense's {"W", "b"}."""
    w = dense_params["W"]
    layer = nn.Linear(*w.shape)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
        layer.bias.copy_(torch.from_numpy(dense_params["b"]))
    return layer


class TorchMLPVAE(nn.Module):
    """pytorch/examples' VAE (784-400-20, ReLU), with the encoder's two heads fused
    into one Linear of 2*latent outputs as in minigen (mu first, then logvar)."""

    def __init__(self, params, latent=20):
        super().__init__()
        self.latent = latent
        enc, dec = params["encoder"], params["decoder"]
        self.enc1, self.enc2 = linear_from(enc[1]), linear_from(enc[3])
        self.dec1, self.dec2 = linear_from(dec[0]), linear_from(dec[2])

    def forward(self, x, eps):
        h = self.enc2(torch.relu(self.enc1(x.flatten(1))))
        mu, logvar = h[:, :self.latent], h[:, self.latent:]
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.dec2(torch.relu(self.dec1(z)))
        return logits, mu, logvar

    def loss(self, x, eps):
        """Mean over the batch of the negative ELBO (BCE summed over pixels + KL)."""
        logits, mu, logvar = self(x, eps)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        return (bce + kl).mean()
