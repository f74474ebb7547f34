"""Train a small 3-D CNN to tell solid shapes apart in noisy volumes.

    python examples/volume_3d.py

Each sample is a 16x16x16 volume holding one shape of random size, position and
orientation, a ball, a rod or a plate, plus Gaussian noise: three classes, made here
from a seed (nothing is downloaded). The net: Conv3d(1, 8, 3, padding=1) - ReLU -
MaxPool3d(2) - Conv3d(8, 16, 3, padding=1) - ReLU - MaxPool3d(2) - GlobalMaxPool3d -
Dense(16, 3): the strongest response of each feature anywhere in the volume (an average
over the volume mixes a shape's features with the noise around it and learns far more
slowly). With the defaults (200 training volumes, 10 epochs of Adam, seed 0) it labels
149 of 150 test volumes correctly in about 8 seconds; seeds 1 and 2 give 97% and 93%.
"""

from __future__ import annotations

import argparse
import sys

import convpool
import numpy as np
from convpool import nn

SHAPES = ("ball", "rod", "plate")


def make_volumes(count: int, size: int, noise: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` volumes ``(count, 1, size, size, size)`` float32 and their labels."""
    grid = np.indices((size, size, size), dtype=np.float32)
    labels = rng.integers(0, len(SHAPES), size=count)
    volumes = np.empty((count, 1, size, size, size), dtype=np.float32)
    for i, label in enumerate(labels):
        radius = rng.uniform(2.5, 4.5)
        centre = rng.uniform(radius + 1, size - radius - 1, size=3).astype(np.float32)
        offset = grid - centre[:, None, None, None]
        if SHAPES[label] == "ball":
            inside = (offset ** 2).sum(axis=0) <= radius ** 2
        elif SHAPES[label] == "rod":  # along a random axis
            axis = rng.integers(3)
            across = [offset[a] for a in range(3) if a != axis]
            inside = (across[0] ** 2 + across[1] ** 2 <= 1.5 ** 2) & (
                np.abs(offset[axis]) <= radius * 1.5)
        else:  # a square plate, 3 voxels thick, across a random axis
            axis = rng.integers(3)
            across = [offset[a] for a in range(3) if a != axis]
            inside = (np.abs(offset[axis]) <= 1.0) & (
                np.maximum(np.abs(across[0]), np.abs(across[1])) <= radius * 1.2)
        volumes[i, 0] = inside + noise * rng.standard_normal((size, size, size))
    return volumes, labels


def build_model(seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1, seed=rng), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(8, 16, 3, padding=1, seed=rng), nn.ReLU(), nn.MaxPool3d(2),
        nn.GlobalMaxPool3d(), nn.Dense(16, len(SHAPES), seed=rng), nn.Softmax(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200, help="training volumes")
    parser.add_argument("--test", type=int, default=150, help="test volumes")
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="convpool's kernel threads")
    parser.add_argument("--require", type=float, metavar="ACCURACY",
                        help="exit with status 1 if the test accuracy is below this")
    args = parser.parse_args(argv)
    if args.threads:
        convpool.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_volumes(args.train, args.size, args.noise, rng)
    x_test, y_test = make_volumes(args.test, args.size, args.noise, rng)
    print(f"{args.train} training and {args.test} test volumes of {args.size}^3: "
          f"{', '.join(SHAPES)}")
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
