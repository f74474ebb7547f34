"""Interleaved timing: the runners of one case take turns, so machine drift hits them all.

Each round times one sample of every runner, in an order rotated each round. A sample
repeats a call until it lasts ``min_sample_s`` (so microsecond calls are not lost in the
timer's resolution); its per-call time is one number of the median.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import asdict, dataclass

from .runners import Runner


@dataclass(frozen=True)
class TimingPlan:
    """How long to time one case and pass, all its runners together."""

    budget_s: float = 2.0  # stop after this much time once min_rounds are done
    min_rounds: int = 5
    max_rounds: int = 200
    min_sample_s: float = 1e-3


QUICK_PLAN = TimingPlan(budget_s=0.2, min_rounds=3, max_rounds=50)


@dataclass
class Timing:
    """Per-call seconds of one runner: median, quartiles, every sample."""

    label: str
    library: str
    threads: int
    median_s: float
    min_s: float
    q1_s: float
    q3_s: float
    calls_per_sample: int
    samples_s: list[float]

    def to_json(self) -> dict:
        return asdict(self)


def _timed(runner: Runner, calls: int) -> float:
    runner.prepare()
    start = time.perf_counter()
    for _ in range(calls):
        runner.call()
    return (time.perf_counter() - start) / calls


def time_interleaved(runners: list[Runner], plan: TimingPlan) -> dict[str, Timing]:
    """Time every runner (already warmed up) in alternating rounds; keyed by label."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection would land on whichever call triggers it
    try:
        calls = {}
        for runner in runners:
            estimate = _timed(runner, 1)
            calls[runner.label] = min(max(1, math.ceil(plan.min_sample_s / max(estimate, 1e-9))),
                                      100_000)
        samples: dict[str, list[float]] = {runner.label: [] for runner in runners}
        start = time.perf_counter()
        for round_ in range(plan.max_rounds):
            shift = round_ % len(runners)
            for runner in runners[shift:] + runners[:shift]:
                samples[runner.label].append(_timed(runner, calls[runner.label]))
            if round_ + 1 >= plan.min_rounds and time.perf_counter() - start >= plan.budget_s:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return {runner.label: _summarise(runner, calls[runner.label], samples[runner.label])
            for runner in runners}


def _summarise(runner: Runner, calls: int, samples: list[float]) -> Timing:
    ordered = sorted(samples)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else ordered * 3
    return Timing(
        label=runner.label,
        library=runner.library,
        threads=runner.threads,
        median_s=statistics.median(ordered),
        min_s=ordered[0],
        q1_s=quartiles[0],
        q3_s=quartiles[2],
        calls_per_sample=calls,
        samples_s=samples,
    )
