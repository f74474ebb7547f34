#!/usr/bin/env python
"""Time convpool inside PyTorch and JAX programs: a training step (forward, loss, backward,
SGD update) and a forward pass of a small MobileNet-style CNN - depthwise 3x3 and pointwise
1x1 convolutions, max and average pooling, a global-average head - on each framework's own
kernels and on convpool's (``convpool.torch.convert`` / ``convpool.jax``), plus the
per-call overhead of the bridges on a tiny convolution.

    python benchmarks/bridges.py                 # both frameworks, batch 32 of 3x64x64
    python benchmarks/bridges.py --steps 20 --threads 2 --no-jax

Both variants run in one process, alternating step by step, so that machine noise hits
both; the report gives medians and the ratio framework / convpool (above 1: convpool's
kernels are faster). Each variant's loss is checked against the other's.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import convpool
import numpy as np

CHANNELS = (16, 32, 64, 128)  # stem, then one depthwise-separable block per entry after it
POOLS = ("max", "max", "avg", None)  # after each block
CLASSES = 10


def median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def alternate(steps: int, warmup: int, **runs) -> dict[str, list[float]]:
    """Seconds per call of each run, the runs interleaved call by call."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    samples = {name: [] for name in runs}
    for _ in range(steps):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return samples


def report(title: str, framework: str, samples: dict[str, list[float]]) -> None:
    base, bridged = median_ms(samples[framework]), median_ms(samples["convpool"])
    print(f"| {title} | {base:.2f} | {bridged:.2f} | {base / bridged:.2f} |")


# ---------------------------------------------------------------- PyTorch

def torch_model(torch):
    nn = torch.nn
    layers = [nn.Conv2d(3, CHANNELS[0], 3, padding=1), nn.ReLU()]
    for c_in, c_out, pool in zip(CHANNELS, CHANNELS[1:] + (CHANNELS[-1],), POOLS, strict=True):
        layers += [nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in), nn.ReLU(),
                   nn.Conv2d(c_in, c_out, 1), nn.ReLU()]
        if pool == "max":
            layers.append(nn.MaxPool2d(2))
        elif pool == "avg":
            layers.append(nn.AvgPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(CHANNELS[-1], CLASSES)]
    return nn.Sequential(*layers)


def bench_torch(args) -> None:
    import convpool.torch as ct
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    original = torch_model(torch)
    converted = ct.convert(copy.deepcopy(original))
    x = torch.randn(args.batch, 3, args.size, args.size)
    target = torch.randint(0, CLASSES, (args.batch,))
    losses = {"torch": [], "convpool": []}

    def train_step(name, model, optimizer):
        def step():
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), target)
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
        return step

    def inference(model):
        def forward():
            with torch.no_grad():
                model(x)
        return forward

    print(f"\nPyTorch {torch.__version__}, {args.threads} threads, batch {args.batch} x 3 x "
          f"{args.size} x {args.size}, float32\n")
    print("| pass | PyTorch ms | convert() ms | ratio |")
    print("| --- | --- | --- | --- |")
    report("forward (no_grad)", "torch", alternate(
        args.steps, 2, torch=inference(original), convpool=inference(converted)))
    optimizers = {name: torch.optim.SGD(model.parameters(), lr=1e-3)
                  for name, model in (("torch", original), ("convpool", converted))}
    report("training step", "torch", alternate(
        args.steps, 2, torch=train_step("torch", original, optimizers["torch"]),
        convpool=train_step("convpool", converted, optimizers["convpool"])))
    drift = max(abs(a - b) / abs(a) for a, b in zip(losses["torch"], losses["convpool"],
                                                     strict=True))
    print(f"\nlargest relative loss difference over {len(losses['torch'])} steps: {drift:.1e}")
    if drift > 1e-3:
        sys.exit("the converted model's losses drift from the original's")

    tiny_x, tiny_w = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 3, 3)
    tiny_a, tiny_b = tiny_x.numpy(), tiny_w.numpy()
    calls = alternate(
        max(200, args.steps), 20,
        torch=lambda: torch.nn.functional.conv2d(tiny_x, tiny_w),
        convpool=lambda: ct.conv2d(tiny_x, tiny_w),
        numpy=lambda: convpool.conv2d(tiny_a, tiny_b),
    )
    print("\nper-call cost of a 1x1x8x8 convolution (3x3): "
          f"F.conv2d {median_ms(calls['torch']) * 1e3:.1f} us, convpool.torch.conv2d "
          f"{median_ms(calls['convpool']) * 1e3:.1f} us, convpool.conv2d on arrays "
          f"{median_ms(calls['numpy']) * 1e3:.1f} us")


# ---------------------------------------------------------------- JAX

def jax_model(jax, conv2d, max_pool2d, avg_pool2d):
    """Parameters and the forward function of the same CNN, on the given functions."""
    jnp = jax.numpy
    rng = np.random.default_rng(0)

    def weight(*shape):
        fan_in = np.prod(shape[1:])
        return jnp.asarray(rng.uniform(-1, 1, shape).astype(np.float32) / np.sqrt(fan_in))

    params = {"stem": (weight(CHANNELS[0], 3, 3, 3), jnp.zeros(CHANNELS[0]))}
    for i, (c_in, c_out) in enumerate(zip(CHANNELS, CHANNELS[1:] + (CHANNELS[-1],),
                                          strict=True)):
        params[f"dw{i}"] = (weight(c_in, 1, 3, 3), jnp.zeros(c_in))
        params[f"pw{i}"] = (weight(c_out, c_in, 1, 1), jnp.zeros(c_out))
    params["head"] = (weight(CLASSES, CHANNELS[-1]), jnp.zeros(CLASSES))

    def forward(params, x):
        relu = jax.nn.relu
        x = relu(conv2d(x, *params["stem"], padding=1))
        for i, (c_in, pool) in enumerate(zip(CHANNELS, POOLS, strict=True)):
            x = relu(conv2d(x, *params[f"dw{i}"], padding=1, groups=c_in))
            x = relu(conv2d(x, *params[f"pw{i}"]))
            if pool == "max":
                x = max_pool2d(x, 2)
            elif pool == "avg":
                x = avg_pool2d(x, 2)
        w, b = params["head"]
        return x.mean(axis=(2, 3)) @ w.T + b

    return params, forward


def lax_functions(jax):
    lax = jax.lax

    def conv2d(x, w, b, padding=0, groups=1):
        y = lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2,
                                     feature_group_count=groups,
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + b[None, :, None, None]

    def max_pool2d(x, k):
        return lax.reduce_window(x, -np.inf, lax.max, (1, 1, k, k), (1, 1, k, k), "VALID")

    def avg_pool2d(x, k):
        return lax.reduce_window(x, 0.0, lax.add, (1, 1, k, k), (1, 1, k, k), "VALID") / (k * k)

    return conv2d, max_pool2d, avg_pool2d


def bench_jax(args) -> None:
    import convpool.jax as cj
    import jax

    x = jax.numpy.asarray(np.random.default_rng(1).standard_normal(
        (args.batch, 3, args.size, args.size)).astype(np.float32))
    target = jax.numpy.asarray(np.arange(args.batch) % CLASSES)
    variants = {
        "lax": jax_model(jax, *lax_functions(jax)),
        "convpool": jax_model(jax, cj.conv2d, cj.max_pool2d, cj.avg_pool2d),
    }
    runs, states, steps, losses = {}, {}, {}, {"lax": [], "convpool": []}
    for name, (params, forward) in variants.items():
        def loss_fn(params, forward=forward):
            logits = forward(params, x)
            return -jax.numpy.mean(jax.nn.log_softmax(logits)[np.arange(args.batch), target])

        @jax.jit
        def train_step(params, loss_fn=loss_fn):
            loss, grads = jax.value_and_grad(loss_fn)(params)
            return loss, jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)

        states[name] = params
        steps[name] = train_step
        runs[name] = jax.jit(forward)

    def inference(name):
        return lambda: runs[name](variants[name][0], x).block_until_ready()

    def train(name):
        def step():
            loss, states[name] = steps[name](states[name])
            losses[name].append(float(loss))
        return step

    print(f"\nJAX {jax.__version__} (jit; convpool's kernels on {convpool.get_num_threads()} "
          f"threads, XLA's own), batch {args.batch} x 3 x {args.size} x {args.size}, "
          "float32\n")
    print("| pass | lax ms | convpool.jax ms | ratio |")
    print("| --- | --- | --- | --- |")
    report("forward", "lax", alternate(args.steps, 2, lax=inference("lax"),
                                       convpool=inference("convpool")))
    report("training step", "lax", alternate(args.steps, 2, lax=train("lax"),
                                             convpool=train("convpool")))
    drift = max(abs(a - b) / abs(a) for a, b in zip(losses["lax"], losses["convpool"],
                                                     strict=True))
    print(f"\nlargest relative loss difference over {len(losses['lax'])} steps: {drift:.1e}")
    if drift > 1e-3:
        sys.exit("convpool.jax's losses drift from lax's")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--steps", type=int, default=10, help="timed calls per variant")
    parser.add_argument("--threads", type=int, default=convpool.get_num_threads())
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-jax", action="store_true")
    args = parser.parse_args(argv)
    convpool.set_num_threads(args.threads)
    if not args.no_torch:
        bench_torch(args)
    if not args.no_jax:
        bench_jax(args)


if __name__ == "__main__":
    main()
