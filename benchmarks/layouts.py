#!/usr/bin/env python
"""Channels-last against channels-first pooling: every distinct pooling layer of the nets
in benchmarks/networks.py, convpool with ``layout="NHWC"`` against convpool NCHW and
against PyTorch's ``channels_last`` and contiguous tensors, interleaved in one process.
``--kinds dense3x3`` times the nets' dense 3x3 convolutions (groups 1) instead.

    python benchmarks/layouts.py                    # batch 1 and 8, forward and gradient
    python benchmarks/layouts.py --quick --batches 8 --json layouts.json
    python benchmarks/layouts.py --kinds dense3x3 --threads 1

Ratios are time(NCHW) / time(NHWC) (> 1: channels-last is faster) and
time(torch channels_last) / time(convpool NHWC) (> 1: convpool is faster). Every result is
checked against convpool's NCHW result; a wrong one fails the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import numpy as np
from convpool.bench.runners import Runner
from convpool.bench.suite import geometric_mean
from convpool.bench.timing import QUICK_PLAN, TimingPlan, time_interleaved
from networks import NETS, Layer, distinct_layers

TOLERANCE = 1e-5  # max |a - b| / max |b| between two float32 results of one layer


def _convpool_calls(layer: Layer, pass_: str, x: np.ndarray, gy: np.ndarray,
                    layout: str) -> Callable[[], np.ndarray]:
    """One pass of ``layer`` in ``layout`` (x and gy already in that layout)."""
    import convpool as cp

    if layer.kind == "conv":
        w = _conv_weight(layer)
        conv = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                    groups=layer.groups, layout=layout)
        if pass_ == "fwd":
            return lambda: cp.conv2d(x, w, **conv)
        return lambda: cp.conv2d_grad_input(gy, w, x.shape, **conv)
    if layer.kind == "global-avg":
        if pass_ == "fwd":
            return lambda: cp.global_avg_pool2d(x, keepdims=True, layout=layout)
        grad = gy.reshape(gy.shape[0], -1)
        return lambda: cp.global_avg_pool2d_grad_input(grad, x.shape, layout=layout)
    pool = dict(kernel_size=layer.kernel, stride=layer.stride, padding=layer.padding,
                layout=layout)
    if layer.kind == "avg":
        if pass_ == "fwd":
            return lambda: cp.avg_pool2d(x, **pool)
        return lambda: cp.avg_pool2d_grad_input(gy, x.shape, **pool)
    if pass_ == "fwd":
        return lambda: cp.max_pool2d(x, **pool)
    _, indices = cp.max_pool2d(x, **pool, return_indices=True)
    return lambda: cp.max_pool2d_grad_input(gy, indices, x.shape, layout=layout)


def _conv_weight(layer: Layer) -> np.ndarray:
    rng = np.random.default_rng(1)
    shape = (layer.c_out, layer.c_in // layer.groups, layer.kernel, layer.kernel)
    return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def _is_dense_3x3(layer: Layer) -> bool:
    return layer.kind == "conv" and layer.kernel == 3 and layer.groups == 1 and layer.c_in > 3


def _torch_call(layer: Layer, pass_: str, x: np.ndarray, gy: np.ndarray,
                channels_last: bool) -> Callable[[], np.ndarray]:
    import torch
    import torch.nn.functional as F

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    tx = torch.from_numpy(x).contiguous(memory_format=fmt).requires_grad_(pass_ != "fwd")
    tgy = torch.from_numpy(gy).contiguous(memory_format=fmt)

    def forward(t):
        if layer.kind == "conv":
            tw = torch.from_numpy(_conv_weight(layer))
            return F.conv2d(t, tw, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        if layer.kind == "global-avg":
            return F.adaptive_avg_pool2d(t, 1)
        if layer.kind == "avg":
            return F.avg_pool2d(t, layer.kernel, layer.stride, layer.padding)
        return F.max_pool2d(t, layer.kernel, layer.stride, layer.padding)

    if pass_ == "fwd":
        def run():
            with torch.no_grad():
                return forward(tx)
        return run
    y = forward(tx)

    def backward():
        (grad,) = torch.autograd.grad(y, tx, tgy, retain_graph=True)
        return grad
    return backward


def _check(name: str, got: np.ndarray, expected: np.ndarray) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) or 1.0
    error = float(np.max(np.abs(got - expected))) / scale
    if got.shape != expected.shape or error > TOLERANCE:
        sys.exit(f"{name}: wrong result (shape {got.shape} vs {expected.shape}, error {error:.2g})")


def run_case(layer: Layer, batch: int, pass_: str, threads: int, plan: TimingPlan,
             with_torch: bool) -> dict:
    import convpool

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, layer.c_in, layer.size, layer.size)).astype(np.float32)
    y = _convpool_calls(layer, "fwd", x, x, "NCHW")()
    gy = rng.standard_normal(y.shape).astype(np.float32)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    gy_nhwc = np.ascontiguousarray(gy.transpose(0, 2, 3, 1))
    calls = {
        "convpool NCHW": (_convpool_calls(layer, pass_, x, gy, "NCHW"), False),
        "convpool NHWC": (_convpool_calls(layer, pass_, x_nhwc, gy_nhwc, "NHWC"), True),
    }
    if with_torch:
        calls["torch NCHW"] = (_torch_call(layer, pass_, x, gy, False), False)
        calls["torch channels_last"] = (_torch_call(layer, pass_, x, gy, True), False)
    expected = calls["convpool NCHW"][0]()
    for label, (call, nhwc) in calls.items():
        got = np.asarray(call())
        if nhwc and got.ndim == 4:
            got = got.transpose(0, 3, 1, 2)
        _check(f"{layer.name} {pass_} {label}", got.reshape(expected.shape), expected)

    def set_threads(n: int) -> None:
        convpool.set_num_threads(n)
        if with_torch:
            import torch
            torch.set_num_threads(n)

    runners = [Runner(label, threads, call, set_threads) for label, (call, _) in calls.items()]
    for runner in runners:
        runner.prepare()
    timings = time_interleaved(runners, plan)
    times = {label: t.median_s for label, t in timings.items()}
    record = {"layer": layer.name, "nets": list(layer.nets), "batch": batch, "pass": pass_,
              "times": times,
              "nhwc_vs_nchw": times["convpool NCHW"] / times["convpool NHWC"]}
    if with_torch:
        record["nhwc_vs_torch_channels_last"] = (times["torch channels_last"]
                                                 / times["convpool NHWC"])
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--passes", nargs="+", default=["fwd", "grad_input"],
                        choices=["fwd", "grad_input"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="short timing (noisier)")
    parser.add_argument("--kinds", default="pool", choices=["pool", "dense3x3"],
                        help="pooling layers, or the dense 3x3 convolutions")
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)

    import convpool
    try:
        import torch  # noqa: F401
        with_torch = True
    except ImportError:
        with_torch = False
    threads = args.threads or convpool.get_num_threads()
    plan = QUICK_PLAN if args.quick else TimingPlan()
    if args.kinds == "dense3x3":
        layers = [layer for layer in distinct_layers(args.nets) if _is_dense_3x3(layer)]
    else:
        layers = [layer for layer in distinct_layers(args.nets) if layer.kind != "conv"]
    records = []
    print(f"threads {threads}; ratios > 1: the channels-last convpool call is faster")
    print(f"{'layer':28} {'N':>2} {'pass':10} {'NCHW ms':>8} {'NHWC ms':>8} {'NCHW/NHWC':>9}"
          + (f" {'torch CL ms':>11} {'torchCL/NHWC':>12}" if with_torch else ""))
    for batch in args.batches:
        for layer in layers:
            for pass_ in args.passes:
                r = run_case(layer, batch, pass_, threads, plan, with_torch)
                records.append(r)
                t = r["times"]
                line = (f"{layer.name:28} {batch:2} {pass_:10} {t['convpool NCHW'] * 1e3:8.3f} "
                        f"{t['convpool NHWC'] * 1e3:8.3f} {r['nhwc_vs_nchw']:9.2f}")
                if with_torch:
                    line += (f" {t['torch channels_last'] * 1e3:11.3f} "
                             f"{r['nhwc_vs_torch_channels_last']:12.2f}")
                print(line, flush=True)
    summary = {"nhwc_vs_nchw": geometric_mean([r["nhwc_vs_nchw"] for r in records])}
    if with_torch:
        summary["nhwc_vs_torch_channels_last"] = geometric_mean(
            [r["nhwc_vs_torch_channels_last"] for r in records])
    print("geometric means: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": threads, "records": records, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
