"""The implementations written in Python, in front of the compiled registry.

Each entry is a module that serves some convolution passes by calling NumPy or the
compiled kernels in another way, and is asked before the registry, in this order:

- ``separable`` (:mod:`convpool.conv_separable`): low-rank kernels as 1-D passes;
- ``fft`` (:mod:`convpool.conv_fft`): large kernels through the FFT.

Every entry has the same interface: ``NAME``; ``OPERANDS`` (operation -> the names of
its two array operands, the operations it serves); ``KERNELS`` (operation -> a function
with the compiled kernel's signature); ``runs(op, geometry, float64, operands)`` and
``runs_setup`` (the same from a :class:`convpool.geometry.ConvGeometry`, turning the
common case away from plain tuples); ``declines(op, setup)`` (whether the geometry alone
turns the entry away, unforced: calls :func:`kernel` need not ask again for that
geometry); ``supports`` and ``cheaper`` (same arguments);
``force(op, on)``, ``forced(op)`` and ``run_count(op)``. ``convpool.conv``,
``convpool.implementation`` and the tests' ``forced_implementation`` use this list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np

from . import _core, conv_fft, conv_separable

IMPLEMENTATIONS: tuple[ModuleType, ...] = (conv_separable, conv_fft)
NAMES: tuple[str, ...] = tuple(entry.NAME for entry in IMPLEMENTATIONS)


def by_name(name: str) -> ModuleType | None:
    """The entry called ``name``, or None (a compiled implementation's name)."""
    for entry in IMPLEMENTATIONS:
        if entry.NAME == name:
            return entry
    return None


# The entries serving each operation, in order (asked on every call: built once).
_SERVING: dict[str, tuple[ModuleType, ...]] = {
    op: tuple(entry for entry in IMPLEMENTATIONS if op in entry.OPERANDS)
    for op in {op for entry in IMPLEMENTATIONS for op in entry.OPERANDS}}


def _candidates(op: str) -> tuple[ModuleType, ...]:
    """The entries that may run ``op``: none under a forced compiled implementation; only
    a forced entry when one is forced; else all that serve ``op``, in order."""
    serving = _SERVING.get(op, ())
    if not serving or _core.forced_implementation(op):
        return ()
    for entry in serving:
        if entry.forced(op):  # rare: only then build the forced subset
            return tuple(entry for entry in serving if entry.forced(op))
    return serving


# Geometries that every entry turned away by their shape alone (``declines``), keyed by
# (op, id): the value keeps the geometry alive, so its id cannot be reused by another.
# Geometries come from conv_geometry's cache, so a loop over the same layers asks the
# entries once per layer instead of on every call (about 1.5 us of a tiny call).
_DECLINED: dict[tuple[str, int], object] = {}
_DECLINED_LIMIT = 4096


def _entry_forced(op: str) -> bool:
    for entry in _SERVING.get(op, ()):
        if entry.forced(op):
            return True
    return False


def kernel(op: str, setup, float64: bool, operands: Sequence) -> Callable | None:
    """The kernel function of the entry that runs this call of ``op``, or None for the
    compiled registry; a forced entry that cannot serve the call raises ValueError."""
    key = (op, id(setup))
    if _DECLINED.get(key) is setup and not _entry_forced(op):
        return None
    candidates = _candidates(op)
    for entry in candidates:
        if entry.runs_setup(op, setup, float64, operands):
            return entry.KERNELS[op]
    if candidates and candidates is _SERVING[op]:  # nothing forced: every entry was asked
        for entry in candidates:
            if not entry.declines(op, setup):
                return None
        if len(_DECLINED) >= _DECLINED_LIMIT:
            _DECLINED.clear()
        _DECLINED[key] = setup
    return None


def operands_of(op: str, geometry, arguments: dict) -> list[np.ndarray] | None:
    """The array operands the entries check, from a call's bound arguments; None for an
    operation no entry serves, and for channels-last calls (they run their own kernels)."""
    for entry in IMPLEMENTATIONS:
        if op in entry.OPERANDS:
            if geometry.channels_last:
                return None
            return [np.asarray(arguments[name]) for name in entry.OPERANDS[op]]
    return None


def running(op: str, geometry, float64: bool, operands: Sequence) -> str | None:
    """The name of the entry that would run this call, or None."""
    for entry in _candidates(op):
        if entry.runs(op, geometry, float64, operands):
            return entry.NAME
    return None


def supporting(op: str, geometry, float64: bool, operands: Sequence,
               compiled: list[str]) -> list[str]:
    """``compiled`` (the registry's supporting implementations, in order) with each entry
    that supports the call: in front when its cost model chooses it, at the end when the
    others are expected to be faster; entries keep their order in each place."""
    first, last = [], []
    for entry in IMPLEMENTATIONS:
        if op in entry.OPERANDS and entry.supports(op, geometry, float64, operands):
            chosen = entry.cheaper(op, geometry, float64, operands)
            (first if chosen else last).append(entry.NAME)
    return [*first, *compiled, *last]


def stop_forcing() -> None:
    """Stop forcing every entry for every operation."""
    for entry in IMPLEMENTATIONS:
        for op in entry.OPERANDS:
            entry.force(op, False)
