"""Measure a model's band for `minigen check`: its default recipe trained with several seeds.

    OMP_NUM_THREADS=1 python benchmarks/bands.py vae --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/bands.py gan --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/bands.py dcgan --seeds 0 1 2 --minutes 4   # its first minutes only

Each seed trains the recipe a newcomer runs (the demo's defaults: `demos/MODEL_mnist.py`
through minigen.demo.model_demo, without its scoring; for the VAE, `minigen train vae`,
whose defaults are those of `minigen demo vae`: 784-400-20, 10 epochs, batch 128, Adam 1e-3,
dynamically binarized data) into OUT/MODEL-seedS/, one run at a time, then writes
minigen/bands/MODEL.json (minigen.health.make_band): per window of training steps, each
logged quantity's min, median and max across the seeds; CPU seconds per epoch; the machine,
the command and the commit. --minutes replaces the demo's wall-clock budget.
"""
import argparse
import json
import os
import platform
import runpy
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCRIPTS = {"gan": "gan_mnist.py", "dcgan": "dcgan_mnist.py", "cgan": "cgan_mnist.py",
                "wgan": "wgan_mnist.py", "wgan-gp": "wgan_gp_mnist.py", "vaegan": "vaegan_mnist.py"}
TRAIN_DEFAULTS = ("vae",)  # trained by `minigen train MODEL` at its defaults


def train_one(model, seed, out, minutes):
    """Train one seed of the recipe into `out`; returns this process's CPU seconds for it."""
    from minigen import cli, demo
    argv = ["--out", str(out), "--seed", str(seed), *(["--minutes", str(minutes)] if minutes else [])]
    began = time.process_time()
    if model in DEMO_SCRIPTS:
        script = ROOT / "demos" / DEMO_SCRIPTS[model]
        # the demo's own defaults, without its scoring (FID over 3 x 10,000 samples), which a band does not use
        no_scoring = mock.patch.object(demo, "report", lambda *args: None)
        with no_scoring, mock.patch.object(sys, "argv", [str(script), *argv]):
            runpy.run_path(str(script), run_name="__main__")
    elif model in TRAIN_DEFAULTS:
        if cli.main(["train", model, *argv]):
            raise SystemExit(f"training {model} seed {seed} failed")
    else:
        raise SystemExit(f"no recipe for {model!r}; choose from: {', '.join([*TRAIN_DEFAULTS, *DEMO_SCRIPTS])}")
    return time.process_time() - began


def nice_window(steps, points=60):
    """A round number of steps per window giving about `points` windows over `steps` steps."""
    return next((w for w in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if steps / w <= points), 10000)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "note": "a shared machine (2 cores, several other jobs running): wall seconds vary with its load; "
                    "CPU seconds less so"}


def summarize(model, runs, command, minutes):
    from minigen.health import make_band, read_run_log
    logs = [read_run_log(out) for out, _ in runs]
    shortest = min(len(steps) for _, steps, _ in logs)
    band = make_band([steps for _, steps, _ in logs], nice_window(shortest))
    per_epoch = [cpu / len(steps) * -(-60000 // config["batch_size"])
                 for (config, steps, _), (_, cpu) in zip(logs, runs)]
    config = logs[0][0]
    return {"model": model, **band,
            "recipe": {k: config[k] for k in ("batch_size", "lr", "options", "data", "minutes")},
            "runs": [{"seed": c["seed"], "steps": len(s), "epochs": len(e), "cpu_seconds": round(cpu, 1)}
                     for (c, s, e), (_, cpu) in zip(logs, runs)],
            "cpu_seconds_per_epoch": {"min": round(min(per_epoch), 1), "max": round(max(per_epoch), 1)},
            "covers": f"the first {band['steps'][-1]:,} steps (all seeds reached them)"
                      + (f"; each seed trained for {minutes:g} min only" if minutes else ""),
            "command": command, "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                                                         capture_output=True, text=True).stdout.strip(),
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=[*TRAIN_DEFAULTS, *DEMO_SCRIPTS])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--minutes", type=float, default=None, help="each seed's wall budget instead of the demo's")
    p.add_argument("--out", default="runs/bands", help="where the runs go (default runs/bands)")
    p.add_argument("--band", default=None, help="the band file (default minigen/bands/MODEL.json)")
    p.add_argument("--reuse", action="store_true", help="summarise runs already in --out instead of training")
    args = p.parse_args(argv)
    runs = []
    for seed in args.seeds:
        out = Path(args.out) / f"{args.model}-seed{seed}"
        if args.reuse:
            runs.append((out, json.loads((out / "bands_cpu.json").read_text())["cpu_seconds"]))
            continue
        cpu = train_one(args.model, seed, out, args.minutes)
        (out / "bands_cpu.json").write_text(json.dumps({"cpu_seconds": cpu}) + "\n")
        runs.append((out, cpu))
        print(f"{args.model} seed {seed}: {cpu:.0f} CPU s", flush=True)
    command = "OMP_NUM_THREADS=1 python benchmarks/bands.py " + " ".join(sys.argv[1:] if argv is None else argv)
    band = summarize(args.model, runs, command, args.minutes)
    path = Path(args.band) if args.band else ROOT / "minigen" / "bands" / f"{args.model}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(band, indent=1) + "\n")
    print(f"{path}: {len(band['steps'])} windows of {band['window_steps']} steps, "
          f"{', '.join(band['quantities'])}; {band['covers']}")


if __name__ == "__main__":
    main()
