"""Samplers run their networks on slices of the batch (nn.in_chunks) so that drawing 10,000
samples for the FID does not hold a transposed convolution's columns for all of them at once.
The slicing must change nothing: the same draws, the same images."""
import numpy as np
import pytest

from minigen import nn
from minigen.models.cgan import conv_cgan
from minigen.models.cvae import CVAE
from minigen.models.dcgan import dcgan
from minigen.models.vae import VAE, VAEConfig
from minigen.models.vaegan import VAEGAN, VAEGANConfig


def test_in_chunks_passes_slices_and_joins_their_outputs():
    x, y = np.arange(23.0).reshape(23, 1), np.arange(23)
    sizes = []

    def fn(x, y, none):
        assert none is None
        sizes.append(len(x))
        return x[:, 0] * 10 + y

    out = nn.in_chunks(fn, x, y, None, size=7)
    assert sizes == [7, 7, 7, 2]
    np.testing.assert_array_equal(out, np.arange(23) * 11)
    sizes.clear()
    assert nn.in_chunks(fn, x, y, None, size=23).shape == (23,) and sizes == [23]


def test_in_chunks_leaves_a_network_in_eval_mode_unchanged(rng):
    net = nn.Sequential(nn.Dense(6), nn.BatchNorm(), nn.ReLU(), nn.Dense(3))
    _, params = net.init(rng, (4,))
    state = {}
    x = rng.standard_normal((30, 4), dtype=np.float32)
    net.apply(params, x, train=True, state=state)  # running statistics away from (0, 1)
    whole = net.apply(params, x, state=state)
    sliced = nn.in_chunks(lambda x: net.apply(params, x, state=state), x, size=8)
    np.testing.assert_allclose(sliced, whole, rtol=1e-6, atol=1e-7)


def _samplers(rng):
    gan, cgan = dcgan(latent=5, width=4), conv_cgan(latent=5, width=4)
    g_params, c_params = gan.init(rng), cgan.init(rng)
    vae = VAE(VAEConfig(latent=3, hidden=16, conv=True))
    cvae = CVAE(VAEConfig(latent=3, hidden=16))
    vaegan = VAEGAN(VAEGANConfig(latent=3, hidden=16, conv=True, width=4, d_hidden=8))
    v_params, cv_params, vg_params = vae.init(rng), cvae.init(rng), vaegan.init(rng)
    return {
        "dcgan": lambda r, n: gan.sample(g_params, r, n),
        "conditional dcgan": lambda r, n: cgan.sample(c_params, r, n),
        "conv vae": lambda r, n: vae.sample(v_params, r, n),
        "cvae": lambda r, n: cvae.sample(cv_params, r, np.arange(n) % 10),
        "vaegan": lambda r, n: vaegan.sample(vg_params, r, n),
    }


@pytest.mark.parametrize("name", ["dcgan", "conditional dcgan", "conv vae", "cvae", "vaegan"])
def test_samples_drawn_in_slices_equal_samples_drawn_at_once(name, monkeypatch):
    sample = _samplers(np.random.default_rng(0))[name]
    at_once = sample(np.random.default_rng(3), 25)
    monkeypatch.setattr(nn, "EVAL_CHUNK", 6)
    calls, in_chunks = [], nn.in_chunks
    monkeypatch.setattr(nn, "in_chunks", lambda fn, *arrays: calls.append(len(arrays[0])) or in_chunks(fn, *arrays))
    sliced = sample(np.random.default_rng(3), 25)
    assert calls == [25], "the sampler should decode through nn.in_chunks"
    assert sliced.shape == at_once.shape == (25, 1, 28, 28)
    np.testing.assert_allclose(sliced, at_once, rtol=1e-6, atol=1e-7)


def test_a_cvae_with_fixed_labels_samples_one_image_per_label(monkeypatch):
    cvae = CVAE(VAEConfig(latent=3, hidden=16))
    params = cvae.init(np.random.default_rng(0))
    monkeypatch.setattr(nn, "EVAL_CHUNK", 4)
    labels = np.arange(9) % 10
    one = cvae.given(labels).sample(params, np.random.default_rng(1), 9)
    np.testing.assert_array_equal(one, cvae.sample(params, np.random.default_rng(1), labels))
    with pytest.raises(ValueError, match="9 labels are fixed"):
        cvae.given(labels).sample(params, np.random.default_rng(1), 5)
