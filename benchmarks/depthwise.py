#!/usr/bin/env python
"""Depthwise layers (3x3, 5x5, 7x7 at stride 1 and 2) and few-input-channel stems, timed
against PyTorch, ONNX Runtime and OpenVINO interleaved in one process, the way
``benchmarks/networks.py`` times a real net's layers (same runners, checks and table).

    python benchmarks/depthwise.py --quick
    python benchmarks/depthwise.py --layers k5 --batches 8 --json depthwise.json

The depthwise shapes are MobileNetV2's 3x3 layers and the 5x5/7x7 layers of the
MnasNet/EfficientNet/ConvNeXt families (14-112 px, 32-960 channels); the stems are the
first layers of MobileNetV2 (3x3 s2), ResNet (7x7 s2) and AlexNet (11x11 s4). Batch 1:
forward; batch 8: forward and both gradients.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import networks  # noqa: E402  (the sibling script: its runners, checks and table)
from networks import Layer  # noqa: E402


def _depthwise(channels: int, size: int, kernel: int, stride: int) -> Layer:
    return Layer("conv", channels, size, channels, kernel, stride, kernel // 2,
                 groups=channels, nets=(f"dw{kernel}x{kernel}",))


LAYERS: tuple[Layer, ...] = (
    _depthwise(32, 112, 3, 1), _depthwise(96, 112, 3, 2), _depthwise(144, 56, 3, 1),
    _depthwise(144, 56, 3, 2), _depthwise(192, 28, 3, 2), _depthwise(384, 14, 3, 1),
    _depthwise(960, 7, 3, 1),
    _depthwise(72, 56, 5, 2), _depthwise(120, 28, 5, 1), _depthwise(240, 28, 5, 2),
    _depthwise(480, 14, 5, 1), _depthwise(672, 14, 5, 2), _depthwise(960, 7, 5, 1),
    _depthwise(96, 56, 7, 1), _depthwise(96, 112, 7, 2), _depthwise(192, 28, 7, 1),
    _depthwise(384, 14, 7, 2),
    Layer("conv", 3, 224, 32, 3, 2, 1, nets=("mobilenet_v2",)),
    Layer("conv", 3, 224, 64, 7, 2, 3, nets=("resnet",)),
    Layer("conv", 3, 224, 64, 11, 4, 2, nets=("alexnet",)),
    Layer("conv", 1, 64, 32, 5, 1, 2, nets=("gray",)),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,8", help="1 (forward) and/or 8 (training)")
    parser.add_argument("--passes", default="", help="only these passes, e.g. grad_input")
    parser.add_argument("--peers", default="torch,onnxruntime,openvino")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per layer and pass")
    parser.add_argument("--quick", action="store_true", help="0.2 s per layer and pass")
    parser.add_argument("--layers", default="", help="only layers whose name contains this")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)

    import convpool
    from convpool.bench.machine import describe_cpu, describe_limits, machine_info, measure_limits
    from convpool.bench.timing import TimingPlan

    threads = args.threads or convpool.get_num_threads()
    peers = tuple(p for p in args.peers.split(",") if p)
    passes = {p for p in args.passes.split(",") if p}
    plan = TimingPlan(budget_s=0.2 if args.quick else args.budget,
                      min_rounds=3 if args.quick else 5)
    limits = measure_limits({1, threads}, quick=args.quick)
    records = []
    for batch in (int(b) for b in args.batches.split(",")):
        for layer in LAYERS:
            if args.layers not in layer.name:
                continue
            for pass_ in networks.PASSES.get(batch, ("fwd",)):
                if passes and pass_ not in passes:
                    continue
                record = networks.measure(layer, batch, pass_, threads, peers, plan, limits)
                records.append(record)
                print(f"{layer.name:34} N={batch} {pass_:11} " + "  ".join(
                    f"{lib} {t * 1e3:.3f} ms" for lib, t in record["times"].items()),
                    file=sys.stderr, flush=True)
    info = machine_info()
    results = {"cpu": describe_cpu(info["cpu_identity"]), "machine": info,
               "threads": threads, "limits": limits.to_json(),
               "limits_text": describe_limits(limits), "records": records,
               "summary": networks.summarise(records)}
    print(networks.render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0 if all(r["correct"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
