"""Checks of the VAE exercises: gaussian_kl, reparameterize, elbo."""
import numpy as np

from .cases import F32, F32_HINT, check, normal
from .compare import gradients

# --- gaussian_kl ------------------------------------------------------------------------

def kl_inputs(dtype):
    return lambda rng: {"mu": normal(rng, (5, 3), dtype), "logvar": normal(rng, (5, 3), dtype, 0.8),
                        "w": normal(rng, (5,), dtype)}


@check("gaussian_kl", "value", 5, "KL of 5 Gaussians in 3-d (float64)", kl_inputs(np.float64))
def kl_value(pkg, inp):
    return {"kl": pkg.losses.gaussian_kl(inp["mu"], inp["logvar"])}


@check("gaussian_kl", "gradient", 3, "gradient in mu and logvar", kl_inputs(np.float64), gradient=True)
def kl_gradient(pkg, inp):
    return gradients(pkg.losses.gaussian_kl, {"mu": inp["mu"], "logvar": inp["logvar"]}, inp["w"])


@check("gaussian_kl", "float32", 2, "float32 in, float32 out (value and gradient)", kl_inputs(np.float32),
       hint=F32_HINT, **F32)
def kl_float32(pkg, inp):
    return {**kl_value(pkg, inp), **kl_gradient(pkg, inp)}


# --- reparameterize -----------------------------------------------------------------------

def reparam_inputs(dtype, samples=()):
    return lambda rng: {"mu": normal(rng, (4, 3), dtype), "logvar": normal(rng, (4, 3), dtype),
                        "eps": normal(rng, samples + (4, 3), dtype), "w": normal(rng, samples + (4, 3), dtype)}


@check("reparameterize", "value", 4, "z for 4 examples in 3-d (float64)", reparam_inputs(np.float64))
def reparam_value(pkg, inp):
    return {"z": pkg.losses.reparameterize(inp["mu"], inp["logvar"], inp["eps"])}


@check("reparameterize", "samples", 1, "K = 5 samples per example: eps (5, 4, 3), mu (4, 3)",
       reparam_inputs(np.float64, (5,)), hint="let numpy broadcast mu and σ (N, D) against eps (K, N, D)")
def reparam_samples(pkg, inp):
    return reparam_value(pkg, inp)


@check("reparameterize", "gradient", 3, "gradient in mu and logvar (eps held fixed), through the library's VJP",
       reparam_inputs(np.float64), gradient=True, given_vjp=True, needs=("reparameterize_backward",))
def reparam_gradient(pkg, inp):
    f = lambda mu, logvar: pkg.losses.reparameterize(mu, logvar, inp["eps"])
    return gradients(f, {"mu": inp["mu"], "logvar": inp["logvar"]}, inp["w"])


@check("reparameterize", "float32", 2, "float32 in, float32 out", reparam_inputs(np.float32), hint=F32_HINT, **F32)
def reparam_float32(pkg, inp):
    return reparam_value(pkg, inp)


# --- elbo -------------------------------------------------------------------------------------

def elbo_inputs(dtype):
    return lambda rng: {"log_likelihood": normal(rng, (6,), dtype, 50.0) - 100,
                        "kl": np.abs(normal(rng, (6,), dtype, 5.0)), "w": np.ones((), dtype)}


@check("elbo", "elbo", 3, "the ELBO of 6 examples from their log-likelihoods and KLs", elbo_inputs(np.float64))
def elbo_value(pkg, inp):
    return {"elbo": pkg.losses.elbo(inp["log_likelihood"], inp["kl"])}


@check("elbo", "beta_vae_loss", 3, "the β-VAE loss with β = 1 and β = 4", elbo_inputs(np.float64))
def beta_vae_value(pkg, inp):
    ll, kl = inp["log_likelihood"], inp["kl"]
    return {"loss_beta1": pkg.losses.beta_vae_loss(ll, kl, 1.0), "loss_beta4": pkg.losses.beta_vae_loss(ll, kl, 4.0)}


@check("elbo", "gradient", 2, "gradient of the β-VAE loss (β = 4) in log-likelihood and KL",
       elbo_inputs(np.float64), gradient=True)
def beta_vae_gradient(pkg, inp):
    f = lambda log_likelihood, kl: pkg.losses.beta_vae_loss(log_likelihood, kl, 4.0)
    return gradients(f, {"log_likelihood": inp["log_likelihood"], "kl": inp["kl"]}, inp["w"])


@check("elbo", "float32", 2, "float32 in, float32 out", elbo_inputs(np.float32), hint=F32_HINT, **F32)
def elbo_float32(pkg, inp):
    return {**elbo_value(pkg, inp), **beta_vae_value(pkg, inp), **beta_vae_gradient(pkg, inp)}


