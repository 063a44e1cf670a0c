"""The averaged generator (Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN
Training", ICLR 2019): sample a GAN from an exponential moving average of its generator's
weights rather than from the last iterate,

    θ_avg ← β_t · θ_avg + (1 − β_t) · θ      after the t-th generator step (t = 1, 2, ...),
    β_t = min(β, (1 + t) / (10 + t)),       θ_avg starting at θ's initial values.

Alternating training circles around the equilibrium instead of settling on it; the average
of the recent weights sits nearer the centre of the circle (their §3: the averaged iterates
of a bilinear game converge where the iterates themselves cycle). β = 0.999 is their (and
Karras et al. 2018's) usual choice: an average over roughly the last 1/(1 − β) = 1,000 steps.
The ramp β_t is TensorFlow's ExponentialMovingAverage with `num_updates`: without it a short
run samples weights that are still partly the initial ones (β^t of them: 37 % after 1,000 steps
at β = 0.999). With it, the average covers about the last t/9 steps until that reaches 1/(1 − β),
after about 9,000 steps at β = 0.999; from there on it is the plain average.

Batch norm needs one more thing. A generator with batch norm samples (eval mode) with the
running statistics collected during training, but those are the statistics of the *live*
weights' activations: the averaged weights make other activations, so their statistics must
be measured again, by running the averaged generator in train mode over a few batches of
fresh z (as stochastic weight averaging does for averaged classifiers: Izmailov et al. 2018,
§3.2; torch.optim.swa_utils.update_bn).
"""
import numpy as np

from minigen.optim import update_average
from minigen.tree import leaves, rebuild


def check_decay(decay):
    """Refuse a decay outside [0, 1) where it is set (--set ema=...), not at the first step."""
    if not 0 <= decay < 1:
        raise ValueError(f"ema (the decay of the averaged generator) must be in [0, 1), e.g. 0.999; got {decay}")


def ramped_decay(decay, t):
    """β_t = min(β, (1 + t) / (10 + t)) for the average's t-th update, t = 1, 2, ... (module
    docstring): 2/11 for the first, β from t = (10β − 1) / (1 − β) on."""
    return min(decay, (1 + t) / (10 + t))


class MovingAverage:
    """θ_avg, a moving average of a live parameter tree (module docstring), updated in place.

    live: the tree the optimiser updates in place; decay: β in [0, 1). `params` is the average,
    `state` = {"updates": t} the count that sets the ramp: a model puts it among its checkpointed
    buffers (Trainable.state), so a resumed run goes on with the same β_t.
    """

    def __init__(self, live, decay):
        check_decay(decay)
        self.live, self.decay = live, float(decay)
        self.params = copy_tree(live)
        self.state = {"updates": np.array(0, np.int64)}

    def update(self):
        """t ← t + 1, then θ_avg ← β_t θ_avg + (1 − β_t) θ, in place, for the live weights θ."""
        t = int(self.state["updates"]) + 1
        self.state["updates"] = np.array(t, np.int64)
        update_average(self.params, self.live, ramped_decay(self.decay, t))

    def after_each(self, step):
        """The training step `step(batch) -> metrics`, followed by update(): the average follows
        each update of the live tree."""
        def step_and_average(batch):
            metrics = step(batch)
            self.update()
            return metrics
        return step_and_average


def copy_tree(tree):
    """A copy of a parameter tree: the same nesting, new arrays."""
    return rebuild(tree, (np.array(leaf) for leaf in leaves(tree)))


def counting_statistics(live_state):
    """A fresh state for batch norm to fill with plain means over batches (minigen.nn's
    `_update_running_stats` with a batch count): one {"batches": 0} for every layer whose
    statistics the live network keeps in `live_state`, the nesting kept. None if it keeps none."""
    if "mean" in live_state:
        return {"batches": 0}
    fresh = {key: counting_statistics(sub) for key, sub in live_state.items() if isinstance(sub, dict)}
    fresh = {key: sub for key, sub in fresh.items() if sub is not None}
    return fresh or None


def statistics_draws(gan, stat_batches=4, stat_batch_size=256):
    """The generator inputs on which AveragedGenerator measures batch norm's statistics: a list of
    stat_batches pairs (z (stat_batch_size, latent), labels (stat_batch_size,) or None), drawn from
    seed 0, z then the labels of each batch, so that sampling never draws from the run's stream."""
    rng = np.random.default_rng(0)
    return [(gan.sample_latent(rng, stat_batch_size), gan.sample_labels(rng, stat_batch_size))
            for _ in range(stat_batches)]


class AveragedGenerator(MovingAverage):
    """A moving average of a GAN generator's weights, and a sampler that uses it.

    gan: a minigen.models.gan.GAN (or subclass); g_params: its live generator's parameter tree,
    which the optimiser updates in place; decay: β in [0, 1). `params` is the average (a tree
    shaped like g_params), updated by `update()` after each generator step; its count is kept
    in gan.state["average"], with the batch-norm statistics that checkpoints keep.
    stat_batches, stat_batch_size: the train-mode passes that measure batch norm's statistics.
    """

    def __init__(self, gan, g_params, decay, stat_batches=4, stat_batch_size=256):
        super().__init__(g_params, decay)
        self.gan = gan
        gan.state["average"] = self.state
        self.stat_batches, self.stat_batch_size = stat_batches, stat_batch_size
        self._statistics, self._measured_for = None, None

    def batch_norm_statistics(self):
        """Running statistics that belong to the averaged weights (module docstring): the means of
        batch statistics over stat_batches train-mode passes of fresh z, from a fixed seed so that
        sampling never draws from the run's random stream. Measured again only when the average
        has changed since (after a step, a resume or a load), so sampling twice costs it once."""
        now = leaves(self.params)
        if self._measured_for is None or not all(np.array_equal(a, b) for a, b in zip(now, self._measured_for)):
            self._statistics = self._measure()
            self._measured_for = [a.copy() for a in now]
        return self._statistics

    def _measure(self):
        state = counting_statistics(self.gan.state["generator"])
        if state is None:  # no batch norm (or not trained yet): nothing to measure
            return self.gan.state["generator"]
        for z, y in statistics_draws(self.gan, self.stat_batches, self.stat_batch_size):
            # train mode: normalised by this batch's own statistics, which the counting state averages;
            # the live G's running statistics would normalise the averaged G's activations wrongly
            self.gan.generate(self.params, z, y, train=True, state=state)
        return state

    def sample(self, rng, n, y=None):
        """n samples of the averaged generator, (n, *data_shape), as gan.sample draws them
        (y: (n,) labels for a conditional GAN; None: its default classes)."""
        return self.gan.sample({"generator": self.params}, rng, n, y, state=self.batch_norm_statistics())
