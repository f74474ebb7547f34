"""Threads, SIMD level and build facts."""

from __future__ import annotations

import platform

import numpy as np

from . import _core
from ._args import positive_int


def set_num_threads(n: int) -> None:
    """Use ``n`` OpenMP threads in every kernel (default: ``OMP_NUM_THREADS`` or all cores)."""
    _core.set_num_threads(positive_int(n, "n"))


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
