"""A small convolutional MNIST classifier: a lesson in the layer stack, and the
feature extractor behind minigen's FID and Inception-Score analogues.

    x (N, 1, 28, 28) -> conv 3x3, 32 -> conv 4x4/2, 64 (14x14) -> conv 4x4/2, 64 (7x7)
      -> dense 128 = the *features* -> dropout -> dense 10 = class logits
"""
import autograd.numpy as np
import numpy as onp

from minigen import nn
from minigen.autodiff import value_and_grad
from minigen.data import batches
from minigen.init import he_normal
from minigen.models.trainable import apply_gradients, check_finite
from minigen.ops import log_softmax, one_hot


def build_classifier(dropout=0.3):
    """Sequential(features, head): params[0] are the feature extractor's."""
    features = nn.Sequential(
        nn.Conv2d(32, 3, padding=1, w_init=he_normal), nn.ReLU(),
        nn.Conv2d(64, 4, stride=2, padding=1, w_init=he_normal), nn.ReLU(),
        nn.Conv2d(64, 4, stride=2, padding=1, w_init=he_normal), nn.ReLU(),
        nn.Flatten(), nn.Dense(128, w_init=he_normal), nn.ReLU(),
    )
    head = nn.Sequential(nn.Dropout(dropout), nn.Dense(10))
    return nn.Sequential(features, head)


def cross_entropy(logits, labels):
    """Mean of -log softmax(logits)[label]. logits: (N, 10), labels: (N,) int."""
    return -np.sum(one_hot(labels, logits.shape[1]) * log_softmax(logits)) / len(labels)


def accuracy(net, params, x, y, batch_size=1000):
    """Share of examples (x (N, 1, 28, 28), y (N,) int) whose largest logit is the true label."""
    right = sum(int(onp.sum(onp.argmax(net.apply(params, xb), axis=1) == yb))
                for xb, yb in batches(None, x, y, batch_size=batch_size, shuffle=False))
    return right / len(y)


def make_train_step(net, params, opt, rng):
    """step((x, y)) -> {"loss", "grad_norm"}: cross-entropy with dropout on, value_and_grad, a guarded
    opt.step. Train it with minigen.train.train_epochs(step, (x, y), ...), as the demos do."""
    def loss(params, xb, yb):
        return cross_entropy(net.apply(params, xb, train=True, rng=rng), yb)

    loss_and_grad = value_and_grad(loss)

    def step(batch):
        value, grads = loss_and_grad(params, *batch)
        return {"loss": check_finite("loss", value), "grad_norm": apply_gradients(opt, grads, "classifier")}

    return step
