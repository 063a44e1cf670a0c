"""Training M2 (minigen.models.m2) semi-supervised: which images keep their labels, the step on
one labelled and one unlabelled batch, and `minigen train m2`.

    minigen train m2 --set labels=100          # 10 labels per class, the other images unlabelled

The labelled images are drawn once, `labels / 10` per class, with their own generator
(`label_seed`), so a run, its resumption and its evaluation all see the same labelled set
whatever the run's seed. `minigen eval` reports the classifier's test error.
"""
from dataclasses import dataclass

import numpy as onp

from minigen import losses
from minigen.autodiff import value_and_grad
from minigen.data import balanced_indices, binarize
from minigen.models.m2 import M2, M2Config
from minigen.models.trainable import Trainable, apply_gradients, check_finite, configure
from minigen.optim import Adam


@dataclass(frozen=True)
class SemiSupervisedConfig(M2Config):
    """M2's networks and α (M2Config), and how the training set is split and fed.

    alpha_scale is 10 here, not the paper's 0.1: α = 10 N teaches the classifier the labels
    before the decoder uses y (why: minigen.models.m2's docstring; measured: the README's M2 row).
    """
    alpha_scale: float = 10.0
    labels: int = 100  # labelled training images, the same number per class
    label_seed: int = 0  # which ones: drawn with np.random.default_rng(label_seed)
    labelled_batch: int = 100  # labelled images per step, drawn from the labelled set
    labelled_copies: int = 1  # see make_train_step; 1 is the paper's J


def labelled_subset(labels, n_labels, rng, n_classes=10):
    """Split indices into a labelled set, n_labels / n_classes images of each class drawn
    with rng, and the unlabelled rest. labels: (N,) int -> (labelled (n_labels,), unlabelled)."""
    labelled = balanced_indices(rng, labels, n_labels, n_classes)
    return labelled, onp.setdiff1d(onp.arange(len(labels)), labelled)


def make_train_step(model, params, opt, rng, x_labelled, y_labelled, n_unlabelled, labelled_batch=100,
                    labelled_copies=1, draw=binarize):
    """step((x_u,)) -> {"loss": J^α/N}: one unlabelled batch, labelled_batch images drawn from
    the labelled set, both drawn afresh by draw(rng, x) (dynamic binarization for pixels;
    z1 ~ q(z1|x) for M1's features, minigen.models.m1m2.draw_features); fresh noise eps;
    value_and_grad; a guarded opt.step.

    labelled_copies = 1 is the paper's J. More counts each labelled image that many times,
    as if the labelled set were replicated (N grows alike); N_u / N_l copies weigh the
    labelled and the unlabelled batch means equally, as many reimplementations do.
    """
    if int(labelled_copies) != labelled_copies or labelled_copies < 1:
        raise ValueError(f"make_train_step: labelled_copies must be a positive integer, got {labelled_copies!r}")
    loss_and_grad = value_and_grad(model.loss)
    size = min(labelled_batch, len(x_labelled))
    n_labelled = len(x_labelled) * int(labelled_copies)

    def step(batch):
        idx = rng.choice(len(x_labelled), size, replace=False)
        x_l, x_u = draw(rng, x_labelled[idx]), draw(rng, batch[0])
        eps_l = losses.sample_eps(rng, (size, model.cfg.latent))
        eps_u = losses.sample_eps(rng, (model.cfg.n_classes, len(x_u), model.cfg.latent))
        value, grads = loss_and_grad(params, x_l, y_labelled[idx], x_u, eps_l, eps_u, n_labelled, n_unlabelled)
        loss = check_finite("loss", value)  # the NaN guard, as in every model's step
        return {"loss": loss, "grad_norm": apply_gradients(opt, grads, "M2")}

    return step


def make_supervised_step(model, params, opt, rng, draw=binarize):
    """step((x, y)) -> {"loss": ...}: the classifier alone on labelled images (drawn alike)."""
    loss_and_grad = value_and_grad(model.supervised_loss)

    def step(batch):
        value, grads = loss_and_grad(params, draw(rng, batch[0]), batch[1])
        loss = check_finite("loss", value)
        return {"loss": loss, "grad_norm": apply_gradients(opt, grads, "classifier")}

    return step


# --- For `minigen train` -------------------------------------------------------------------

VARIANTS = {"m2": "semi-supervised M2 (Kingma et al. 2014): --set labels=100 keeps 10 labels per class; "
                  "eval reports the test error"}


def build(name, options, rng, lr=None):
    """The Trainable for `minigen train m2`. Its split_data(x, y) picks the labelled set and
    returns (x_unlabelled,), the minibatches of the loop; each step also draws a labelled batch."""
    cfg = configure(SemiSupervisedConfig(), options)
    model = M2(cfg)
    params = model.init(rng)
    opt = Adam(params, lr=1e-3 if lr is None else lr)
    steps = {}

    def split_data(x, y):
        labelled, unlabelled = labelled_subset(y, cfg.labels, onp.random.default_rng(cfg.label_seed), cfg.n_classes)
        steps["m2"] = make_train_step(model, params, opt, rng, x[labelled], y[labelled], len(unlabelled),
                                      cfg.labelled_batch, cfg.labelled_copies)
        return (x[unlabelled],)

    def step(batch):
        if "m2" not in steps:
            raise RuntimeError("M2's step needs its labelled images: call trainable.training_arrays(x, y) first")
        return steps["m2"](batch)

    def test_metrics(x_test, y_test):  # the classifier q(y|x) on grey-level (expected binary) test images
        wrong = [model.predict(params, x_test[i:i + 1000]) != y_test[i:i + 1000] for i in range(0, len(x_test), 1000)]
        return {"test_error": float(onp.mean(onp.concatenate(wrong)))}

    return Trainable(params={"m2": params}, optimizers={"m2": opt}, step=step,
                     sample=lambda sample_rng, n: model.sample(params, sample_rng, onp.arange(n) % cfg.n_classes),
                     remedies="lower --lr", test_metrics=test_metrics, needs_labels=True,
                     picture_columns=cfg.n_classes, split_data=split_data)
