"""The script behind the model demos (demos/gan_mnist.py, dcgan_mnist.py, cgan_mnist.py, ...).

    model_demo("gan", __doc__, epochs=20, batch_size=64)

trains a model of `minigen train` into a run directory exactly as
`minigen train gan --epochs 20 --batch-size 64` does (a progress bar; each epoch a
sample grid in samples/, the loss curve, a checkpoint), then

    curves.png    per-step curves from metrics.jsonl: D's outputs, the losses, the gradient norms
    samples.png   64 samples of the trained model, 8 x 8 (a conditional model's: 10 x 10, a class per column)
    eval.json     its FID and score in the shipped classifier's eyes over 3 sample seeds (each seed's, and
                  their mean and sd), the share of samples with a lit background pixel, beside real digits'

and prints the scores in a table with the real-data references, since a FID alone means little.
Every option of `minigen train` can be given to the demo; the demo's defaults come first.
A demo may offer presets, named lists of such options (`--preset long`, say, for a longer
budget). A preset takes the place of the demo's default options (not of its epochs,
batch size and learning rate, which it may set again), so a preset never inherits a
default it did not ask for; options given explicitly still win.

train_classifier trains a digit classifier in the same training loop, for
demos/classifier_mnist.py and demos/cvae_mnist.py. This module sits above the
`minigen` command (it drives `minigen train`), which runs demos by path and never
imports it.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from minigen import cli, metrics, train, viz
from minigen.models.classifier import build_classifier, make_train_step
from minigen.optim import Adam


def model_demo(model, doc, epochs, batch_size=128, lr=None, options=(), presets=None, argv=None):
    """Train `model`, then draw and score it (module docstring). Returns (trainable, run directory).

    epochs, batch_size, lr: the demo's defaults (lr None: the model's paper's); flags in argv win.
    options: more default options of `minigen train`, e.g. ("--set", "ema=0.999", "--minutes", "15").
    presets: {name: [options of `minigen train`]}, e.g. {"long": ["--minutes", "60"]}, one chosen by
    `--preset NAME` in argv; its options replace `options` and override epochs, batch_size and lr,
    and flags given in argv override it.
    """
    argv, presets = sys.argv[1:] if argv is None else list(argv), presets or {}
    defaults = ["--epochs", str(epochs), "--batch-size", str(batch_size), *([] if lr is None else ["--lr", str(lr)])]
    if {"-h", "--help"} & set(argv):
        listed = "".join(f"\n  --preset {name:10s} {' '.join(extra)}" for name, extra in presets.items())
        print(doc.strip() + f"\n\nOptions are those of `minigen train` below (the demo's defaults: "
              f"{' '.join([*defaults, *options])})."
              + (f"\nPresets (each replaces the default options; options given explicitly win):{listed}"
                 if presets else "") + "\n")
        return cli.main(["train", "--help"])
    where = argparse.ArgumentParser(add_help=False)
    for flag in ("--out", "--data-dir", "--resume", "--preset"):
        where.add_argument(flag, default=None)
    where.add_argument("--sample", action="store_true")
    known, _ = where.parse_known_args(argv)
    if known.preset is not None and known.preset not in presets:
        raise SystemExit(f"error: unknown preset {known.preset!r}; "
                         + (f"choose from: {', '.join(presets)}" if presets else "this demo has no presets"))
    out = Path(known.resume or known.out or cli.next_free_dir(Path("runs") / model))
    run = ["--resume", str(out)] if known.resume else [model, "--out", str(out)]
    given = without(argv, {"--resume": known.resume, "--preset": known.preset})
    code = cli.main(["train", *run, *defaults, *presets.get(known.preset, options), *given])
    if code:
        raise SystemExit(code)
    config, trainable = train.load_run(out)
    report(trainable, config, out)
    return trainable, out


def without(argv, flags):
    """argv without the given flags and their values ({flag: value}), in either form: --flag v, --flag=v."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not any(arg == f"{flag}={value}" for flag, value in flags.items()):
            kept.append(arg)
    return kept


def report(trainable, config, out):
    """curves.png, samples.png and eval.json of a trained run, and the score table on stdout."""
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in logged if "summary" not in r]
    viz.save_training_panels(records, out / "curves.png", f"{config['model']}: per-step training metrics")
    viz.save_image_grid(trainable.sample(np.random.default_rng(0), trainable.picture_count()), out / "samples.png",
                        trainable.picture_columns)
    (x, _), (x_test, y_test) = cli.load_data("train", config), cli.load_data("test", config)
    print(f"scoring {len(x_test)} samples for each of 3 seeds against {len(x_test)} test images "
          f"(the shipped classifier's features)")
    scores = metrics.eval_scores(trainable, x_test, y_test)
    real = metrics.real_data_references(x[:len(x_test)], x_test)
    print(score_table(config["model"], scores, real))
    seconds = sum(r.get("seconds", 0.0) for r in logged if "summary" in r)
    (out / "eval.json").write_text(json.dumps({**scores, "real_data": real, "train_seconds": seconds}, indent=2) + "\n")
    print(f"{seconds:.0f} s of training; curves.png, samples.png, eval.json and samples/ in {out}/")


def score_table(model, scores, real):
    """The printed table: the model's FID, score and lit-background share (mean ± sd over sample seeds)
    beside real digits'; for a conditional model, its agreement with the asked-for labels, per digit."""
    def cell(key, scale=1, digits=2):
        return f"{scale * scores[key]:.{digits}f} ± {scale * scores[key + '_sd']:.{digits}f}"

    lines = [f"\n{'':14s}{'FID':>16s}{'score':>14s}{'lit background':>18s}",
             f"{model:14s}{cell('fid', digits=1):>16s}{cell('is'):>14s}{cell('lit_background', 100, 1) + ' %':>18s}",
             f"{'real digits':14s}{real['fid']:>16.2f}{real['is']:>14.2f}{100 * real['lit_background']:>16.1f} %"
             "   (training vs test images; test set)",
             "lit background: samples with a pixel > 0.5 where fewer than 1 % of the test digits have one"]
    if "label_accuracy" in scores:
        by_digit = scores["label_accuracy_by_digit"]
        lines += [f"the classifier agrees with the asked-for label on {cell('label_accuracy', 100, 1)} % of samples",
                  "digit " + "".join(f"{d:>6d}" for d in range(len(by_digit))),
                  "agree " + "".join("     -" if a is None else f"{100 * a:6.1f}" for a in by_digit) + "  (%)"]
    return "\n".join(lines)


def train_classifier(x, y, epochs=3, lr=1e-3, batch_size=128, seed=0, log=None, net=None):
    """Train a classifier with Adam on cross-entropy in the one training loop; returns (net, params, history).

    net: the conv net of minigen.models.classifier.build_classifier() by default, or any
    layer x -> (N, 10) logits (demos/cvae_mnist.py's MLP).
    """
    rng = np.random.default_rng(seed)
    net = build_classifier() if net is None else net
    _, params = net.init(rng, x.shape[1:])
    step = make_train_step(net, params, Adam(params, lr=lr), rng)
    history = train.train_epochs(step, (x, y), epochs, rng, batch_size, desc="classifier", log=log)
    return net, params, history
