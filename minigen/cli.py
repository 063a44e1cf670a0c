"""The `minigen` command (also `python -m minigen`).

Errors that a user can fix (bad flags, missing data, bad shapes) print one line
and exit 1; --debug shows the full traceback instead.
"""
import argparse
import runpy
import sys
from pathlib import Path

from minigen import __version__, assign
from minigen.train import TrainingInterrupted, TrainingStopped

DEMOS_DIR = Path(__file__).resolve().parent.parent / "demos"
DEMOS = {  # name -> (script in demos/, what it shows)
    "classifier": ("classifier_mnist.py", "a conv-net MNIST classifier from minigen's layers (>= 99% test accuracy)"),
    "vae": ("vae_mnist.py", "a VAE on MNIST: samples, reconstructions, interpolation, test -ELBO and NLL"),
    "anomaly": ("anomaly_mnist.py", "VAE anomaly scores: one-class MNIST AUROC; a held-out digit, likelihood ratio"),
    "imputation": ("imputation_mnist.py", "a VAE fills in missing pixels by Metropolis-within-Gibbs, vs kNN"),
    "cvae": ("cvae_mnist.py", "a conditional VAE: digits on demand, Bayes-rule classifier vs an MLP, augmentation"),
    "m2": ("semisupervised_mnist.py", "semi-supervised M2 (Kingma et al. 2014), 100 labels: test error vs the "
                                      "classifier alone"),
    "mode-collapse": ("mode_collapse.py", "GAN, PacGAN, WGAN-GP, averaged GAN on 2-D ring and grid: modes, lr sweep"),
    "gan": ("gan_mnist.py", "the lecture's MLP GAN: samples per epoch, D(x)/D(G(z)) curves, FID and score"),
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


def cmd_train(args):
    """Train a model into a run directory, or continue one (--resume)."""
    import numpy as np

    from minigen import models, train
    if args.list:
        for name, what in models.describe().items():
            print(f"  {name:12s} {what}")
        return 0
    config, out = train_config(args)
    rng = np.random.default_rng(config["seed"])
    trainable = models.build(config["model"], config["options"], rng, config["lr"])
    x, y = load_data("train", config)
    run = train.Run(out, trainable, rng, config, resume=args.resume is not None,
                    checkpoint_every=config["checkpoint_every"])
    verb = "continuing" if args.resume is not None else "training"
    print(f"{verb} {config['model']} on {len(x)} images; writing to {out}/")
    batch = config["batch_size"] * trainable.minibatches_per_step  # a WGAN step eats n_critic minibatches
    history = train.train_epochs(trainable.step, (x, y) if trainable.needs_labels else (x,), config["epochs"],
                                 rng, batch, desc=config["model"], run=run,
                                 log=lambda epoch, m: print(f"epoch {epoch}: " + ", ".join(
                                     f"{k} {v:.4g}" for k, v in m.items()), flush=True))
    print(f"done: {len(history)} epochs in {out}/ (checkpoint.npz, metrics.jsonl, samples/, loss.png); "
          f"next: minigen sample {out}   or   minigen eval {out}")
    return 0


def train_config(args):
    """(config, run directory) from the flags, or from the run being resumed."""
    from minigen import models, train
    if args.resume is not None:
        config = train.read_config(args.resume)
        if args.model is not None and args.model != config["model"]:
            raise ValueError(f"{args.resume} is a run of {config['model']!r}, not {args.model!r}")
        if args.epochs is not None:
            config["epochs"] = args.epochs  # the one thing a resumed run may change: how long it goes on
        return config, Path(args.resume)
    if args.model is None:
        raise ValueError("name the model to train, e.g. `minigen train vae` (see `minigen train --list`)")
    if args.model not in models.MODELS:
        raise ValueError(f"unknown model {args.model!r}; choose from: {', '.join(models.MODELS)}")
    options = dict(parse_option(text) for text in args.set)
    config = {"model": args.model, "epochs": 10 if args.epochs is None else args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "options": options,
              "data": "sample" if args.sample else "mnist", "data_dir": args.data_dir,
              "checkpoint_every": args.checkpoint_every}
    return config, Path(args.out) if args.out else next_free_dir(Path("runs") / args.model)


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
    """Draw images from a trained run into one PNG grid."""
    import numpy as np

    from minigen import train, viz
    _, trainable = train.load_run(args.run_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "sample.png"
    viz.save_image_grid(trainable.sample(np.random.default_rng(args.seed), args.n), out, trainable.picture_columns)
    print(f"{args.n} samples in {out}")
    return 0


def cmd_eval(args):
    """The model's test metrics, printed and written to RUN_DIR/eval.json."""
    import json

    from minigen import train
    config, trainable = train.load_run(args.run_dir)
    if trainable.evaluate is None:
        raise ValueError(f"model {config['model']!r} has no test metrics yet")
    if args.data_dir is not None:
        config = {**config, "data": "mnist", "data_dir": args.data_dir}
    results = trainable.evaluate(*load_data("test", config))
    for key, value in results.items():
        print(f"{key:16s} {value:.4f}" if isinstance(value, float) else f"{key:16s} {value}")
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
    sys.argv = [str(script), *[a for a in args.rest if a != "--"]]
    runpy.run_path(str(script), run_name="__main__")
    return 0


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
    p.add_argument("--epochs", type=int, default=None, help="passes over the data (default 10)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's paper's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, e.g. --set latent=2 --set beta=4 (repeatable)")
    p.add_argument("--out", default=None, help="run directory (default: runs/MODEL, or runs/MODEL-2, ...)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="also checkpoint every STEPS steps (default: at the end of each epoch)")
    p.add_argument("--data-dir", default=None, help="folder with the four MNIST .gz files")
    p.add_argument("--sample", action="store_true", help="train on the small packaged sample (a smoke run)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Draw N images from the model in RUN_DIR into one PNG grid.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="PNG file (default: RUN_DIR/sample.png)")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("eval", help="test metrics of a trained run",
                       description="Compute the model's test metrics (e.g. -ELBO and NLL for a VAE); "
                                   "prints them and writes RUN_DIR/eval.json.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-dir", default=None, help="folder with the four MNIST .gz files")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("demo", help="run a demo by name", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run one of the scripts in demos/; arguments after NAME go to the script.")
    p.add_argument("name", nargs="?", metavar="NAME", help=f"one of: {', '.join(DEMOS)}")
    p.add_argument("--list", action="store_true", help="list the demos")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the demo (see its --help)")
    p.set_defaults(run=cmd_demo)

    assign.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except TrainingStopped as err:
        print(f"minigen: {err}", file=sys.stderr)
        return 130 if isinstance(err, TrainingInterrupted) else 1
    except (ValueError, TypeError, OSError) as err:
        if args.debug:
            raise
        print(f"minigen: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minigen: interrupted", file=sys.stderr)
        return 130
