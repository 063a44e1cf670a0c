"""The script behind the model demos (demos/gan_mnist.py, dcgan_mnist.py, cgan_mnist.py, ...).

    model_demo("gan", __doc__, epochs=20, batch_size=64)

trains a model of `minigen train` into a run directory exactly as
`minigen train gan --epochs 20 --batch-size 64` does (a progress bar; each epoch a
sample grid in samples/, the loss curve, a checkpoint), then

    curves.png    per-step curves from metrics.jsonl: D's outputs, the losses, the gradient norms
    samples.png   100 samples of the trained model
    eval.json     its FID and score in the shipped classifier's eyes, beside real digits' own

and prints the scores in a table with the real-data references, since a FID alone means little.
Every option of `minigen train` can be given to the demo; the demo's defaults come first.

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


def model_demo(model, doc, epochs, batch_size=128, lr=None, argv=None):
    """Train `model`, then draw and score it (module docstring). Returns (trainable, run directory).

    epochs, batch_size, lr: the demo's defaults (lr None: the model's paper's); flags in argv win.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        print(doc.strip() + "\n\nOptions are those of `minigen train` (the demo's defaults: "
              f"--epochs {epochs} --batch-size {batch_size}{'' if lr is None else f' --lr {lr}'}):\n")
        return cli.main(["train", "--help"])
    where = argparse.ArgumentParser(add_help=False)
    for flag in ("--out", "--data-dir", "--resume"):
        where.add_argument(flag, default=None)
    where.add_argument("--sample", action="store_true")
    known, _ = where.parse_known_args(argv)
    out = Path(known.resume or known.out or cli.next_free_dir(Path("runs") / model))
    defaults = ["--epochs", str(epochs), "--batch-size", str(batch_size), *([] if lr is None else ["--lr", str(lr)])]
    run = ["--resume", str(out)] if known.resume else [model, "--out", str(out)]
    code = cli.main(["train", *run, *defaults, *[a for a in argv if a not in ("--resume", known.resume)]])
    if code:
        raise SystemExit(code)
    config, trainable = train.load_run(out)
    report(trainable, config, out)
    return trainable, out


def report(trainable, config, out):
    """curves.png, samples.png and eval.json of a trained run, and the score table on stdout."""
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in logged if "summary" not in r]
    viz.save_training_panels(records, out / "curves.png", f"{config['model']}: per-step training metrics")
    viz.save_image_grid(trainable.sample(np.random.default_rng(0), 100), out / "samples.png", trainable.picture_columns)
    (x, _), (x_test, y_test) = cli.load_data("train", config), cli.load_data("test", config)
    print(f"scoring {len(x_test)} samples against {len(x_test)} test images (the shipped classifier's features)")
    scores = metrics.eval_scores(trainable, x_test, y_test)
    real = metrics.real_data_references(x[:len(x_test)], x_test)
    print(f"\n{'':14s}{'FID':>9s}{'score':>9s}\n{config['model']:14s}{scores['fid']:9.2f}{scores['is']:9.2f}\n"
          f"{'real digits':14s}{real['fid']:9.2f}{real['is']:9.2f}   (training vs test images; test set)")
    if "label_accuracy" in scores:
        print(f"the classifier agrees with the asked-for label on {100 * scores['label_accuracy']:.1f}% of samples")
    seconds = sum(r.get("seconds", 0.0) for r in logged if "summary" in r)
    (out / "eval.json").write_text(json.dumps({**scores, "real_data": real, "train_seconds": seconds}, indent=2) + "\n")
    print(f"{seconds:.0f} s of training; curves.png, samples.png, eval.json and samples/ in {out}/")


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
