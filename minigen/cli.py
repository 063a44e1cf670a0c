"""The `minigen` command (also `python -m minigen`).

Errors that a user can fix (bad flags, missing data, bad shapes) print one line
and exit 1; --debug shows the full traceback instead. Training stopped by Ctrl-C
or SIGTERM saves and exits 128 + the signal's number (130, 143).
"""
import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

from minigen import __version__, cli_assign, cli_runs
from minigen.cli_types import non_negative_int, positive_int, positive_number
from minigen.models.trainable import MemoryBudget, MemoryLimitError, machine_memory
from minigen.runlock import ADDED_LATER, CONFIG_FIELDS, RunLock, RunLocked
from minigen.train import TrainingInterrupted, TrainingStopped

DEMOS_DIR = Path(__file__).resolve().parent.parent / "demos"
DEMOS = {  # name -> (script in demos/, what it shows)
    "classifier": ("classifier_mnist.py", "a conv-net MNIST classifier from minigen's layers (>= 99% test accuracy)"),
    "vae": ("vae_mnist.py", "a VAE on MNIST: samples, reconstructions, interpolation, test -ELBO and NLL"),
    "anomaly": ("anomaly_mnist.py", "VAE anomaly scores: one-class MNIST AUROC; a held-out digit, likelihood ratio"),
    "imputation": ("imputation_mnist.py", "a VAE fills in missing pixels by Metropolis-within-Gibbs, vs kNN"),
    "cvae": ("cvae_mnist.py", "a conditional VAE: digits on demand, Bayes-rule classifier vs an MLP"),
    "augment": ("augment_mnist.py", "few labels: a classifier with and without CVAE / M2 digits, judged"),
    "m2": ("semisupervised_mnist.py", "semi-supervised M2 (Kingma et al. 2014), 100 labels: test error vs the "
                                      "classifier alone; -- --m1-cpu-minutes 30: M1+M2"),
    "mode-collapse": ("mode_collapse.py", "GAN, PacGAN, WGAN-GP, averaged GAN on 2-D ring and grid: modes, lr sweep"),
    "gan": ("gan_mnist.py", "an MLP GAN, gradient penalty on D (--preset lecture: the lecture's): curves, FID, score"),
    "dcgan": ("dcgan_mnist.py", "DCGAN (conv, batch norm): samples per epoch, curves, FID and score"),
    "cgan": ("cgan_mnist.py", "a conditional GAN: one digit class per column, and how often it draws the asked digit"),
    "wgan": ("wgan_mnist.py", "WGAN with weight clipping and 5 critic steps: curves, FID and score"),
    "wgan-gp": ("wgan_gp_mnist.py", "WGAN-GP (gradient penalty by double backprop): curves, FID and score"),
    "vaegan": ("vaegan_mnist.py", "VAE-GAN: the VAE's decoder as generator, reconstructions judged in D's features"),
    "progressive": ("progressive_gan_mnist.py", "a progressive GAN: G and D grow 7x7 -> 14x14 -> 28x28 with fade-in"),
}
EXAMPLES = """examples:
  minigen data                            where MNIST was found, checksums verified
  minigen demo --list                     the demos
  minigen demo classifier                 train the MNIST classifier (about 10 min on one core)
  minigen demo classifier -- --sample     the same on the packaged sample (seconds)
  minigen demo vae -- --latent 2          a VAE with a 2-d latent space and its manifold picture
  minigen train vae                       train into runs/vae/ (checkpoints, logs, pictures)
  minigen sample runs/vae --n 64          a grid of samples from it
  minigen sample --pretrained dcgan       samples of a shipped, trained DCGAN in seconds
  minigen eval runs/vae                   its test -ELBO and NLL
  minigen assign hw1 --check              a student copy and its autograder (docs/teaching.md)
"""


TRAIN_EXAMPLES = """examples:
  minigen train --list                        the models
  minigen train vae                           10 epochs into runs/vae/
  minigen train vae --set latent=2 --epochs 20 --out runs/vae2d
  minigen train vae --sample --epochs 1       a smoke run on the packaged sample
  minigen train --resume runs/vae --epochs 30 continue a run (bit for bit as if never stopped)
"""


def cmd_data(args):
    """Report where MNIST is and verify all four files."""
    from minigen import data
    folder = data.find_mnist(args.data_dir)
    if folder is None:
        raise data.DataError(data._not_found_message(args.data_dir))
    for split in ("train", "test"):
        x, _ = data.load_mnist(split, folder, download=False)
        print(f"{split}: {len(x)} images of shape {x.shape[1:]} in {folder} (SHA-256 verified)")
    return 0


def notify(message):
    """How the CLI shows what the library reports while it works (library code never prints)."""
    print(f"minigen: {message}", file=sys.stderr, flush=True)


def cmd_train(args):
    """Train a model into a run directory, or continue one (--resume)."""
    import numpy as np

    from minigen import models, train
    if args.list:
        for name, what in models.describe().items():
            print(f"  {name:12s} {what}")
        return 0
    config, out, changes = train_config(args)
    rng = np.random.default_rng(config["seed"])
    budget = MemoryBudget(rng)  # the same stream as rng, counting the weights before they are allocated
    trainable = models.build(config["model"], config["options"], budget, config["lr"])
    budget.active = False
    x, y = load_data("train", config)
    created = not out.exists()
    try:
        with RunLock(out, notify):
            run = train.Run(out, trainable, rng, config, resume=args.resume is not None,
                            checkpoint_every=config["checkpoint_every"], overwrite=args.overwrite,
                            changes=changes, notify=notify)
            verb = "continuing" if args.resume is not None else "training"
            print(f"{verb} {config['model']} on {len(x)} images; writing to {out}/")
            began = time.perf_counter()
            arrays = trainable.training_arrays(x, y)  # a self-conditioned GAN clusters the images here
            prepared = time.perf_counter() - began
            if prepared > 1:  # say where the wait went: it is not in the --minutes budget
                print(f"prepared the training data in {prepared:.1f} s (before the budget)")
            batch = config["batch_size"] * trainable.minibatches_per_step  # a WGAN step eats n_critic minibatches
            minutes = config.get("minutes")  # a budget for this process's training loop, checked every step
            history = train.train_epochs(
                trainable.step, arrays, config["epochs"], rng, batch,
                desc=config["model"], run=run, notify=notify, stop_mid_epoch=True,
                max_seconds=None if minutes is None else 60 * minutes,
                log=lambda epoch, m: print(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()),
                                           flush=True))
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # refused before writing anything: leave no empty folder behind
    done = f"done on time: {run.stopped_for_time}" if run.stopped_for_time else f"done: {len(history)} epochs"
    print(f"{done} in {out}/ (checkpoint.npz, metrics.jsonl, samples/, loss.png); "
          f"next: minigen sample {out}   or   minigen eval {out}")
    return 0


SAFE_ON_RESUME = ("lr", "epochs", "minutes", "checkpoint_every", "data_dir")  # how long and how fast, not what
FIXED_ON_RESUME = {  # option -> why a resumed run cannot change it
    "batch_size": "it sets the minibatches, so the data order and the optimiser's steps would change",
    "seed": "the run's random stream is restored from the checkpoint; a new seed would not apply",
    "set": "the model's options fix its architecture and loss, which the checkpoint's weights belong to",
    "data": "a run keeps its data set (--sample or full MNIST): the data order belongs to it",
}


def train_config(args):
    """(config, run directory, {option: new value} changed on resume) from the flags or the run resumed."""
    from minigen import models, train
    if args.resume is not None:
        config = train.read_config(args.resume, required=tuple(k for k in CONFIG_FIELDS if k not in ADDED_LATER))
        if args.model is not None and args.model != config["model"]:
            raise ValueError(f"{args.resume} is a run of {config['model']!r}, not {args.model!r}")
        given = {"batch_size": args.batch_size, "seed": args.seed,
                 "set": {**config["options"], **dict(parse_option(t) for t in args.set)} if args.set else None,
                 "data": "sample" if args.sample else None}
        for key, why in FIXED_ON_RESUME.items():
            recorded = config["options"] if key == "set" else config[key]
            if given[key] is not None and given[key] != recorded:
                flag = "--" + key.replace("_", "-") if key != "data" else "--sample"
                raise ValueError(f"--resume cannot change {flag} ({recorded!r} in this run): {why}; "
                                 f"start a new run with --out to try it")
        changes = {key: [config.get(key), getattr(args, key)] for key in SAFE_ON_RESUME
                   if getattr(args, key) is not None and getattr(args, key) != config.get(key)}
        return {**config, **{key: new for key, (_, new) in changes.items()}}, Path(args.resume), changes
    if args.model is None:
        raise ValueError("name the model to train, e.g. `minigen train vae` (see `minigen train --list`)")
    if args.model not in models.MODELS:
        raise ValueError(f"unknown model {args.model!r}; choose from: {', '.join(models.MODELS)}")
    options = dict(parse_option(text) for text in args.set)
    config = {"model": args.model, "epochs": 10 if args.epochs is None else args.epochs,
              "batch_size": 128 if args.batch_size is None else args.batch_size, "lr": args.lr,
              "seed": 0 if args.seed is None else args.seed, "options": options,
              "data": "sample" if args.sample else "mnist", "data_dir": args.data_dir,
              "checkpoint_every": args.checkpoint_every, "minutes": args.minutes}
    return config, Path(args.out) if args.out else next_free_dir(Path("runs") / args.model), {}


def parse_option(text):
    if "=" not in text:
        raise ValueError(f"--set expects KEY=VALUE, e.g. --set latent=2; got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def next_free_dir(base):
    """base, or base-2, base-3, ...: the first that does not exist, so no run is overwritten."""
    candidate, i = base, 1
    while candidate.exists():
        i += 1
        candidate = base.with_name(f"{base.name}-{i}")
    return candidate


def load_data(split, config):
    from minigen.data import load_split
    return load_split(split, config["data_dir"], sample=config["data"] == "sample")


def cmd_sample(args):
    """Draw images from a trained run or a pretrained model into one PNG grid (or an .npy of them)."""
    import numpy as np

    from minigen import viz
    out = Path(args.out) if args.out else Path(args.run_dir or ".") / f"{args.pretrained or 'sample'}.png"
    if out.suffix.lower() != ".npy":
        check_picture_format(out)
    _, trainable = load_model(args)
    rng = MemoryBudget(np.random.default_rng(args.seed), what=f"{args.n:,} samples")
    rng.charge(args.n * 28 * 28)  # each image's pixels: the model's output, the grid, the picture
    images = trainable.sample(rng, args.n)
    if out.suffix.lower() == ".npy":  # the numbers, for scoring with other tools: (n, 1, 28, 28) in [0, 1]
        np.save(out, np.asarray(images, np.float32))
    else:
        viz.save_image_grid(images, out, trainable.picture_columns)
    print(f"{args.n} samples in {out}")
    return 0


def load_model(args):
    """(config, trainable) of --pretrained NAME (minigen.pretrained) or of the run in RUN_DIR."""
    from minigen import pretrained, train
    if (args.run_dir is None) == (args.pretrained is None):
        raise ValueError("give either RUN_DIR or --pretrained NAME (one of: "
                         f"{', '.join(pretrained.names()) or 'none shipped'})")
    return pretrained.load(args.pretrained) if args.pretrained else train.load_run(args.run_dir)


def check_picture_format(path):
    """Refuse a file name whose extension matplotlib cannot write, naming those it can."""
    from matplotlib.backend_bases import FigureCanvasBase
    supported = sorted(FigureCanvasBase.get_supported_filetypes())
    if path.suffix.lower().lstrip(".") not in supported:
        raise ValueError(f"--out {path}: {'no file extension' if not path.suffix else repr(path.suffix)} is not "
                         f"a picture format; use one of: {', '.join('.' + e for e in supported)}")


def cmd_eval(args):
    """The model's test metrics, printed and written to RUN_DIR/eval.json."""
    import json

    from minigen import metrics
    config, trainable = load_model(args)
    if args.data_dir is not None or args.pretrained:
        config = {**config, "data": "mnist", "data_dir": args.data_dir}
    results = metrics.eval_scores(trainable, *load_data("test", config))
    for key, value in results.items():
        if key == "per_seed":
            continue  # each sample seed's figures: in eval.json; the means and sds are printed
        if isinstance(value, list):
            value = " ".join("-" if v is None else f"{v:.4f}" for v in value)
        print(f"{key:24s} {value:.4f}" if isinstance(value, float) else f"{key:24s} {value}")
    if args.pretrained:  # the package's folder may be read-only; the shipped figures are in NAME.json
        return 0
    (Path(args.run_dir) / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {Path(args.run_dir) / 'eval.json'}")
    return 0


def cmd_demo(args):
    """Run a script from demos/ with the remaining arguments."""
    if args.list or args.name is None:
        for name, (script, what) in DEMOS.items():
            print(f"  {name:12s} {what}  [demos/{script}]")
        return 0
    if args.name not in DEMOS:
        raise ValueError(f"unknown demo {args.name!r}; choose from: {', '.join(DEMOS)}")
    script = DEMOS_DIR / DEMOS[args.name][0]
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: demos run from a source checkout "
                                f"installed with `pip install -e .`")
    # its own process: the demo parses its own argv, and this process's sys.argv stays as it is
    return subprocess.run([sys.executable, str(script), *[a for a in args.rest if a != "--"]]).returncode


def cmd_grade(args):
    """Grade every submission with a private autograder into a CSV gradebook (docs/teaching.md)."""
    from minigen import gradebook
    rows = gradebook.grade_class(args.submissions, args.autograder, args.out, args.config, args.jobs, args.timeout)
    print(gradebook.summary(rows, args.out))
    return 0


def add_model_source(p):
    """RUN_DIR or --pretrained NAME: where `sample` and `eval` find their model (load_model)."""
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
    p.add_argument("--pretrained", metavar="NAME", help="a shipped model instead of a run, e.g. dcgan "
                                                        "(minigen/weights/pretrained/README.md)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minigen", description="Deep generative models from scratch in NumPy + autograd.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"minigen {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("data", help="find MNIST and verify its checksums",
                       description="Find MNIST (data dir, $MINIGEN_DATA, cache) and verify all four files.")
    p.add_argument("--data-dir", default=None, help="folder with the four MNIST .gz files")
    p.set_defaults(run=cmd_data)

    p = sub.add_parser("train", help="train a model into a run directory", epilog=TRAIN_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train MODEL on MNIST; every epoch writes samples, the loss curve and a "
                                   "checkpoint to the run directory. Ctrl-C stops after the current step "
                                   "and saves; --resume continues exactly where it stopped.")
    p.add_argument("model", nargs="?", metavar="MODEL", help="see --list")
    p.add_argument("--list", action="store_true", help="list the models")
    p.add_argument("--epochs", type=positive_int, default=None, help="passes over the data (default 10)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="examples per minibatch (default 128)")
    p.add_argument("--lr", type=positive_number, default=None, help="learning rate (default: the model's paper's)")
    p.add_argument("--minutes", type=positive_number, default=None, metavar="N",
                   help="a wall-clock budget: stop within one step of N minutes of training, mid-epoch if need "
                        "be, with a checkpoint to --resume from (--epochs stays the upper limit; a resumed run "
                        "gets N minutes again, or a new --minutes)"),
    p.add_argument("--seed", type=non_negative_int, default=None, help="seed of the run's random stream (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, e.g. --set latent=2 --set beta=4 (repeatable)")
    p.add_argument("--out", default=None, help="run directory (default: runs/MODEL, or runs/MODEL-2, ...)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR; --lr, --epochs, --minutes, --checkpoint-every and "
                        "--data-dir may change")
    p.add_argument("--overwrite", action="store_true",
                   help="start the run in --out again from scratch (only a folder that holds a minigen run)")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="STEPS",
                   help="also checkpoint every STEPS steps (default: at the end of each epoch)")
    p.add_argument("--data-dir", default=None, help="folder with the four MNIST .gz files")
    p.add_argument("--sample", action="store_true", help="train on the small packaged sample (a smoke run)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run or a pretrained model",
                       description="Draw N images from the model in RUN_DIR (or --pretrained NAME) into one "
                                   "PNG grid, or into an .npy of the images (N, 1, 28, 28), float32 in [0, 1].")
    add_model_source(p)
    p.add_argument("--n", type=positive_int, default=64, help="how many images (default 64)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--out", default=None, help="picture file (.png, .pdf, ...) or .npy (default: RUN_DIR/sample.png; "
                                               "with --pretrained, NAME.png)")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("eval", help="test metrics of a trained run",
                       description="Compute the model's test metrics (e.g. -ELBO and NLL for a VAE); "
                                   "prints them and writes RUN_DIR/eval.json (--pretrained NAME: prints them).")
    add_model_source(p)
    p.add_argument("--data-dir", default=None, help="folder with the four MNIST .gz files")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("demo", help="run a demo by name", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run one of the scripts in demos/; arguments after NAME go to the script.")
    p.add_argument("name", nargs="?", metavar="NAME", help=f"one of: {', '.join(DEMOS)}")
    p.add_argument("--list", action="store_true", help="list the demos")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the demo (see its --help)")
    p.set_defaults(run=cmd_demo)

    cli_assign.add_parser(sub)
    cli_runs.add_parsers(sub)  # check, animate

    p = sub.add_parser("grade", help="grade a class's submissions into a CSV gradebook",
                       description="Grade each entry of SUBMISSIONS_DIR (a folder or .zip per student, named by "
                                   "student id) with a private autograder; write the CSV and one JSON report each.")
    p.add_argument("submissions", metavar="SUBMISSIONS_DIR")
    p.add_argument("--autograder", required=True, metavar="PRIVATE_BUILD", help="a `minigen assign --private` build")
    p.add_argument("--out", default="grades.csv", help="the CSV gradebook (reports go to OUT's stem + -reports/)")
    p.add_argument("--config", help='JSON: {"points": {exercise: n}, "timeouts": {exercise: seconds}}')
    p.add_argument("--jobs", type=int, default=None, help="students graded at once (default: the number of cores)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per exercise, for every exercise")
    p.set_defaults(run=cmd_grade)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():  # what the library warns about, shown as one line each
            warnings.showwarning = lambda message, *_, **__: notify(f"warning: {message}")
            return args.run(args)
    except TrainingStopped as err:
        print(f"minigen: {err}", file=sys.stderr)
        return 128 + int(err.signum) if isinstance(err, TrainingInterrupted) else 1
    except (ValueError, TypeError, OSError, RunLocked, MemoryError) as err:
        if args.debug:
            raise
        if isinstance(err, MemoryError) and not isinstance(err, MemoryLimitError):  # numpy's own, e.g. in eval
            memory = machine_memory()
            err = f"out of memory: {err}" + (f" (this machine has {memory[0] / 2**30:.3g} GiB)" if memory else "")
        print(f"minigen: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minigen: interrupted", file=sys.stderr)
        return 130
