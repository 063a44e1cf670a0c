"""minigen against PyTorch on the CPU: speed and parity of each workload, in one run.

    python benchmarks/run.py [--quick] [--threads 2] [--json FILE] [--only NAME ...]

Each workload has a torch twin with the same architecture and the same initial
weights (copied across by minigen.interop). Each library's step is timed in
processes of its own, three per library, in turns (minigen, torch, minigen, ...),
after a warm-up: in one process, each library's idle thread pool spins while the
other works and slows it (benchmarks/README.md), and each library runs as its
user gets it (minigen's training loop sets malloc to keep freed memory,
minigen.allocator; torch keeps its defaults). Their loss and every gradient are
compared on one shared batch: parity is the worst relative error over the loss
and the gradient arrays (tree_error).
The MLP VAE row has a second anchor: the same step written the plain
HIPS-autograd way (benchmarks/plain_autograd.py: one loss function, `grad`
over a list of (W, b) pairs, Adam over the flattened vector), timed in the same
turns, so that the table shows what minigen's design buys over it.
The full-run rows (one MNIST epoch of the MLP VAE, 300 steps of the DCGAN demo's
nets) run each library in its own subprocess, so that the peak resident memory (RSS)
of each is its own. --quick uses fewer repetitions and skips the full runs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from common import (
    MLP_VAE_BATCH,
    MLP_VAE_LAYERS,
    interleaved_medians,
    interleaved_times,
    machine_header,
    mlp_vae_batch,
    pin_threads,
    scaled_error,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions, no full-epoch rows (~2 min)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None, help="also write the table as JSON here")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these workloads")
    p.add_argument("--full-run-child", nargs=2, metavar=("LIB", "MODEL"), help=argparse.SUPPRESS)
    p.add_argument("--step-child", nargs=2, metavar=("INDEX", "LIB"), help=argparse.SUPPRESS)
    p.add_argument("--reps", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--malloc-defaults", action="store_true",
                   help="with --full-run-child minigen MODEL: leave glibc's malloc at its defaults (minigen.allocator)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MINIGEN_DATA, then the cache)")
    return p.parse_args(argv)


if __name__ == "__main__":
    pin_threads(parse_args().threads)

import autograd  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from twins import (  # noqa: E402
    TorchGAN,
    TorchVAE,
    torch_discriminator_loss,
    torch_nonsaturating,
    torch_wgan_critic_loss,
    torch_wgan_generator_loss,
)

from minigen import losses  # noqa: E402
from minigen.allocator import keep_freed_memory  # noqa: E402
from minigen.autodiff import value_and_grad  # noqa: E402
from minigen.models.dcgan import dcgan  # noqa: E402
from minigen.models.gan import RECIPES, mlp_gan  # noqa: E402
from minigen.models.vae import VAE, make_train_step  # noqa: E402
from minigen.optim import Adam  # noqa: E402
from minigen.tree import leaves  # noqa: E402

BATCH = MLP_VAE_BATCH


NOISE_LEVEL = 1e-5  # an array whose largest |gradient| is below this share of the tree's largest is noise


def tree_error(ours, theirs):
    """The worst, over the arrays of two gradient trees, of each array's own relative error,
    max |ours - theirs| / max |theirs|: a small array (a bias) is held to the same relative
    standard as a large one, not measured against the tree's largest gradient.

    The floor: some gradients are exactly zero in exact arithmetic (a bias just before batch
    norm, which subtracts it again), and two libraries' rounding noise on them (1e-11 against
    1e-11) has no meaningful relative error. An array whose largest |theirs| is below
    NOISE_LEVEL times the tree's largest is such noise (their noise is the rounding of sums of
    terms of the tree's size), so it is measured against the tree's largest instead.
    """
    pairs = [(np.asarray(a, np.float64), np.asarray(b, np.float64))
             for a, b in zip(leaves(ours), leaves(theirs), strict=True)]
    tree_scale = max(float(np.abs(b).max(initial=0.0)) for _, b in pairs)
    floor = NOISE_LEVEL * tree_scale
    return max(float(np.abs(a - b).max(initial=0.0))
               / (own if (own := float(np.abs(b).max(initial=0.0))) >= floor else tree_scale)
               for a, b in pairs)


# --- Workloads: each returns (minigen_step, torch_step, parity, flops_per_step or None) -----------

def mlp_vae(rng):
    """One Adam step of the 784-400-20 VAE on a batch of 128 (loss: BCE summed over pixels + KL)."""
    model = VAE()
    params = model.init(rng)
    twin = TorchVAE(model, params)
    x, eps = mlp_vae_batch(rng)

    value, grads = value_and_grad(model.loss)(params, x, eps)  # parity first, while the weights are the same
    t_value = twin.loss(torch.from_numpy(x), torch.from_numpy(eps))
    t_value.backward()
    error = max(scaled_error(value, t_value.item()), tree_error(grads, twin.grads()))

    step = make_train_step(model, params, Adam(params), np.random.default_rng(1), binarized=False)
    opt, tx = torch.optim.Adam(twin.parameters(), lr=1e-3), torch.from_numpy(x)

    def torch_step():
        opt.zero_grad()
        twin.loss(tx, torch.randn(BATCH, 20)).backward()
        opt.step()

    flops = 3 * 2 * BATCH * sum(a * b for a, b, _ in MLP_VAE_LAYERS)  # the forward GEMMs, and twice that backward
    return (lambda: step((x,))), torch_step, error, flops


def conv_layers(rng, width=64):
    """conv2d and conv_transpose2d forward+backward at a DCGAN's MNIST sizes (batch 64, four layers)."""
    import conv_speed
    cases = []
    for _, transposed, xs, ws, s, p in conv_speed.cases(width):
        x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
        conv = conv_speed.ops.conv_transpose2d if transposed else conv_speed.ops.conv2d
        r = rng.standard_normal(conv(x, w, None, s, p).shape, dtype=np.float32)
        cases.append((transposed, x, w, r, s, p, torch.tensor(x), torch.tensor(w), torch.tensor(r)))

    def ours():
        return [conv_speed.minigen_step(t, x, w, r, s, p) for t, x, w, r, s, p, *_ in cases]

    def theirs():
        return [conv_speed.torch_step(t, tx, tw, tr, s, p) for t, _, _, _, s, p, tx, tw, tr in cases]

    error = max(scaled_error(a, b.numpy()) for pair, tpair in zip(ours(), theirs()) for a, b in zip(pair, tpair))
    return ours, theirs, error, None


def gan_parity(gan, params, real, z, d_loss, g_loss, torch_d_loss, torch_g_loss, gp_eps=None):
    """Largest scaled error over D's loss and gradients and G's loss and gradients, one shared batch."""
    d, g = params["discriminator"], params["generator"]
    twin = TorchGAN(gan, params)
    fake = gan.generate(g, z, train=True)

    def critic_objective(d):
        loss = d_loss(gan.score(d, real, train=True), gan.score(d, fake, train=True))
        if gp_eps is not None:
            loss = loss + losses.gradient_penalty(gan.discriminator.apply, d, real, fake, gp_eps)
        return loss

    d_value, d_grads = value_and_grad(critic_objective)(d)
    g_value, g_grads = value_and_grad(lambda g: g_loss(gan.score(d, gan.generate(g, z, train=True), train=True)))(g)
    treal, tz = torch.from_numpy(real), torch.from_numpy(z)
    t_d = twin.critic_loss(treal, twin.G(tz).detach(), torch_d_loss, gp_eps)
    t_d.backward()
    theirs_d = twin.grads()["discriminator"]
    twin.zero_grad()
    t_g = torch_g_loss(twin.D(twin.G(tz)))
    t_g.backward()
    theirs_g = twin.grads()["generator"]
    return max(scaled_error(d_value, t_d.item()), tree_error(d_grads, theirs_d),
               scaled_error(g_value, t_g.item()), tree_error(g_grads, theirs_g))


def gan_step_workload(gan, recipe, batch, rng, torch_d_loss, torch_g_loss):
    """One alternating step (D, then G) of `gan` with `recipe`, and the same step in torch."""
    params = gan.init(rng)
    real = rng.random((batch, *gan.data_shape), dtype=np.float32)
    z = gan.sample_latent(rng, batch)
    gp_eps = rng.random(batch, dtype=np.float32) if recipe.gp_weight else None
    error = gan_parity(gan, params, real, z, recipe.d_loss, recipe.g_loss, torch_d_loss, torch_g_loss, gp_eps)
    twin = TorchGAN(gan, params)
    step, _, _ = recipe.train_step(gan, params, np.random.default_rng(1))
    treal = torch.from_numpy(real)
    return (lambda: step((real,))), (lambda: twin.step(treal, recipe, torch_d_loss, torch_g_loss)), error, None


def mlp_gan_step(rng):
    """The lecture's MLP GAN (G 100-128-784, D 784-128-1): one D step and one G step, batch 64."""
    return gan_step_workload(mlp_gan(), RECIPES["gan"], 64, rng, torch_discriminator_loss, torch_nonsaturating)


def dcgan_step(rng):
    """DCGAN (batch norm in both nets): one D step and one G step, batch 64, Adam(2e-4, 0.5)."""
    return gan_step_workload(dcgan(), RECIPES["gan"], 64, rng, torch_discriminator_loss, torch_nonsaturating)


def wgan_gp_critic_step(rng):
    """One WGAN-GP critic step on DCGAN's conv critic (no batch norm): the penalty's double backprop."""
    gan = dcgan(critic_norm="none")
    params = gan.init(rng)
    real, batch = rng.random((64, *gan.data_shape), dtype=np.float32), 64
    z, eps = gan.sample_latent(rng, batch), rng.random(batch, dtype=np.float32)
    error = gan_parity(gan, params, real, z, losses.wgan_critic_loss, losses.wgan_generator_loss,
                       torch_wgan_critic_loss, torch_wgan_generator_loss, eps)
    twin = TorchGAN(gan, params)
    fake = gan.generate(params["generator"], z)
    d, d_opt = params["discriminator"], Adam(params["discriminator"], lr=1e-4, betas=(0.5, 0.9))
    objective = value_and_grad(lambda d: losses.wgan_critic_loss(gan.score(d, real), gan.score(d, fake))
                               + losses.gradient_penalty(gan.discriminator.apply, d, real, fake, eps))
    t_opt = torch.optim.Adam(twin.D.parameters(), lr=1e-4, betas=(0.5, 0.9))
    treal, tfake = torch.from_numpy(real), torch.from_numpy(fake)

    def torch_step():
        t_opt.zero_grad()
        twin.critic_loss(treal, tfake, torch_wgan_critic_loss, eps).backward()
        t_opt.step()

    return (lambda: d_opt.step(objective(d)[1])), torch_step, error, None


def plain_autograd_vae(rng):
    """The MLP VAE step of mlp_vae (same weights, batch, noise) written the plain HIPS-autograd way.

    Returns (step, parity against the torch twin). See benchmarks/plain_autograd.py.
    """
    import plain_autograd
    model = VAE()
    params = model.init(rng)  # the same draws, in the same order, as mlp_vae
    x, eps = mlp_vae_batch(rng)
    pairs, images = plain_autograd.from_minigen(params), x.reshape(BATCH, -1)
    twin = TorchVAE(model, params)
    t_value = twin.loss(torch.from_numpy(x), torch.from_numpy(eps))
    t_value.backward()
    value = plain_autograd.vae_loss(pairs, images, eps)
    grads = plain_autograd.to_tree(autograd.grad(plain_autograd.vae_loss)(pairs, images, eps), params)
    error = max(scaled_error(value, t_value.item()), tree_error(grads, twin.grads()))
    step = plain_autograd.make_step(pairs)
    return (lambda: step(images, eps)), error


# The second anchor: workloads also written the plain HIPS-autograd way (issue 13, item 5).
PLAIN_AUTOGRAD = {"MLP VAE step (784-400-20, batch 128, Adam)": plain_autograd_vae}

WORKLOADS = {
    "MLP VAE step (784-400-20, batch 128, Adam)": mlp_vae,
    "MLP GAN step, D then G (the lecture's, batch 64)": mlp_gan_step,
    "DCGAN step, D then G (batch 64)": dcgan_step,
    "WGAN-GP critic step with penalty (DCGAN critic, batch 64)": wgan_gp_critic_step,
    "conv2d + conv_transpose2d fwd+bwd (DCGAN sizes, batch 64)": conv_layers,
    "the same at the DCGAN demo's width 32": lambda rng: conv_layers(rng, width=32),
}


# --- Each library in processes of its own: step times, and a full run's time and memory ------------

ROUNDS = 3  # processes per library and workload, run in turns
DCGAN_STEPS = 300  # the DCGAN full-run row: this many steps of the demo's nets, batch 64


def child_output(args, *flags):
    """This script run again with `flags` at the same threads (and data): its last line, as JSON."""
    cmd = [sys.executable, __file__, *flags, "--threads", str(args.threads)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def step_child(index, lib, reps):
    """Time `lib`'s step (minigen, torch or plain) of the index-th workload, alone; print the times (s)."""
    name = list(WORKLOADS)[index]
    if lib == "minigen":
        keep_freed_memory()  # as minigen.train.train_epochs does before its first step
    if lib == "plain":
        step, _ = PLAIN_AUTOGRAD[name](np.random.default_rng(0))
    else:
        ours, theirs, _, _ = WORKLOADS[name](np.random.default_rng(0))
        step = ours if lib == "minigen" else theirs
    (times,) = interleaved_times([step], reps)
    print(json.dumps(times))


def separate_medians(index, libs, args, reps):
    """Median seconds of each lib's step of the index-th workload, timed by step_child in ROUNDS
    processes per lib, in turns (minigen, torch, minigen, torch, ...), reps steps in all."""
    times = {lib: [] for lib in libs}
    for r in range(ROUNDS):
        share = reps // ROUNDS + (r < reps % ROUNDS)  # 50 steps in 3 processes: 17, 17, 16
        for lib in libs:
            times[lib] += child_output(args, "--step-child", str(index), lib, "--reps", str(share))
    return [float(np.median(times[lib])) for lib in libs]


def rss_mb(field):
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB, from /proc (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def vae_epoch(lib, rng):
    """(step, batch size, steps): one MNIST epoch of the MLP VAE in `lib`."""
    model = VAE()
    params = model.init(rng)
    if lib == "minigen":
        return make_train_step(model, params, Adam(params), rng, binarized=False), BATCH, None
    twin = TorchVAE(model, params)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)

    def step(batch):
        opt.zero_grad()
        twin.loss(torch.from_numpy(batch[0]), torch.randn(len(batch[0]), 20)).backward()
        opt.step()
    return step, BATCH, None


def dcgan_run(lib, rng):
    """(step, batch size, steps): DCGAN_STEPS alternating steps of the DCGAN demo's nets (width 32)."""
    gan = dcgan(width=32)
    params = gan.init(rng)
    if lib == "minigen":
        return RECIPES["gan"].train_step(gan, params, rng)[0], 64, DCGAN_STEPS
    twin = TorchGAN(gan, params)
    return (lambda batch: twin.step(torch.from_numpy(batch[0]), RECIPES["gan"], torch_discriminator_loss,
                                    torch_nonsaturating)), 64, DCGAN_STEPS


FULL_RUNS = {"vae": ("One MNIST epoch of the MLP VAE (469 steps of batch 128)", vae_epoch),
             "dcgan": (f"{DCGAN_STEPS} DCGAN steps, D then G (the demo's width 32, batch 64)", dcgan_run)}


def full_run_child(lib, model, data_dir, malloc_defaults=False):
    """Train FULL_RUNS[model] with `lib`; print its seconds and memory (MB) as JSON.

    The peak is reset just before the run (writing 5 to /proc/self/clear_refs), so
    it is the run's own high-water mark, not that of loading the data.
    malloc_defaults: leave out minigen.allocator's setting, to measure what it saves.
    """
    from minigen.data import batches, load_mnist
    x, _ = load_mnist("train", data_dir)
    rng = np.random.default_rng(0)
    if lib == "minigen" and not malloc_defaults:
        keep_freed_memory()  # as minigen.train.train_epochs does before its first step
    step, batch_size, steps = FULL_RUNS[model][1](lib, rng)
    before = rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = time.perf_counter()
    for i, batch in enumerate(batches(rng, x, batch_size=batch_size)):
        if i == steps:
            break
        step(batch)
    seconds = time.perf_counter() - start
    peak = rss_mb("VmHWM")
    print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak, "growth_mb": peak - before}))


def print_full_runs(args):
    """Run every FULL_RUNS entry in a fresh process per library; print and return the figures."""
    out = {}
    for model, (title, _) in FULL_RUNS.items():
        out[model] = {lib: child_output(args, "--full-run-child", lib, model) for lib in ("minigen", "torch")}
        m, t = out[model]["minigen"], out[model]["torch"]
        print(f"\n{title}, each library in its own process (both import torch and hold MNIST;\n"
              "the growth is what the run itself adds):\n"
              "| | seconds | RSS before (MB) | peak during the run (MB) | growth (MB) |\n|---|---|---|---|---|")
        for lib, r in out[model].items():
            print(f"| {lib} | {r['seconds']:.1f} | {r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['growth_mb']:.0f} |")
        print(f"time ratio {m['seconds'] / t['seconds']:.2f}, peak RSS ratio {m['peak_rss_mb'] / t['peak_rss_mb']:.2f}")
    return out


def gemm_gflops(reps):
    """numpy float32 GEMM speed (1024^3), the BLAS ceiling this machine gives any numpy code."""
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    (seconds,) = interleaved_medians([lambda: a @ a], reps)
    return 2 * 1024 ** 3 / seconds / 1e9


def main():
    args = parse_args()
    if args.full_run_child:
        return full_run_child(*args.full_run_child, args.data_dir, args.malloc_defaults)
    if args.step_child:
        return step_child(int(args.step_child[0]), args.step_child[1], args.reps)
    header = machine_header(args.threads)
    reps = 10 if args.quick else 50
    rows = []
    for index, (name, build) in enumerate(WORKLOADS.items()):
        if args.only and not any(o.lower() in name.lower() for o in args.only):
            continue
        _, _, parity, flops = build(np.random.default_rng(0))
        plain, plain_parity = PLAIN_AUTOGRAD[name](np.random.default_rng(0)) if name in PLAIN_AUTOGRAD else (None, None)
        libs = ["minigen", "torch"] + (["plain"] if plain else [])
        t_ours, t_theirs, *t_plain = separate_medians(index, libs, args, reps)
        rows.append({"workload": name, "minigen_ms": 1000 * t_ours, "torch_ms": 1000 * t_theirs,
                     "ratio": t_ours / t_theirs, "parity": parity,
                     "gflops": None if flops is None else flops / t_ours / 1e9,
                     "plain_autograd_ms": 1000 * t_plain[0] if plain else None, "plain_autograd_parity": plain_parity})
    peak = gemm_gflops(reps)
    print(f"minigen vs torch, median of {reps} steps after 3 warm-up, each library in {ROUNDS} processes "
          f"of its own, in turns\n{header}\n"
          f"numpy float32 GEMM (1024^3): {peak:.0f} GFLOP/s\n")
    print("| workload | minigen ms | torch ms | ratio | parity (max rel. error) | plain autograd ms (ratio to torch) |"
          "\n|---|---|---|---|---|---|")
    for r in rows:
        plain = "—" if r["plain_autograd_ms"] is None else \
            f"{r['plain_autograd_ms']:.2f} ({r['plain_autograd_ms'] / r['torch_ms']:.2f})"
        print(f"| {r['workload']} | {r['minigen_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} | "
              f"{r['parity']:.1e} | {plain} |")
    for r in rows:
        if r["plain_autograd_parity"] is not None:
            print(f"\nplain autograd (benchmarks/plain_autograd.py), {r['workload']}: "
                  f"parity with torch {r['plain_autograd_parity']:.1e}")
    for r in rows:
        if r["gflops"]:
            print(f"\n{r['workload']}: {r['gflops']:.0f} GFLOP/s achieved = {r['gflops'] / peak:.0%} of the GEMM peak")
    full_runs = None if args.quick or args.only else print_full_runs(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": header, "reps": reps, "gemm_gflops": peak, "rows": rows, "full_runs": full_runs},
                      f, indent=2)


if __name__ == "__main__":
    main()
