"""Low-rank (separable) kernels as pairs of 1-D passes on the compiled kernels.

A Python layer in front of the compiled registry, for the forward pass of convolutions
where each output plane reads one input plane (``C_in / groups == 1``: picture filters,
depthwise layers). Many picture kernels have a low numerical rank ``r``: Gaussian, box,
Sobel and Scharr kernels are outer products (rank 1), a difference of Gaussians or a
Laplacian of Gaussian is rank 2. A rank-``r`` kernel ``k = sum_t c_t row_t^T`` is ``r``
pairs of 1-D correlations, ``r (kh + kw)`` multiply-adds per output instead of
``kh kw``.

- **Rank.** Each ``(kh, kw)`` kernel's SVD in float64 (``numpy.linalg.svd``); a kernel
  keeps the fewest terms whose dropped part has a Frobenius norm at most ``TOLERANCE`` of
  the kernel's: one unit of the compute dtype's rounding (2**-23 for float32, a few units
  for float64), no more than rounding the kernel's own entries to the dtype changes it. A
  float32 Gaussian (a float64 outer product rounded to float32) is rank 1 by this test;
  its second singular value is 1.2e-8 to 2.1e-8 of the first (3x3 to 63x63). All
  kernels of a call run with the largest rank among them (a smaller one's extra terms
  are simply its next ones).
- **Passes.** A column pass ``(kh x 1)`` and a row pass ``(1 x kw)`` per term, each a
  call of ``_core.conv2d_forward`` (the registry picks its kernel: ``plane`` for a float32
  pass at column stride 1, the direct loops for float64). The call's stride, dilation and
  zero padding are split by axis: the column pass takes the row axis's, the row pass the
  column axis's, so any geometry the compiled kernels take (a column dilation by the
  channel count for a channels-last picture included) runs unchanged. The order (columns
  or rows first) is the one with fewer multiply-adds.
- **Memory.** The passes run unit by unit: all planes at once when the intermediate
  fits within the input's and output's size (:data:`UNIT_ELEMENTS`), else bands of output
  rows of one plane, so the intermediate (plus, when ``r > 1``, an accumulator of the
  unit's output size) is bounded by the operands' size.
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

# The cost model, measured on the 2-core AVX-512 Xeon with float32 planes of 1000 x 1500
# (docs/separable.md): a pass of the compiled one-plane kernels costs, per output, a
# memory term (a pass that reads and writes a large plane stack is bandwidth-bound: ~2.4
# ms for 4.5 M outputs, as much as a copy) plus one per multiply-add; the finiteness check
# reads the input once; a term after the first adds its planes into the output.
OUTPUT_SECONDS = 0.5e-9
DIRECT_MAC_SECONDS = 0.018e-9  # the 2-D plane kernel, per multiply-add
PASS_MAC_SECONDS = 0.025e-9  # a 1-D pass (column passes vectorise less well)
CHECK_SECONDS = 0.25e-9  # per input element
ADD_SECONDS = 0.5e-9  # per output element of each term after the first
CALL_SECONDS = 60e-6  # the Python layer, per call

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
    """The kernels as ``rank`` terms: ``columns[t]`` of shape ``(C_out, 1, kh, 1)`` and
    ``rows[t]`` of shape ``(C_out, 1, 1, kw)`` in the compute dtype, ``sum_t columns[t]
    * rows[t] ~= weight``; ``reach`` bounds ``|pass outputs| / max |x|`` over the terms."""

    rank: int
    columns: tuple[np.ndarray, ...]
    rows: tuple[np.ndarray, ...]
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
    return Factors(
        rank,
        tuple(np.ascontiguousarray(columns[:, :, t]).reshape(c_out, 1, kh, 1)
              for t in range(rank)),
        tuple(np.ascontiguousarray(rows[:, t, :]).reshape(c_out, 1, 1, kw)
              for t in range(rank)),
        reach)


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

class Order(NamedTuple):
    """Which 1-D pass runs first, its multiply-adds and its intermediate's elements."""

    columns_first: bool
    macs: int  # of one term
    intermediate: int


def _orders(g: Problem) -> list[Order]:
    n, c_out = g.batch, g.out_channels
    h, oh, kh = g.rows.in_size, g.rows.out_size, g.rows.kernel
    w, ow, kw = g.cols.in_size, g.cols.out_size, g.cols.kernel
    return [Order(True, n * c_out * (oh * w * kh + oh * ow * kw), n * c_out * oh * w),
            Order(False, n * c_out * (h * ow * kw + oh * ow * kh), n * c_out * h * ow)]


def _order(g: Problem, rank: int) -> Order:
    """The order with fewer multiply-adds (either order's intermediate is cut into units
    within the operands' size)."""
    del rank  # the same order for every term
    return min(_orders(g), key=lambda o: o.macs)


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
    return outputs * (OUTPUT_SECONDS + g.rows.kernel * g.cols.kernel * DIRECT_MAC_SECONDS)


def _seconds(g: Problem, rank: int) -> float:
    """The separable path's estimate with ``rank`` terms."""
    order = _order(g, rank)
    outputs = g.batch * g.out_channels * g.rows.out_size * g.cols.out_size
    inputs = g.batch * g.in_channels * g.rows.in_size * g.cols.in_size
    per_term = ((order.intermediate + outputs) * OUTPUT_SECONDS
                + order.macs * PASS_MAC_SECONDS)
    return (CALL_SECONDS + inputs * CHECK_SECONDS + rank * per_term
            + (rank - 1) * outputs * ADD_SECONDS)


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
    return not fft_serves or seconds < conv_fft._plan("conv2d", g).seconds


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
    if op not in OPERANDS:
        return False
    if op not in _forced:
        c_out, c_in_g, kh, kw = setup.weight_shape
        if c_in_g != 1 or kh + kw >= kh * kw:
            return False
        # The path costs at least CALL_SECONDS: a call the direct kernels finish sooner
        # leaves here, before the cost model builds anything (small calls' overhead).
        n, _, oh, ow = setup.output_shape
        if n * c_out * oh * ow * (OUTPUT_SECONDS + kh * kw * DIRECT_MAC_SECONDS) <= CALL_SECONDS:
            return False
    return runs(op, Problem.of_setup(setup), float64, operands)


# --- the pass ------------------------------------------------------------------------------

# The intermediate of one unit of work, in elements; None: the call's input and output
# size, so the scratch is bounded by the operands'. Several whole planes make a unit when
# they fit; a larger plane is cut into bands of output rows. Smaller units (2**16 and
# 2**20, to stay in cache) were slower on the shared 2-core Xeon: each compiled call's
# threads meet at a barrier, and a busy machine makes each meeting cost a scheduling slice
# (~8 ms measured), so few large calls beat many cached ones.
UNIT_ELEMENTS: int | None = None


def _identity(size: int) -> _core.WindowAxis:
    return _core.WindowAxis(size, size, 1, 1, 1, 0, 0)


class _Unit(NamedTuple):
    """Input planes ``p0:p1`` and the output planes ``o0:o1`` they feed (of the batch's
    planes in order), output rows ``i0:i1``; ``rows``: their row axis (None: the call's),
    ``r0:r1`` the input rows it reads."""

    p0: int
    p1: int
    o0: int
    o1: int
    i0: int
    i1: int
    rows: _core.WindowAxis | None
    r0: int
    r1: int


def _units(g: _core.Conv2dGeometry, columns_first: bool) -> list[_Unit]:
    rows, cols = g.rows, g.cols
    planes = g.batch * g.in_channels
    m = g.out_channels // g.groups
    per_row = m * (cols.in_size if columns_first else cols.out_size)
    plane = per_row * (rows.out_size if columns_first else rows.in_size)
    limit = UNIT_ELEMENTS or (planes * rows.in_size * cols.in_size
                              + planes * m * rows.out_size * cols.out_size)
    if plane <= limit or rows.out_size <= 1:
        step = max(1, limit // max(plane, 1))
        return [_Unit(p, min(p + step, planes), p * m, min(p + step, planes) * m, 0,
                      rows.out_size, None, 0, rows.in_size)
                for p in range(0, planes, step)]
    # Bands of one output plane: the input rows its output rows i0:i1 read, zero padding
    # outside (the rows of one plane are contiguous; several planes' would not be).
    per_row //= m
    band = max(1, limit // (per_row * (1 if columns_first else rows.stride)))
    units = []
    for o in range(planes * m):
        for i0 in range(0, rows.out_size, band):
            i1 = min(i0 + band, rows.out_size)
            lo = i0 * rows.stride - rows.pad_before
            hi = (i1 - 1) * rows.stride - rows.pad_before + rows.dilation * (rows.kernel - 1) + 1
            r0, r1 = max(lo, 0), min(hi, rows.in_size)
            axis = None if r1 <= r0 else _core.WindowAxis(
                r1 - r0, i1 - i0, rows.kernel, rows.stride, rows.dilation, r0 - lo, hi - r1)
            units.append(_Unit(o // m, o // m + 1, o, o + 1, i0, i1, axis, r0, r1))
    return units


def conv2d_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray,
                   g: _core.Conv2dGeometry) -> None:
    """``y = correlate(x, w) + bias``, as ``_core.conv2d_forward``, in ``rank`` pairs of
    1-D passes, unit by unit (:data:`UNIT_ELEMENTS`)."""
    float64 = y.dtype == np.float64
    f = factors(w.reshape(w.shape[0], w.shape[2], w.shape[3]), float64)
    columns_first = _order(conv_fft._problem(g), f.rank).columns_first
    n, c_in, c_out = g.batch, g.in_channels, g.out_channels
    h, width = g.rows.in_size, g.cols.in_size
    oh, ow = g.rows.out_size, g.cols.out_size
    # Planes in order: input plane p feeds output planes p*m:(p+1)*m, whose kernels (and
    # biases) are those of the batch item's channels, repeated per item.
    x_planes = x.reshape(n * c_in, h, width)
    y_planes = y.reshape(n * c_out, oh, ow)
    column_w = [np.tile(t, (n, 1, 1, 1)) for t in f.columns]
    row_w = [np.tile(t, (n, 1, 1, 1)) for t in f.rows]
    biases = None if bias is None else np.tile(bias, n)
    for unit in _units(g, columns_first):
        planes, outputs = unit.p1 - unit.p0, unit.o1 - unit.o0
        outs = slice(unit.o0, unit.o1)
        target = y_planes[outs, unit.i0:unit.i1][None]
        unit_bias = None if biases is None else biases[outs]
        if unit.r1 <= unit.r0:  # the band's windows hold only padding
            target[...] = 0 if unit_bias is None else unit_bias[None, :, None, None]
            continue
        source = x_planes[unit.p0:unit.p1, unit.r0:unit.r1][None]
        rows = g.rows if unit.rows is None else unit.rows
        band, r_in = unit.i1 - unit.i0, unit.r1 - unit.r0
        if columns_first:
            first = _core.Conv2dGeometry(1, planes, outputs, planes, rows, _identity(width))
            second = _core.Conv2dGeometry(1, outputs, outputs, outputs, _identity(band),
                                          g.cols)
            shape, first_w, second_w = (1, outputs, band, width), column_w, row_w
        else:
            first = _core.Conv2dGeometry(1, planes, outputs, planes, _identity(r_in), g.cols)
            second = _core.Conv2dGeometry(1, outputs, outputs, outputs, rows, _identity(ow))
            shape, first_w, second_w = (1, outputs, r_in, ow), row_w, column_w
        intermediate = np.empty(shape, y.dtype)
        term = None if f.rank == 1 else np.empty(target.shape, y.dtype)
        for t in range(f.rank):
            _core.conv2d_forward(source, first_w[t][outs], None, intermediate, first)
            if t == 0:
                _core.conv2d_forward(intermediate, second_w[t][outs], unit_bias, target,
                                     second)
            else:
                _core.conv2d_forward(intermediate, second_w[t][outs], None, term, second)
                target += term
    with _lock:
        _runs["conv2d"] += 1


KERNELS = {"conv2d": conv2d_forward}
