"""The mode-collapse lab's networks and training rule, as the papers' released code has them.

The lab (demos/mode_collapse.py) trains GANs on the 2-D ring and grid mixtures. To compare
with a paper's table, a variant must be trained the paper's way; these are those ways:

    pacgan_nets    PacGAN's 2-D nets (Lin et al. 2018; fjxmlzn/PacGAN,
                   synthetic_data_experiments/2DGrid_GAN&PacGAN/pacgan_task.py and config.py):
                   G: z (2) -> 4 x (Dense 400, batch norm, ReLU) -> Dense 2
                   D: m·2 -> 3 x (maxout: 200 units of 5 pieces) -> Dense 1 (a logit)
                   every weight N(0, 0.02²), biases 0; Adam(1e-4, β1 = 0.8), 100 packed inputs
                   per minibatch, 1,000 steps an epoch for 400 epochs
    wgan_gp_nets   WGAN-GP's toy nets (Gulrajani et al. 2017; igul222/improved_wgan_training,
                   gan_toy.py): G and D both 3 x (Dense 512, ReLU) -> Dense, He init;
                   λ = 0.1 there ("smaller lambda makes things faster for toy tasks"),
                   5 critic steps, Adam(1e-4, (0.5, 0.9)), batches of 256, 100,000 steps,
                   the data scaled to unit standard deviation
    make_simultaneous_step   PacGAN's update rule: its code trains with ALI's `ali_algorithm`
                   (IshmaelBelghazi/ALI, ali/algorithms.py), one gradient step of D and of G
                   at once, both from the same minibatch and the same fakes - not alternating.
"""
import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minigen import init, losses, nn, ops
from minigen.autodiff import value_and_grad
from minigen.models.gan import GAN
from minigen.models.trainable import apply_gradients, check_finite


def Maxout(units, pieces, w_init=init.dcgan_normal):
    """Maxout (Goodfellow et al. 2013): y_j = max_k (x W + b)_{j,k}, k over `pieces` linear maps.

    x: (N, in) -> (N, units); W: (in, units·pieces), b: (units·pieces,), piece k of unit j
    in column j·pieces + k (the layout of blocks' LinearMaxout, which PacGAN's D uses).
    The max is written as a sum against a constant one-hot mask of each unit's winning piece:
    the same values and (sub)gradient, but float32 and ~6x faster than autograd's np.max
    (whose VJP returns float64) or slicing out the pieces (whose VJP scatters with np.add.at).
    """
    name = f"Maxout({units}, pieces={pieces})"

    def init_fn(rng, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{name}: expects flat inputs (features,), got {input_shape}")
        return (units,), {"W": w_init(rng, (input_shape[0], units * pieces)),
                          "b": onp.zeros(units * pieces, onp.float32)}

    def apply(params, x, **_):
        if onp.ndim(x) != 2 or onp.shape(x)[1] != params["W"].shape[0]:
            raise ValueError(f"{name}: expected input of shape (N, {params['W'].shape[0]}), got {onp.shape(x)}")
        h = np.reshape(np.dot(x, params["W"]) + params["b"], (onp.shape(x)[0], units, pieces))  # (N, units, pieces)
        winner = onp.zeros(onp.shape(h), onp.float32)
        onp.put_along_axis(winner, getval(h).argmax(axis=2)[:, :, None], 1.0, axis=2)  # one-hot, ties to the first
        return np.sum(h * winner, axis=2)

    return nn.Layer(name, init_fn, apply, ("Maxout", {"units": units, "pieces": pieces}))


def pacgan_nets(pack=1, latent=2, dim=2, g_hidden=400, d_hidden=200, pieces=5):
    """PacGAN's 2-D generator and (packed) discriminator, as a GAN; see the module docstring.

    One departure: G's hidden Dense layers keep a bias (the released code has none there);
    batch norm subtracts the batch mean right after, so that bias gets zero gradient and
    changes nothing. Batch norm's running statistics (used to sample, as the released code
    samples in inference mode) move by 5 % a step, as its bn_updates do.
    """
    normal = init.dcgan_normal  # N(0, 0.02²): config.py's weights_init_std
    g = nn.Sequential(*[layer for _ in range(4) for layer in
                        (nn.Dense(g_hidden, w_init=normal), nn.BatchNorm(momentum=0.05), nn.ReLU())],
                      nn.Dense(dim, w_init=normal))
    d = nn.Sequential(*[Maxout(d_hidden, pieces) for _ in range(3)], nn.Dense(1, w_init=normal))
    return GAN(g, d, latent, (dim,), pack=pack)


def wgan_gp_nets(latent=2, dim=2, hidden=512):
    """WGAN-GP's toy generator and critic (gan_toy.py), as a GAN; see the module docstring.

    He-initialised ReLU layers (gan_toy.py draws them uniform with the same variance) and a
    Glorot-initialised output layer; no normalisation in the critic, as the penalty needs.
    """
    def mlp(out):
        hidden_layers = [layer for _ in range(3) for layer in (nn.Dense(hidden, w_init=init.he_normal), nn.ReLU())]
        return nn.Sequential(*hidden_layers, nn.Dense(out))
    return GAN(mlp(dim), mlp(1), latent, (dim,))


def make_simultaneous_step(gan, params, g_opt, d_opt, rng):
    """step(batch) -> metrics: one simultaneous update of D and G (ALI's algorithm, PacGAN's code).

    batch[0]: (m·B, *data_shape) real examples, m = gan.pack_size, packed into B inputs of D.
    G makes m groups of B fakes from fresh z, one group per slot of the packed input (so
    batch norm's statistics are over B samples, as in the released code, which runs G once
    per slot). Both gradients are taken at the current (D, G) on these same fakes:

        D: ∇_D [E softplus(-D(x)) + E softplus(D(G(z)))],   G: ∇_G E softplus(-D(G(z)))

    and both optimisers step. Logged: d_real = mean σ(D(x)), d_fake = mean σ(D(G(z))),
    d_loss, g_loss, d_grad_norm, g_grad_norm.
    """
    g_params, d_params = params["generator"], params["discriminator"]
    m, seen = gan.pack_size, {}

    def fakes(g_params, z, state):
        groups = [gan.generator.apply(g_params, zk, train=True, state=state) for zk in z]  # m x (B, d)
        return np.reshape(np.concatenate(groups, axis=1), (m * onp.shape(z)[1], -1))  # (m·B, d), slots consecutive

    def critic_objective(d_params, real, fake):
        real_scores, fake_scores = gan.score(d_params, real, train=True), gan.score(d_params, fake, train=True)
        seen["real"], seen["fake"] = getval(real_scores), getval(fake_scores)
        return losses.discriminator_loss(real_scores, fake_scores)

    def generator_objective(g_params, z):  # updates batch norm's running statistics, once a step
        return losses.generator_loss_nonsaturating(gan.score(d_params, fakes(g_params, z, gan.state["generator"])))

    critic_value_and_grad = value_and_grad(critic_objective)
    generator_value_and_grad = value_and_grad(generator_objective)

    def step(batch):
        real = batch[0]
        if len(real) % m:
            raise ValueError(f"a packed minibatch needs a multiple of {m} real examples, got {len(real)}")
        z = gan.sample_latent(rng, len(real)).reshape(m, len(real) // m, gan.latent)  # (m, B, latent)
        d_value, d_grads = critic_value_and_grad(d_params, real, fakes(g_params, z, None))
        g_value, g_grads = generator_value_and_grad(g_params, z)  # D's gradient is taken before D moves
        d_norm = apply_gradients(d_opt, d_grads, "discriminator")
        g_norm = apply_gradients(g_opt, g_grads, "generator")
        return {"d_real": float(onp.mean(ops.sigmoid(seen["real"]))),
                "d_fake": float(onp.mean(ops.sigmoid(seen["fake"]))),
                "d_loss": check_finite("d_loss", d_value), "d_grad_norm": d_norm,
                "g_loss": check_finite("g_loss", g_value), "g_grad_norm": g_norm}

    return step
