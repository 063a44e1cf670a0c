"""k-means (minigen.clusters): it finds separated clusters, its labels are nearest centres, and bad
input is refused by name."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigen.clusters import kmeans, squared_distances


def same_partition(a, b):
    """Whether two labellings group the points alike, whatever the clusters are called."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 6), dim=st.integers(1, 5), per_cluster=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_kmeans_finds_well_separated_clusters(k, dim, per_cluster, seed):
    """Points within 0.01 of k centres 10 apart: the clusters found are the ones the points came from."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(k), per_cluster)
    centres = 10 * np.eye(max(k, dim))[:k, :dim] if dim >= k else 10 * rng.permutation(k)[:, None] * np.ones(dim)
    x = (centres[truth] + rng.uniform(-0.01, 0.01, (len(truth), dim))).astype(np.float32)
    found_centres, labels = kmeans(x, k, np.random.default_rng(seed))
    assert labels.shape == (len(x),) and labels.dtype == np.int64 and found_centres.shape == (k, dim)
    assert same_partition(labels, truth)
    for j in range(k):  # each centre is the mean of its points
        np.testing.assert_allclose(found_centres[j], x[labels == j].mean(0), atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_kmeans_labels_are_nearest_centres(n, k, seed):
    """On any data (here uniform noise, no clusters at all) each label names the nearest centre, and the
    result is the same for the same seed."""
    k = min(k, n)
    x = np.random.default_rng(seed).uniform(size=(n, 3)).astype(np.float32)
    centres, labels = kmeans(x, k, np.random.default_rng(seed))
    distances = squared_distances(x, centres)
    np.testing.assert_allclose(distances[np.arange(n), labels], distances.min(1), rtol=1e-5, atol=1e-6)
    again_centres, again = kmeans(x, k, np.random.default_rng(seed))
    np.testing.assert_array_equal(labels, again)
    np.testing.assert_array_equal(centres, again_centres)


def test_squared_distances_match_the_definition(rng):
    x, c = rng.standard_normal((7, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(squared_distances(x, c), ((x[:, None] - c[None]) ** 2).sum(-1), rtol=1e-5, atol=1e-5)


def test_kmeans_takes_images_and_repeated_points(rng):
    """Images are flattened; fewer distinct points than k leaves some clusters empty, not a crash."""
    images = rng.uniform(size=(12, 1, 2, 2)).astype(np.float32)
    centres, labels = kmeans(images, 3, rng)
    assert centres.shape == (3, 4) and labels.shape == (12,)
    same = np.ones((5, 2), np.float32)
    centres, labels = kmeans(same, 3, rng)
    np.testing.assert_array_equal(centres, np.ones((3, 2)))


@pytest.mark.parametrize("x, k, message", [
    (np.zeros(5), 2, r"points \(N, D\)"),
    (np.zeros((0, 3)), 1, r"points \(N, D\)"),
    (np.zeros((4, 2)), 5, r"k must be an int in \[1, N = 4\]"),
    (np.zeros((4, 2)), 0, "k must be"),
    (np.zeros((4, 2)), 1.5, "k must be"),
    (np.array([[0.0, np.nan]]), 1, "NaN or Inf"),
])
def test_kmeans_refuses_bad_input_by_name(x, k, message):
    with pytest.raises(ValueError, match=message):
        kmeans(x, k, np.random.default_rng(0))
