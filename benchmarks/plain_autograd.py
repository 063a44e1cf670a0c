"""The MLP VAE written the plain HIPS-autograd way: the anchor that shows what minigen's design buys.

What a student writes from autograd's own examples (examples/variational_autoencoder.py,
autograd.misc.optimizers.adam): the parameters a list of (W, b) pairs, the network a loop
of np.dot(inputs, W) + b, the loss one function, `grad` of it over the whole list, and
Adam over the flattened parameter vector, unflattened again after each step.

Same model and numbers as minigen.models.vae.VAE: 784-400-20 ReLU encoder, 20-400-784
decoder, loss = mean over the batch of BCE-with-logits summed over pixels + Gaussian KL.
Everything float32. Two departures from the example, both to keep float32 (autograd's
VJPs of np.maximum(0, x) and of np.mean return float64 gradients, see DESIGN.md's
pitfalls): ReLU is x * (x > 0), and the batch mean is a sum divided by a Python int.
"""
import autograd.numpy as np
from autograd import grad
from autograd.misc.flatten import flatten


def relu(x):
    return x * (x > 0)


def neural_net_predict(params, inputs):
    """Dense layers with ReLU between them (not after the last)."""
    for W, b in params:
        outputs = np.dot(inputs, W) + b
        inputs = relu(outputs)
    return outputs


def vae_loss(params, images, eps):
    """-ELBO averaged over the batch: images (N, 784) in [0, 1], eps (N, latent) ~ N(0, I)."""
    encoder, decoder = params
    h = neural_net_predict(encoder, images)
    latent = h.shape[1] // 2
    mu, logvar = h[:, :latent], h[:, latent:]
    z = mu + np.exp(logvar / 2) * eps
    logits = neural_net_predict(decoder, z)
    bce = np.sum(np.logaddexp(0, logits) - images * logits, axis=1)  # -log p(x|z), Bernoulli
    kl = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1)
    return np.sum(bce + kl) / images.shape[0]


def from_minigen(params):
    """minigen's VAE params ({"encoder": [dense, {}, dense], ...}) as lists of (W, b) pairs (copies)."""
    def pairs(layers):
        return [(layer["W"].copy(), layer["b"].copy()) for layer in layers if "W" in layer]
    return [pairs(params["encoder"]), pairs(params["decoder"])]


def to_tree(pairs, like):
    """Lists of (W, b) pairs (as from_minigen makes them) back in the shape of minigen's params `like`."""
    def layers(pairs, like):
        it = iter(pairs)
        return [dict(zip(("W", "b"), next(it))) if "W" in layer else {} for layer in like]
    return {"encoder": layers(pairs[0], like["encoder"]), "decoder": layers(pairs[1], like["decoder"])}


def make_step(params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """step(images, noise): one Adam step, as autograd.misc.optimizers.adam writes it (over a flat vector)."""
    gradient = grad(vae_loss)
    x, unflatten = flatten(params)
    state = {"x": x, "m": np.zeros_like(x), "v": np.zeros_like(x), "i": 0}

    def step(images, noise):
        g, _ = flatten(gradient(unflatten(state["x"]), images, noise))
        i = state["i"]
        state["m"] = (1 - b1) * g + b1 * state["m"]
        state["v"] = (1 - b2) * (g ** 2) + b2 * state["v"]
        mhat = state["m"] / (1 - b1 ** (i + 1))
        vhat = state["v"] / (1 - b2 ** (i + 1))
        state["x"] = state["x"] - lr * mhat / (np.sqrt(vhat) + eps)
        state["i"] = i + 1

    return step
