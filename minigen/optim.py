"""Optimisers that update a parameter tree in place, in one pass per formula over all of it.

`params` is a nested dict/list of float32 arrays, as the layers make them. At
construction the optimiser moves them into one contiguous buffer and puts views
of it into the tree (minigen.flat.rehome: the tree's dicts and lists are changed
in place, so a model holding the tree sees the views). Each step copies the
gradient tree into a second flat buffer and runs the update rule with `out=`
ufuncs over that buffer, block by block: Adam is 14 passes (the copy, then 13)
of a dozen numpy calls per block, not 13 calls for each of its arrays. No step
flattens or rebuilds the tree (HIPS autograd's optimisers do, and pay a copy of
every parameter twice a step). state_dict() still gives one array per parameter.

The update rules are torch.optim's, term for term, so that the same
hyper-parameters give the same trajectory.
"""
import math

import numpy as np

from minigen import flat
from minigen.tree import leaves

# Elements per block of an update: Adam's five arrays (p, g, m, v and the scratch) of 32,768
# float32 each take 640 KiB, which fits a 1 MiB L2 cache. Over the whole buffer at once, each
# of the 13 passes would stream them from L3 or memory: the MLP VAE's 652,824 parameters take
# 13 MB, and on an Intel Xeon (2 MiB of L2, benchmarks/README.md) such passes ran at half the speed
# (or less) of the same passes over blocks. Every rule is elementwise, so blocks give the same bits.
BLOCK = 32768


class Optimizer:
    """Shared bookkeeping: the parameter arrays, per-array state, save/load."""

    state_names = ()  # per-parameter buffers, e.g. ("m", "v") for Adam
    block = BLOCK  # elements per block of update (a test sets it small to get several)

    def __init__(self, params, lr):
        self.params = leaves(params)
        for i, p in enumerate(self.params):
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"parameter {i}: expected a float numpy array, got {type(p).__name__} "
                                f"{getattr(p, 'dtype', '')}")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = lr
        self.t = 0  # steps taken
        self.flat, self.params = flat.rehome(params)  # the tree's arrays are now views of self.flat
        shapes = [p.shape for p in self.params]
        self.flat_state = {name: np.zeros_like(self.flat) for name in self.state_names}
        self.state = {name: flat.split(buf, shapes) for name, buf in self.flat_state.items()}  # per-array views
        self.flat_grad = np.empty_like(self.flat)
        self._grad_views = flat.split(self.flat_grad, shapes)
        self._scratch = {}  # dtype -> one flat buffer as large as the largest block

    def scratch(self, p):
        """A work array shaped like p (a block of the flat buffer), reused every step.

        Temporaries such as (1 - b1) * g would be fresh arrays of the parameter's
        size each step; for large arrays each allocation costs page faults, and
        for the MLP VAE these made up most of Adam's time (see benchmarks/README.md).
        """
        work = self._scratch.get(p.dtype)
        if work is None or work.size < p.size:  # the first block (or a larger block size) sizes it
            work = self._scratch[p.dtype] = np.empty(p.size, p.dtype)
        return work[:p.size].reshape(p.shape)

    def step(self, grads):
        """Update every parameter in place from `grads`, a tree shaped like params."""
        grads = leaves(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"got {len(grads)} gradient arrays for {len(self.params)} parameters")
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if np.shape(g) != p.shape:
                raise ValueError(f"gradient {i} has shape {np.shape(g)}, its parameter {p.shape}")
        self.t += 1
        flat.gather(grads, self._grad_views)
        buffers = [self.flat, self.flat_grad, *(self.flat_state[name] for name in self.state_names)]
        for start in range(0, self.flat.size, self.block):  # block by block: see BLOCK
            self.update(*(buf[start:start + self.block] for buf in buffers))

    def update(self, p, g, *buffers):
        raise NotImplementedError

    def state_dict(self):
        """Step count and buffers as plain arrays (for np.savez; no pickle needed)."""
        out = {"t": np.array(self.t), "lr": np.array(self.lr)}  # lr too: a schedule may have changed it
        for name in self.state_names:
            out.update({f"{name}.{i}": buf.copy() for i, buf in enumerate(self.state[name])})
        return out

    def load_state_dict(self, state):
        for name in self.state_names:
            for i, buf in enumerate(self.state[name]):
                saved = np.asarray(state[f"{name}.{i}"])
                if saved.shape != buf.shape:
                    raise ValueError(f"optimizer state {name}.{i} has shape {saved.shape}, "
                                     f"its parameter {buf.shape}")
                buf[...] = saved
        self.t = int(state["t"])
        if "lr" in state:
            self.lr = float(state["lr"])


class SGD(Optimizer):
    """p -= lr * v, v = momentum * v + g (torch's form; Nesterov looks ahead: g + momentum * v).

    Passes over the flat buffer per step: 1 to gather g, then 2 (plain) or 4 (momentum),
    2 more for Nesterov and 2 for weight decay.
    """

    state_names = ("velocity",)

    def __init__(self, params, lr=1e-2, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def update(self, p, g, velocity):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            # torch starts the velocity at the first gradient, not at momentum * 0 + g: same thing.
            velocity *= self.momentum
            velocity += g
            g = g + self.momentum * velocity if self.nesterov else velocity
        p -= self.lr * g


class RMSprop(Optimizer):
    """p -= lr * g / (sqrt(E[g^2]) + eps), E[g^2] a moving average with decay alpha (Hinton's lecture 6e).

    Passes over the flat buffer per step: 1 to gather g, then 9 (one per line of update).
    """

    state_names = ("square_avg",)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8):
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps

    def update(self, p, g, square_avg):
        s = self.scratch(p)
        square_avg *= self.alpha  # E[g^2] <- alpha E[g^2] + (1 - alpha) g^2
        np.multiply(g, g, out=s)
        s *= 1 - self.alpha
        square_avg += s
        np.sqrt(square_avg, out=s)  # p <- p - lr g / (sqrt(E[g^2]) + eps)
        s += self.eps
        np.divide(g, s, out=s)
        s *= self.lr
        p -= s


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): moving averages m of g and v of g^2, bias-corrected.

    weight_decay adds weight_decay * p to the gradient (torch's Adam); with
    decoupled=True it instead shrinks p by lr * weight_decay each step (AdamW,
    Loshchilov & Hutter 2019).

    Passes over the flat buffer per step: 1 to gather g, then the 13 of update (3 for m,
    4 for v, 6 for p), each one numpy call over all the parameters at once.
    """

    state_names = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(params, lr)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay, self.decoupled = betas, eps, weight_decay, decoupled

    def update(self, p, g, m, v):
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        s = self.scratch(p)  # every line below writes into m, v, p or s: no new arrays
        # BEGIN SOLUTION
        # m <- b1 m + (1 - b1) g, written m += (1 - b1)(g - m) as torch's lerp_ does
        np.subtract(g, m, out=s)
        s *= 1 - b1
        m += s
        # v <- b2 v + (1 - b2) g^2
        v *= b2
        np.multiply(g, g, out=s)
        s *= 1 - b2
        v += s
        # p <- p - lr m_hat / (sqrt(v_hat) + eps), where the bias corrections m_hat = m / (1 - b1^t)
        # and v_hat = v / (1 - b2^t) undo the pull towards the zeros that m and v start from
        np.sqrt(v, out=s)
        s /= math.sqrt(1 - b2 ** self.t)  # math's, a Python float: np.sqrt's float64 would make this pass float64
        s += self.eps
        np.divide(m, s, out=s)
        s *= self.lr / (1 - b1 ** self.t)
        p -= s
        # END SOLUTION


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): each step shrinks p by
    lr * weight_decay before Adam's update, instead of adding weight_decay * p to the gradient.

    The same optimiser as Adam(..., weight_decay, decoupled=True), with torch.optim.AdamW's
    default weight_decay of 1e-2; torch's AdamW is likewise its Adam with decoupled decay.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)


def update_average(average, params, decay):
    """An exponential moving average of parameters, in place: a <- decay * a + (1 - decay) * p, per array.

    `average` and `params` are trees of the same shapes (start `average` as a copy of `params`).
    Sampling a GAN's generator from the average of its recent weights rather than from the
    last iterate damps the cycling of alternating training around the equilibrium: in a
    bilinear game the averaged iterates' limit cycles shrink as decay approaches 1 (Yazıcı et
    al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"; Karras et al. 2018
    sample ProGAN's generator this way too). decay = 0 copies params.
    """
    average, params = leaves(average), leaves(params)
    if len(average) != len(params):
        raise ValueError(f"got {len(params)} parameter arrays for an average of {len(average)}")
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    for a, p in zip(average, params):
        if a.shape != p.shape:
            raise ValueError(f"an average of shape {a.shape} cannot follow a parameter of shape {p.shape}")
        a *= decay
        a += (1 - decay) * p


def geometric_decay(lr, lr_final, fraction):
    """The learning rate `fraction` of the way through a training budget, falling geometrically
    from lr (fraction 0) to lr_final (fraction 1 and after): lr · (lr_final / lr) ** fraction.

    A geometric fall shrinks the step by the same factor in every equal share of the budget,
    so a long run settles into a minimum without spending most of its time at a tiny step.
    Measured in the budget's elapsed share rather than in epochs, a slower model or a busier
    machine reaches lr_final at the end of its budget too (demos/vae_mnist.py, semisupervised_mnist.py).
    """
    if lr <= 0 or lr_final <= 0:
        raise ValueError(f"learning rates must be positive, got lr {lr} and lr_final {lr_final}")
    if fraction < 0:
        raise ValueError(f"the elapsed fraction of a budget cannot be negative, got {fraction}")
    return lr * (lr_final / lr) ** min(1.0, fraction)
