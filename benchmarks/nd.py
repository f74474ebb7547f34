#!/usr/bin/env python
"""1-D and 3-D convolution and pooling timed against PyTorch, interleaved in one process.

    python benchmarks/nd.py                  # every case, forward and forward + backward
    python benchmarks/nd.py --quick --json nd.json

With ``--each-gradient`` the input and weight gradients of each convolution are also
timed alone (PyTorch's through ``torch.nn.grad``).

Cases: conv1d on long signals, conv3d 3x3x3 (2x32x16x32x32 -> 32, and a one-channel
first layer), max and average pooling in 1-D and 3-D. Passes: the forward pass, and the
forward pass with every gradient (convolution: input, weight, bias; pooling: input), as
a training step runs them; PyTorch's through autograd. Every convpool result is checked
against PyTorch's before timing; a wrong result fails the run (exit status 1).

Timings are medians of interleaved samples (the libraries take turns, so drift of a
shared machine hits both); a case whose interquartile range exceeds a quarter of its
median is marked busy, and its ratio is not to be trusted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from convpool.bench.runners import Runner
from convpool.bench.timing import TimingPlan, time_interleaved

TOLERANCE = 1e-4  # max |a - b| / max |b| between two float32 results
BUSY_SPREAD = 0.25


@dataclass(frozen=True)
class Case:
    """One operation: ``op`` is a convpool / torch.nn.functional name."""

    op: str
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...] = ()  # convolution only
    arguments: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.arguments)
        shape = "x".join(map(str, self.input_shape))
        weight = f" w={'x'.join(map(str, self.weight_shape))}" if self.weight_shape else ""
        return f"{self.op} {shape}{weight} {args}".strip()

    @property
    def kwargs(self) -> dict:
        return dict(self.arguments)

    @property
    def is_conv(self) -> bool:
        return self.op.startswith("conv")

    def flops(self, output_shape: tuple[int, ...]) -> int:
        """Multiply-adds x 2 of the forward pass (each gradient costs the same)."""
        if not self.is_conv:
            return 0
        c_out, c_in_g, *kernel = self.weight_shape
        return 2 * math.prod(output_shape) * c_in_g * math.prod(kernel)


CASES = [
    Case("conv1d", (8, 64, 4096), (64, 64, 3), (("padding", 1),)),
    Case("conv1d", (32, 12, 1000), (32, 12, 7), (("padding", 3),)),
    Case("conv3d", (2, 32, 16, 32, 32), (32, 32, 3, 3, 3), (("padding", 1),)),
    Case("conv3d", (2, 1, 32, 64, 64), (16, 1, 3, 3, 3), (("padding", 1),)),
    Case("max_pool1d", (8, 64, 4096), arguments=(("kernel_size", 2),)),
    Case("avg_pool1d", (8, 64, 4096), arguments=(("kernel_size", 3), ("stride", 2),
                                                 ("padding", 1))),
    Case("max_pool3d", (2, 32, 16, 32, 32), arguments=(("kernel_size", 2),)),
    Case("max_pool3d", (2, 32, 16, 32, 32), arguments=(("kernel_size", 3), ("stride", 2),
                                                       ("padding", 1))),
    Case("avg_pool3d", (2, 32, 16, 32, 32), arguments=(("kernel_size", 2),)),
]

PASSES = ("fwd", "fwd+bwd")
CONV_GRADIENTS = ("grad_input", "grad_weight")  # timed alone with --each-gradient


def convpool_call(case: Case, pass_: str, arrays: dict) -> Callable[[], tuple]:
    import convpool

    op = getattr(convpool, case.op)
    x, gy, kwargs = arrays["x"], arrays["grad_output"], case.kwargs
    if case.is_conv:
        w, b = arrays["weight"], arrays["bias"]
        grad_input = getattr(convpool, f"{case.op}_grad_input")
        grad_weight = getattr(convpool, f"{case.op}_grad_weight")
        grad_bias = getattr(convpool, f"{case.op}_grad_bias")
        if pass_ == "fwd":
            return lambda: (op(x, w, b, **kwargs),)
        if pass_ == "grad_input":
            return lambda: (grad_input(gy, w, x.shape, **kwargs),)
        if pass_ == "grad_weight":
            return lambda: (grad_weight(x, gy, w.shape, **kwargs),)
        return lambda: (op(x, w, b, **kwargs), grad_input(gy, w, x.shape, **kwargs),
                        grad_weight(x, gy, w.shape, **kwargs), grad_bias(gy))
    grad_input = getattr(convpool, f"{case.op}_grad_input")
    if pass_ == "fwd":
        return lambda: (op(x, **kwargs),)
    if case.op.startswith("max"):
        def max_step() -> tuple:
            y, indices = op(x, return_indices=True, **kwargs)
            return y, grad_input(gy, indices, x.shape)
        return max_step
    return lambda: (op(x, **kwargs), grad_input(gy, x.shape, **kwargs))


def torch_call(case: Case, pass_: str, arrays: dict) -> Callable[[], tuple]:
    import torch

    op = getattr(torch.nn.functional, case.op)
    x = torch.from_numpy(arrays["x"])  # the same bytes as convpool's operands
    gy = torch.from_numpy(arrays["grad_output"])
    leaves = (x, torch.from_numpy(arrays["weight"]), torch.from_numpy(arrays["bias"])) \
        if case.is_conv else (x,)
    kwargs = case.kwargs
    if pass_ in CONV_GRADIENTS:
        rank = case.op[4:]  # "1d", "3d"
        w = torch.from_numpy(arrays["weight"])
        if pass_ == "grad_input":
            function = getattr(torch.nn.grad, f"conv{rank}_input")
            return lambda: (function(x.shape, w, gy, **kwargs),)
        function = getattr(torch.nn.grad, f"conv{rank}_weight")
        return lambda: (function(x, w.shape, gy, **kwargs),)
    if pass_ == "fwd":
        def forward() -> tuple:
            with torch.no_grad():
                return (op(*leaves, **kwargs),)
        return forward
    grad_leaves = tuple(leaf.detach().requires_grad_() for leaf in leaves)

    def forward_backward() -> tuple:
        for leaf in grad_leaves:
            leaf.grad = None  # a fresh gradient each call, as a training step has
        y = op(*grad_leaves, **kwargs)
        y.backward(gy)
        return (y, *(leaf.grad for leaf in grad_leaves))
    return forward_backward


def operands(case: Case, rng: np.random.Generator) -> dict:
    import convpool

    x = rng.standard_normal(case.input_shape, dtype=np.float32)
    arrays = {"x": x}
    if case.is_conv:
        arrays["weight"] = rng.standard_normal(case.weight_shape, dtype=np.float32) * 0.1
        arrays["bias"] = rng.standard_normal(case.weight_shape[0], dtype=np.float32)
        y = getattr(convpool, case.op)(x, arrays["weight"], **case.kwargs)
    else:
        y = getattr(convpool, case.op)(x, **case.kwargs)
    arrays["grad_output"] = rng.standard_normal(y.shape, dtype=np.float32)
    return arrays


def as_numpy(value: object) -> np.ndarray:
    detach = getattr(value, "detach", None)
    return np.asarray(detach().numpy() if detach is not None else value)


def largest_error(ours: tuple, theirs: tuple) -> float:
    """The worst relative difference over the outputs, each relative to its own scale."""
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        a, b = as_numpy(a).astype(np.float64), as_numpy(b).astype(np.float64)
        worst = max(worst, float(np.max(np.abs(a - b))) / (float(np.max(np.abs(b))) or 1.0))
    return worst


def measure(case: Case, pass_: str, threads: int, plan: TimingPlan) -> dict:
    import convpool
    import torch

    arrays = operands(case, np.random.default_rng(0))
    ours = convpool_call(case, pass_, arrays)
    theirs = torch_call(case, pass_, arrays)
    error = largest_error(ours(), theirs())  # also the warm-up
    runners = [Runner("convpool", threads, ours, convpool.set_num_threads),
               Runner("torch", threads, theirs, torch.set_num_threads)]
    timings = time_interleaved(runners, plan)
    spread = max((t.q3_s - t.q1_s) / t.median_s for t in timings.values())
    output_shape = arrays["grad_output"].shape  # the forward output's
    flops = case.flops(output_shape) * (3 if pass_ == "fwd+bwd" else 1)
    return {
        "case": case.name, "pass": pass_, "threads": threads,
        "convpool_ms": timings["convpool"].median_s * 1e3,
        "torch_ms": timings["torch"].median_s * 1e3,
        "ratio": timings["torch"].median_s / timings["convpool"].median_s,
        "convpool_gflops": flops / timings["convpool"].median_s / 1e9 if flops else None,
        "largest_error": error, "correct": error <= TOLERANCE,
        "busy": spread > BUSY_SPREAD,
    }


def render(records: list[dict]) -> str:
    lines = [f"{'case':62} {'pass':8} {'convpool ms':>11} {'torch ms':>9} {'ratio':>6}  note"]
    for r in records:
        note = ("WRONG " if not r["correct"] else "") + ("busy" if r["busy"] else "")
        if r["convpool_gflops"]:
            note += f" {r['convpool_gflops']:.0f} GFLOP/s"
        lines.append(f"{r['case']:62} {r['pass']:8} {r['convpool_ms']:11.2f} "
                     f"{r['torch_ms']:9.2f} {r['ratio']:6.2f}  {note.strip()}")
    ratios = [r["ratio"] for r in records]
    if ratios:
        geomean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        lines.append(f"geometric mean of torch / convpool: {geomean:.2f} over {len(ratios)} "
                     f"timings (> 1: convpool faster)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per case and pass")
    parser.add_argument("--quick", action="store_true", help="0.2 s per case and pass")
    parser.add_argument("--cases", default="", help="only cases whose name contains this")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--each-gradient", action="store_true",
                        help="also time each convolution gradient alone")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("benchmarks/nd.py compares against PyTorch, which is not importable",
              file=sys.stderr)
        return 2
    import convpool

    threads = args.threads or convpool.get_num_threads()
    plan = TimingPlan(budget_s=0.2 if args.quick else args.budget,
                      min_rounds=3 if args.quick else 5)
    records = []
    for case in CASES:
        if args.cases not in case.name:
            continue
        passes = PASSES + (CONV_GRADIENTS if args.each_gradient and case.is_conv else ())
        for pass_ in passes:
            record = measure(case, pass_, threads, plan)
            records.append(record)
            print(f"{case.name:62} {pass_:8} convpool {record['convpool_ms']:.2f} ms  "
                  f"torch {record['torch_ms']:.2f} ms", file=sys.stderr, flush=True)
    print(render(records))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"threads": threads, "records": records,
                       "build": convpool.build_info()}, out, indent=1)
    return 0 if all(r["correct"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
