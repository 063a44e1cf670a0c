"""The `minigen` command (also `python -m minigen`).

Errors that a user can fix (bad flags, missing data, bad shapes) print one line
and exit 1; --debug shows the full traceback instead.
"""
import argparse
import runpy
import sys
from pathlib import Path

from minigen import __version__

DEMOS_DIR = Path(__file__).resolve().parent.parent / "demos"
DEMOS = {  # name -> (script in demos/, what it shows)
    "classifier": ("classifier_mnist.py", "a conv-net MNIST classifier from minigen's layers (>= 99% test accuracy)"),
    "vae": ("vae_mnist.py", "a VAE on MNIST: samples, reconstructions, interpolation, test -ELBO and NLL"),
}
EXAMPLES = """examples:
  minigen data                            where MNIST was found, checksums verified
  minigen demo --list                     the demos
  minigen demo classifier                 train the MNIST classifier (about 10 min on 2 cores)
  minigen demo classifier -- --sample     the same on the packaged sample (seconds)
  minigen demo vae -- --latent 2          a VAE with a 2-d latent space and its manifold picture
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

    p = sub.add_parser("demo", help="run a demo by name", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run one of the scripts in demos/; arguments after NAME go to the script.")
    p.add_argument("name", nargs="?", metavar="NAME", help=f"one of: {', '.join(DEMOS)}")
    p.add_argument("--list", action="store_true", help="list the demos")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the demo (see its --help)")
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as err:
        if args.debug:
            raise
        print(f"minigen: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minigen: interrupted", file=sys.stderr)
        return 130
