#!/usr/bin/env python
"""Every distinct convolution and pooling layer of well-known CNNs, timed against the CPU
engines a user would choose between, interleaved in one process.

    python benchmarks/networks.py                       # all nets, batch 1 and 8
    python benchmarks/networks.py --nets resnet18 --quick --json nets.json

Nets: AlexNet, VGG-16, ResNet-18, ResNet-50, MobileNetV2 (shapes derived from the
architectures at 224x224; a layer shared by several nets is timed once). Passes: batch 1
forward (inference latency) and batch 8 forward, input gradient and weight gradient
(training). Peers, each optional: PyTorch (oneDNN), ONNX Runtime (MLAS) and OpenVINO, the
last two for the forward pass only (they are inference engines). Every peer's output is
checked against PyTorch's, and so is convpool's; a wrong result fails the run.

``--layout NHWC`` runs convpool's convolutions channels-last (inputs and output gradients
made NHWC before timing, results transposed back only to be checked); ``--layout both``
times the two side by side (``convpool-nhwc``, not counted as a peer) and reports
NCHW time / NHWC time per layer.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from convpool.bench.machine import describe_cpu, describe_limits, machine_info, measure_limits
from convpool.bench.runners import Runner, Unavailable, as_numpy
from convpool.bench.suite import geometric_mean
from convpool.bench.timing import TimingPlan, time_interleaved
from convpool.geometry import output_size

TOLERANCE = 1e-4  # max |a - b| / max |b| between two float32 results of one layer
BUSY_SPREAD = 0.25  # an interquartile range above 25% of the median: the machine was busy


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling layer at batch 1; ``nets`` lists where it occurs."""

    kind: str  # "conv", "max", "avg", "global-avg"
    c_in: int
    size: int  # square input, H = W
    c_out: int = 0
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    nets: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        if self.kind != "conv":
            window = "" if self.kind == "global-avg" else f" k{self.kernel} s{self.stride}" + (
                f" p{self.padding}" if self.padding else "")
            return f"{self.kind}{window} {self.c_in}x{self.size}"
        text = f"conv {self.c_in}->{self.c_out} k{self.kernel}"
        text += f" s{self.stride}" if self.stride > 1 else ""
        text += f" p{self.padding}" if self.padding else ""
        text += f" d{self.dilation}" if self.dilation > 1 else ""
        text += f" g{self.groups}" if self.groups > 1 else ""
        return f"{text} @{self.size}"

    def out_size(self) -> int:
        if self.kind == "global-avg":
            return 1
        return output_size(self.size, self.kernel, self.stride, self.dilation, self.padding,
                           self.padding)

    def flops(self, batch: int) -> int:
        """Multiply-adds x 2 of one pass (forward; each gradient costs the same)."""
        if self.kind != "conv":
            return 0
        out = self.out_size()
        return 2 * batch * self.c_out * out * out * (self.c_in // self.groups) * self.kernel ** 2

    def bytes_moved(self, batch: int) -> int:
        """Fewest bytes a pooling pass must move: read the input, write the output."""
        return 4 * batch * self.c_in * (self.size ** 2 + self.out_size() ** 2)


def _conv(c_in: int, c_out: int, size: int, kernel: int, stride: int = 1,
          groups: int = 1, padding: int | None = None) -> Layer:
    pad = kernel // 2 if padding is None else padding
    return Layer("conv", c_in, size, c_out, kernel, stride, pad, 1, groups)


def alexnet() -> Iterator[Layer]:
    yield _conv(3, 64, 224, 11, 4, padding=2)
    yield Layer("max", 64, 55, kernel=3, stride=2)
    yield _conv(64, 192, 27, 5)
    yield Layer("max", 192, 27, kernel=3, stride=2)
    yield _conv(192, 384, 13, 3)
    yield _conv(384, 256, 13, 3)
    yield _conv(256, 256, 13, 3)
    yield Layer("max", 256, 13, kernel=3, stride=2)


def vgg16() -> Iterator[Layer]:
    size, c_in = 224, 3
    for c_out, repeats in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(repeats):
            yield _conv(c_in, c_out, size, 3)
            c_in = c_out
        yield Layer("max", c_out, size, kernel=2, stride=2)
        size //= 2


def _resnet_stem() -> Iterator[Layer]:
    yield _conv(3, 64, 224, 7, 2)
    yield Layer("max", 64, 112, kernel=3, stride=2, padding=1)


def resnet18() -> Iterator[Layer]:
    yield from _resnet_stem()
    size, c_in = 56, 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        yield _conv(c_in, c_out, size, 3, stride)
        if stride > 1 or c_in != c_out:
            yield _conv(c_in, c_out, size, 1, stride)  # the shortcut's projection
        size //= stride
        for _ in range(3):  # the first block's second convolution, the second block's two
            yield _conv(c_out, c_out, size, 3)
        c_in = c_out
    yield Layer("global-avg", 512, 7)


def resnet50() -> Iterator[Layer]:
    yield from _resnet_stem()
    size, c_in = 56, 64
    for width, stride, blocks in ((64, 1, 3), (128, 2, 4), (256, 2, 6), (512, 2, 3)):
        c_out = 4 * width
        # The first block of a stage: the stride sits on the 3x3 (torchvision's v1.5).
        yield _conv(c_in, width, size, 1)
        yield _conv(width, width, size, 3, stride)
        yield _conv(c_in, c_out, size, 1, stride)  # the shortcut's projection
        size //= stride
        yield _conv(width, c_out, size, 1)
        for _ in range(blocks - 1):
            yield _conv(c_out, width, size, 1)
            yield _conv(width, width, size, 3)
            yield _conv(width, c_out, size, 1)
        c_in = c_out
    yield Layer("global-avg", 2048, 7)


def mobilenet_v2() -> Iterator[Layer]:
    yield _conv(3, 32, 224, 3, 2)
    size, c_in = 112, 32
    for expand, c_out, repeats, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                                           (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                                           (6, 320, 1, 1)):
        for index in range(repeats):
            step = stride if index == 0 else 1
            hidden = c_in * expand
            if expand != 1:
                yield _conv(c_in, hidden, size, 1)
            yield _conv(hidden, hidden, size, 3, step, groups=hidden)
            size //= step
            yield _conv(hidden, c_out, size, 1)
            c_in = c_out
    yield _conv(320, 1280, 7, 1)
    yield Layer("global-avg", 1280, 7)


NETS: dict[str, Callable[[], Iterator[Layer]]] = {
    "alexnet": alexnet, "vgg16": vgg16, "resnet18": resnet18, "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
}


def distinct_layers(nets: list[str]) -> list[Layer]:
    """Each layer once, in order of first appearance, with every net it occurs in."""
    found: dict[Layer, list[str]] = {}
    for net in nets:
        for layer in NETS[net]():
            found.setdefault(layer, [])
            if net not in found[layer]:
                found[layer].append(net)
    return [replace(layer, nets=tuple(where)) for layer, where in found.items()]


# --- runners -------------------------------------------------------------------------------

def _operands(layer: Layer, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.c_in, layer.size, layer.size), dtype=np.float32)
    out = layer.out_size()
    arrays = {"x": x}
    if layer.kind == "conv":
        fan_in = layer.c_in // layer.groups * layer.kernel ** 2
        arrays["w"] = (rng.standard_normal(
            (layer.c_out, layer.c_in // layer.groups, layer.kernel, layer.kernel),
            dtype=np.float32) / math.sqrt(fan_in)).astype(np.float32)
        arrays["b"] = rng.standard_normal(layer.c_out, dtype=np.float32)
        arrays["gy"] = rng.standard_normal((batch, layer.c_out, out, out), dtype=np.float32)
    else:
        arrays["gy"] = rng.standard_normal((batch, layer.c_in, out, out), dtype=np.float32)
    return arrays


NHWC_RUNNER = "convpool-nhwc"


def _convpool_nhwc(layer: Layer, pass_: str, a: dict) -> Callable[[], object]:
    """convpool's convolution pass on channels-last copies of the operands (made here,
    outside the timed calls)."""
    import convpool as cp

    geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                    groups=layer.groups, layout="NHWC")
    x = np.ascontiguousarray(a["x"].transpose(0, 2, 3, 1))
    gy = np.ascontiguousarray(a["gy"].transpose(0, 2, 3, 1))
    return {
        "fwd": lambda: cp.conv2d(x, a["w"], a["b"], **geometry),
        "grad_input": lambda: cp.conv2d_grad_input(gy, a["w"], x.shape, **geometry),
        "grad_weight": lambda: cp.conv2d_grad_weight(x, gy, a["w"].shape, **geometry),
    }[pass_]


def _nchw_result(value: object, pass_: str) -> np.ndarray:
    """A channels-last runner's result in NCHW, to be checked against PyTorch's."""
    array = _as_numpy(value)
    return array if pass_ == "grad_weight" else array.transpose(0, 3, 1, 2)


def _convpool(layer: Layer, pass_: str, a: dict, layout: str = "NCHW") -> Callable[[], object]:
    import convpool as cp

    if layout == "NHWC" and layer.kind == "conv":
        return _convpool_nhwc(layer, pass_, a)
    geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                    groups=layer.groups)
    if layer.kind == "conv":
        return {
            "fwd": lambda: cp.conv2d(a["x"], a["w"], a["b"], **geometry),
            "grad_input": lambda: cp.conv2d_grad_input(a["gy"], a["w"], a["x"].shape, **geometry),
            "grad_weight": lambda: cp.conv2d_grad_weight(a["x"], a["gy"], a["w"].shape,
                                                         **geometry),
        }[pass_]
    if layer.kind == "global-avg":
        return {"fwd": lambda: cp.global_avg_pool2d(a["x"], keepdims=True),
                "grad_input": lambda: cp.global_avg_pool2d_grad_input(a["gy"], a["x"].shape)
                }[pass_]
    pool = dict(kernel_size=layer.kernel, stride=layer.stride, padding=layer.padding)
    if layer.kind == "avg":
        return {"fwd": lambda: cp.avg_pool2d(a["x"], **pool),
                "grad_input": lambda: cp.avg_pool2d_grad_input(a["gy"], a["x"].shape, **pool)
                }[pass_]
    if pass_ == "fwd":
        return lambda: cp.max_pool2d(a["x"], **pool)
    _, indices = cp.max_pool2d(a["x"], **pool, return_indices=True)
    return lambda: cp.max_pool2d_grad_input(a["gy"], indices, a["x"].shape)


def _torch(layer: Layer, pass_: str, a: dict) -> Callable[[], object]:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as error:
        raise Unavailable(f"PyTorch is not installed ({error})") from None
    t = {k: torch.from_numpy(v) for k, v in a.items()}
    geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                    groups=layer.groups)
    if layer.kind == "conv":
        if pass_ == "fwd":
            def forward():
                with torch.no_grad():
                    return F.conv2d(t["x"], t["w"], t["b"], **geometry)
            return forward
        mask = [pass_ == "grad_input", pass_ == "grad_weight", False]
        index = 0 if pass_ == "grad_input" else 1

        def backward():
            # What autograd calls for a convolution's backward, one gradient at a time.
            grads = torch.ops.aten.convolution_backward(
                t["gy"], t["x"], t["w"], None, [layer.stride] * 2, [layer.padding] * 2,
                [layer.dilation] * 2, False, [0, 0], layer.groups, mask)
            return grads[index]
        return backward
    if pass_ == "fwd":
        def pool_forward():
            with torch.no_grad():
                if layer.kind == "global-avg":
                    return F.adaptive_avg_pool2d(t["x"], 1)
                if layer.kind == "avg":
                    return F.avg_pool2d(t["x"], layer.kernel, layer.stride, layer.padding)
                return F.max_pool2d(t["x"], layer.kernel, layer.stride, layer.padding)
        return pool_forward
    x = t["x"].clone().requires_grad_(True)
    if layer.kind == "global-avg":
        y = F.adaptive_avg_pool2d(x, 1)
    elif layer.kind == "avg":
        y = F.avg_pool2d(x, layer.kernel, layer.stride, layer.padding)
    else:
        y = F.max_pool2d(x, layer.kernel, layer.stride, layer.padding)

    def pool_backward():
        return torch.autograd.grad(y, x, t["gy"], retain_graph=True)[0]
    return pool_backward


def _onnx_model(layer: Layer, a: dict) -> bytes:
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as error:
        raise Unavailable(f"onnx is not installed ({error})") from None
    out = layer.out_size()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(a["x"].shape))
    channels = layer.c_out if layer.kind == "conv" else layer.c_in
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                      [a["x"].shape[0], channels, out, out])
    initializers = []
    if layer.kind == "conv":
        initializers = [numpy_helper.from_array(a["w"], "w"), numpy_helper.from_array(a["b"], "b")]
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[layer.kernel] * 2,
                                strides=[layer.stride] * 2, pads=[layer.padding] * 4,
                                dilations=[layer.dilation] * 2, group=layer.groups)
    elif layer.kind == "global-avg":
        node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    else:
        node = helper.make_node("MaxPool" if layer.kind == "max" else "AveragePool", ["x"], ["y"],
                                kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2,
                                pads=[layer.padding] * 4)
    graph = helper.make_graph([node], "layer", [x], [y], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _onnxruntime(layer: Layer, pass_: str, a: dict, threads: int) -> Callable[[], object]:
    if pass_ != "fwd":
        raise Unavailable("ONNX Runtime is an inference engine: forward only")
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise Unavailable(f"onnxruntime is not installed ({error})") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning worker threads would eat the cores the next library is timed on.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(_onnx_model(layer, a), options,
                                   providers=["CPUExecutionProvider"])
    feed = {"x": a["x"]}
    return lambda: session.run(None, feed)[0]


def _openvino(layer: Layer, pass_: str, a: dict, threads: int) -> Callable[[], object]:
    if pass_ != "fwd":
        raise Unavailable("OpenVINO is an inference engine: forward only")
    try:
        import openvino as ov
    except ImportError as error:
        raise Unavailable(f"openvino is not installed ({error})") from None
    core = ov.Core()
    model = core.read_model(_onnx_model(layer, a))
    # f32: on CPUs with AVX512_BF16 OpenVINO would otherwise compute in bfloat16.
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                 "INFERENCE_NUM_THREADS": threads,
                                                 "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = a["x"]

    def forward():
        request.infer({0: x})
        return request.get_output_tensor(0).data
    return forward


def make_runners(layer: Layer, pass_: str, a: dict, threads: int,
                 peers: tuple[str, ...], layout: str = "NCHW") -> tuple[list[Runner], list[str]]:
    import convpool

    def torch_threads(n: int) -> None:
        import torch
        torch.set_num_threads(n)

    runners = [Runner("convpool", threads,
                      _convpool(layer, pass_, a, "NHWC" if layout == "NHWC" else "NCHW"),
                      convpool.set_num_threads)]
    if layout == "both" and layer.kind == "conv":
        runners.append(Runner(NHWC_RUNNER, threads, _convpool_nhwc(layer, pass_, a),
                              convpool.set_num_threads))
    notes = []
    makers = {
        "torch": (lambda: _torch(layer, pass_, a), torch_threads),
        "onnxruntime": (lambda: _onnxruntime(layer, pass_, a, threads), lambda n: None),
        "openvino": (lambda: _openvino(layer, pass_, a, threads), lambda n: None),
    }
    for peer in peers:
        make, set_threads = makers[peer]
        try:
            runners.append(Runner(peer, threads, make(), set_threads))
        except Unavailable as error:
            if pass_ == "fwd" or "forward only" not in str(error):
                notes.append(f"{peer}: {error}")
    return runners, notes


def _as_numpy(value: object) -> np.ndarray:
    return as_numpy(value).astype(np.float32, copy=False)


def relative_error(value: object, reference: np.ndarray) -> float:
    value = _as_numpy(value).reshape(reference.shape)
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(value - reference))) / scale


# --- the run -------------------------------------------------------------------------------

PASSES = {1: ("fwd",), 8: ("fwd", "grad_input", "grad_weight")}


def measure(layer: Layer, batch: int, pass_: str, threads: int, peers: tuple[str, ...],
            plan: TimingPlan, limits, layout: str = "NCHW") -> dict:
    if layer.kind != "conv" and pass_ == "grad_weight":
        return {}
    a = _operands(layer, batch)
    runners, notes = make_runners(layer, pass_, a, threads, peers, layout)
    channels_last = {NHWC_RUNNER} | ({"convpool"} if layout == "NHWC" else set())
    outputs = {}
    for runner in runners:
        runner.prepare()
        value = runner.call()
        outputs[runner.library] = (_nchw_result(value, pass_) if layer.kind == "conv"
                                   and runner.library in channels_last else _as_numpy(value))
    reference = outputs.get("torch")
    errors = ({lib: relative_error(out, reference) for lib, out in outputs.items()
               if lib != "torch"} if reference is not None else {})
    timings = time_interleaved(runners, plan)
    record = {
        "layer": layer.name, "nets": list(layer.nets), "batch": batch, "pass": pass_,
        "errors": errors, "correct": all(e <= TOLERANCE for e in errors.values()),
        "notes": notes, "times": {}, "spread": {},
    }
    for library, timing in timings.items():
        record["times"][library] = timing.median_s
        record["spread"][library] = (timing.q3_s - timing.q1_s) / timing.median_s
    if layer.kind == "conv":
        rate = layer.flops(batch) / record["times"]["convpool"] / 1e9
        record["gflops"] = rate
        record["percent_of_peak"] = 100 * rate / limits.fma_peak(threads)
    else:
        rate = layer.bytes_moved(batch) / record["times"]["convpool"] / 1e9
        record["gbs"] = rate
        record["percent_of_bandwidth"] = 100 * rate / limits.stream_gbs
    if NHWC_RUNNER in record["times"]:
        record["ratio_nhwc_vs_nchw"] = record["times"]["convpool"] / record["times"][NHWC_RUNNER]
    peer_times = {lib: t for lib, t in record["times"].items()
                  if lib not in ("convpool", NHWC_RUNNER)}
    if peer_times:
        fastest = min(peer_times, key=peer_times.get)
        record["fastest_peer"] = fastest
        record["ratio_vs_fastest"] = peer_times[fastest] / record["times"]["convpool"]
    if "torch" in peer_times:
        record["ratio_vs_torch"] = peer_times["torch"] / record["times"]["convpool"]
    record["busy"] = any(s > BUSY_SPREAD for s in record["spread"].values())
    return record


def render(results: dict) -> str:
    lines = [results["cpu"], results["limits_text"],
             f"threads {results['threads']}; ratio = peer time / convpool time (> 1: convpool "
             "faster); '!' marks a row whose spread says the machine was busy", ""]
    header = (f"{'layer':34} {'nets':22} {'N':>2} {'pass':11} {'convpool':>9} "
              f"{'torch':>9} {'ort':>9} {'ov':>9} {'vs best':>7} {'vs torch':>8} {'rate':>13}")
    lines.append(header)
    for r in results["records"]:
        times = r["times"]
        cell = [f"{times[lib] * 1e3:9.3f}" if lib in times else f"{'-':>9}"
                for lib in ("convpool", "torch", "onnxruntime", "openvino")]
        rate = (f"{r['gflops']:6.0f} GF {r['percent_of_peak']:3.0f}%" if "gflops" in r
                else f"{r['gbs']:6.1f} GB/s")
        best = f"{r['ratio_vs_fastest']:7.2f}" if "ratio_vs_fastest" in r else f"{'-':>7}"
        vs_torch = f"{r['ratio_vs_torch']:8.2f}" if "ratio_vs_torch" in r else f"{'-':>8}"
        flag = "!" if r["busy"] else " "
        wrong = "" if r["correct"] else "  WRONG " + str(r["errors"])
        lines.append(f"{r['layer'][:34]:34} {','.join(r['nets'])[:22]:22} {r['batch']:>2} "
                     f"{r['pass']:11} {' '.join(cell)} {best} {vs_torch} {rate}{flag}{wrong}")
    lines.append("")
    for key, text in results["summary"].items():
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


def summarise(records: list[dict]) -> dict:
    summary = {}
    for batch, pass_ in sorted({(r["batch"], r["pass"]) for r in records}):
        rows = [r for r in records if r["batch"] == batch and r["pass"] == pass_]
        best = [r["ratio_vs_fastest"] for r in rows if "ratio_vs_fastest" in r]
        torch = [r["ratio_vs_torch"] for r in rows if "ratio_vs_torch" in r]
        mean_best, mean_torch = geometric_mean(best), geometric_mean(torch)
        summary[f"batch {batch} {pass_}"] = (
            f"{len(rows)} layers; vs fastest peer: geomean "
            f"{mean_best if mean_best is None else round(mean_best, 2)}, behind on "
            f"{sum(v < 1 for v in best)}; vs torch: geomean "
            f"{mean_torch if mean_torch is None else round(mean_torch, 2)}, behind on "
            f"{sum(v < 1 for v in torch)}")
    for batch, pass_ in sorted({(r["batch"], r["pass"]) for r in records}):
        ratios = [r["ratio_nhwc_vs_nchw"] for r in records
                  if r["batch"] == batch and r["pass"] == pass_ and "ratio_nhwc_vs_nchw" in r]
        if ratios:
            summary[f"batch {batch} {pass_} NHWC"] = (
                f"{len(ratios)} conv layers; NCHW time / NHWC time: geomean "
                f"{round(geometric_mean(ratios), 2)}, NHWC slower on "
                f"{sum(v < 1 for v in ratios)}")
    summary["correct"] = str(all(r["correct"] for r in records))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(NETS), help=f"any of {','.join(NETS)}")
    parser.add_argument("--batches", default="1,8", help="1 (forward) and/or 8 (training)")
    parser.add_argument("--peers", default="torch,onnxruntime,openvino")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per layer and pass")
    parser.add_argument("--quick", action="store_true", help="0.2 s per layer and pass")
    parser.add_argument("--layers", default="", help="only layers whose name contains this")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--layout", default="NCHW", choices=("NCHW", "NHWC", "both"),
                        help="convpool's convolutions in NCHW, channels-last, or both timed")
    args = parser.parse_args(argv)

    import convpool

    nets = [n for n in args.nets.split(",") if n]
    unknown = [n for n in nets if n not in NETS]
    if unknown:
        parser.error(f"--nets: unknown {unknown}; choose from {list(NETS)}")
    threads = args.threads or convpool.get_num_threads()
    peers = tuple(p for p in args.peers.split(",") if p)
    plan = TimingPlan(budget_s=0.2 if args.quick else args.budget, min_rounds=3 if args.quick
                      else 5)
    limits = measure_limits({1, threads}, quick=args.quick)
    print(describe_limits(limits), file=sys.stderr)
    records = []
    for batch in (int(b) for b in args.batches.split(",")):
        for layer in distinct_layers(nets):
            if args.layers not in layer.name:
                continue
            for pass_ in PASSES.get(batch, ("fwd",)):
                record = measure(layer, batch, pass_, threads, peers, plan, limits, args.layout)
                if record:
                    records.append(record)
                    print(f"{layer.name:34} N={batch} {pass_:11} " + "  ".join(
                        f"{lib} {t * 1e3:.3f} ms" for lib, t in record["times"].items()),
                        file=sys.stderr, flush=True)
    info = machine_info()
    results = {"cpu": describe_cpu(info["cpu_identity"]), "machine": info,
               "threads": threads, "limits": limits.to_json(),
               "limits_text": describe_limits(limits), "records": records,
               "summary": summarise(records)}
    print(render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0 if all(r["correct"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
