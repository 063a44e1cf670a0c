"""The classifier's loss against torch's cross entropy."""
import numpy as np
import torch
import torch.nn.functional as F

from minigen.models.classifier import cross_entropy


def test_cross_entropy_matches_torch(rng):
    logits = (rng.standard_normal((7, 10)) * 5).astype(np.float32)
    labels = rng.integers(0, 10, 7)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    value = cross_entropy(logits, labels)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, expected, rtol=1e-6)
