"""The yardsticks (this machine's measured limits) and the facts recorded with every run.

Every "% of peak" divides a rate by a limit measured at start-up on the machine the suite
runs on, by convpool's own compiled routines: CPUs differ from one machine to the next
(a core whose 512-bit FMAs run at full width has twice the peak of one that splits them),
so a number from another machine would make every percentage wrong.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

STREAM_BYTES_PER_ARRAY = 256 << 20  # far beyond any last-level cache


@dataclass(frozen=True)
class Limits:
    """What 100 % means: the fp32 FMA peak per thread count and the streaming bandwidth.

    ``source`` says where each came from: "measured" (at start-up) or "given" (a flag).
    """

    fma_peak_gflops: Mapping[int, float]
    stream_gbs: float
    source: Mapping[str, str] = field(default_factory=dict)

    def fma_peak(self, threads: int) -> float:
        """GFLOP/s; a thread count that was not measured scales the one-thread peak."""
        if threads in self.fma_peak_gflops:
            return self.fma_peak_gflops[threads]
        return self.fma_peak_gflops[min(self.fma_peak_gflops)] * threads / min(
            self.fma_peak_gflops)

    def limit(self, unit: str, threads: int) -> float:
        """The peak of a rate in ``unit`` ("GFLOP/s" or "GB/s")."""
        return self.fma_peak(threads) if unit == "GFLOP/s" else self.stream_gbs

    def to_json(self) -> dict:
        return {
            "fma_peak_gflops": {str(k): v for k, v in sorted(self.fma_peak_gflops.items())},
            "stream_gbs": self.stream_gbs,
            "source": dict(self.source),
        }


def measure_limits(
    threads: Iterable[int],
    *,
    fma_peak_gflops: Mapping[int, float] | None = None,
    stream_gbs: float | None = None,
    quick: bool = False,
) -> Limits:
    """Measures the FMA peak on each thread count and the bandwidth on the largest.

    Values given (from the command line) are used as they are and not measured. The FMA
    peak runs independent FMA chains on the widest vectors of the SIMD level convpool uses
    (``build_info()["simd"]``); the bandwidth is ``b[i] = 1.5 * a[i]`` over 256 MiB arrays,
    bytes read plus written. Each is the best of several repeats (other tenants only ever
    slow a repeat down).
    """
    from convpool import _core

    seconds = 0.1 if quick else 0.3
    counts = sorted(set(threads))
    if fma_peak_gflops:
        peaks, fma_source = dict(fma_peak_gflops), "given"
    else:
        peaks = {t: _core.measure_fma_peak(t, seconds) / 1e9 for t in counts}
        fma_source = "measured"
    if stream_gbs is not None:
        bandwidth, stream_source = stream_gbs, "given"
    else:
        bandwidth = _core.measure_stream_bandwidth(
            max(counts), STREAM_BYTES_PER_ARRAY, seconds) / 1e9
        stream_source = "measured"
    return Limits(
        {t: round(p, 1) for t, p in peaks.items()},
        round(bandwidth, 1),
        {"fma_peak": fma_source, "stream": stream_source},
    )


def describe_limits(limits: Limits) -> str:
    """One line: the FMA peak per thread count and the bandwidth, and where they came from."""
    peaks = ", ".join(f"{gflops:g} GFLOP/s on {threads} thread{'s' * (threads > 1)}"
                      for threads, gflops in sorted(limits.fma_peak_gflops.items()))
    return (f"fp32 FMA peak {peaks} ({limits.source.get('fma_peak', 'given')}); streaming "
            f"bandwidth {limits.stream_gbs:g} GB/s ({limits.source.get('stream', 'given')})")


def cpu_identity() -> dict:
    """Model name, vendor, family and model number from /proc/cpuinfo (where it exists)."""
    identity = {"model_name": platform.processor() or "unknown"}
    keys = {"model name": "model_name", "vendor_id": "vendor", "cpu family": "family",
            "model": "model"}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    identity[keys[key.strip()]] = value.strip()
    except OSError:
        pass
    return identity


def describe_cpu(identity: Mapping[str, str]) -> str:
    text = identity.get("model_name", "unknown CPU")
    if "family" in identity:
        text += f" (family {identity['family']}, model {identity.get('model', '?')})"
    return text


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (a busy machine makes every number noisy)."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def _versions() -> dict:
    versions: dict = {}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        versions["torch"] = None
    try:
        import cv2

        versions["opencv"] = cv2.__version__
    except ImportError:
        versions["opencv"] = None
    return versions


def machine_info() -> dict:
    """convpool's build facts, peers' versions, CPU, cores, load and the time of the run."""
    import convpool

    identity = cpu_identity()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "convpool": convpool.build_info(),
        **_versions(),
        "cpu": describe_cpu(identity),
        "cpu_identity": identity,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
        "environment": {
            key: os.environ[key]
            for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")
            if key in os.environ
        },
    }
