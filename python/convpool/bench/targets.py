"""The performance issue's targets: reported per row and summarised, never asserted.

Each check is a small dict (family, short label, measured value, threshold, met) attached
to the row it judges; :func:`summarise` counts them per family.
"""

from __future__ import annotations

import math

PEER_RATIO = 1.0  # every case and pass: peer time / convpool time
GEOMEAN_RATIO = 2.0  # geometric mean of the PyTorch ratios over the main cases
FMA_PEAK_PERCENT = 85.0  # forward of the FMA-bound (res-*) layers
BANDWIDTH_PERCENT = 50.0  # pooling, forward and forward+backward, of streaming bandwidth
OVERHEAD_US = 5.0  # a 1x1x8x8 convolution forward
THREAD_EFFICIENCY = 0.9  # 2 threads >= 1.8x one thread on res-*
EXTRA_MEMORY_RATIO = 1.0  # scratch memory during a call / operand bytes

FAMILIES = {
    "vs-torch": f"every case, fwd and fwd+bwd: PyTorch time / convpool time >= {PEER_RATIO:g}",
    "vs-opencv": f"the picture (Sobel) forward: OpenCV filter2D time / convpool time >= "
    f"{PEER_RATIO:g}",
    "geomean": f"geometric mean of the PyTorch ratios (main cases) >= {GEOMEAN_RATIO:g}",
    "fma-peak": f"FMA-bound layers (res-*) forward >= {FMA_PEAK_PERCENT:g}% of the FMA peak",
    "bandwidth": f"pooling fwd and fwd+bwd >= {BANDWIDTH_PERCENT:g}% of streaming bandwidth",
    "overhead": f"per-call overhead (1x1x8x8 conv forward) < {OVERHEAD_US:g} us",
    "threads": f"res-*: T threads at least {THREAD_EFFICIENCY:g} T times as fast as one "
    "(1.8x on 2 threads)",
    "memory": f"extra memory during a call <= {EXTRA_MEMORY_RATIO:g} x the operands' bytes",
}


def check(family: str, label: str, value: float, threshold: float, at_least: bool = True) -> dict:
    met = value >= threshold if at_least else value <= threshold
    return {"family": family, "target": label, "value": value, "threshold": threshold, "met": met}


def main_checks(case_kind: str, fma_bound: bool, pass_: str, record: dict) -> list[dict]:
    """Peer ratios; the FMA-peak share of res-* forward; the bandwidth share of pooling."""
    checks = [
        check(f"vs-{label}", f"{label}>={PEER_RATIO:g}", ratio, PEER_RATIO)
        for label, ratio in record["ratios"].items()
    ]
    percent = record["runners"]["convpool"]["percent_of_limit"]
    if case_kind == "conv" and fma_bound and pass_ == "fwd":
        checks.append(check("fma-peak", f"peak>={FMA_PEAK_PERCENT:g}%", percent, FMA_PEAK_PERCENT))
    if case_kind == "pool":
        checks.append(check("bandwidth", f"bw>={BANDWIDTH_PERCENT:g}%", percent, BANDWIDTH_PERCENT))
    return checks


def overhead_check(median_s: float) -> dict:
    return check("overhead", f"<{OVERHEAD_US:g}us", median_s * 1e6, OVERHEAD_US, at_least=False)


def threads_check(speedup: float, threads: int) -> dict:
    threshold = THREAD_EFFICIENCY * threads
    return check("threads", f"{threads}t>={threshold:g}x", speedup, threshold)


def memory_check(ratio: float) -> dict:
    return check("memory", f"extra<={EXTRA_MEMORY_RATIO:g}x", ratio, EXTRA_MEMORY_RATIO,
                 at_least=False)


def geometric_mean(values: list[float]) -> float | None:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return None
    return math.exp(sum(math.log(v) for v in positive) / len(positive))


def summarise(checks: list[dict]) -> dict:
    """Per family: its description, how many checks were met, of how many."""
    summary = {}
    for family, description in FAMILIES.items():
        judged = [c for c in checks if c["family"] == family]
        if judged:
            summary[family] = {
                "description": description,
                "met": sum(c["met"] for c in judged),
                "total": len(judged),
            }
    return summary
