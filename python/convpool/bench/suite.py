"""The suite: every section's measurements, gathered into one JSON-ready dict.

Sections: ``main`` (the benchmark cases vs the peers), ``overhead`` (a tiny call),
``threads`` (one thread vs all on the FMA-bound layers), ``sweep`` (batch sizes),
``memory`` (extra memory per call, in a fresh process) and ``training`` (a LeNet-5 epoch).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .accuracy import TOLERANCE, relative_errors
from .cases import (
    MAIN_CASES,
    OVERHEAD_CASE,
    PASSES,
    SWEEP_BASES,
    SWEEP_BATCHES,
    TRAINING_CASE,
    Case,
    ConvCase,
    selected,
)
from .machine import Limits, describe_limits, load_average, machine_info, measure_limits
from .memory import measure_memory
from .operands import operands
from .runners import Unavailable, make_runner, output_names
from .timing import TimingPlan, time_interleaved

SCHEMA = "convpool-bench/1"
SECTIONS = ("main", "overhead", "threads", "sweep", "memory", "training")
PEERS = ("torch", "opencv")

Progress = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    """What to run and how long to time it."""

    threads: int
    plan: TimingPlan = field(default_factory=TimingPlan)
    limits: Limits | None = None  # None: measured at the start of the run
    quick: bool = False
    peers: tuple[str, ...] = PEERS
    sections: tuple[str, ...] = SECTIONS
    patterns: tuple[str, ...] = ()  # --cases
    sweep_bases: tuple[str, ...] = SWEEP_BASES
    sweep_batches: tuple[int, ...] = SWEEP_BATCHES
    training_images: int = 60_000
    seed: int = 0

    @property
    def secondary_passes(self) -> tuple[str, ...]:
        """Passes of the threads and sweep sections: forward only in a quick run."""
        return ("fwd",) if self.quick else PASSES

    def to_json(self) -> dict:
        return {
            "threads": self.threads,
            "quick": self.quick,
            "peers": list(self.peers),
            "sections": list(self.sections),
            "cases": list(self.patterns),
            "plan": vars(self.plan),
            "limits": self.limits.to_json() if self.limits else None,
            "sweep_batches": list(self.sweep_batches),
            "training_images": self.training_images,
            "accuracy_tolerance": TOLERANCE,
        }


def measure(section: str, case: Case, pass_: str, specs: Sequence[tuple[str, int, str]],
            settings: Settings) -> dict:
    """Run ``case`` and ``pass_`` for each ``(library, threads, label)`` in ``specs``:
    check outputs once against the reference peer, then time them interleaved."""
    record: dict = {
        "section": section, "case": case.name, "base": case.base or case.name,
        "kind": case.kind, "fma_bound": isinstance(case, ConvCase) and case.fma_bound,
        "shape": case.describe(), "pass": pass_, "unit": case.unit,
        "work": case.work(pass_), "runners": {}, "reference": None, "errors": {},
        "correct": None, "ratios": {}, "notes": [],
    }
    arrays = operands(case, settings.seed)
    runners = []
    for library, threads, label in specs:
        try:
            runner = make_runner(library, case, pass_, arrays, threads)
        except Unavailable as error:
            if library == "convpool":
                return record | {"skipped": str(error)}
            record["notes"].append(f"{label}: {error}")
            continue
        runner.label = label
        runners.append(runner)

    # The first call of each runner is its warm-up and gives the outputs checked once.
    outputs, first_call_s = {}, {}
    for runner in list(runners):
        runner.prepare()
        start = time.perf_counter()
        try:
            outputs[runner.label] = runner.call()
        except Exception as error:  # a failing call is reported, and the suite goes on
            message = f"{runner.label} raised {type(error).__name__}: {error}"
            if runner.library == "convpool":
                return record | {"skipped": message, "correct": False}
            record["notes"].append(message)
            runners.remove(runner)
            continue
        first_call_s[runner.label] = time.perf_counter() - start
    peers = [r for r in runners if r.library != "convpool"]
    reference = next((r for r in peers if r.library == "torch"), peers[0] if peers else None)
    if reference is not None:
        names = output_names(case, pass_)
        record["reference"] = reference.label
        record["errors"] = {
            r.label: relative_errors(outputs[r.label], outputs[reference.label], names)
            for r in runners if r is not reference
        }
        record["correct"] = all(
            max(record["errors"][r.label].values()) <= TOLERANCE
            for r in runners if r.library == "convpool"
        )
    del outputs

    timings = time_interleaved(runners, settings.plan)
    for label, timing in timings.items():
        rate = record["work"] / timing.median_s / 1e9
        limit = settings.limits.limit(case.unit, timing.threads)
        record["runners"][label] = timing.to_json() | {
            "first_call_s": first_call_s[label],
            "rate": rate,
            "percent_of_limit": 100.0 * rate / limit,
        }
    if "convpool" in timings:
        base = timings["convpool"].median_s
        record["ratios"] = {
            label: timing.median_s / base
            for label, timing in timings.items() if label != "convpool"
        }
    return record


def _specs(settings: Settings, case: Case, pass_: str) -> list[tuple[str, int, str]]:
    """convpool and each peer that applies to the case, all on the suite's thread count."""
    peers = [p for p in settings.peers
             if p != "opencv" or (isinstance(case, ConvCase) and case.picture and pass_ == "fwd")]
    return [(library, settings.threads, library) for library in ("convpool", *peers)]


def _thread_specs(settings: Settings) -> list[tuple[str, int, str]]:
    counts = (1, settings.threads)
    libraries = ("convpool", *(p for p in settings.peers if p == "torch"))
    return [(lib, n, f"{lib}@{n}t") for lib in libraries for n in counts]


class _Suite:
    def __init__(self, settings: Settings, main_cases: Sequence[Case], progress: Progress):
        self.settings = settings
        self.main_cases = [c for c in main_cases if selected(c.name, settings.patterns)]
        self.all_main_cases = list(main_cases)
        self.progress = progress
        self.records: list[dict] = []

    def _add(self, record: dict) -> dict:
        self.records.append(record)
        self.progress(_progress_line(record))
        return record

    def main(self) -> None:
        for case in self.main_cases:
            for pass_ in PASSES:
                self._add(measure("main", case, pass_, _specs(self.settings, case, pass_),
                                  self.settings))

    def overhead(self) -> None:
        if not selected(OVERHEAD_CASE.name, self.settings.patterns):
            return
        for pass_ in PASSES:
            self._add(measure("overhead", OVERHEAD_CASE, pass_,
                              _specs(self.settings, OVERHEAD_CASE, pass_), self.settings))

    def threads(self) -> None:
        threads = self.settings.threads
        if threads < 2:
            return
        cases = [c for c in self.main_cases if isinstance(c, ConvCase) and c.fma_bound]
        for case in cases:
            for pass_ in self.settings.secondary_passes:
                record = measure("threads", case, pass_, _thread_specs(self.settings),
                                 self.settings)
                if "skipped" not in record:
                    median = {label: r["median_s"] for label, r in record["runners"].items()}
                    record["speedups"] = {
                        lib: median[f"{lib}@1t"] / median[f"{lib}@{threads}t"]
                        for lib in ("convpool", "torch") if f"{lib}@1t" in median
                    }
                    if "torch@1t" in median:
                        record["ratios"] = {
                            f"torch@{n}t": median[f"torch@{n}t"] / median[f"convpool@{n}t"]
                            for n in (1, threads)
                        }
                self._add(record)

    def sweep(self) -> None:
        by_name = {c.name: c for c in self.all_main_cases}
        bases = [by_name[b] for b in self.settings.sweep_bases if b in by_name]
        for base in bases:
            for batch in self.settings.sweep_batches:
                case = base.with_batch(batch)
                if not selected(case.name, self.settings.patterns):
                    continue
                for pass_ in self.settings.secondary_passes:
                    self._add(measure("sweep", case, pass_, _specs(self.settings, case, pass_),
                                      self.settings))

    def memory(self) -> dict | None:
        if not self.main_cases:
            return None
        libraries = ("convpool",)
        if not self.settings.quick and "torch" in self.settings.peers:
            libraries += ("torch",)
        self.progress(f"memory   {len(self.main_cases)} cases x {len(PASSES)} passes "
                      f"({', '.join(libraries)}) in a fresh process")
        return measure_memory(self.main_cases, PASSES, libraries, self.settings.threads,
                              self.settings.seed)

    def training(self) -> dict | None:
        if not selected(TRAINING_CASE, self.settings.patterns):
            return None
        from .training import measure_training

        self.progress(f"training {TRAINING_CASE}: {self.settings.training_images} images")
        return measure_training(self.settings.training_images, self.settings.threads,
                                "torch" in self.settings.peers, self.settings.seed)


def _progress_line(record: dict) -> str:
    head = f"{record['section']:8} {record['case']:16} {record['pass']:8}"
    if "skipped" in record:
        return f"{head} skipped: {record['skipped']}"
    times = "  ".join(f"{label} {r['median_s'] * 1e3:.3f} ms"
                      for label, r in record["runners"].items())
    return f"{head} {times}"


def run_suite(settings: Settings, main_cases: Sequence[Case] = MAIN_CASES,
              progress: Progress = _to_stderr) -> dict:
    """Run the selected sections; the result is what ``--json`` writes."""
    if settings.limits is None:
        progress("measuring this machine's FMA peak and streaming bandwidth")
        settings = replace(settings, limits=measure_limits(
            {1, settings.threads}, quick=settings.quick))
    progress(describe_limits(settings.limits))
    suite = _Suite(settings, main_cases, progress)
    results: dict = {
        "schema": SCHEMA,
        "machine": machine_info(),
        "settings": settings.to_json(),
    }
    started = time.perf_counter()
    for section in ("main", "overhead", "threads", "sweep"):
        if section in settings.sections:
            getattr(suite, section)()
    results["records"] = suite.records
    results["memory"] = suite.memory() if "memory" in settings.sections else None
    results["training"] = suite.training() if "training" in settings.sections else None
    results["machine"]["load_average_at_end"] = load_average()
    results["elapsed_s"] = time.perf_counter() - started
    results["summary"] = summarise(results)
    return results


def geometric_mean(values: Sequence[float]) -> float | None:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return None
    return math.exp(sum(math.log(v) for v in positive) / len(positive))


def summarise(results: dict) -> dict:
    """Geometric mean of the PyTorch ratios, wrong results, skipped and unchecked rows."""
    records = results["records"]
    ratios = [r["ratios"]["torch"] for r in records
              if r["section"] == "main" and "torch" in r.get("ratios", {})]
    geomean = geometric_mean(ratios)
    wrong = [
        f"{r['section']} {r['case']} {r['pass']}: {label} vs {r['reference']} "
        f"max rel error {max(errors.values()):.2e}"
        for r in records if r.get("correct") is False
        for label, errors in r["errors"].items()
        if r["runners"].get(label, {}).get("library") == "convpool"
        and max(errors.values()) > TOLERANCE
    ] + [f"{r['section']} {r['case']} {r['pass']}: {r['skipped']}"
         for r in records if r.get("correct") is False and "skipped" in r]
    return {
        "geomean_ratio_vs_torch": geomean,
        "ratios_in_geomean": len(ratios),
        "correct": not wrong,
        "wrong": wrong,
        "unchecked": [f"{r['section']} {r['case']} {r['pass']}" for r in records
                      if "skipped" not in r and r.get("correct") is None],
        "skipped": [f"{r['section']} {r['case']} {r['pass']}: {r['skipped']}"
                    for r in records if "skipped" in r],
        "notes": sorted({note for r in records for note in r.get("notes", [])}),
    }
