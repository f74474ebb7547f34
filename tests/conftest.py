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
from contextlib import ExitStack, contextmanager  # noqa: E402

import convpool  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from convpool import _core, python_kernels  # noqa: E402
from convpool.implementation import _kernel_dtype  # noqa: E402

SEED = 20261125

# Relative tolerance per computation dtype. The absolute tolerance is the same number
# times the largest |expected|: sums that cancel lose accuracy relative to their terms,
# not relative to their (possibly tiny) result.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4,
        # float16 storage: the float32 result rounded once (half an ulp, 2**-11 relative)
        np.dtype(np.float16): 1e-3}

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


# The convolution passes and the public function (registry operation) of each.
CONV_OPS = {"forward": "conv2d", "grad_input": "conv2d_grad_input",
            "grad_weight": "conv2d_grad_weight"}

# Implementations whose kernel does not depend on the SIMD level: run at one level only.
PORTABLE_IMPLEMENTATIONS = ("direct", "nhwc_direct", *python_kernels.NAMES)


@contextmanager
def forced_implementation(op: str, name: str, dtype: str = "") -> Iterator[None]:
    """Force operation ``op`` (a public function's name) to run implementation ``name``
    inside the block, and on leaving it assert that ``name`` ran at least once: a call it
    does not support raises ValueError instead of running another implementation. With
    ``dtype`` ("float32", "float64", "float16"), assert that ``name``'s kernel of that
    element type ran (the registry keeps a list per element type). The Python
    implementations in front of the compiled registry ("separable", "fft":
    convpool.python_kernels) are forced alike."""
    entry = python_kernels.by_name(name)
    if entry is not None:
        before = entry.run_count(op)
        entry.force(op, True)
        try:
            yield
        finally:
            entry.force(op, False)
        assert entry.run_count(op) > before, f"{op}: the forced {name!r} path never ran"
        return
    before = _core.implementation_runs(op, name, dtype)
    _core.force_implementation(op, name)
    try:
        yield
    finally:
        _core.force_implementation(op, "")
    assert _core.implementation_runs(op, name, dtype) > before, (
        f"{op}: the forced implementation {name!r} never ran" + (f" on {dtype}" if dtype else "")
    )


def forced_conv2d_implementation(pass_: str, name: str):
    """:func:`forced_implementation` for convolution pass ``pass_`` ("forward", ...)."""
    return forced_implementation(CONV_OPS[pass_], name)


def implementation_variants(op: str, *args, simd_levels=None, **kwargs) -> Iterator[str]:
    """Yield once per way the compiled operation ``op`` can run the call
    ``op(*args, **kwargs)``, with that way in force while the caller's loop body runs (the
    body makes that call); the yielded string names it. After each body, assert that the
    forced implementation ran.

    Each implementation that supports the call (the registry's own predicates, asked at
    each SIMD level: a case can suit a wide vector and not a narrow one) runs at every
    level up to the detected one (``simd_levels`` to choose); a portable one
    ("direct") once. float64 has only the portable implementations. Each variant asserts
    that the kernel of the element type the call computes in ran (float16 pooling has
    kernels of its own).
    """
    levels = available_simd_levels() if simd_levels is None else simd_levels
    dtype = _kernel_dtype(op, *args, **kwargs)
    seen_portable = set()
    for level in levels:
        with simd_level(level):
            names = convpool.implementations(op, *args, **kwargs)
        for name in names:
            if name in PORTABLE_IMPLEMENTATIONS:
                if name in seen_portable:
                    continue
                seen_portable.add(name)
            with simd_level(level), forced_implementation(op, name, dtype):
                yield f"simd={level} {op}={name}"


def conv_pass_arguments(pass_: str, x, w, grad_y) -> tuple:
    """The positional arguments of convolution pass ``pass_``'s public function."""
    return {"forward": (x, w), "grad_input": (grad_y, w, np.shape(x)),
            "grad_weight": (x, grad_y, np.shape(w))}[pass_]


def conv2d_variants(pass_: str, x, w, grad_y, simd_levels=None, **kwargs) -> Iterator[str]:
    """:func:`implementation_variants` for convolution pass ``pass_`` on ``x``, ``w`` and
    ``grad_y`` (the output gradient) with the keyword arguments ``kwargs``."""
    yield from implementation_variants(CONV_OPS[pass_], *conv_pass_arguments(pass_, x, w, grad_y),
                                       simd_levels=simd_levels, **kwargs)


# The pooling implementations that read channels-last (NHWC) arrays; the others read NCHW.
NHWC_IMPLEMENTATIONS = ("nhwc",)


def each_implementation(*ops: str, layout: str = "NCHW") -> Iterator[str]:
    """Yield once per SIMD level and implementation of the operations ``ops`` (the loop body
    calls each of them), forcing the i-th implementation of every op in turn, and assert
    after each body that every forced implementation ran. For operations whose every
    implementation of the layout ``layout`` the kernels read supports every case of that
    layout (pooling's, today)."""
    lists = {op: [name for name in _core.implementations(op)
                  if (name in NHWC_IMPLEMENTATIONS) == (layout == "NHWC")] for op in ops}
    for level in available_simd_levels():
        for i in range(max(len(names) for names in lists.values())):
            chosen = {op: names[min(i, len(names) - 1)] for op, names in lists.items()}
            with simd_level(level), ExitStack() as stack:
                for op, name in chosen.items():
                    stack.enter_context(forced_implementation(op, name))
                yield f"simd={level} " + " ".join(f"{op}={name}" for op, name in chosen.items())


@pytest.fixture(autouse=True)
def _restore_kernel_settings() -> Iterator[None]:
    """Whatever a test forced (SIMD level, implementation, threads), the next one starts
    from the defaults: a failure inside a forced block must not leak into other tests."""
    level, threads = _core.get_simd_level(), convpool.get_num_threads()
    yield
    _core.set_simd_level(level)
    convpool.set_num_threads(threads)
    for op in _core.operations():
        _core.force_implementation(op, "")
    python_kernels.stop_forcing()
