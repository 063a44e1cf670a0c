"""The real-data references for minigen's FID and Inception-Score analogue.

    python benchmarks/sample_quality.py [--n 10000] [--data-dir DIR]

A model's FID means little alone: this prints what real digits score in the
same classifier's eyes — the FID between the first n training images and the
test set (a model can hardly do better), and the score of the test set (about
the number of classes, for a classifier that is sure and sees all ten).
"""
import argparse
import json

from minigen.data import load_mnist
from minigen.metrics import real_data_references


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000, help="training images to compare with the test set")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    (x, _), (x_test, _) = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    real = real_data_references(x[:args.n], x_test)
    print(json.dumps({"fid_train_vs_test": real["fid"], "is_test": real["is"], "n_train": args.n}, indent=2))


if __name__ == "__main__":
    main()
