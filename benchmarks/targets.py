"""The project's performance targets, judged on a run of the suite; never asserted in tests.

The suite (:mod:`convpool.bench`) measures and reports; this file holds what the project
aims for and marks each row of a run met or missed: ``judge(results)`` attaches a list of
checks to every row it judges and a per-family tally to ``results["summary"]["targets"]``,
which the report prints. ``python benchmarks/run.py`` runs the suite with it.
"""

from __future__ import annotations

PEER_RATIO = 1.0  # every case and pass: peer time / convpool time
GEOMEAN_RATIO = 2.0  # geometric mean of the PyTorch ratios over the main cases
FMA_PEAK_PERCENT = 85.0  # forward of the FMA-bound (res-*) layers, of the measured peak
BANDWIDTH_PERCENT = 50.0  # pooling, forward and forward+backward, of measured bandwidth
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


def _main_checks(record: dict) -> list[dict]:
    """Peer ratios; the FMA-peak share of res-* forward; the bandwidth share of pooling."""
    checks = [
        check(f"vs-{label}", f"{label}>={PEER_RATIO:g}", ratio, PEER_RATIO)
        for label, ratio in record["ratios"].items()
    ]
    percent = record["runners"]["convpool"]["percent_of_limit"]
    if record["kind"] == "conv" and record["fma_bound"] and record["pass"] == "fwd":
        checks.append(check("fma-peak", f"peak>={FMA_PEAK_PERCENT:g}%", percent, FMA_PEAK_PERCENT))
    if record["kind"] == "pool":
        checks.append(check("bandwidth", f"bw>={BANDWIDTH_PERCENT:g}%", percent, BANDWIDTH_PERCENT))
    return checks


def _record_checks(record: dict, threads: int) -> list[dict]:
    if "skipped" in record:
        return []
    if record["section"] == "main":
        return _main_checks(record)
    if record["section"] == "overhead" and record["pass"] == "fwd":
        median_us = record["runners"]["convpool"]["median_s"] * 1e6
        return [check("overhead", f"<{OVERHEAD_US:g}us", median_us, OVERHEAD_US, at_least=False)]
    if record["section"] == "threads" and "speedups" in record:
        threshold = THREAD_EFFICIENCY * threads
        return [check("threads", f"{threads}t>={threshold:g}x",
                      record["speedups"]["convpool"], threshold)]
    return []


def judge(results: dict) -> None:
    """Marks every judged row of a run (in place) and tallies the targets per family."""
    threads = results["settings"]["threads"]
    checks = []
    for record in results["records"]:
        record["checks"] = _record_checks(record, threads)
        checks += record["checks"]
    for row in (results.get("memory") or {}).get("results", []):
        if row["library"] == "convpool" and "skipped" not in row:
            row["checks"] = [check("memory", f"extra<={EXTRA_MEMORY_RATIO:g}x",
                                   row["extra_per_operand"], EXTRA_MEMORY_RATIO, at_least=False)]
            checks += row["checks"]
    geomean = results["summary"]["geomean_ratio_vs_torch"]
    if geomean is not None:
        checks.append(check("geomean", f">={GEOMEAN_RATIO:g}", geomean, GEOMEAN_RATIO))
    summary = {}
    for family, description in FAMILIES.items():
        judged = [c for c in checks if c["family"] == family]
        if judged:
            summary[family] = {"description": description,
                               "met": sum(c["met"] for c in judged), "total": len(judged)}
    results["summary"]["targets"] = summary
