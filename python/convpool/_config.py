"""Threads, SIMD level and build facts."""

from __future__ import annotations

import numbers
import os
import platform
import warnings

import numpy as np

from . import _core

MAX_THREADS: int = _core.MAX_THREADS
"""The most threads :func:`set_num_threads` accepts: OpenMP cannot recover from a failed
thread creation, so a team far beyond any machine's cores is refused up front."""

SIMD_LEVELS = ("avx512", "avx2", "baseline")
"""The values ``CONVPOOL_SIMD`` may take."""


def set_num_threads(n: int) -> None:
    """Use ``n`` OpenMP threads in every kernel (default: ``OMP_NUM_THREADS`` or all cores).

    ``n`` is an int from 1 to :data:`MAX_THREADS`."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n: expected an int, got {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"n: the number of threads must be between 1 and {MAX_THREADS}, got {n}")
    _core.set_num_threads(int(n))


def check_simd_environment(environ: dict | None = None) -> None:
    """Warn (RuntimeWarning) when ``CONVPOOL_SIMD`` holds something other than one of
    :data:`SIMD_LEVELS`: the kernels then use the best level the CPU supports."""
    value = (os.environ if environ is None else environ).get("CONVPOOL_SIMD")
    if value and value not in SIMD_LEVELS:
        warnings.warn(
            f"CONVPOOL_SIMD={value!r} is not one of {', '.join(SIMD_LEVELS)}: ignored, the "
            f"kernels use {_core.build_info()['simd']}",
            RuntimeWarning,
            stacklevel=2,
        )


def get_num_threads() -> int:
    """The number of threads the kernels use."""
    return _core.get_num_threads()


def build_info() -> dict:
    """Version, compiler, OpenMP version, SIMD level in use and detected, thread count."""
    info = dict(_core.build_info())
    info["python"] = platform.python_version()
    info["numpy"] = np.__version__
    return info


def show_config() -> None:
    """Print :func:`build_info` one fact per line."""
    for key, value in build_info().items():
        print(f"{key:>14}: {value}")
