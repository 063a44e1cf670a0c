"""Numbers that say how good a generative model is.

Log-likelihoods are in nats per image; lower negative log-likelihood is better.
"""
import numpy as np

from minigen import losses


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


def vae_test_metrics(model, params, x_test, nll_k=1000, nll_images=1000, seed=1234):
    """The test set's mean -ELBO (all images) and IWAE NLL (the first `nll_images`, K = nll_k), in nats.

    The test images are binarized once with a fixed seed, and the same noise is
    used, so that two models evaluated with the same seed see the same data.
    """
    from minigen.models.vae import binarize
    from minigen.train import evaluate

    rng = np.random.default_rng(seed)
    x_bin = binarize(rng, x_test)
    eps = rng.standard_normal((len(x_bin), model.cfg.latent), dtype=np.float32)
    neg_elbo = evaluate(lambda b: -model.elbo(params, b[0], b[1]), (x_bin, eps))
    n = len(x_bin) if nll_images in (0, None) else min(nll_images, len(x_bin))
    nll = float(iwae_nll(model, params, x_bin[:n], nll_k, rng).mean())
    return {"test_neg_elbo": neg_elbo, "test_nll_iwae": nll, "nll_k": nll_k, "nll_images": n}
