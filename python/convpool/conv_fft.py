"""Convolution through the FFT for large kernels: overlap-save tiles on ``numpy.fft``.

A Python layer in front of the compiled registry, for the three convolution passes at
stride 1 and dilation 1. Each pass is one correlation
``out[i] = sum_a k[a] * in[i + a]`` of a zero-extended operand, which in the frequency
domain is ``conj(K) * IN``; the channels mix per frequency (a small matrix product).

- **Tiles (overlap-save).** The output is cut into tiles; each tile's input region (the
  tile plus the kernel's halo) is transformed at a size ``F >= tile + kernel - 1``, so the
  circular correlation never wraps into the kept outputs. Big pictures and big channel
  counts therefore never need one giant transform, and tiles are independent work for the
  threads (``numpy.fft`` and the per-frequency products release the GIL).
- **Precision.** Every transform is float64 (pocketfft, ``numpy.fft``'s library), also for
  float32 operands: the error is ~1e-16 of the tile's energy, far below float32 rounding of
  the direct sum (a float32 transform's ~1e-7 of the tile's energy is not: a dark region
  next to a bright one would carry the bright one's rounding). Results are rounded once to
  the compute dtype.
- **Choice.** A cost model compares the direct loop's multiply-adds with the transforms'
  and products' work, with constants measured on an AVX-512 Xeon (``docs/fft.md``). Only
  finite operands take the FFT: a NaN or inf spreads over a whole tile in the frequency
  domain, whereas the direct sum puts it in exactly the outputs whose window holds it.

:func:`runs` is what :mod:`convpool.python_kernels` asks (the list ``convpool.conv`` and
``convpool.implementation`` use); tests force the path with :func:`force`
(``tests/conftest.py``'s ``forced_implementation``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import _core

NAME = "fft"

# Each pass's public function and the names of its two operands (what must be finite).
OPERANDS: dict[str, tuple[str, str]] = {
    "conv2d": ("x", "weight"),
    "conv2d_grad_input": ("grad_output", "weight"),
    "conv2d_grad_weight": ("x", "grad_output"),
}

# The cost model's constants, measured on a 2-core AVX-512 Xeon (docs/fft.md; both paths
# on the same threads, so only their ratio matters): seconds per multiply-add of the
# compiled direct loops; per point * log2(points) of a float64 real transform and its
# inverse, while its planes stay in the core's cache and beyond; per complex
# multiply-add of the per-frequency channel mixing.
DIRECT_SECONDS_PER_MAC = 1.0 / 12e9
TRANSFORM_SECONDS_PER_POINT_LOG = 1.0 / 0.6e9
LARGE_TRANSFORM_SECONDS_PER_POINT_LOG = 1.0 / 0.3e9
LARGE_TRANSFORM_POINTS = 256 * 256
PRODUCT_SECONDS_PER_COMPLEX_MAC = 1.0 / 0.4e9
# The Python layer's own cost: per call (planning, the kernel's transform, threads) and
# per tile (a dozen NumPy calls). Calls cheaper than CALL_SECONDS directly never plan.
CALL_SECONDS = 200e-6
TILE_SECONDS = 30e-6

# Scratch of one tile's transforms (all the batch items and channels it holds): tiles
# are sized and the batch split so that a tile stays within this.
TILE_BYTES = 64 << 20
# The kernel's spectrum (C_out * C_in / groups transforms) must fit in this, else the
# direct loops serve the call.
SPECTRUM_BYTES = 256 << 20

_forced: set[str] = set()
_runs: dict[str, int] = dict.fromkeys(OPERANDS, 0)
_runs_lock = threading.Lock()


def force(op: str, on: bool) -> None:
    """Force (``on``) or stop forcing the FFT path for operation ``op``: a forced call it
    does not support raises ValueError, as a forced compiled implementation does."""
    if op not in OPERANDS:
        raise ValueError(f"op: expected one of {tuple(OPERANDS)}, got {op!r}")
    if on:
        _forced.add(op)
    else:
        _forced.discard(op)


def forced(op: str) -> bool:
    """Whether the FFT path is forced for ``op``."""
    return op in _forced


def run_count(op: str) -> int:
    """How many calls of ``op`` ran the FFT path since the module loaded."""
    return _runs[op]


class Axis(NamedTuple):
    """One spatial axis of a convolution, as ``_core.WindowAxis``."""

    in_size: int
    out_size: int
    kernel: int
    stride: int
    dilation: int
    pad_before: int


class Problem(NamedTuple):
    """A convolution's kernel geometry as plain Python values, with
    ``_core.Conv2dGeometry``'s field names: reading the compiled value's fields costs about
    a microsecond each, which every small layer's call would pay."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    rows: Axis
    cols: Axis
    zero_padded: bool = True  # padding that holds zeros (or none): all the FFT path serves

    @classmethod
    def of_setup(cls, setup) -> Problem:
        """From a :class:`convpool.geometry.ConvGeometry` (its kernel geometry's values)."""
        n, c_in, h, w = setup.input_shape
        c_out, _, kh, kw = setup.weight_shape
        oh, ow = setup.output_shape[2:]
        (top, bottom), (left, right) = setup.sides
        zero_padded = setup.padding_mode == "zeros" or not any((top, bottom, left, right))
        return cls(n, c_in, c_out, setup.groups,
                   Axis(h, oh, kh, setup.stride[0], setup.dilation[0], top),
                   Axis(w, ow, kw, setup.stride[1], setup.dilation[1], left), zero_padded)


GeometryLike = Problem | _core.Conv2dGeometry


def _problem(g: GeometryLike) -> Problem:
    if isinstance(g, Problem):
        return g
    axes = [Axis(a.in_size, a.out_size, a.kernel, a.stride, a.dilation, a.pad_before)
            for a in (g.rows, g.cols)]
    return Problem(g.batch, g.in_channels, g.out_channels, g.groups, *axes,
                   g.padding_mode == _core.PaddingMode.zeros or not _any_padding(g))


def _any_padding(g: _core.Conv2dGeometry) -> bool:
    return any(a.pad_before or (a.out_size - 1) * a.stride + a.dilation * (a.kernel - 1) + 1
               > a.in_size + a.pad_before for a in (g.rows, g.cols))


def _unsupported_axes(g: Problem) -> str | None:
    if not g.zero_padded:
        return ("a non-zero padding mode: the FFT path serves zero padding (the compiled "
                "kernels read the modes)")
    for axis_name, axis in (("rows", g.rows), ("cols", g.cols)):
        if axis.stride != 1:
            return f"stride {axis.stride} along {axis_name}: the FFT path serves stride 1"
        if axis.dilation != 1:
            return f"dilation {axis.dilation} along {axis_name}: the FFT path serves dilation 1"
    return None


def unsupported(op: str, g: GeometryLike, float64: bool) -> str | None:
    """Why the FFT path cannot serve this geometry, or None when it can."""
    del float64  # float32 and float64 alike
    g = _problem(g)
    reason = _unsupported_axes(g)
    if reason is not None:
        return reason
    c_in_per_group = g.in_channels // g.groups
    if 16 * g.out_channels * c_in_per_group * _plan(op, g).spectrum_points > SPECTRUM_BYTES:
        return (f"the kernel spectrum of {g.out_channels} x {c_in_per_group} channels "
                f"exceeds {SPECTRUM_BYTES >> 20} MiB")
    return None


# The largest |operand| the transforms take: far beyond float32's range, and far enough
# below float64's that a tile's transform (a sum over all its points) cannot overflow.
LARGEST_MAGNITUDE = 1e100


def _finite_and_bounded(operands: Sequence[np.ndarray]) -> bool:
    for a in operands:
        if a.size:
            low, high = float(np.min(a)), float(np.max(a))  # NaN if any is NaN
            if not (-LARGEST_MAGNITUDE <= low and high <= LARGEST_MAGNITUDE):
                return False
    return True


def supports(op: str, g: GeometryLike, float64: bool,
             operands: Sequence[np.ndarray]) -> bool:
    """Whether the FFT path can run this call (geometry, size and finite operands)."""
    return unsupported(op, g, float64) is None and _finite_and_bounded(operands)


def cheaper(op: str, g: GeometryLike, float64: bool = False,
            operands: Sequence[np.ndarray] = ()) -> bool:
    """Whether the cost model expects the FFT path to beat the direct loops (the dtype
    and the operands' values do not change its estimate)."""
    del float64, operands
    g = _problem(g)
    direct = _direct_seconds(g)
    return direct > CALL_SECONDS and _plan(op, g).seconds < direct


def runs(op: str, g: GeometryLike, float64: bool,
         operands: Sequence[np.ndarray]) -> bool:
    """Whether a call of ``op`` with this kernel geometry and these operands runs the FFT
    path: forced, or supported and cheaper by the cost model. A forced compiled
    implementation wins; a forced FFT on a case it does not support raises ValueError."""
    if _core.forced_implementation(op):
        return False
    g = _problem(g)
    if op in _forced:
        reason = unsupported(op, g, float64)
        if reason is None and not _finite_and_bounded(operands):
            reason = ("an operand holds NaN, inf or a magnitude beyond "
                      f"{LARGEST_MAGNITUDE:g}: the direct kernels place non-finite values exactly")
        if reason is not None:
            raise ValueError(f"{op}: the forced implementation {NAME!r} does not support "
                             f"this case ({reason})")
        return True
    # Cheapest test first: the common small layer leaves after the arithmetic of cheaper().
    return (_unsupported_axes(g) is None and cheaper(op, g)
            and unsupported(op, g, float64) is None and _finite_and_bounded(operands))


def runs_setup(op: str, setup, float64: bool, operands: Sequence[np.ndarray]) -> bool:
    """:func:`runs` for a :class:`convpool.geometry.ConvGeometry`: the common small or
    strided layer is turned away from its plain tuples, before anything is built."""
    if op not in _forced:
        n, c_out, oh, ow = setup.output_shape
        _, c_in_g, kh, kw = setup.weight_shape
        if (setup.stride != (1, 1) or setup.dilation != (1, 1)
                or n * c_out * oh * ow * c_in_g * kh * kw * DIRECT_SECONDS_PER_MAC
                <= CALL_SECONDS):
            return False
    return runs(op, Problem.of_setup(setup), float64, operands)


# --- the passes, with the compiled kernels' signatures --------------------------------

def conv2d_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray,
                   g: GeometryLike) -> None:
    """``y = correlate(x, w) + bias``, as ``_core.conv2d_forward``."""
    g = _problem(g)
    _correlate(x, w, g.rows.pad_before, g.cols.pad_before, y, g.groups, bias,
               _plan("conv2d", g))
    _count("conv2d")


def conv2d_grad_input(grad_y: np.ndarray, w: np.ndarray, grad_x: np.ndarray,
                      g: GeometryLike) -> None:
    """The input gradient, as ``_core.conv2d_grad_input``: the output gradient correlated
    with the flipped kernel, input and output channels swapped within each group."""
    g = _problem(g)
    c_out, c_in_g, kh, kw = w.shape
    groups = g.groups
    flipped = (w.reshape(groups, c_out // groups, c_in_g, kh, kw).transpose(0, 2, 1, 3, 4)
               .reshape(groups * c_in_g, c_out // groups, kh, kw)[:, :, ::-1, ::-1])
    _correlate(grad_y, flipped, kh - 1 - g.rows.pad_before, kw - 1 - g.cols.pad_before,
               grad_x, groups, None, _plan("conv2d_grad_input", g))
    _count("conv2d_grad_input")


def conv2d_grad_weight(x: np.ndarray, grad_y: np.ndarray, grad_w: np.ndarray,
                       g: GeometryLike) -> None:
    """The weight gradient, as ``_core.conv2d_grad_weight``: the input correlated with the
    output gradient, summed over the batch."""
    g = _problem(g)
    _correlate_weight(x, grad_y, g.rows.pad_before, g.cols.pad_before, grad_w, g.groups,
                      _plan("conv2d_grad_weight", g))
    _count("conv2d_grad_weight")


def _count(op: str) -> None:
    with _runs_lock:
        _runs[op] += 1


# --- tiles and the cost model ------------------------------------------------------------

class Plan(NamedTuple):
    """How a pass is cut: transform size, output tile size, batch items per tile."""

    fh: int
    fw: int
    th: int
    tw: int
    batch_chunk: int
    seconds: float  # the cost model's estimate on one thread

    @property
    def spectrum_points(self) -> int:
        return self.fh * (self.fw // 2 + 1)


def _fast_sizes(limit: int = 4096) -> tuple[int, ...]:
    """Transform sizes of the factors 2, 3 and 5, which pocketfft transforms fastest."""
    sizes = {1}
    for p in (2, 3, 5):
        sizes |= {s * p ** e for s in sizes for e in range(1, 13) if s * p ** e <= limit}
    return tuple(sorted(sizes))


_FAST_SIZES = _fast_sizes()


def _fast_size_at_least(n: int) -> int:
    for size in _FAST_SIZES:
        if size >= n:
            return size
    return n  # beyond the table: pocketfft transforms any size


def _axis_sizes(kernel: int, out: int) -> list[tuple[int, int]]:
    """(transform size, tile size) candidates along one axis: from a tile of one output
    to a single tile covering the whole axis."""
    largest = _fast_size_at_least(out + kernel - 1)
    return [(f, min(f - kernel + 1, out)) for f in _FAST_SIZES + (largest,)
            if kernel <= f <= largest]


@lru_cache(maxsize=256)
def _plan_for(op: str, n: int, c_in: int, c_out: int, groups: int, kh: int, kw: int,
              oh: int, ow: int) -> Plan:
    # The tiled extent and what each tile transforms: the forward and input-gradient
    # passes transform C_in inputs and C_out outputs per batch item; the weight gradient
    # transforms the input and the output gradient per item and accumulates the products.
    c_in_g = c_in // groups
    per_item_transforms = c_in + c_out
    per_item_macs = c_out * c_in_g
    best = None
    for fh, th in _axis_sizes(kh, oh):
        for fw, tw in _axis_sizes(kw, ow):
            points = fh * fw
            spectrum = fh * (fw // 2 + 1)
            per_item_bytes = 16 * per_item_transforms * spectrum + 8 * (c_in + c_out) * points
            chunk = max(1, min(n, TILE_BYTES // per_item_bytes))
            tiles = math.ceil(oh / th) * math.ceil(ow / tw)
            seconds = tiles * (math.ceil(n / chunk) * TILE_SECONDS + n * (
                per_item_transforms * _transform_seconds(points)
                + per_item_macs * spectrum * PRODUCT_SECONDS_PER_COMPLEX_MAC))
            if chunk * per_item_bytes > TILE_BYTES:
                continue  # one batch item's tile alone is too big
            if best is None or seconds < best.seconds:
                best = Plan(fh, fw, th, tw, chunk, seconds)
    if best is None:  # even the smallest tile holds too many channels: take it anyway
        fh, fw = _fast_size_at_least(kh), _fast_size_at_least(kw)
        best = Plan(fh, fw, min(fh - kh + 1, oh), min(fw - kw + 1, ow), 1, math.inf)
    kernel_transforms = c_out * c_in_g * _transform_seconds(best.fh * best.fw)
    return best._replace(seconds=best.seconds + kernel_transforms + CALL_SECONDS)


def _transform_seconds(points: int) -> float:
    """A real transform and its inverse of ``points`` points, per the measured rates."""
    per_point_log = (TRANSFORM_SECONDS_PER_POINT_LOG if points <= LARGE_TRANSFORM_POINTS
                     else LARGE_TRANSFORM_SECONDS_PER_POINT_LOG)
    return points * math.log2(max(points, 2)) * per_point_log


def _plan(op: str, g: Problem) -> Plan:
    """The tiling of pass ``op``: the tiled extent is the forward output for the forward
    and weight-gradient passes and the input for the input gradient."""
    kh, kw = g.rows.kernel, g.cols.kernel
    if op == "conv2d_grad_input":
        return _plan_for(op, g.batch, g.out_channels, g.in_channels, g.groups, kh, kw,
                         g.rows.in_size, g.cols.in_size)
    return _plan_for(op, g.batch, g.in_channels, g.out_channels, g.groups, kh, kw,
                     g.rows.out_size, g.cols.out_size)


def _direct_seconds(g: Problem) -> float:
    macs = (g.batch * g.out_channels * (g.in_channels // g.groups) * g.rows.out_size
            * g.cols.out_size * g.rows.kernel * g.cols.kernel)
    return macs * DIRECT_SECONDS_PER_MAC


# --- the tiled correlations --------------------------------------------------------------

def _load_tile(tile: np.ndarray, x: np.ndarray, n0: int, row: int, col: int) -> None:
    """``tile[:] = x[n0:n0 + len(tile), :, row:row + fh, col:col + fw]``, zero outside
    ``x`` (the zero padding, and the transform's own zero extension)."""
    items, _, fh, fw = tile.shape
    h, w = x.shape[2:]
    r0, r1 = max(row, 0), min(row + fh, h)
    c0, c1 = max(col, 0), min(col + fw, w)
    if not (r0 == row and c0 == col and r1 - r0 == fh and c1 - c0 == fw):
        tile.fill(0)
    if r0 < r1 and c0 < c1:
        tile[:, :, r0 - row:r1 - row, c0 - col:c1 - col] = x[n0:n0 + items, :, r0:r1, c0:c1]


# Transforms in place into buffers each thread allocates once: a fresh array per call cost
# more in page faults than the transform itself (measured 2-6x for 128-256 point planes).

def _forward_transform(tile: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    np.fft.rfft(tile, axis=-1, out=spectrum)
    return np.fft.fft(spectrum, axis=-2, out=spectrum)


def _inverse_transform(spectrum: np.ndarray, result: np.ndarray) -> np.ndarray:
    np.fft.ifft(spectrum, axis=-2, out=spectrum)
    return np.fft.irfft(spectrum, n=result.shape[-1], axis=-1, out=result)


def _jobs(plan: Plan, n: int, oh: int, ow: int) -> list[tuple[int, int, int, int]]:
    return [(n0, min(n0 + plan.batch_chunk, n), r, c)
            for n0 in range(0, n, plan.batch_chunk)
            for r in range(0, oh, plan.th) for c in range(0, ow, plan.tw)]


def _in_parallel(work: Callable[[Sequence], object], jobs: list) -> list:
    """``work`` on contiguous shares of ``jobs``, one per thread (``get_num_threads()``),
    results in share order (so sums over them do not depend on scheduling)."""
    threads = min(_core.get_num_threads(), len(jobs))
    if threads <= 1:
        return [work(jobs)]
    shares = [jobs[i * len(jobs) // threads:(i + 1) * len(jobs) // threads]
              for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(work, shares))


def _kernel_spectrum(w: np.ndarray, fh: int, fw: int) -> np.ndarray:
    """``conj(FFT(w))`` at the transform size: the correlation's factor."""
    padded = np.zeros(w.shape[:2] + (fh, fw))
    padded[:, :, :w.shape[2], :w.shape[3]] = w
    spectrum = np.empty(w.shape[:2] + (fh, fw // 2 + 1), np.complex128)
    return np.conjugate(_forward_transform(padded, spectrum), out=spectrum)


def _correlate(x: np.ndarray, w: np.ndarray, top: int, left: int, out: np.ndarray,
               groups: int, bias: np.ndarray | None, plan: Plan) -> None:
    """``out[n, q, i, j] = bias[q] + sum_{p, a, b} w[q, p, a, b] x[n, g(q) + p, i + a - top,
    j + b - left]`` with ``x`` zero outside its extent; ``top``/``left`` may be negative
    (a crop)."""
    n, c_in = x.shape[:2]
    c_out, c_in_g = w.shape[:2]
    oh, ow = out.shape[2:]
    fh, fw, chunk = plan.fh, plan.fw, plan.batch_chunk
    fwr = fw // 2 + 1
    by_group = _kernel_spectrum(w, fh, fw).reshape(groups, c_out // groups, c_in_g, fh, fwr)
    shift = None if bias is None else bias.astype(np.float64)[:, None, None]

    def work(jobs: Sequence[tuple[int, int, int, int]]) -> None:
        tile = np.empty((chunk, c_in, fh, fw))
        spectrum = np.empty((chunk, c_in, fh, fwr), np.complex128)
        mixed = np.empty((chunk, c_out, fh, fwr), np.complex128)
        term = np.empty((chunk, groups, c_out // groups, fh, fwr), np.complex128)
        result = np.empty((chunk, c_out, fh, fw))
        for n0, n1, r, c in jobs:
            items = n1 - n0
            _load_tile(tile[:items], x, n0, r - top, c - left)
            spec = _forward_transform(tile[:items], spectrum[:items])
            # Each output channel's spectrum: the sum over its group's input channels of
            # kernel spectrum times input spectrum (broadcast products: numpy's stacked
            # matrix product of small complex matrices ran 5-10x slower here).
            per_group = spec.reshape(items, groups, c_in_g, 1, fh, fwr)
            total = mixed[:items].reshape(items, groups, c_out // groups, fh, fwr)
            np.multiply(per_group[:, :, 0], by_group[:, :, 0], out=total)
            for p in range(1, c_in_g):
                total += np.multiply(per_group[:, :, p], by_group[:, :, p], out=term[:items])
            y = _inverse_transform(mixed[:items], result[:items])
            rows, cols = min(plan.th, oh - r), min(plan.tw, ow - c)
            kept = y[:, :, :rows, :cols]
            out[n0:n1, :, r:r + rows, c:c + cols] = kept if shift is None else kept + shift

    _in_parallel(work, _jobs(plan, n, oh, ow))


def _correlate_weight(x: np.ndarray, grad_y: np.ndarray, top: int, left: int,
                      grad_w: np.ndarray, groups: int, plan: Plan) -> None:
    """``grad_w[q, p, a, b] = sum_{n, i, j} grad_y[n, q, i, j] x[n, g(q) + p, i + a - top,
    j + b - left]``: tile by tile, the products summed in the frequency domain, one
    inverse transform at the end."""
    n, c_in = x.shape[:2]
    c_out, c_in_g, kh, kw = grad_w.shape
    c_out_g = c_out // groups
    oh, ow = grad_y.shape[2:]
    fh, fw, chunk = plan.fh, plan.fw, plan.batch_chunk
    fwr = fw // 2 + 1

    def work(jobs: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
        total = np.zeros((groups, c_out_g, c_in_g, fh, fwr), np.complex128)
        term = np.empty_like(total)
        x_tile = np.empty((chunk, c_in, fh, fw))
        g_tile = np.empty((chunk, c_out, fh, fw))
        x_spectrum = np.empty((chunk, c_in, fh, fwr), np.complex128)
        g_spectrum = np.empty((chunk, c_out, fh, fwr), np.complex128)
        for n0, n1, r, c in jobs:
            items = n1 - n0
            _load_tile(x_tile[:items], x, n0, r - top, c - left)
            # the output gradient's tile, zero beyond the tile (the transform's extension)
            g_tile[:items].fill(0)
            rows, cols = min(plan.th, oh - r), min(plan.tw, ow - c)
            g_tile[:items, :, :rows, :cols] = grad_y[n0:n1, :, r:r + rows, c:c + cols]
            xs = _forward_transform(x_tile[:items], x_spectrum[:items])
            gs = np.conjugate(_forward_transform(g_tile[:items], g_spectrum[:items]),
                              out=g_spectrum[:items])
            for i in range(items):  # the batch summed in order
                total += np.multiply(gs[i].reshape(groups, c_out_g, 1, fh, fwr),
                                     xs[i].reshape(groups, 1, c_in_g, fh, fwr), out=term)
        return total

    total = sum(_in_parallel(work, _jobs(plan, n, oh, ow)))
    result = np.empty((c_out, c_in_g, fh, fw))
    _inverse_transform(total.reshape(c_out, c_in_g, fh, fwr), result)
    grad_w[...] = result[:, :, :kh, :kw]


KERNELS = {"conv2d": conv2d_forward, "conv2d_grad_input": conv2d_grad_input,
           "conv2d_grad_weight": conv2d_grad_weight}
