"""Package a trained run as pretrained weights: minigen/weights/pretrained/NAME.npz and NAME.json.

    python benchmarks/package_pretrained.py NAME RUN_DIR --command "minigen demo dcgan" [--dtype float16]
        [--commit TEXT] [--threads 2] [--out minigen/weights/pretrained] [--eval-images N]

RUN_DIR is a folder that `minigen train` or a model demo (`minigen demo dcgan`, ...) wrote
(config.json + checkpoint.npz), or one that demos/vae_mnist.py wrote (vae.npz + metrics.json),
or demos/semisupervised_mnist.py (m2.npz + metrics.json: M2 as `minigen train m2` builds it).
The script keeps what sampling needs (minigen.pretrained.sampling_weights: a GAN's averaged
generator and its batch-norm statistics; a VAE's encoder and decoder), never the discriminator
or the optimiser state; stores the weights as --dtype; writes NAME.npz atomically; then
scores the *written* file exactly as `minigen eval --pretrained NAME` does (FID and score
over 3 sample seeds in the shipped classifier; a VAE's test -ELBO and NLL too) and records,
in NAME.json: the command, the commit, the run's config, its wall time and steps, the metrics,
the machine, and the SHA-256 the loader checks. It also prints the run's own float32 metrics
(RUN_DIR/eval.json, or measured here) beside the shipped file's, so you can see whether
float16 moved them: if it moves the FID by more than its spread over sample seeds, store float32.
Rerunning replaces NAME's files.

Another kind of folder needs a reader in READERS below, like read_vae_demo.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import pin_threads

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("test_neg_elbo", "test_nll_iwae", "fid", "is", "label_accuracy", "lit_background")  # compared, if present


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the pretrained model's name, e.g. dcgan")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--command", required=True, help="the command that trained RUN_DIR, recorded as it is given")
    p.add_argument("--commit", default=None, help="the commit(s) the run was trained at (default: this checkout's "
                                                  "HEAD, marked if minigen/ has uncommitted changes)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="how the weights are stored")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads for the evaluation")
    p.add_argument("--out", default=str(ROOT / "minigen" / "weights" / "pretrained"), help="the folder to write to")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MINIGEN_DATA, then the cache)")
    p.add_argument("--eval-images", type=int, default=None,
                   help="score on the first N test images only (a smoke run; the default, all 10,000, is what "
                        "`minigen eval` measures)")
    return p.parse_args(argv)


def read_run(run_dir):
    """(config, trainable, facts) of a `minigen train` run: facts = wall time and steps from its log."""
    from minigen import train
    config, trainable = train.load_run(run_dir)
    logged = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line]
    steps = max((r["step"] for r in logged if "step" in r), default=0)
    seconds = sum(r.get("seconds", 0.0) for r in logged if r.get("summary"))
    epochs = sum(1 for r in logged if r.get("summary"))
    return config, trainable, {"train_seconds": seconds, "steps": steps, "epochs_logged": epochs}


def demo_folder(run_dir, model, options, weights):
    """(config, trainable) of a demo's folder: its arguments (metrics.json, here `args`) as the
    config `minigen train MODEL` records, and the weights file `weights` (group MODEL's params)."""
    import numpy as np

    from minigen import models
    from minigen.checkpoint import load_params
    from minigen.rundir import copy_into
    args = json.loads((Path(run_dir) / "metrics.json").read_text())
    config = {"model": model, "options": options, "seed": args["seed"], "lr": args["lr"], "batch_size":
              args["batch_size"], "epochs": args["epochs"], "data": "sample" if args["sample"] else "mnist"}
    trainable = models.build(model, options, np.random.default_rng(args["seed"]), args["lr"])
    params, _ = load_params(Path(run_dir) / weights, trainable.params[model])
    copy_into(trainable.params[model], params)
    return config, trainable


def read_vae_demo(run_dir):
    """(config, trainable, facts) of a folder demos/vae_mnist.py wrote: its arguments as the
    options of `minigen train vae`, the weights from vae.npz."""
    args = json.loads((Path(run_dir) / "metrics.json").read_text())
    options = {"latent": str(args["latent"]), "hidden": ",".join(str(h) for h in args["hidden"]),
               "activation": args["activation"], "conv": str(args["conv"]).lower(), "beta": str(args["beta"]),
               "k": str(args["k"])}
    config, trainable = demo_folder(run_dir, "vae", options, "vae.npz")
    facts = {"train_seconds": args["train_seconds"], "epochs": args["epochs"],
             "demo_metrics": {k: args[k] for k in ("test_neg_elbo", "test_nll_iwae", "nll_k", "nll_images")}}
    return config, trainable, facts


def read_m2_demo(run_dir):
    """(config, trainable, facts) of a folder demos/semisupervised_mnist.py wrote: its arguments as
    the options of `minigen train m2` (the same labelled images: label_seed is the demo's seed,
    with which it drew them), the weights from m2.npz."""
    args = json.loads((Path(run_dir) / "metrics.json").read_text())
    options = {"labels": str(args["labels"]), "label_seed": str(args["seed"]), "latent": str(args["latent"]),
               "hidden": str(args["hidden"]), "alpha_scale": str(args["alpha_scale"])}
    config, trainable = demo_folder(run_dir, "m2", options, "m2.npz")
    facts = {"train_seconds": args["train_seconds"], "cpu_minutes": args["cpu_minutes"],
             "demo_metrics": {k: args[k] for k in ("test_error", "baseline_test_error", "test_images")}}
    return config, trainable, facts


READERS = {"checkpoint.npz": read_run, "vae.npz": read_vae_demo, "m2.npz": read_m2_demo}  # what tells a folder's kind


def read_folder(run_dir):
    for marker, reader in READERS.items():
        if (Path(run_dir) / marker).is_file():
            return reader(run_dir)
    raise SystemExit(f"{run_dir}: holds none of {', '.join(READERS)}: not a run this script can package")


def scores(trainable, data_dir, n):
    """minigen eval's figures (minigen.metrics.eval_scores) on the first n test images (None: all)."""
    from minigen import metrics
    from minigen.data import load_split
    x, y = load_split("test", data_dir)
    return metrics.eval_scores(trainable, x[:n], y[:n])


def commit_of_checkout():
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--", "minigen")
    return head + (" with uncommitted changes to minigen/" if dirty else "")


def machine(threads):
    import numpy as np
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else ""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return (f"{os.cpu_count()}-core {platform.machine()} ({cpu}), python {sys.version.split()[0]}, "
            f"numpy {np.__version__} with {blas['name']} {blas['version']}, {threads} BLAS threads for the evaluation")


def write_json(path, record):
    """Write `record` as JSON atomically (beside the target, then renamed over it)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record, indent=2) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def comparison(source, shipped):
    """Lines: each metric of the run's own weights beside the shipped file's, with the seed spread."""
    lines = []
    for key in KEYS:
        if key in shipped and key in source:
            spread = f" (sd over sample seeds {shipped[key + '_sd']:.3g})" if key + "_sd" in shipped else ""
            lines.append(f"  {key:16s} run {source[key]:.4f}   shipped {shipped[key]:.4f}{spread}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    pin_threads(args.threads)
    from minigen import pretrained
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config, trainable, facts = read_folder(args.run_dir)
    source_eval = Path(args.run_dir) / "eval.json"
    source = json.loads(source_eval.read_text()) if source_eval.is_file() and args.eval_images is None else None
    if source is None:
        print(f"scoring the run's own float32 weights ({args.eval_images or 'all'} test images)", flush=True)
        source = scores(trainable, args.data_dir, args.eval_images)
    build, params, state = pretrained.sampling_weights(config, trainable, args.dtype)
    npz = pretrained.save(out / f"{args.name}.npz", build, params, state, args.dtype)
    record = {"name": args.name, "file": npz.name, "sha256": pretrained.sha256(npz), "bytes": npz.stat().st_size,
              "dtype": args.dtype, "command": args.command, "commit": args.commit or commit_of_checkout(),
              "run": {"folder": str(Path(args.run_dir).resolve()), "config": config, **facts},
              "machine": machine(args.threads), "packaged_with": shlex.join(["python", *sys.argv])}
    write_json(out / f"{args.name}.json", record)  # loadable now; the metrics follow
    print(f"wrote {npz} ({npz.stat().st_size / 1e6:.2f} MB, {args.dtype}); scoring it as "
          f"`minigen eval --pretrained {args.name}` does", flush=True)
    start = time.perf_counter()
    _, shipped_model = pretrained.load(args.name, out)
    shipped = scores(shipped_model, args.data_dir, args.eval_images)
    record.update(metrics=shipped, eval_seconds=time.perf_counter() - start, eval_images=args.eval_images or 10_000,
                  source_metrics={k: v for k, v in source.items() if k != "per_seed"})
    write_json(out / f"{args.name}.json", record)
    print(comparison(source, shipped))
    print(f"wrote {out / (args.name + '.json')}")


if __name__ == "__main__":
    main()
