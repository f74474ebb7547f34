"""Leaks: 10,000 calls of each public function (and of calls that fail, in Python and in
the compiled layer) must not grow the resident memory.

Arrays are small, but not tiny: each call's output is at least 1 KiB, so leaking one
result, one input copy or one scratch buffer per call would add 10 MB or more, above the
bound. A warm-up lets the allocators and caches settle before the first measurement.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Callable

import convpool
import numpy as np
import pytest
from convpool import _core, geometry

CALLS = 10_000
WARM_UP = 500
ALLOWED_GROWTH = 8 * 2**20  # bytes

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="reads the resident set size from /proc")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


_rng = np.random.default_rng(20261125)
X = _rng.standard_normal((1, 4, 16, 16)).astype(np.float32)
X64 = X.astype(np.float64)
W = _rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
B = _rng.standard_normal(4).astype(np.float32)
GY = _rng.standard_normal((1, 4, 16, 16)).astype(np.float32)
OUT = np.empty((1, 4, 16, 16), np.float32)
GY_POOL = _rng.standard_normal((1, 4, 8, 8))
_, INDICES = convpool.max_pool2d(X64, 2, return_indices=True)
BAD_INDICES = INDICES.copy()
BAD_INDICES[0, 3, 7, 7] = 256
X_MANY = _rng.standard_normal((64, 64, 2, 2))  # global pools: 1 KiB or more out
W16 = _rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
GY16 = _rng.standard_normal((1, 16, 16, 16)).astype(np.float32)
GY_CHANNELS = _rng.standard_normal((1, 2, 16, 16))
WRONG_OUT = np.empty((1, 4, 15, 16), np.float32)
CONV_GEOMETRY = geometry.conv_geometry(X.shape, W.shape, 1, 1, 1, 1, "zeros").kernel_geometry
POOL_GEOMETRY = geometry.pool_geometry(X.shape, 2, 2, 0, 1, False).kernel_geometry

FUNCTIONS: dict[str, Callable[[], object]] = {
    "conv2d": lambda: convpool.conv2d(X, W, B, padding=1),
    "conv2d(out=, reversed)": lambda: convpool.conv2d(X[..., ::-1], W, B, padding=1, out=OUT),
    "conv2d(reflect, float64)": lambda: convpool.conv2d(X64, W, padding=1, padding_mode="reflect"),
    "conv2d(picture, list)": lambda: convpool.conv2d(X[0, 0].tolist(), W[0, 0], padding="same"),
    "conv2d_grad_input": lambda: convpool.conv2d_grad_input(GY, W, X.shape, padding=1),
    "conv2d_grad_input(circular)": lambda: convpool.conv2d_grad_input(
        GY, W, X.shape, padding=1, padding_mode="circular"),
    "conv2d_grad_weight": lambda: convpool.conv2d_grad_weight(X, GY16, W16.shape, padding=1),
    "conv2d_grad_bias": lambda: convpool.conv2d_grad_bias(X_MANY.reshape(1, 256, 32, 2)),
    "max_pool2d": lambda: convpool.max_pool2d(X64, 2, return_indices=True),
    "max_pool2d_grad_input": lambda: convpool.max_pool2d_grad_input(GY_POOL, INDICES, X.shape),
    "avg_pool2d": lambda: convpool.avg_pool2d(X, 3, 1, 1),
    "avg_pool2d_grad_input": lambda: convpool.avg_pool2d_grad_input(GY_POOL, X.shape, 2),
    "global_avg_pool2d": lambda: convpool.global_avg_pool2d(X_MANY),
    "global_avg_pool2d_grad_input": lambda: convpool.global_avg_pool2d_grad_input(
        X_MANY[:, :, 0, 0], X_MANY.shape),
    "global_max_pool2d": lambda: convpool.global_max_pool2d(X_MANY),
    "global_max_pool2d_grad_input": lambda: convpool.global_max_pool2d_grad_input(
        X_MANY[:, :, 0, 0], X_MANY),
    "channel_pool": lambda: convpool.channel_pool(X64, 2),
    "channel_pool_grad_input": lambda: convpool.channel_pool_grad_input(GY_CHANNELS, X64, 2),
}


def _raises(call: Callable[[], object]) -> Callable[[], object]:
    def run():
        try:
            call()
        except (TypeError, ValueError):
            return None
        raise AssertionError("expected an error")
    return run


FAILURES: dict[str, Callable[[], object]] = {
    # refused by the Python layer
    "conv2d(bad stride)": _raises(lambda: convpool.conv2d(X, W, stride=0)),
    "avg_pool2d(bad padding)": _raises(lambda: convpool.avg_pool2d(X, 2, padding=2)),
    # refused by the compiled layer (a C++ exception becomes a Python one)
    "_core.conv2d_forward(wrong out)": _raises(lambda: _core.conv2d_forward(
        X, W, None, WRONG_OUT, CONV_GEOMETRY)),
    "_core.max_pool2d_forward(wrong out)": _raises(lambda: _core.max_pool2d_forward(
        X, OUT, None, POOL_GEOMETRY)),
    # refused after the kernel ran: an index outside the plane
    "max_pool2d_grad_input(bad index)": _raises(
        lambda: convpool.max_pool2d_grad_input(GY_POOL, BAD_INDICES, X.shape)),
}


def _release_free_heap() -> None:
    """Gives freed heap pages back to the system (glibc), so that the resident size counts
    live memory only: memory that earlier tests freed would otherwise absorb new
    allocations unseen, and a kept result would not show up as growth."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _growth(call: Callable[[], object]) -> int:
    for _ in range(WARM_UP):
        call()
    gc.collect()
    _release_free_heap()
    before = resident_bytes()
    for _ in range(CALLS):
        call()
    gc.collect()
    _release_free_heap()
    return resident_bytes() - before


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_repeated_calls_do_not_leak(name):
    result = FUNCTIONS[name]()
    smallest = min(r.nbytes for r in (result if isinstance(result, tuple) else (result,)))
    assert smallest * CALLS > ALLOWED_GROWTH or name.startswith("conv2d(out="), (
        f"{name}: outputs of {smallest} bytes are too small to reveal a leak")
    growth = _growth(FUNCTIONS[name])
    assert growth < ALLOWED_GROWTH, f"{name}: {CALLS} calls grew memory by {growth >> 20} MiB"


@pytest.mark.parametrize("name", list(FAILURES))
def test_repeated_failures_do_not_leak(name):
    growth = _growth(FAILURES[name])
    assert growth < ALLOWED_GROWTH, f"{name}: {CALLS} calls grew memory by {growth >> 20} MiB"


def test_the_measurement_sees_a_leak():
    """The check can fail: keeping each result alive (16 KiB each, 160 MiB in all, far above
    what earlier tests may leave free on the heap) is seen as growth."""
    kept = []
    x = _rng.standard_normal((1, 4, 32, 32)).astype(np.float32)
    growth = _growth(lambda: kept.append(convpool.conv2d(x, W, B, padding=1)))
    assert growth > ALLOWED_GROWTH, f"keeping 10,000 results grew memory by only {growth} bytes"
