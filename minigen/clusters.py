"""k-means: cluster a dataset into k groups without labels, for the self-conditioned GAN
(minigen.models.selfcond), which is told an image's cluster as a conditional GAN is told its class.

Lloyd's algorithm (Lloyd 1982): assign every point to its nearest centre, move every centre to
the mean of its points, repeat until no point changes cluster. It only ever lowers the sum of
squared distances, so it stops, but where depends on the start; k-means++ (Arthur &
Vassilvitskii 2007) starts from centres drawn one at a time, each point with probability
proportional to its squared distance to the nearest centre drawn so far, which spreads them
over the data and bounds the expected cost within O(log k) of the best clustering's.
"""
import numpy as np


def squared_distances(x, centres, x_norms=None):
    """‖x_i − c_j‖²: (N, D), (k, D) -> (N, k), through one GEMM (‖x‖² − 2 x·c + ‖c‖²), clipped
    at 0 where rounding makes it slightly negative. x_norms: ‖x_i‖² (N,), if already known."""
    x_norms = np.einsum("nd,nd->n", x, x) if x_norms is None else x_norms
    return np.maximum(x_norms[:, None] - 2 * x @ centres.T + np.einsum("kd,kd->k", centres, centres), 0)


def nearest_centre(x, centres):
    """Each row's nearest centre: (N, D), (k, D) -> (N,). ‖x_i‖² is the same for every j, so the
    argmin needs only −2 x·c + ‖c‖²."""
    return (np.einsum("kd,kd->k", centres, centres) - 2 * x @ centres.T).argmin(1)


def kmeans_plus_plus(x, k, rng):
    """k starting centres (k, D) drawn from the rows of x (N, D) by k-means++ (module docstring)."""
    centres = [x[rng.integers(len(x))]]
    x_norms = np.einsum("nd,nd->n", x, x)
    nearest = squared_distances(x, centres[0][None], x_norms)[:, 0]  # (N,): to the nearest centre so far
    for _ in range(k - 1):
        if nearest.sum() == 0:  # fewer distinct points than k: every further draw repeats one
            centres.append(x[rng.integers(len(x))])
            continue
        centres.append(x[rng.choice(len(x), p=nearest / nearest.sum())])
        nearest = np.minimum(nearest, squared_distances(x, centres[-1][None], x_norms)[:, 0])
    return np.stack(centres)


def kmeans(x, k, rng, max_iters=50):
    """Cluster the rows of x: (N, D) or (N, ...) images (flattened) -> (centres (k, D) float32,
    labels (N,) int64 in [0, k), each point's nearest centre). rng: a numpy Generator (the
    seeding's draws). Lloyd's iterations stop when no label changes, or after max_iters. A
    cluster left empty keeps its centre."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"kmeans expects points (N, D) or images (N, ...), got an array of shape {x.shape}")
    x = x.reshape(len(x), -1)
    if not np.isfinite(x).all():
        raise ValueError("kmeans: the points contain NaN or Inf")
    if int(k) != k or not 1 <= k <= len(x):
        raise ValueError(f"kmeans: k must be an int in [1, N = {len(x)}], got {k!r}")
    centres, labels = kmeans_plus_plus(x, int(k), rng), None
    for _ in range(max_iters):
        new = nearest_centre(x, centres)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        members = np.eye(len(centres), dtype=np.float32)[labels]  # (N, k) one-hot: the sums as one GEMM
        counts = members.sum(0)
        filled = counts > 0
        centres[filled] = (members.T @ x)[filled] / counts[filled, None]
    return centres, nearest_centre(x, centres).astype(np.int64)
