"""Convolution through the FFT for large kernels: overlap-save tiles on pocketfft in C++.

A Python layer in front of the compiled registry, for the three convolution passes at
stride 1 and dilation 1. Each pass is one correlation
``out[i] = sum_a k[a] * in[i + a]`` of a zero-extended operand, which in the frequency
domain is ``conj(K) * IN``; the channels mix per frequency (a small matrix product).
This module resolves each pass to that correlation and picks the tiling; the compiled
``_core.fft_correlate`` / ``_core.fft_correlate_weight`` (``csrc/fft/``, on the vendored
pocketfft, the library NumPy and SciPy use) transform, mix and transform back.

- **Tiles (overlap-save).** The output is cut into tiles; each tile's input region (the
  tile plus the kernel's halo) is transformed at a size ``F >= tile + kernel - 1``, so the
  circular correlation never wraps into the kept outputs. Big pictures and big channel
  counts therefore never need one giant transform, and tiles are independent work for the
  threads (``convpool.get_num_threads()``, contiguous runs of tiles).
- **Precision.** Transforms are in the operands' dtype (:data:`FLOAT64_TRANSFORMS` asks for
  float64 ones for float32 operands too). A float32 transform's error is ~1e-7 of the
  tile's energy: within float32 rounding of the direct sum norm-wise
  (``||y - y_exact|| <= 4 eps ||S||``, ``S`` the direct sum of absolute values), though not
  element by element where a dark region borders a bright one; float64 transforms are
  within rounding element by element. Results are rounded once to the compute dtype.
- **Choice.** One cost model in seconds compares the direct loops' estimate (the separable
  path's, :mod:`convpool.conv_separable`) with the tiles' transforms and products, with
  constants measured on an AVX-512 Xeon (``docs/fft.md``). Only finite operands take the
  FFT: a NaN or inf spreads over a whole tile in the frequency domain, whereas the direct
  sum puts it in exactly the outputs whose window holds it.

:func:`runs` is what :mod:`convpool.python_kernels` asks (the list ``convpool.conv`` and
``convpool.implementation`` use); tests force the path with :func:`force`
(``tests/conftest.py``'s ``forced_implementation``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
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

# The cost model's constants (seconds of a call with both threads on the 2-core AVX-512
# Xeon), measured as process CPU time / 2 on RGB 2000 x 3000 pictures (docs/fft.md):
# per point * log2(points) of one real 2-D float32 transform (forward or inverse, plans and
# scratch reused across tiles) up to 256 x 256 points, and the growth of that rate per
# doubling beyond (the planes leave the core's L2: 1080 x 1080 points cost 2x per point);
# float64 transforms' factor; per point of each plane a tile loads or stores; per complex
# multiply-add of the per-frequency channel mixing; per call (planning, the kernel's
# transforms' set-up, the finiteness scan's fixed part).
TRANSFORM_SECONDS_PER_POINT_LOG = 0.12e-9
CACHED_TRANSFORM_POINTS = 256 * 256
GROWTH_PER_DOUBLING = 0.25
FLOAT64_TRANSFORM_FACTOR = 1.6
POINT_SECONDS = 0.3e-9
PRODUCT_SECONDS_PER_COMPLEX_MAC = 0.3e-9
CALL_SECONDS = 100e-6
# The direct loops (`plane` on the same pictures, CPU time / 2) in these units: per output
# and per multiply-add. The separable path scales this model's estimates by the ratio of
# its own direct cost per multiply-add to this one, so the two models compare.
DIRECT_SECONDS_PER_OUTPUT = 0.5e-9
DIRECT_SECONDS_PER_MAC = 0.018e-9

# Whether float32 operands are transformed in float64 (float64 operands always are).
# float32 transforms keep the error within float32 rounding of the direct sum norm-wise
# (measured <= 1.1 eps32 ||S||, the direct float32 loops 0.2-10 eps32 ||S||; docs/fft.md)
# and run 1.4-1.7x faster; float64 transforms also hold element by element, in dark regions
# next to bright ones.
FLOAT64_TRANSFORMS = False

# One thread's scratch (its tile's planes and spectra): tiles are sized so that it stays
# within this.
TILE_BYTES = 64 << 20
# The kernel's spectrum (C_out * C_in / groups transforms; the weight gradient's sums, one
# per thread) must fit in this, else the direct loops serve the call.
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


def _interleaved(g: Problem) -> bool:
    """Whether the columns are dilated by ``d`` over one-channel planes whose widths and
    left padding are multiples of ``d``: then the plane is ``d`` interleaved planes (a
    channels-last picture's row of ``W * C`` values, :mod:`convpool._picture_filter`), each
    correlated with the undilated kernel."""
    d, cols = g.cols.dilation, g.cols
    return (d > 1 and g.in_channels == g.out_channels == g.groups == 1
            and cols.in_size % d == 0 and cols.out_size % d == 0 and cols.pad_before % d == 0)


def _undilated(g: Problem) -> Problem:
    """An interleaved problem (:func:`_interleaved`) as the depthwise correlation of its
    ``d`` planes; any other problem as it is."""
    if not _interleaved(g):
        return g
    d, cols = g.cols.dilation, g.cols
    return g._replace(in_channels=d, out_channels=d, groups=d,
                      cols=Axis(cols.in_size // d, cols.out_size // d, cols.kernel, 1, 1,
                                cols.pad_before // d))


def _planes_of(a: np.ndarray, d: int) -> np.ndarray:
    """A one-channel ``(N, 1, H, W * d)`` array with unit column stride as the ``(N, d, H,
    W)`` view of its interleaved planes."""
    n, _, h, w = a.shape
    item = a.itemsize
    assert a.strides[3] == item, "interleaved planes need unit column strides"
    return np.lib.stride_tricks.as_strided(a, (n, d, h, w // d),
                                           (a.strides[0], item, a.strides[2], d * item))


def _unsupported_axes(g: Problem) -> str | None:
    if not g.zero_padded:
        return ("a non-zero padding mode: the FFT path serves zero padding (the compiled "
                "kernels read the modes)")
    g = _undilated(g)
    for axis_name, axis in (("rows", g.rows), ("cols", g.cols)):
        if axis.stride != 1:
            return f"stride {axis.stride} along {axis_name}: the FFT path serves stride 1"
        if axis.dilation != 1:
            return f"dilation {axis.dilation} along {axis_name}: the FFT path serves dilation 1"
    return None


def unsupported(op: str, g: GeometryLike, float64: bool) -> str | None:
    """Why the FFT path cannot serve this geometry, or None when it can."""
    g = _problem(g)
    reason = _unsupported_axes(g)
    if reason is not None:
        return reason
    g = _undilated(g)
    c_in_per_group = g.in_channels // g.groups
    copies = _core.get_num_threads() if op == "conv2d_grad_weight" else 1
    if (16 * copies * g.out_channels * c_in_per_group * _plan(op, g, float64).spectrum_points
            > SPECTRUM_BYTES):
        return (f"the kernel spectrum of {g.out_channels} x {c_in_per_group} channels "
                f"exceeds {SPECTRUM_BYTES >> 20} MiB")
    return None


# The largest |operand| the transforms take, by the transforms' dtype: far enough below
# its range that a tile's transform (a sum over all its points) times the kernel's, summed
# over channels, cannot overflow where the direct sum does not (float32: products up to
# 1e20, 18 orders of magnitude below float32's largest value; float64: beyond float32's
# range altogether).
LARGEST_MAGNITUDE = {False: 1e10, True: 1e100}


def _largest_magnitude(float64: bool) -> float:
    return LARGEST_MAGNITUDE[float64 or FLOAT64_TRANSFORMS]


def _finite_and_bounded(operands: Sequence[np.ndarray], float64: bool) -> bool:
    largest = _largest_magnitude(float64)
    for a in operands:
        if a.size:
            low, high = float(np.min(a)), float(np.max(a))  # NaN if any is NaN
            if not (-largest <= low and high <= largest):
                return False
    return True


def supports(op: str, g: GeometryLike, float64: bool,
             operands: Sequence[np.ndarray]) -> bool:
    """Whether the FFT path can run this call (geometry, size and finite operands)."""
    return unsupported(op, g, float64) is None and _finite_and_bounded(operands, float64)


def cheaper(op: str, g: GeometryLike, float64: bool = False,
            operands: Sequence[np.ndarray] = ()) -> bool:
    """Whether the cost model expects the FFT path to beat the direct loops (the dtype
    and the operands' values do not change its estimate)."""
    del operands
    g = _undilated(_problem(g))
    direct = _direct_seconds(g)
    return direct > CALL_SECONDS and _plan(op, g, float64).seconds < direct


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
        if reason is None and not _finite_and_bounded(operands, float64):
            reason = ("an operand holds NaN, inf or a magnitude beyond "
                      f"{_largest_magnitude(float64):g}: the direct kernels place non-finite "
                      "values exactly")
        if reason is not None:
            raise ValueError(f"{op}: the forced implementation {NAME!r} does not support "
                             f"this case ({reason})")
        return True
    # Cheapest test first: the common small layer leaves after the arithmetic of cheaper().
    return (_unsupported_axes(g) is None and cheaper(op, g)
            and unsupported(op, g, float64) is None and _finite_and_bounded(operands, float64))


def runs_setup(op: str, setup, float64: bool, operands: Sequence[np.ndarray]) -> bool:
    """:func:`runs` for a :class:`convpool.geometry.ConvGeometry`: the common small or
    strided layer is turned away from its plain tuples, before anything is built."""
    if op not in _forced and declines(op, setup):
        return False
    return runs(op, Problem.of_setup(setup), float64, operands)


def declines(op: str, setup) -> bool:
    """Whether the geometry alone turns this path away when it is not forced: strided or
    row-dilated layers, and calls the direct kernels finish within this path's fixed cost
    (the operands' values are not looked at)."""
    n, c_out, oh, ow = setup.output_shape
    _, c_in_g, kh, kw = setup.weight_shape
    return (setup.stride != (1, 1) or setup.dilation[0] != 1
            or n * c_out * oh * ow * c_in_g * kh * kw * _direct_mac_seconds() <= CALL_SECONDS)


# --- the passes, with the compiled kernels' signatures --------------------------------

def conv2d_forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray,
                   g: GeometryLike) -> None:
    """``y = correlate(x, w) + bias``, as ``_core.conv2d_forward``."""
    g = _problem(g)
    if _interleaved(g):
        d = g.cols.dilation
        x, y, w = _planes_of(x, d), _planes_of(y, d), np.repeat(w, d, axis=0)
        bias = None if bias is None else np.repeat(bias, d)
        g = _undilated(g)
    _core.fft_correlate(x, w, bias, y, g.groups, g.rows.pad_before, g.cols.pad_before,
                        _tiling("conv2d", g, x), FLOAT64_TRANSFORMS)
    _count("conv2d")


def conv2d_grad_input(grad_y: np.ndarray, w: np.ndarray, grad_x: np.ndarray,
                      g: GeometryLike) -> None:
    """The input gradient, as ``_core.conv2d_grad_input``: the output gradient correlated
    with the flipped kernel, input and output channels swapped within each group."""
    g = _problem(g)
    if _interleaved(g):
        d = g.cols.dilation
        grad_y, grad_x, w = _planes_of(grad_y, d), _planes_of(grad_x, d), np.repeat(w, d, 0)
        g = _undilated(g)
    c_out, c_in_g, kh, kw = w.shape
    groups = g.groups
    flipped = np.ascontiguousarray(
        w.reshape(groups, c_out // groups, c_in_g, kh, kw).transpose(0, 2, 1, 3, 4)
        .reshape(groups * c_in_g, c_out // groups, kh, kw)[:, :, ::-1, ::-1])
    _core.fft_correlate(grad_y, flipped, None, grad_x, groups, kh - 1 - g.rows.pad_before,
                        kw - 1 - g.cols.pad_before, _tiling("conv2d_grad_input", g, grad_y),
                        FLOAT64_TRANSFORMS)
    _count("conv2d_grad_input")


def conv2d_grad_weight(x: np.ndarray, grad_y: np.ndarray, grad_w: np.ndarray,
                       g: GeometryLike) -> None:
    """The weight gradient, as ``_core.conv2d_grad_weight``: the input correlated with the
    output gradient, summed over the batch (and over interleaved planes)."""
    g = _problem(g)
    target = grad_w
    if _interleaved(g):
        d = g.cols.dilation
        x, grad_y = _planes_of(x, d), _planes_of(grad_y, d)
        grad_w = np.empty((d,) + grad_w.shape[1:], grad_w.dtype)
        g = _undilated(g)
    _core.fft_correlate_weight(x, grad_y, grad_w, g.groups, g.rows.pad_before,
                               g.cols.pad_before, _tiling("conv2d_grad_weight", g, x),
                               FLOAT64_TRANSFORMS)
    if target is not grad_w:
        np.sum(grad_w, axis=0, keepdims=True, out=target)
    _count("conv2d_grad_weight")


def _tiling(op: str, g: Problem, operand: np.ndarray) -> tuple[int, int, int, int]:
    return _plan(op, g, operand.dtype == np.float64).tiling


def _count(op: str) -> None:
    with _runs_lock:
        _runs[op] += 1


# --- tiles and the cost model ------------------------------------------------------------

class Plan(NamedTuple):
    """How a pass is cut: transform size and output tile size."""

    fh: int
    fw: int
    th: int
    tw: int
    seconds: float  # the cost model's estimate

    @property
    def spectrum_points(self) -> int:
        return self.fh * (self.fw // 2 + 1)

    @property
    def tiling(self) -> tuple[int, int, int, int]:
        """What ``_core.fft_correlate`` takes."""
        return self.fh, self.fw, self.th, self.tw


def _fast_sizes(limit: int = 4096) -> tuple[int, ...]:
    """Even transform sizes of the factors 2, 3 and 5, which pocketfft transforms fastest
    (even: the real transform's half-length trick)."""
    sizes = {1}
    for p in (2, 3, 5):
        sizes |= {s * p ** e for s in sizes for e in range(1, 13) if s * p ** e <= limit}
    return tuple(sorted(size for size in sizes if size % 2 == 0))


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
              oh: int, ow: int, float64: bool = False) -> Plan:
    # Each tile of each batch item transforms its C_in input planes forward and either its
    # C_out output planes back (forward and input gradient) or its C_out output-gradient
    # planes forward (weight gradient), and mixes C_out * C_in/groups spectra.
    c_in_g = c_in // groups
    item_bytes = 8 if float64 else 4
    best = None
    for fh, th in _axis_sizes(kh, oh):
        for fw, tw in _axis_sizes(kw, ow):
            points, spectrum = fh * fw, fh * (fw // 2 + 1)
            if item_bytes * (max(c_in, c_out) * points + 2 * (c_in + c_out) * spectrum) \
                    > TILE_BYTES:
                continue
            tiles = n * math.ceil(oh / th) * math.ceil(ow / tw)
            seconds = tiles * ((c_in + c_out) * (_transform_seconds(points, float64)
                                                 + points * POINT_SECONDS)
                               + c_out * c_in_g * spectrum * PRODUCT_SECONDS_PER_COMPLEX_MAC)
            if best is None or seconds < best.seconds:
                best = Plan(fh, fw, th, tw, seconds)
    if best is None:  # even the smallest tile holds too many channels: take it anyway
        fh, fw = _fast_size_at_least(kh), _fast_size_at_least(kw)
        best = Plan(fh, fw, min(fh - kh + 1, oh), min(fw - kw + 1, ow), math.inf)
    kernel_transforms = c_out * c_in_g * _transform_seconds(best.fh * best.fw, float64)
    return best._replace(seconds=best.seconds + kernel_transforms + CALL_SECONDS)


def _transform_seconds(points: int, float64: bool) -> float:
    """One real 2-D transform of ``points`` points, per the measured rates."""
    doublings = max(0.0, math.log2(points / CACHED_TRANSFORM_POINTS))
    factor = (1 + GROWTH_PER_DOUBLING * doublings) * (FLOAT64_TRANSFORM_FACTOR if float64 else 1)
    return points * math.log2(max(points, 2)) * TRANSFORM_SECONDS_PER_POINT_LOG * factor


def _plan(op: str, g: Problem, float64: bool = False) -> Plan:
    """The tiling of pass ``op``: the tiled extent is the forward output for the forward
    and weight-gradient passes and the input for the input gradient; ``float64``: the
    operands' dtype. (:mod:`convpool.conv_separable` compares its estimate with this
    plan's.)"""
    g = _undilated(g)
    kh, kw = g.rows.kernel, g.cols.kernel
    float64_transforms = float64 or FLOAT64_TRANSFORMS
    if op == "conv2d_grad_input":
        return _plan_for(op, g.batch, g.out_channels, g.in_channels, g.groups, kh, kw,
                         g.rows.in_size, g.cols.in_size, float64_transforms)
    return _plan_for(op, g.batch, g.in_channels, g.out_channels, g.groups, kh, kw,
                     g.rows.out_size, g.cols.out_size, float64_transforms)


def _direct_mac_seconds() -> float:
    return DIRECT_SECONDS_PER_MAC


def _direct_seconds(g: Problem) -> float:
    """The direct loops' estimate in this model's units: per output a memory term and one
    term per multiply-add."""
    outputs = g.batch * g.out_channels * g.rows.out_size * g.cols.out_size
    macs = (g.in_channels // g.groups) * g.rows.kernel * g.cols.kernel
    return outputs * (DIRECT_SECONDS_PER_OUTPUT + macs * DIRECT_SECONDS_PER_MAC)


KERNELS = {"conv2d": conv2d_forward, "conv2d_grad_input": conv2d_grad_input,
           "conv2d_grad_weight": conv2d_grad_weight}
