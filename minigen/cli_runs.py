"""`minigen check RUN` and `minigen animate RUN`: look at a run directory after (or during) training.

Part of the command line, as minigen.cli and minigen.cli_types are, so these commands
print; the library code they call does not: minigen.health (the band and the diagnosis)
and minigen.animate (the GIF). minigen.cli registers them with add_parsers; this module
imports nothing from it. A bad value raises ValueError, which the CLI prints.
"""
import textwrap
from pathlib import Path

CHECK_SAMPLES = 500  # enough for a class histogram to tell 10 % from 50 %, and drawn in seconds


def cmd_check(args):
    """Overlay the run's curves on its model's band (a PNG) and print what looks off, and why."""
    import numpy as np

    from minigen import health
    out = Path(args.out) if args.out else Path(args.run_dir) / "check.png"
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out}: the panels are written as a PNG; name a .png file")
    config, steps, _ = health.read_run_log(args.run_dir)
    band = health.load_band(config["model"])
    samples = probs = None
    if not args.no_samples and (Path(args.run_dir) / "checkpoint.npz").is_file():
        from minigen import metrics, train
        _, trainable = train.load_run(args.run_dir)
        samples = trainable.sample(np.random.default_rng(0), CHECK_SAMPLES)
        if samples.shape[1:] == (1, 28, 28):  # what the shipped classifier reads
            probs = metrics.classifier_outputs(samples)[1]
    problems, notes = health.diagnose(config, steps, band, probs, samples)
    health.save_check_plot(steps, band, out, f"{config['model']}: {args.run_dir}"
                           + ("" if band else " (no band shipped)"))
    print(f"{config['model']} run in {args.run_dir}: {len(steps):,} steps logged")
    for note in notes:
        print(f"  note: {note}")
    if probs is not None:
        shares = np.bincount(probs.argmax(axis=1), minlength=10) / len(probs)
        print(f"  note: {len(probs)} samples from the checkpoint, read by the shipped classifier: "
              f"{(shares >= 0.02).sum()} digits at 2 % or more, the commonest (a {shares.argmax()}) "
              f"{100 * shares.max():.0f} %")
    if samples is None:
        print("  note: samples not checked (" + ("--no-samples" if args.no_samples else "no checkpoint.npz") + ")")
    for found in problems:
        print("\n" + textwrap.fill(found["text"], 100, initial_indent="* ", subsequent_indent="  "))
    if not problems:
        print("\nhealthy: no NaN, no D winning outright, no collapse"
              + (", and every curve inside its band" if health.compared_with_band(steps, band) else "") + ".")
    print(f"\nthe curves: {out}")
    return 1 if problems else 0


def cmd_animate(args):
    """A GIF of the run's per-epoch sample grids."""
    from minigen import animate
    out = Path(args.out) if args.out else Path(args.run_dir) / "training.gif"
    if out.suffix.lower() != ".gif":
        raise ValueError(f"--out {out}: the animation is written as a GIF; name a .gif file")
    path, n = animate.save_animation(args.run_dir, out, fps=args.fps)
    print(f"{n} epochs' sample grids in {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


def add_parsers(sub):
    """Add `minigen check` and `minigen animate` to the CLI's subparsers."""
    p = sub.add_parser("check", help="is my run healthy? its curves against the expected band",
                       description="Overlay the run's logged curves on the band its model's default recipe "
                                   "draws over 3 seeds (a PNG), and say what looks off and what usually causes "
                                   "it: NaN, D winning, posterior collapse, mode collapse, curves outside the "
                                   "band. Exits 1 when something is off.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder of `minigen train` or a demo")
    p.add_argument("--out", default=None, help="the picture (default: RUN/check.png)")
    p.add_argument("--no-samples", action="store_true",
                   help="skip drawing samples from the checkpoint (the mode-collapse check)")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("animate", help="a GIF of the run's sample grid across epochs",
                       description="Write a GIF of RUN/samples/epoch_NNN.png (the same noise every epoch), "
                                   "each frame captioned with its epoch.")
    p.add_argument("run_dir", metavar="RUN", help="a run folder of `minigen train` or a demo")
    p.add_argument("--out", default=None, help="the GIF (default: RUN/training.gif)")
    p.add_argument("--fps", type=float, default=2, metavar="N", help="frames per second (default 2)")
    p.set_defaults(run=cmd_animate)
