"""Fill in missing pixels with a VAE: the bottom half, a centre square, or half the pixels at random.

    python demos/imputation_mnist.py                             # train 10 epochs, then impute
    python demos/imputation_mnist.py --params runs/vae/vae.npz   # reuse vae_mnist.py's weights
                                 # (and --partial-params runs/imputation/partial.npz: the proposal's)
    python demos/imputation_mnist.py --sample                    # the packaged sample: a smoke run

Methods, each scored by the mean squared error on the missing pixels against the
true grey-level test images:

  training mean        each missing pixel its mean over the training images (the baseline)
  kNN                  the mean of that pixel over the k training images nearest on the
                       observed pixels (imputation.knn_impute): a baseline without a model
  fixed point          apps.impute: encode, decode the encoder's mean, write the missing
                       pixels back, from the training mean (1 step, and --fixed-steps)
  pseudo-Gibbs         apps.imputation_chain(sample=True): z ~ q(z|x̂), x_mis ~ p(x|z)
                       (Rezende et al. 2014); the average of its draws after --burn-in
  Metropolis-within-   imputation.mwg_impute (Mattei & Frellsen 2018): the encoder only
  Gibbs                proposes z, a Metropolis-Hastings test accepts it, so the chain samples
                       the model's p(x_mis | x_obs); one completion E[x_mis | z_t], and the
                       average of E[x_mis | z_t] after --burn-in (the conditional mean)
  importance-weighted  imputation.importance_impute (Mattei & Frellsen 2019): the same
  mean                 conditional mean by self-normalised importance sampling, --is-k
                       draws of q(z | x with the training mean filled in), no chain

The last two again with a better proposal, marked "partial encoder": q(z | x_obs, mask)
(models.partial_vae), trained for --proposal-epochs with the VAE's decoder fixed, on training
images under a random mask of the three kinds (Ma et al. 2019; Mattei & Frellsen 2019).
Each proposal's acceptance rate (MwG) and effective sample size (importance) is printed.
  collapsed MwG        imputation.mwg_impute(collapsed=True): the partial encoder's z̃ tested
                       against p(z | x_obs) alone, x_mis integrated out (the Gibbs step's
                       p(z | x_obs, x_mis) is pinned down by a full binary completion)

Squared error rewards the conditional mean: a single sharp completion, however
plausible, pays for every stroke it puts where the truth has none. Averaging many
completions estimates E[x_mis | x_obs], the MSE-optimal guess under the model.
Writes OUT/metrics.json, OUT/vae.npz and OUT/partial.npz (when trained) and OUT/imputation.png:
for each mask, rows of the observed pixels (missing ones grey), four completions of the partial
encoder's importance sampler (resampled by weight), its mean, the kNN guess, and the truth.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from minigen import apps, imputation, viz
from minigen.checkpoint import load_params, save_params
from minigen.data import load_split
from minigen.metrics import missing_pixel_mse
from minigen.models import partial_vae
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam
from minigen.train import train_epochs

TARGET = 0.30  # issue 15: bottom-half MSE at least 30 % below the training-mean fill


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n-iter", type=int, default=100, help="steps of each sampling chain")
    p.add_argument("--burn-in", type=int, default=20, help="steps discarded before averaging")
    p.add_argument("--fixed-steps", type=int, default=20, help="steps of the deterministic fixed-point iteration")
    p.add_argument("--knn", type=int, default=10, help="neighbours of the kNN baseline")
    p.add_argument("--is-k", type=int, default=100, help="importance samples of the importance-weighted mean")
    p.add_argument("--more-k", type=int, default=1000,
                   help="importance samples of one more importance-weighted mean, partial encoder only (0: none)")
    p.add_argument("--n-test", type=int, default=None,
                   help="test images imputed (the first n; default all 10,000, with --sample 200)")
    p.add_argument("--params", default=None, help="a vae.npz from vae_mnist.py (same --latent/--hidden): no training")
    p.add_argument("--proposal-epochs", type=int, default=10, help="training of the partial encoder q(z | x_obs)")
    p.add_argument("--proposal-k", type=int, default=1, help="importance samples in its bound (1: the ELBO)")
    p.add_argument("--partial-params", default=None, help="a partial.npz written by this demo: no training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sample", action="store_true", help="use the small packaged sample")
    p.add_argument("--out", default="runs/imputation")
    args = p.parse_args(argv)
    if args.n_test is not None and args.n_test < 1:
        p.error(f"--n-test must be a positive number of test images, got {args.n_test}")
    args.n_test = args.n_test or (200 if args.sample else 10000)  # --sample: a smoke run within two minutes
    if not 0 <= args.burn_in < args.n_iter:
        p.error(f"need 0 <= --burn-in < --n-iter, got {args.burn_in} and {args.n_iter}")
    return args


def get_params(model, x, args, rng):
    """Load --params, or train on all training digits (dynamically binarized)."""
    params = model.init(rng)
    if args.params:
        return load_params(args.params, params)[0]
    step = make_train_step(model, params, Adam(params, lr=args.lr), rng, binarized=True)
    history = train_epochs(step, (x,), args.epochs, rng, args.batch_size, desc="vae")
    print(f"train loss {history[-1]['loss']:.2f} after {args.epochs} epochs", flush=True)
    return params


def training_masks(rng, shape):
    """One mask per image, of a kind drawn uniformly: bottom half, centre square, random 50 % of pixels."""
    kinds = rng.integers(3, size=shape[0])
    masks = np.stack([apps.bottom_half_mask(shape), apps.centre_square_mask(shape, 14),
                      apps.random_pixel_mask(rng, shape, 0.5)])  # (3, N, 1, 28, 28)
    return masks[kinds, np.arange(shape[0])]


def get_partial(model, params, x, args, rng):
    """Load --partial-params, or train q(z | x_obs, mask) against the VAE's fixed decoder."""
    encoder = partial_vae.PartialEncoder(partial_vae.PartialConfig(latent=args.latent, hidden=args.hidden,
                                                                   k=args.proposal_k))
    q_params = encoder.init(rng)
    if args.partial_params:
        return encoder, load_params(args.partial_params, q_params)[0]
    step = partial_vae.make_train_step(encoder, q_params, Adam(q_params, lr=args.lr), rng,
                                       lambda z: model.decode(params, z), training_masks)
    history = train_epochs(step, (x,), args.proposal_epochs, rng, args.batch_size, desc="q(z|x_obs)")
    print(f"partial encoder: -bound on log p(x_obs) {history[-1]['loss']:.2f} after {args.proposal_epochs} epochs",
          flush=True)
    return encoder, q_params


def pseudo_gibbs_mean(model, params, x, mask, args, rng):
    """The average of the stochastic chain's completions after burn-in (binary draws on the missing pixels)."""
    chain, total = apps.imputation_chain(model, params, x, mask, rng=rng, sample=True), 0.0
    for t in range(args.n_iter + 1):
        current = next(chain)
        if t > args.burn_in:
            total = total + current
    return (total / (args.n_iter - args.burn_in)).astype(np.float32)


def compare(model, params, partial, x, mask, x_train, args, seed):
    """Every method's guess for one mask: {name: images}, {proposal: its samplers' diagnostics}, completions
    to picture (keep, N, *image), and the seconds each method took. partial: (PartialEncoder, its params)."""
    mean_image = x_train.mean(axis=0)  # (1, 28, 28): the per-pixel training mean
    guesses, seconds, clock = {}, {}, time.perf_counter()

    def record(name, images):
        nonlocal clock
        guesses[name], seconds[name], clock = images, time.perf_counter() - clock, time.perf_counter()

    record("training mean", np.where(mask, x, mean_image))
    record("kNN", imputation.knn_impute(x_train, x, mask, k=args.knn))
    record("fixed point, 1 step", apps.impute(model, params, x, mask, 1, fill=mean_image))
    record(f"fixed point, {args.fixed_steps} steps", apps.impute(model, params, x, mask, args.fixed_steps,
                                                                 fill=mean_image))
    record("pseudo-Gibbs, mean", pseudo_gibbs_mean(model, params, x, mask, args, np.random.default_rng([seed, 1])))
    proposals = {"": imputation.encoder_proposal(model, params),  # the rows without a tag: the VAE's encoder
                 ", partial encoder": imputation.observed_proposal(*partial)}
    diagnostics = {}
    for i, (tag, proposal) in enumerate(proposals.items()):
        mwg = imputation.mwg_impute(model, params, x, mask, np.random.default_rng([seed, 2 + 2 * i]),
                                    n_iter=args.n_iter, burn_in=args.burn_in, fill=mean_image, proposal=proposal)
        record(f"Metropolis-within-Gibbs{tag}, mean", mwg.mean)
        weighted = imputation.importance_impute(model, params, x, mask, np.random.default_rng([seed, 3 + 2 * i]),
                                                k=args.is_k, fill=mean_image, proposal=proposal, keep=4)
        record(f"importance-weighted mean{tag}, K={args.is_k}", weighted.mean)
        guesses[f"Metropolis-within-Gibbs{tag}, one completion"] = mwg.draws[-1]
        diagnostics[tag.lstrip(", ") or "VAE encoder"] = {
            "mwg_acceptance": mwg.acceptance, "ess_mean": float(weighted.ess.mean()),
            "ess_median": float(np.median(weighted.ess))}
    if args.more_k:
        record(f"importance-weighted mean, partial encoder, K={args.more_k}",
               imputation.importance_impute(model, params, x, mask, np.random.default_rng([seed, 7]), k=args.more_k,
                                            proposal=proposal).mean)
    collapsed = imputation.mwg_impute(model, params, x, mask, np.random.default_rng([seed, 6]), n_iter=args.n_iter,
                                      burn_in=args.burn_in, proposal=proposal, collapsed=True)
    record("collapsed MwG, partial encoder, mean", collapsed.mean)
    diagnostics["partial encoder"]["collapsed_acceptance"] = collapsed.acceptance
    return guesses, diagnostics, weighted.draws, seconds


def main(argv=None):
    args = parse_args(argv)
    load = lambda split: load_split(split, args.data_dir, args.sample, fallback_to_sample=True)  # noqa: E731
    (x, _), (x_test, _) = load("train"), load("test")
    x_test = x_test[:args.n_test]
    model = VAE(VAEConfig(latent=args.latent, hidden=args.hidden))
    start = time.perf_counter()
    params = get_params(model, x, args, np.random.default_rng(args.seed))
    partial = get_partial(model, params, x, args, np.random.default_rng([args.seed, 9]))
    train_seconds = time.perf_counter() - start
    out = Path(args.out)
    if not args.params:
        save_params(out / "vae.npz", params)
    if not args.partial_params:
        save_params(out / "partial.npz", partial[1])

    masks = {"bottom half": apps.bottom_half_mask(x_test.shape),
             "centre square": apps.centre_square_mask(x_test.shape, 14),
             "random 50% of pixels": apps.random_pixel_mask(np.random.default_rng(7), x_test.shape, 0.5)}
    metrics = {"images": len(x_test), "masks": {}, "settings": vars(args), "train_seconds": train_seconds}
    note = "  [SAMPLE ONLY: a VAE trained on 3,000 images]" if args.sample else ""
    pictures, show = [], slice(0, 12)
    for name, mask in masks.items():
        guesses, diagnostics, draws, seconds = compare(model, params, partial, x_test, mask, x, args, args.seed)
        mse = {method: missing_pixel_mse(x_test, images, mask) for method, images in guesses.items()}
        baseline = mse["training mean"]
        metrics["masks"][name] = {"mse": mse, "seconds": seconds, "proposals": diagnostics}
        print(f"\n{name} missing, {len(x_test)} test images: MSE on the missing pixels{note}")
        for method, value in mse.items():
            print(f"  {method:42s} {value:7.4f}   {100 * (value / baseline - 1):+6.1f} % vs the training mean")
        for proposal, d in diagnostics.items():
            collapsed = f" (collapsed: {100 * d['collapsed_acceptance']:.1f} %)" if "collapsed_acceptance" in d else ""
            print(f"  proposal {proposal}: Metropolis-within-Gibbs ({args.n_iter} steps, mean after {args.burn_in}) "
                  f"accepts {100 * d['mwg_acceptance']:.1f} %{collapsed}; importance sampling's ESS mean "
                  f"{d['ess_mean']:.1f}, median {d['ess_median']:.1f} of K = {args.is_k}")
        best = guesses[f"importance-weighted mean, partial encoder, K={args.is_k}"]
        pictures += [np.where(mask, x_test, 0.5)[show], *draws[:, show], best[show], guesses["kNN"][show],
                     x_test[show]]
    bottom = metrics["masks"]["bottom half"]["mse"]
    best = min((v, k) for k, v in bottom.items() if k not in ("training mean", "kNN"))
    reached = best[0] <= (1 - TARGET) * bottom["training mean"]
    print(f"\nbottom half: best VAE method {best[1]!r}, {100 * (1 - best[0] / bottom['training mean']):.1f} % below "
          f"the training mean (target >= {100 * TARGET:.0f} %: {'reached' if reached else 'NOT reached'}){note}")
    viz.save_image_grid(np.concatenate(pictures), out / "imputation.png", ncol=12)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"pictures and metrics in {out}/")


if __name__ == "__main__":
    main()
