"""Numbers that say how good a generative model is.

Log-likelihoods are in nats per image; lower negative log-likelihood is better.
"""
from pathlib import Path
from typing import NamedTuple

import numpy as np

from minigen import losses
from minigen.checkpoint import load_params
from minigen.data import batches, binarize
from minigen.models.classifier import build_classifier
from minigen.ops import log_softmax


def iwae_nll(model, params, x, k, rng, batch_size=100, max_samples_per_pass=50_000):
    """Estimate -log p(x) per image by importance sampling with K samples of q(z|x):

        log p(x) >= log (1/K) sum_k p(x, z_k) / q(z_k|x)   (Burda et al. 2016)

    The bound tightens as K grows; with K = 5000 it is the usual test-NLL estimate.
    x: (N, 1, 28, 28) binary. The K samples go through the decoder in chunks so
    memory stays bounded. Returns (N,) estimates of -log p(x).
    """
    out = np.empty(len(x))
    chunk = max(1, max_samples_per_pass // batch_size)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        log_w = np.concatenate([
            model.iwae_log_weights(params, xb, rng.standard_normal((min(chunk, k - j), len(xb), model.cfg.latent),
                                                                   dtype=np.float32))
            for j in range(0, k, chunk)])
        out[start:start + len(xb)] = -losses.iwae_bound(log_w.astype(np.float64))
    return out


def average_ranks(a):
    """Ranks 1..N of the values of a 1-d array, tied values sharing the mean of their ranks (float64)."""
    order = np.argsort(a, kind="stable")
    _, first, counts = np.unique(a[order], return_index=True, return_counts=True)
    ranks = np.empty(len(a))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # a tie group at 0-based first..first+c-1
    return ranks


def auroc(scores, is_anomaly):
    """Area under the ROC curve of `scores` (higher = more anomalous) for the labels `is_anomaly`.

    It is the probability that a random anomaly scores above a random normal example,
    ties counting one half — the Mann-Whitney U statistic over n_pos * n_neg pairs,
    found from ranks in O(N log N) instead of comparing every pair:

        AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg),

    R_pos the sum of the anomalies' ranks among all N scores (ties get their mean rank).
    1 = perfect separation, 0.5 = chance, 0 = perfectly reversed.
    scores: (N,) real; is_anomaly: (N,) bool (or 0/1). Returns a float.
    """
    scores, labels = np.asarray(scores), np.asarray(is_anomaly)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"auroc: expected scores and is_anomaly of the same shape (N,), "
                         f"got {scores.shape} and {labels.shape}")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"auroc: is_anomaly must be bool or 0/1, got values {np.unique(labels)[:5]}")
        labels = labels.astype(bool)
    if not np.isfinite(scores).all():
        raise ValueError(f"auroc: scores must be finite, got {int((~np.isfinite(scores)).sum())} NaN/Inf")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auroc: needs both classes, got {n_pos} anomalies and {n_neg} normal examples")
    u = average_ranks(scores)[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _missing(x_true, x_imputed, mask):
    """The truth and the guess on the missing pixels (mask False), after checking shapes."""
    mask = np.asarray(mask)
    if not np.shape(x_true) == np.shape(x_imputed) == mask.shape or mask.dtype != bool:
        raise ValueError(f"expected x_true, x_imputed and a bool mask of one shape, got {np.shape(x_true)}, "
                         f"{np.shape(x_imputed)} and {mask.dtype} {mask.shape}")
    if mask.all():
        raise ValueError("the mask marks every pixel observed: there is nothing imputed to score")
    return np.asarray(x_true, np.float64)[~mask], np.asarray(x_imputed, np.float64)[~mask]


def missing_pixel_mse(x_true, x_imputed, mask):
    """Mean squared error over the missing pixels (mask False) only; observed ones are given, not guessed."""
    truth, guess = _missing(x_true, x_imputed, mask)
    return float(np.mean((truth - guess) ** 2))


def missing_pixel_bce(x_true, x_imputed, mask, eps=1e-6):
    """Mean binary cross-entropy (nats per pixel) of the truth under the guessed intensities, missing
    pixels only: -[t log p + (1 - t) log(1 - p)]. p is clipped to [eps, 1 - eps] so a confident miss
    costs log(1/eps), not infinity. A constant 0.5 guess scores log 2 = 0.693."""
    truth, guess = _missing(x_true, x_imputed, mask)
    p = np.clip(guess, eps, 1 - eps)
    return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log1p(-p)))


# --- Mode coverage on the 2-D mixtures (the mode-collapse lab) ---------------------------

class ModeCoverage(NamedTuple):
    modes: int  # modes covered, strictly: each the nearest centre of >= min_share of all samples, high quality
    modes_one_sample: int  # modes that are the nearest centre of at least one high-quality sample
    high_quality: float  # share of samples within `threshold` std of their nearest centre, in [0, 1]
    counts: np.ndarray  # (k,) high-quality samples per mode


def mode_coverage(samples, centres, std, threshold=3.0, min_share=0.01):
    """Modes covered (two counts) and the share of high-quality samples on a mixture of
    isotropic Gaussians (the 2-D ring and grid of the mode-collapse lab).

      - a sample is *high quality* if it lies within 3 standard deviations of its nearest
        mode centre (Euclidean distance < threshold · std);
      - `modes_one_sample`: modes that are the nearest centre of at least one high-quality
        sample. This is VEEGAN's rule as its text states it (Srivastava et al. 2017, §5.1:
        "the number of mixture components whose mean is nearest to at least one high
        quality sample", on 2,500 samples, 3 standard deviations for the 2-D data), and
        PacGAN (Lin et al. 2018) reuses VEEGAN's metrics; its released code counts the same
        way (fjxmlzn/PacGAN, pacgan/extensions.py, MetricLogger: a mode is covered when its
        count of samples within 3 std is nonzero). Use it to compare with their tables.
      - `modes` (the headline): a mode is covered only if at least `min_share` of all the
        samples (1 %: 25 of 2,500) are high quality and nearest to it. One stray sample in
        2,500 is not a mode a generator has learnt: a generator that scatters its samples
        over the plane scores well on the one-sample count while its high-quality share is
        small. This stricter rule is minigen's, not the papers'.

    samples: (n, d); centres: (k, d); std: the per-coordinate std of every mode.
    Returns ModeCoverage(modes, modes_one_sample, high_quality, counts).
    """
    samples, centres = np.asarray(samples, np.float64), np.asarray(centres, np.float64)
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1] or len(samples) == 0:
        raise ValueError(f"mode_coverage: expected samples (n, d) and centres (k, d) with the same d, n > 0, "
                         f"got {samples.shape} and {centres.shape}")
    if not std > 0 or not np.isfinite(samples).all():
        raise ValueError(f"mode_coverage: expected std > 0 and finite samples, got std {std}"
                         f"{'' if np.isfinite(samples).all() else ' and samples with NaN/Inf'}")
    if not 0 <= min_share <= 1:
        raise ValueError(f"mode_coverage: min_share is a share of the samples, in [0, 1], got {min_share}")
    distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)  # (n, k)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] < threshold * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    needed = max(1, int(np.ceil(min_share * len(samples) - 1e-9)))  # 25 of 2,500 at 1 %
    return ModeCoverage(int((counts >= needed).sum()), int((counts >= 1).sum()), float(good.mean()), counts)


def vae_test_metrics(model, params, x_test, nll_k=1000, nll_images=1000, seed=1234):
    """The test set's mean -ELBO (all images) and IWAE NLL (the first `nll_images`, K = nll_k), in nats.

    The test images are binarized once with a fixed seed, and the same noise is
    used, so that two models evaluated with the same seed see the same data.
    """
    rng = np.random.default_rng(seed)
    x_bin = binarize(rng, x_test)
    eps = rng.standard_normal((len(x_bin), model.cfg.latent), dtype=np.float32)
    neg_elbo = float(np.mean(np.concatenate([-model.elbo(params, xb, eb) for xb, eb in
                                             batches(None, x_bin, eps, batch_size=1000, shuffle=False)])))
    n = len(x_bin) if nll_images in (0, None) else min(nll_images, len(x_bin))
    nll = float(iwae_nll(model, params, x_bin[:n], nll_k, rng).mean())
    return {"test_neg_elbo": neg_elbo, "test_nll_iwae": nll, "nll_k": nll_k, "nll_images": n}


# --- Sample quality from a classifier's eyes: the FID and Inception-Score analogues -------------
#
# Heusel et al. (2017) compare Inception-v3 features of real and generated images;
# Salimans et al. (2016) score Inception's class predictions. On MNIST the usual
# stand-in for Inception is a small digit classifier: minigen ships one
# (minigen/weights/classifier.npz, made by demos/classifier_mnist.py), so the
# numbers mean the same thing on every machine. They are comparable only to
# numbers from the same classifier: put the real-data references beside them.

CLASSIFIER_WEIGHTS = Path(__file__).resolve().parent / "weights" / "classifier.npz"


def mnist_classifier(path=CLASSIFIER_WEIGHTS):
    """(net, params) of the shipped MNIST classifier (build_classifier's architecture)."""
    net = build_classifier()
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: classifier weights missing; make them with "
                                f"`python demos/classifier_mnist.py --out {Path(path).parent}`")
    params, _ = load_params(path, net.init(np.random.default_rng(0), (1, 28, 28))[1])
    return net, params


def classifier_outputs(images, classifier=None, batch_size=500):
    """(features (N, 128), class probabilities (N, 10)) of images (N, 1, 28, 28) in [0, 1]."""
    net, params = classifier or mnist_classifier()
    features_net, head = net.spec[1]["layers"]
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        f = features_net.apply(params[0], np.asarray(images[start:start + batch_size], np.float32))
        feats.append(f)
        probs.append(np.exp(log_softmax(head.apply(params[1], f))))
    return np.concatenate(feats).astype(np.float64), np.concatenate(probs).astype(np.float64)


def frechet_distance(features_a, features_b):
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½): the Fréchet distance of two Gaussians fitted to features (N, d).

    The matrix square root's trace is taken as Tr((√Σa Σb √Σa)^½), which is the same
    number but the square root of a symmetric matrix, so eigh computes it stably.
    """
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def inception_score(probs):
    """exp(E_x KL(p(y|x) ‖ p(y))) from class probabilities (N, classes).

    1 when every image gets the same prediction; the number of classes when each
    prediction is confident and the classes are used equally."""
    marginal = probs.mean(0)
    kl = np.sum(probs * (np.log(probs + 1e-12) - np.log(marginal + 1e-12)), axis=1)
    return float(np.exp(kl.mean()))


def sample_quality(images, reference, classifier=None, labels=None):
    """{"fid": Fréchet distance to `reference` images in classifier features, "is": the score of `images`}.

    labels: optional (N,) classes the images were drawn for (a conditional model); adds
    "label_accuracy", the share of images the classifier assigns to their own label, and
    "label_accuracy_by_digit", that share among the images asked for each class 0, 1, ...
    (None for a class not asked for).
    """
    classifier = classifier or mnist_classifier()
    feats, probs = classifier_outputs(images, classifier)
    ref_feats, _ = classifier_outputs(reference, classifier)
    scores = {"fid": frechet_distance(feats, ref_feats), "is": inception_score(probs)}
    if labels is not None:
        labels, agree = np.asarray(labels), probs.argmax(1) == np.asarray(labels)
        scores["label_accuracy"] = float(np.mean(agree))
        scores["label_accuracy_by_digit"] = [float(np.mean(agree[labels == d])) if np.any(labels == d) else None
                                             for d in range(probs.shape[1])]
    return scores


def lit_background(samples, reals, threshold=0.5, rare=0.01):
    """The share of samples with at least one background pixel lit (> threshold), in [0, 1].

    Background: the pixels that are > threshold in fewer than `rare` (1 %) of the real images,
    such as the corners and edges of an MNIST digit. A discriminator should punish a pixel that
    real data almost never lights, so a stuck pixel in many samples points to a bug (in the
    data, G's output layer or D's input path) rather than to ordinary GAN noise.
    samples: (N, *shape); reals: (M, *shape), both with pixel values in [0, 1].
    """
    samples, reals = np.asarray(samples), np.asarray(reals)
    if samples.ndim < 2 or samples.shape[1:] != reals.shape[1:] or not len(samples) or not len(reals):
        raise ValueError(f"lit_background: expected samples (N, *shape) and reals (M, *shape) of one image "
                         f"shape, N, M > 0; got {samples.shape} and {reals.shape}")
    background = np.mean(reals > threshold, axis=0) < rare  # (*shape) bool
    lit = (samples > threshold) & background  # (N, *shape)
    return float(np.mean(lit.reshape(len(samples), -1).any(axis=1)))


def real_data_references(x_train, x_test, classifier=None):
    """What real digits score, the yardstick beside a model's numbers: {"fid": FID of x_train
    against x_test (a model can hardly do better), "is": the score of x_test, "lit_background":
    the share of x_train with a pixel lit where x_test's background is}."""
    classifier = classifier or mnist_classifier()
    train_feats, _ = classifier_outputs(x_train, classifier)
    test_feats, test_probs = classifier_outputs(x_test, classifier)
    return {"fid": frechet_distance(train_feats, test_feats), "is": inception_score(test_probs),
            "lit_background": lit_background(x_train, x_test)}


def eval_scores(trainable, x_test, y_test, seeds=(0, 1, 2)):
    """What `minigen eval` reports for a trained model (a minigen.models.trainable.Trainable):

      - what the model measures by itself, trainable.test_metrics(x_test, y_test), if it has any;
      - for a model with a likelihood bound (trainable.likelihood = (model, params)), the test
        -ELBO and the IWAE NLL with K = 100 (vae_test_metrics);
      - for each sample seed, the FID and score of len(x_test) samples against x_test
        (sample_quality) and their lit_background share; a conditional model's samples cycle
        through the classes and are scored for their labels too. The FID of one model moves
        by several points from one set of samples to the next, so one seed's figure is not
        worth quoting to 0.1: "per_seed" keeps each seed's, and "fid", "is", ... are their
        means over the seeds, "fid_sd", "is_sd", ... their sample standard deviations.
    """
    scores = {} if trainable.likelihood is None else vae_test_metrics(*trainable.likelihood, x_test, nll_k=100)
    if trainable.test_metrics is not None:
        scores.update(trainable.test_metrics(x_test, y_test))
    n = len(x_test)
    labels = np.arange(n) % trainable.picture_columns if trainable.needs_labels else None
    per_seed = []
    for seed in seeds:
        samples = trainable.sample(np.random.default_rng(seed), n)
        per_seed.append({"seed": seed, **sample_quality(samples, x_test, labels=labels),
                         "lit_background": lit_background(samples, x_test)})
    return {**scores, **mean_and_sd(per_seed), "per_seed": per_seed}


def mean_and_sd(runs):
    """{key: mean, key_sd: sample sd (0 for one run)} over a list of {key: number} dicts; a key
    holding a list per run (a per-digit table) gets its means entry by entry."""
    summary = {}
    for key in runs[0]:
        if key == "seed":
            continue
        if isinstance(runs[0][key], list):
            summary[key] = [None if None in column else float(np.mean(column))
                            for column in zip(*(run[key] for run in runs))]
            continue
        values = np.array([run[key] for run in runs], np.float64)
        summary[key] = float(values.mean())
        summary[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary
