"""Low-rank (separable) kernels as pairs of 1-D passes, fused in one compiled sweep.

For the forward pass of convolutions where each output plane reads one input plane
(``C_in / groups == 1``: picture filters, depthwise layers). Many picture kernels have a
low numerical rank ``r``: Gaussian, box, Sobel and Scharr kernels are outer products
(rank 1), a difference of Gaussians or a Laplacian of Gaussian is rank 2. A rank-``r``
kernel ``k = sum_t c_t row_t^T`` is ``r`` pairs of 1-D correlations, ``r (kh + kw)``
multiply-adds per output instead of ``kh kw``.

- **Rank.** Each ``(kh, kw)`` kernel's SVD in float64 (``numpy.linalg.svd``); a kernel
  keeps the fewest terms whose dropped part has a Frobenius norm at most ``TOLERANCE`` of
  the kernel's: one unit of the compute dtype's rounding (2**-23 for float32, a few units
  for float64), no more than rounding the kernel's own entries to the dtype changes it. A
  float32 Gaussian (a float64 outer product rounded to float32) is rank 1 by this test;
  its second singular value is 1.2e-8 to 2.1e-8 of the first (3x3 to 63x63). All
  kernels of a call run with the largest rank among them (a smaller one's extra terms
  are simply its next ones).
- **The sweep.** ``_core.conv2d_separable_forward`` (``csrc/kernels/conv2d_separable.cpp``)
  makes each output row from a column pass over the ``kh`` input rows its windows read
  (one intermediate row per term, in L1) and a row pass over that row: the input is read
  once from memory and the output written once, with every stride, dilation and zero
  padding of the call (a channels-last ``(H, W, C)`` picture is one ``(H, W*C)`` plane
  with the kernel dilated by ``C`` along the columns). All ``r`` terms are summed in the
  same sweep.
- **Non-finite operands.** Only finite operands far from overflow take this path: a NaN
  or inf goes to the direct kernels, which place it exactly (a zero factor times inf in
  an intermediate would make NaN where the direct sum has inf).

:func:`runs` is what :mod:`convpool.python_kernels` asks; tests force the path through
it (``tests/conftest.py``'s ``forced_implementation``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import _core, conv_fft
from .conv_fft import Problem

NAME = "separable"

OPERANDS: dict[str, tuple[str, str]] = {"conv2d": ("x", "weight")}

# The dropped part of a kernel, relative to its Frobenius norm: one rounding unit of
# float32; a few of float64 (numpy's SVD of an exactly rank-1 float64 kernel leaves
# ~1e-16 of the first singular value in the others).
TOLERANCE = {False: 2.0 ** -23, True: 2.0 ** -49}

# The cost model (docs/separable.md): seconds of a call on the machine's threads, fitted
# on the shared 2-core AVX-512 Xeon (loaded) with an RGB picture of 2000 x 3000 (one
# (2000, 9000) plane, the kernel dilated by 3 along the columns). The direct kernel
# (`plane_rows`, or `plane`) costs, per output, a memory term plus one per multiply-add;
# the fused sweep likewise, per multiply-add of either pass (its passes use fewer
# registers, so a multiply-add costs more); the finiteness check reads the input once.
DIRECT_OUTPUT_SECONDS = 2.2e-9
DIRECT_MAC_SECONDS = 0.098e-9
SWEEP_OUTPUT_SECONDS = 2.5e-9
SWEEP_MAC_SECONDS = 0.19e-9
CHECK_SECONDS = 1.1e-9  # per input element (a BLAS dot product: as much as a copy)
CALL_SECONDS = 60e-6  # the Python layer, per call
# conv_fft's estimates are in its own seconds, anchored to its direct loops' cost per
# multiply-add: scaled by the ratio of the two direct costs, they are in this model's.
FFT_TO_SWEEP_SECONDS = DIRECT_MAC_SECONDS / conv_fft.DIRECT_SECONDS_PER_MAC

_forced: set[str] = set()
_runs: dict[str, int] = dict.fromkeys(OPERANDS, 0)
_lock = threading.Lock()


def force(op: str, on: bool) -> None:
    """Force (``on``) or stop forcing the separable path for operation ``op``: a forced
    call it does not support raises ValueError, as a forced compiled implementation does."""
    if op not in OPERANDS:
        raise ValueError(f"op: expected one of {tuple(OPERANDS)}, got {op!r}")
    if on:
        _forced.add(op)
    else:
        _forced.discard(op)


def forced(op: str) -> bool:
    """Whether the separable path is forced for ``op``."""
    return op in _forced


def run_count(op: str) -> int:
    """How many calls of ``op`` ran the separable path since the module loaded."""
    return _runs[op]


# --- the factors -----------------------------------------------------------------------

class Factors(NamedTuple):
    """The kernels as ``rank`` terms in the compute dtype: ``columns`` of shape
    ``(C_out, rank, kh)`` and ``rows`` of shape ``(C_out, rank, kw)``, ``sum_t
    columns[:, t, :, None] * rows[:, t, None, :] ~= weight``; ``reach`` bounds ``|pass
    outputs| / max |x|`` over the terms."""

    rank: int
    columns: np.ndarray
    rows: np.ndarray
    reach: float


_FACTORS_CACHE_SIZE = 16
_factor_cache: OrderedDict[tuple, Factors] = OrderedDict()


def _factorise(kernels: np.ndarray, float64: bool) -> Factors:
    """The low-rank terms of the ``(C_out, kh, kw)`` kernels (in the compute dtype)."""
    c_out, kh, kw = kernels.shape
    dtype = np.float64 if float64 else np.float32
    u, s, vt = np.linalg.svd(kernels.astype(np.float64))
    # tails[:, r]: the Frobenius norm of what dropping all but r terms leaves out
    tails = np.sqrt(np.cumsum((s * s)[:, ::-1], axis=1)[:, ::-1])
    tails = np.concatenate([tails, np.zeros((c_out, 1))], axis=1)
    kept = tails <= TOLERANCE[float64] * tails[:, :1]
    rank = max(int(np.argmax(kept, axis=1).max(initial=1)), 1)
    root = np.sqrt(s[:, :rank])
    columns = (u[:, :, :rank] * root[:, None, :]).astype(dtype)  # (C_out, kh, r)
    rows = (vt[:, :rank, :] * root[:, :, None]).astype(dtype)  # (C_out, r, kw)
    reach = float(rank * np.abs(columns).sum(axis=1).max(initial=0)
                  * max(1.0, float(np.abs(rows).sum(axis=2).max(initial=0))))
    return Factors(rank, np.ascontiguousarray(columns.transpose(0, 2, 1)),
                   np.ascontiguousarray(rows), reach)


def factors(weight: np.ndarray, float64: bool) -> Factors:
    """The kernels' low-rank terms; the last few weights' are kept (the choice and the
    call both ask, and a filter is often applied to many pictures)."""
    kernels = np.ascontiguousarray(weight, np.float64 if float64 else np.float32)
    key = (float64, kernels.shape, kernels.tobytes())
    with _lock:
        found = _factor_cache.get(key)
        if found is not None:
            _factor_cache.move_to_end(key)
            return found
    found = _factorise(kernels.reshape(-1, *kernels.shape[-2:]), float64)
    with _lock:
        _factor_cache[key] = found
        while len(_factor_cache) > _FACTORS_CACHE_SIZE:
            _factor_cache.popitem(last=False)
    return found


# --- geometry, cost and choice -------------------------------------------------------------

def _sweep_macs(g: Problem) -> int:
    """Multiply-adds of one term of the sweep: the column pass over every column the
    output rows' windows reach, the row pass per output."""
    reached = (g.cols.out_size - 1) * g.cols.stride + (g.cols.kernel - 1) * g.cols.dilation + 1
    return (g.batch * g.out_channels * g.rows.out_size
            * (min(reached, g.cols.in_size) * g.rows.kernel + g.cols.out_size * g.cols.kernel))


def _scratch_fits(g: Problem, rank: int) -> bool:
    """The sweep's intermediate (a row per term and thread) within the operands' size, as
    ``separable_forward_supports`` (``csrc/kernels/conv2d_separable.cpp``) asks."""
    width = (g.cols.out_size - 1) * g.cols.stride + (g.cols.kernel - 1) * g.cols.dilation + 65
    operands = (g.batch * g.in_channels * g.rows.in_size * g.cols.in_size
                + g.batch * g.out_channels * g.rows.out_size * g.cols.out_size
                + g.out_channels * g.rows.kernel * g.cols.kernel)
    return _core.get_num_threads() * rank * width <= 2 * operands + 2 ** 18


def _unsupported_geometry(g: Problem) -> str | None:
    if not g.zero_padded:
        return ("a non-zero padding mode: the separable path serves zero padding (the "
                "compiled kernels read the modes)")
    if g.in_channels != g.groups:
        return (f"C_in / groups = {g.in_channels // g.groups}: the separable path serves "
                "one input channel per output plane")
    return None


def _unsupported_rank(g: Problem, rank: int) -> str | None:
    kh, kw = g.rows.kernel, g.cols.kernel
    if rank * (kh + kw) >= kh * kw:
        return (f"the {kh}x{kw} kernels have rank {rank}: {rank} pairs of 1-D passes take "
                f"no fewer multiply-adds than the direct sum")
    if not _scratch_fits(g, rank):
        return ("the intermediate row (the columns the windows reach, per term and thread) "
                "would exceed the operands' size")
    return None


def _within_range(x: np.ndarray, f: Factors, float64: bool) -> bool:
    """Finite, and far enough from overflow that neither the passes nor the direct sum
    can reach inf (so both give the same finite values)."""
    if x.size == 0:
        return True
    flat = x.reshape(-1)
    # One BLAS pass, no temporary: NaN or inf if any element is, and ||x||_2 >= max |x|.
    # (A sum of squares that overflows sends finite operands to the compiled kernels.)
    with np.errstate(over="ignore", invalid="ignore"):
        squares = float(np.dot(flat, flat))
    limit = float(np.finfo(np.float64 if float64 else np.float32).max) / 16
    return np.isfinite(squares) and np.sqrt(squares) * max(f.reach, 1.0) <= limit


def _operands(g: Problem, float64: bool,
              operands: Sequence) -> tuple[np.ndarray, Factors | None]:
    """The input, and the kernels' factors (None for a weight holding NaN or inf)."""
    x, weight = (np.asarray(a) for a in operands)
    kernels = weight.reshape(g.out_channels, g.rows.kernel, g.cols.kernel)
    if not np.isfinite(kernels).all():
        return x, None
    return x, factors(kernels, float64)


NON_FINITE = ("an operand holds NaN, inf or values near overflow: the direct kernels place "
              "non-finite values exactly")


def unsupported(op: str, g, float64: bool, operands: Sequence) -> str | None:
    """Why the separable path cannot serve this call, or None when it can."""
    g = conv_fft._problem(g)
    reason = _unsupported_geometry(g)
    if reason is not None:
        return reason
    if any(np.asarray(a).dtype.kind == "c" for a in operands):
        return "complex operands"
    x, f = _operands(g, float64, operands)
    if f is None:
        return NON_FINITE
    reason = _unsupported_rank(g, f.rank)
    if reason is None and not _within_range(x, f, float64):
        reason = NON_FINITE
    return reason


def supports(op: str, g, float64: bool, operands: Sequence) -> bool:
    """Whether the separable path can run this call."""
    return op in OPERANDS and unsupported(op, g, float64, operands) is None


def _direct_seconds(g: Problem) -> float:
    outputs = g.batch * g.out_channels * g.rows.out_size * g.cols.out_size
    return outputs * (DIRECT_OUTPUT_SECONDS + g.rows.kernel * g.cols.kernel * DIRECT_MAC_SECONDS)


def _seconds(g: Problem, rank: int) -> float:
    """The separable path's estimate with ``rank`` terms: one read of the input and one
    write of the output, whatever the rank."""
    outputs = g.batch * g.out_channels * g.rows.out_size * g.cols.out_size
    inputs = g.batch * g.in_channels * g.rows.in_size * g.cols.in_size
    return (CALL_SECONDS + inputs * CHECK_SECONDS + outputs * SWEEP_OUTPUT_SECONDS
            + rank * _sweep_macs(g) * SWEEP_MAC_SECONDS)


def _worth_a_look(g: Problem) -> bool:
    """Whether even a rank-1 kernel could pay, from the geometry alone (before any SVD)."""
    return (_unsupported_geometry(g) is None and g.rows.kernel * g.cols.kernel > 1
            and _seconds(g, 1) < _direct_seconds(g))


def cheaper(op: str, g, float64: bool, operands: Sequence) -> bool:
    """Whether the cost model expects the separable path (for a call it supports) to beat
    both the compiled direct loops and the FFT path."""
    g = conv_fft._problem(g)
    if not _worth_a_look(g):
        return False
    _, f = _operands(g, float64, operands)
    if f is None or _unsupported_rank(g, f.rank) is not None:
        return False
    seconds = _seconds(g, f.rank)
    if seconds >= _direct_seconds(g):
        return False
    fft_serves = conv_fft.unsupported("conv2d", g, float64) is None
    return (not fft_serves
            or seconds < conv_fft._plan("conv2d", g).seconds * FFT_TO_SWEEP_SECONDS)


def runs(op: str, g, float64: bool, operands: Sequence) -> bool:
    """Whether a call of ``op`` with this kernel geometry and these operands runs the
    separable path: forced, or supported and cheaper by the cost model. A forced compiled
    implementation wins; a forced separable path on a case it does not support raises
    ValueError naming why."""
    if op not in OPERANDS or _core.forced_implementation(op):
        return False
    if op in _forced:
        reason = unsupported(op, g, float64, operands)
        if reason is not None:
            raise ValueError(f"{op}: the forced implementation {NAME!r} does not support "
                             f"this case ({reason})")
        return True
    g = conv_fft._problem(g)
    return (_worth_a_look(g) and cheaper(op, g, float64, operands)
            and unsupported(op, g, float64, operands) is None)


def runs_setup(op: str, setup, float64: bool, operands: Sequence) -> bool:
    """:func:`runs` for a :class:`convpool.geometry.ConvGeometry`: layers with several
    input channels per group or small kernels leave from its plain tuples."""
    if op not in OPERANDS or (op not in _forced and declines(op, setup)):
        return False
    return runs(op, Problem.of_setup(setup), float64, operands)


def declines(op: str, setup) -> bool:
    """Whether the geometry alone turns this path away when it is not forced: several
    input channels per group, small kernels, or calls the direct kernels finish sooner
    than this path's fixed cost (the operands' values are not looked at)."""
    if op not in OPERANDS:
        return True
    c_out, c_in_g, kh, kw = setup.weight_shape
    if c_in_g != 1 or kh + kw >= kh * kw:
        return True
    # The path costs at least CALL_SECONDS: a call the direct kernels finish sooner
    # leaves here, before the cost model builds anything (small calls' overhead).
    n, _, oh, ow = setup.output_shape
    per_output = DIRECT_OUTPUT_SECONDS + kh * kw * DIRECT_MAC_SECONDS
    return n * c_out * oh * ow * per_output <= CALL_SECONDS


# --- the sweep ---------------------------------------------------------------------------

# Output columns per unit of work of the compiled sweep; None: the kernel's choice (the
# kh input rows of a column pass within L2). Tests set small values to cut small planes.
CHUNK_COLUMNS: int | None = None


def conv2d_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray,
                   g: _core.Conv2dGeometry) -> None:
    """``y = correlate(x, w) + bias``, as ``_core.conv2d_forward``, as ``rank`` pairs of
    1-D passes in one compiled sweep."""
    float64 = y.dtype == np.float64
    f = factors(w.reshape(w.shape[0], w.shape[2], w.shape[3]), float64)
    _core.conv2d_separable_forward(x, f.columns, f.rows, bias, y, g, CHUNK_COLUMNS or 0)
    with _lock:
        _runs["conv2d"] += 1


KERNELS = {"conv2d": conv2d_forward}
