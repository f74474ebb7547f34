"""The yardsticks (the machine's physical limits) and the facts recorded with every run."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass, field

# Measured on the project's machines (2 cores of an AMD EPYC Zen 4, see docs/machine.md):
# 12 independent AVX-512 FMA chains reach 117 GFLOP/s on one thread and 232 on two; a
# streaming scale b[i] = 1.5 * a[i] moves 36 GB/s (bytes read + written). Other machines
# pass their own numbers with --fma-peak-1t, --fma-peak-2t and --stream-gbs.
FMA_PEAK_1T_GFLOPS = 117.0
FMA_PEAK_2T_GFLOPS = 232.0
STREAM_GBS = 36.0


@dataclass(frozen=True)
class Limits:
    """What 100 % means: the fp32 FMA peak per thread count, the streaming bandwidth."""

    fma_peak_gflops: dict[int, float] = field(
        default_factory=lambda: {1: FMA_PEAK_1T_GFLOPS, 2: FMA_PEAK_2T_GFLOPS}
    )
    stream_gbs: float = STREAM_GBS

    def fma_peak(self, threads: int) -> float:
        """GFLOP/s; thread counts beyond the measured ones scale the one-thread peak."""
        if threads in self.fma_peak_gflops:
            return self.fma_peak_gflops[threads]
        return self.fma_peak_gflops[1] * threads

    def limit(self, unit: str, threads: int) -> float:
        """The peak of a rate in ``unit`` ("GFLOP/s" or "GB/s")."""
        return self.fma_peak(threads) if unit == "GFLOP/s" else self.stream_gbs

    def to_json(self) -> dict:
        return {
            "fma_peak_gflops": {str(k): v for k, v in sorted(self.fma_peak_gflops.items())},
            "stream_gbs": self.stream_gbs,
        }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "convpool": convpool.build_info(),
        **_versions(),
        "cpu": _cpu_model(),
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

