"""Shared test helpers: a seeded generator, a tolerance-aware comparison that says where it
failed, and the loops over every compiled implementation and SIMD level.

Import the plain helpers with ``from conftest import ...`` (pytest puts ``tests/`` on
``sys.path``); fixtures are found by name.
"""

from __future__ import annotations

import os

# The tests make thousands of tiny kernel calls. With OpenMP's default (active) wait
# policy every parallel region spins for its team, which on a shared, oversubscribed
# machine costs up to a scheduler timeslice per call (the convolution tests ran 5x slower
# under load). Set before convpool loads the OpenMP runtime; tests check results, not speed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import convpool  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from convpool import _core  # noqa: E402

SEED = 20261125

# Relative tolerance per computation dtype. The absolute tolerance is the same number
# times the largest |expected|: sums that cancel lose accuracy relative to their terms,
# not relative to their (possibly tiny) result.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}

SIMD_LEVELS = ("baseline", "avx2", "avx512")
CONV_PASSES = ("forward", "grad_input", "grad_weight")


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed: every run draws the same numbers."""
    return np.random.default_rng(SEED)


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype, where: str = "") -> None:
    """Assert that ``actual`` has ``expected``'s shape, has dtype ``dtype`` and matches it
    within that dtype's tolerance; on failure, name the worst element's index."""
    dtype = np.dtype(dtype)
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    prefix = f"{where}: " if where else ""
    assert actual.shape == expected.shape, (
        f"{prefix}shape {actual.shape}, expected {expected.shape}"
    )
    assert actual.dtype == dtype, f"{prefix}dtype {actual.dtype}, expected {dtype}"
    if actual.size == 0:
        return
    finite = np.isfinite(actual)
    assert finite.all(), (
        f"{prefix}non-finite value at index {np.unravel_index(np.argmin(finite), actual.shape)}"
    )
    rtol = RTOL[dtype]
    exact = expected.astype(np.float64)
    scale = float(np.max(np.abs(exact))) or 1.0
    error = np.abs(actual.astype(np.float64) - exact)
    allowed = rtol * scale + rtol * np.abs(exact)
    excess = error - allowed
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
    assert excess[worst] <= 0, (
        f"{prefix}largest error at index {tuple(int(i) for i in worst)} of shape {actual.shape}: "
        f"got {float(actual[worst]):.10g}, expected {float(exact[worst]):.10g} "
        f"(error {error[worst]:.3g}, allowed {allowed[worst]:.3g}; "
        f"{int(np.sum(excess > 0))} of {actual.size} elements out of tolerance)"
    )


def available_simd_levels() -> tuple[str, ...]:
    """Every SIMD level up to (and including) the one this CPU supports."""
    detected = convpool.build_info()["simd_detected"]
    return SIMD_LEVELS[: SIMD_LEVELS.index(detected) + 1]


@contextmanager
def simd_level(name: str) -> Iterator[None]:
    """Run the kernels at SIMD level ``name`` inside the block."""
    previous = _core.get_simd_level()
    _core.set_simd_level(name)
    try:
        yield
    finally:
        _core.set_simd_level(previous)


@contextmanager
def forced_conv2d_implementation(pass_: str, name: str) -> Iterator[None]:
    """Force convolution pass ``pass_`` to use implementation ``name`` inside the block
    (an implementation that does not support a case falls back to "direct")."""
    _core.force_conv2d_implementation(pass_, name)
    try:
        yield
    finally:
        _core.force_conv2d_implementation(pass_, "")


def conv2d_variants(pass_: str, dtype=np.float32) -> Iterator[str]:
    """Yield once per way the compiled convolution pass ``pass_`` can run ``dtype``, with
    that way in force while the caller's loop body runs; the yielded string names it.

    The dispatch list (conv2d_dispatch.cpp) holds float32 fast paths, each built per ISA
    and chosen by the SIMD level: each listed implementation runs at every level up to
    the detected one. "direct", the portable loop nest, does not depend on the SIMD level
    and runs once; float64 always takes it, so float64 runs once, as dispatched.
    """
    if np.dtype(dtype) != np.float32:
        yield f"{pass_}=default ({np.dtype(dtype)})"
        return
    for name in _core.conv2d_implementations(pass_):
        levels = available_simd_levels() if name != "direct" else (_core.get_simd_level(),)
        for level in levels:
            with simd_level(level), forced_conv2d_implementation(pass_, name):
                yield f"simd={level} {pass_}={name}"


@pytest.fixture(autouse=True)
def _restore_kernel_settings() -> Iterator[None]:
    """Whatever a test forced (SIMD level, implementation, threads), the next one starts
    from the defaults: a failure inside a forced block must not leak into other tests."""
    level, threads = _core.get_simd_level(), convpool.get_num_threads()
    yield
    _core.set_simd_level(level)
    convpool.set_num_threads(threads)
    for pass_ in CONV_PASSES:
        _core.force_conv2d_implementation(pass_, "")
