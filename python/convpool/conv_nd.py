"""1-D and 3-D convolution (correlation, as in CNNs) and their gradients, on the
compiled 2-D kernels.

- 1-D: a signal ``(N, C, L)`` is a 2-D problem of height 1, ``(N, C, 1, L)``, a view
  without a copy; the kernel ``(C_out, C_in // groups, k)`` is ``(..., 1, k)``.
- 3-D: ``y[:, :, d] = sum over kd of conv2d(x_padded[:, :, d * sd + kd * dd], w[:, :, kd])``.
  The depth taps are gathered once into the channel axis (input ``(N * OD, kd * C_in, H, W)``,
  weight ``(C_out, kd * C_in // groups, kh, kw)``), so one 2-D convolution sums over them in
  its inner loop; the depth padding is an index map, whatever ``padding_mode`` says. The
  gathered input is ``kd / sd`` times the input (the price of one large call).
  Gradients run the same gather backwards.
- 3-D in float32 runs first on the direct 3-D kernels where they serve the case
  (:mod:`convpool.conv3d_direct`: forward, weight gradient, stride-1 input gradient); the
  gather above serves the rest (float64, depthwise, strided input gradients, ...).

Arguments, errors and results follow :mod:`convpool.conv` and ``torch.nn.functional``.
"""

from __future__ import annotations

import numpy as np

from . import conv3d_direct
from ._args import (
    as_array,
    check_grad_shape,
    check_index_range,
    check_shape_tuple,
    compute_dtype,
    contiguous,
)
from ._ieee import ieee
from .bf16_dot import bfloat16_route
from .conv import conv2d, conv2d_grad_bias, conv2d_grad_input, conv2d_grad_weight
from .dtypes import half_precision
from .geometry import ConvGeometry, conv_geometry

__all__ = [
    "conv1d",
    "conv1d_grad_bias",
    "conv1d_grad_input",
    "conv1d_grad_weight",
    "conv3d",
    "conv3d_grad_bias",
    "conv3d_grad_input",
    "conv3d_grad_weight",
]

Ints1 = int | tuple[int]
Ints3 = int | tuple[int, int, int]


def _bias_vector(bias: object, geometry: ConvGeometry, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_array(bias, "bias")
    c_out = geometry.output_shape[1]
    bare = geometry.input_ndim == geometry.rank
    if b.shape not in ((c_out,),) + (((), (1,)) if bare else ()):
        raise ValueError(f"bias: expected shape ({c_out},), got {b.shape}")
    return contiguous(b.reshape(c_out), dtype)


# --- arguments, once for both ranks ------------------------------------------------------


def _forward_arguments(x, weight, rank, *geometry_arguments):
    """``x`` and ``weight`` as arrays and their resolved geometry."""
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    return x, weight, conv_geometry(x.shape, weight.shape, *geometry_arguments, rank=rank)


def _grad_input_arguments(grad_output, weight, input_shape, rank, *geometry_arguments):
    """The input gradient's operands checked against their resolved geometry."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (rank, rank + 1, rank + 2))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    geometry = conv_geometry(input_shape, weight.shape, *geometry_arguments, rank=rank)
    check_grad_shape(grad_output, geometry.user_output_shape)
    return grad_output, weight, input_shape, geometry


def _grad_weight_arguments(x, grad_output, weight_shape, rank, *geometry_arguments):
    """The weight gradient's operands checked against their resolved geometry."""
    weight_shape = check_shape_tuple(weight_shape, "weight_shape", (rank, rank + 2))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    geometry = conv_geometry(x.shape, weight_shape, *geometry_arguments, rank=rank)
    check_grad_shape(grad_output, geometry.user_output_shape)
    return x, grad_output, weight_shape, geometry


# --- 1-D --------------------------------------------------------------------------------


def _geometry_2d_of_1d(geometry: ConvGeometry) -> dict:
    """The 1-D geometry as conv2d arguments (height 1, nothing on the height axis)."""
    return dict(stride=(1, geometry.stride[0]), padding=((0, 0), geometry.sides[0]),
                dilation=(1, geometry.dilation[0]), groups=geometry.groups,
                padding_mode=geometry.padding_mode)


def _as_2d(array: np.ndarray, shape3: tuple[int, ...]) -> np.ndarray:
    """A batched ``(N, C, L)`` array as ``(N, C, 1, L)``: a view."""
    return array.reshape(shape3)[:, :, np.newaxis, :]


@half_precision("x", "weight", also=("bias",))
def conv1d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Ints1 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints1 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """1-D convolution (correlation): ``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]``.

    Args:
        x: ``(N, C_in, L)``, ``(C_in, L)`` or a bare signal ``(L,)``.
        weight: ``(C_out, C_in // groups, k)``, or ``(k,)`` for a bare signal.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or ``(s,)``.
        padding: an int, ``(p,)``, ``(before, after)``, ``"valid"`` or ``"same"``.
        groups: independent channel groups (``C_in`` for depthwise).
        padding_mode: ``"zeros"``, ``"replicate"``, ``"reflect"``, ``"symmetric"`` or
            ``"circular"``.

    Returns:
        ``(N, C_out, OL)`` (or the unbatched / bare form matching ``x``), in
        ``numpy.result_type(x, weight, float32)``.
    """
    x, weight, geometry = _forward_arguments(x, weight, 1, stride, padding, dilation, groups,
                                             padding_mode)
    dtype = compute_dtype(x, weight)
    b = _bias_vector(bias, geometry, dtype)
    y = conv2d(_as_2d(x, geometry.input_shape), _as_2d(weight, geometry.weight_shape), b,
               **_geometry_2d_of_1d(geometry))
    return y.reshape(geometry.user_shape(geometry.output_shape))


@half_precision("grad_output", "weight")
def conv1d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: Ints1 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints1 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv1d` with respect to ``x``, of shape ``input_shape``."""
    grad_output, weight, input_shape, geometry = _grad_input_arguments(
        grad_output, weight, input_shape, 1, stride, padding, dilation, groups, padding_mode)
    n, c, length = geometry.input_shape
    grad = _conv1d_grad_input_direct(grad_output, weight, geometry)
    if grad is None:
        grad = conv2d_grad_input(_as_2d(grad_output, geometry.output_shape),
                                 _as_2d(weight, geometry.weight_shape), (n, c, 1, length),
                                 **_geometry_2d_of_1d(geometry))
    return grad.reshape(input_shape)


def _conv1d_grad_input_direct(grad_output: np.ndarray, weight: np.ndarray,
                              geometry: ConvGeometry) -> np.ndarray | None:
    """The float32 stride-1 input gradient of a signal as a volume of depth and height 1
    on the direct 3-D kernel (measured ahead of the 2-D kernels on long signals with few
    input channels, where the 2-D input gradient ran behind PyTorch), or None."""
    dtype = compute_dtype(grad_output, weight)
    if dtype != np.float32 or geometry.stride[0] != 1:
        return None
    geometry_3d = conv_geometry(
        _as_3d_shape(geometry.input_shape), _as_3d_shape(geometry.weight_shape), 1,
        ((0, 0), (0, 0), geometry.sides[0]), (1, 1, geometry.dilation[0]), geometry.groups,
        geometry.padding_mode, rank=3)
    return conv3d_direct.grad_input(grad_output, weight, geometry_3d, dtype)


def _as_3d_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A batched 1-D shape ``(N, C, L)`` as a 3-D one ``(N, C, 1, 1, L)``."""
    return (*shape[:2], 1, 1, shape[2])


@half_precision("x", "grad_output")
def conv1d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: Ints1 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints1 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv1d` with respect to ``weight``, of shape ``weight_shape``."""
    x, grad_output, weight_shape, geometry = _grad_weight_arguments(
        x, grad_output, weight_shape, 1, stride, padding, dilation, groups, padding_mode)
    c_out, c_in_g, k = geometry.weight_shape
    grad = conv2d_grad_weight(_as_2d(x, geometry.input_shape),
                              _as_2d(grad_output, geometry.output_shape), (c_out, c_in_g, 1, k),
                              **_geometry_2d_of_1d(geometry))
    return grad.reshape(weight_shape)


@half_precision("grad_output")
def conv1d_grad_bias(grad_output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv1d` with respect to ``bias``: ``grad_output`` summed over
    everything but the channel axis. ``(C_out,)``; a 0-d array for a bare signal."""
    return _grad_bias(grad_output, 1)


def _grad_bias(grad_output: np.ndarray, rank: int) -> np.ndarray:
    grad_output = as_array(grad_output, "grad_output")
    if grad_output.ndim not in (rank, rank + 1, rank + 2):
        forms = {1: "(N, C, OL), (C, OL) or (OL,)",
                 3: "(N, C, OD, OH, OW), (C, OD, OH, OW) or (OD, OH, OW)"}[rank]
        raise ValueError(f"grad_output: expected {forms}, got shape {grad_output.shape}")
    check_index_range(grad_output.shape, "grad_output")
    if grad_output.ndim == rank:
        return conv2d_grad_bias(grad_output.reshape(1, 1, -1)).reshape(())
    shape = (1,) * (rank + 2 - grad_output.ndim) + grad_output.shape
    # every spatial axis folded into one row: the 2-D kernel's sum over (OH, OW)
    n, c = shape[:2]
    return conv2d_grad_bias(grad_output.reshape(n, c, 1, -1))


# --- 3-D --------------------------------------------------------------------------------


def _depth_source(p: np.ndarray, depth: int, mode: str) -> np.ndarray:
    """The input depth that padded-input depth ``p`` (in input coordinates: negative in
    the padding before) copies; -1 for a zero."""
    if mode == "zeros":
        return np.where((p >= 0) & (p < depth), p, -1)
    if mode == "replicate":
        return np.clip(p, 0, depth - 1)
    if mode == "reflect":  # d c b | a b c d | c b a
        p = np.abs(p)
        return np.where(p > depth - 1, 2 * (depth - 1) - p, p)
    if mode == "symmetric":  # c b a | a b c | c b a
        p = np.where(p < 0, -p - 1, p)
        return np.where(p > depth - 1, 2 * depth - 1 - p, p)
    return p % depth  # circular


def _depth_sources(geometry: ConvGeometry) -> np.ndarray:
    """``(kd, OD)``: the input depth each (depth tap, output depth) reads; -1 for a zero."""
    kd = geometry.weight_shape[2]
    od = geometry.output_shape[2]
    (before, _), stride, dilation = geometry.sides[0], geometry.stride[0], geometry.dilation[0]
    p = (np.arange(od)[np.newaxis, :] * stride + np.arange(kd)[:, np.newaxis] * dilation
         - before)
    return _depth_source(p, geometry.input_shape[2], geometry.padding_mode)


def _index_or_slice(indices: np.ndarray) -> slice | np.ndarray:
    """An evenly spaced increasing index list as a slice (a view, not a gather)."""
    if len(indices) == 1:
        return slice(int(indices[0]), int(indices[0]) + 1)
    step = int(indices[1] - indices[0])
    if step > 0 and np.array_equal(indices, indices[0] + step * np.arange(len(indices))):
        return slice(int(indices[0]), int(indices[-1]) + 1, step)
    return indices


def _grouped_by_taps(valid: np.ndarray, exact: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(positions, taps)`` pairs covering every position (column of ``valid``, a
    ``(kd, positions)`` mask of the depth taps that are terms of its sum).

    Not ``exact``: one pair, every position with every tap (a tap that is no term reads
    a gathered zero: one large 2-D call). ``exact``: the positions grouped by their set of
    terms, so that no zero is ever multiplied: needed when a factor may be infinite or
    NaN, where ``0 * inf`` would put a NaN that the direct sum does not have."""
    kd, count = valid.shape
    if not exact or valid.all():
        return [(np.arange(count), np.arange(kd))]
    groups: dict[tuple[int, ...], list[int]] = {}
    for position in range(count):
        groups.setdefault(tuple(np.flatnonzero(valid[:, position])), []).append(position)
    return [(np.array(positions), np.array(taps, dtype=np.int64))
            for taps, positions in groups.items()]


SCRATCH_FLOOR = 64 << 20
"""Bytes of gathered depth taps one 2-D call may take at least; beyond that and the size
of the operand they are gathered from, the depths are taken in chunks."""


def _chunks(positions: np.ndarray, bytes_each: int, operand_bytes: int):
    """``positions`` in consecutive runs whose gathered copy stays within the larger of
    :data:`SCRATCH_FLOOR` and the operand: scratch memory bounded by the operands, in
    as few 2-D calls as that allows."""
    step = max(1, max(SCRATCH_FLOOR, operand_bytes) // max(bytes_each, 1))
    for start in range(0, len(positions), step):
        yield positions[start:start + step]


class _Depth:
    """The depth taps of one 3-D convolution, gathered into the channel axis of a 2-D one.

    Channels of the 2-D problem, per group: (depth tap, channel of the group)."""

    def __init__(self, geometry: ConvGeometry) -> None:
        self.geometry = geometry
        _, c_in, self.depth, self.h, self.w = geometry.input_shape
        self.c_out, self.c_in_g, self.kd, self.kh, self.kw = geometry.weight_shape
        self.n, _, self.od, self.oh, self.ow = geometry.output_shape
        self.g = geometry.groups
        self.sources = _depth_sources(geometry)  # (kd, OD): input depth read, -1 for a zero
        (_, top_bottom, left_right) = geometry.sides
        self.conv2d_arguments = dict(
            stride=geometry.stride[1:], padding=(top_bottom, left_right),
            dilation=geometry.dilation[1:], groups=self.g, padding_mode=geometry.padding_mode)

    def output_groups(self, exact: bool):
        return _grouped_by_taps(self.sources >= 0, exact)

    def gather(self, x: np.ndarray, dtype: np.dtype, outputs: np.ndarray,
               taps: np.ndarray) -> np.ndarray:
        """The input that output depths ``outputs`` read at depth taps ``taps``, as
        ``(N * len(outputs), groups * len(taps) * C_in_g, H, W)``."""
        n, g, c_in_g, h, w = self.n, self.g, self.c_in_g, self.h, self.w
        x6 = x.reshape(n, g, c_in_g, self.depth, h, w)
        shape = (n, len(outputs), g, len(taps), c_in_g, h, w)
        check_index_range(shape, "x (depth taps gathered)")
        try:
            gathered = np.empty(shape, dtype=dtype)
        except MemoryError:
            raise MemoryError(f"conv3d: cannot allocate the gathered depth taps, shape {shape} "
                              f"of {dtype}") from None
        for column, tap in enumerate(taps):
            sources = self.sources[tap, outputs]
            valid = sources >= 0
            target = gathered[:, :, :, column]
            if not valid.any():
                target[...] = 0
                continue
            block = x6[:, :, :, _index_or_slice(sources[valid])].transpose(0, 3, 1, 2, 4, 5)
            if valid.all():
                target[...] = block
            else:
                target[:, valid] = block
                target[:, ~valid] = 0
        return gathered.reshape(n * len(outputs), g * len(taps) * c_in_g, h, w)

    def weight_2d(self, weight: np.ndarray, taps: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``(C_out, C_in_g, kd, kh, kw)`` at ``taps`` as ``(C_out, len(taps) * C_in_g, kh,
        kw)``."""
        w5 = weight.reshape(self.geometry.weight_shape)[:, :, taps]
        return contiguous(w5.transpose(0, 2, 1, 3, 4), dtype).reshape(
            self.c_out, len(taps) * self.c_in_g, self.kh, self.kw)

    def grad_output_2d(self, grad_output: np.ndarray, outputs: np.ndarray,
                       dtype: np.dtype) -> np.ndarray:
        """``grad_output`` at output depths ``outputs`` as ``(N * len(outputs), C_out, OH,
        OW)``."""
        y5 = grad_output.reshape(self.geometry.output_shape)[:, :, _index_or_slice(outputs)]
        return contiguous(y5.transpose(0, 2, 1, 3, 4), dtype).reshape(
            self.n * len(outputs), self.c_out, self.oh, self.ow)

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                dtype: np.dtype) -> np.ndarray:
        y = np.empty(self.geometry.output_shape, dtype=dtype)
        for group, taps in self.output_groups(exact=not np.isfinite(weight).all()):
            if not len(taps):  # every tap in the zero padding: the bias alone
                where = (slice(None), slice(None), _index_or_slice(group))
                y[where] = 0 if bias is None else bias.reshape(-1, 1, 1, 1)
                continue
            weight_2d = self.weight_2d(weight, taps, dtype)
            for outputs in _chunks(group, self.gathered_bytes(len(taps), dtype), x.nbytes):
                y2 = conv2d(self.gather(x, dtype, outputs, taps), weight_2d, bias,
                            **self.conv2d_arguments)
                y[:, :, _index_or_slice(outputs)] = y2.reshape(
                    self.n, len(outputs), self.c_out, self.oh, self.ow).transpose(0, 2, 1, 3, 4)
        return y

    def gathered_bytes(self, taps: int, dtype: np.dtype) -> int:
        """Bytes of the gathered input per output depth."""
        return self.n * self.g * taps * self.c_in_g * self.h * self.w * np.dtype(dtype).itemsize

    def grad_weight(self, x: np.ndarray, grad_output: np.ndarray, dtype: np.dtype
                    ) -> np.ndarray:
        grad = np.zeros((self.c_out, self.c_in_g, self.kd, self.kh, self.kw), dtype=dtype)
        for group, taps in self.output_groups(exact=not np.isfinite(grad_output).all()):
            if not len(taps):
                continue
            for outputs in _chunks(group, self.gathered_bytes(len(taps), dtype), x.nbytes):
                part = conv2d_grad_weight(
                    self.gather(x, dtype, outputs, taps),
                    self.grad_output_2d(grad_output, outputs, dtype),
                    (self.c_out, len(taps) * self.c_in_g, self.kh, self.kw),
                    **self.conv2d_arguments)
                grad[:, :, taps] += part.reshape(self.c_out, len(taps), self.c_in_g, self.kh,
                                                 self.kw).transpose(0, 2, 1, 3, 4)
        return grad

    def grad_input(self, grad_output: np.ndarray, weight: np.ndarray,
                   dtype: np.dtype) -> np.ndarray:
        """The input gradient, as the forward's transpose: padded-input depth ``q``
        receives, from each depth tap ``t``, output depth ``(q - t * dilation) / stride``
        when that is a whole output position. Those output depths are gathered into the
        channel axis (``(N * D, groups * kd * C_out_g, OH, OW)``) and one 2-D input
        gradient sums over them; with a non-zero padding mode the gradient of each depth
        of the padding is then added to the depth it copies."""
        geometry = self.geometry
        n, g, depth, od = self.n, self.g, self.depth, self.od
        c_out_g = self.c_out // g
        (before, after), stride, dilation = (geometry.sides[0], geometry.stride[0],
                                             geometry.dilation[0])
        zeros = geometry.padding_mode == "zeros"
        # padded-input depths that receive a gradient: only the input's with zero padding
        first, count = (before, depth) if zeros else (0, depth + before + after)
        # reads[t, i]: the output depth that padded depth first + i takes at tap t, or -1
        reach = (first + np.arange(count))[np.newaxis, :] - (
            np.arange(self.kd) * dilation)[:, np.newaxis]
        reads = np.where((reach % stride == 0) & (reach >= 0) & (reach < od * stride),
                         reach // stride, -1)
        y6 = grad_output.reshape(n, g, c_out_g, od, self.oh, self.ow)
        w6 = weight.reshape(g, c_out_g, self.c_in_g, self.kd, self.kh, self.kw)
        grad = np.empty((n, count, g * self.c_in_g, self.h, self.w), dtype=dtype)
        bytes_each = n * g * c_out_g * self.oh * self.ow * np.dtype(dtype).itemsize
        for group, taps in _grouped_by_taps(reads >= 0, not np.isfinite(weight).all()):
            if not len(taps):  # no output reads these depths
                grad[:, _index_or_slice(group)] = 0
                continue
            for positions in _chunks(group, bytes_each * len(taps), grad_output.nbytes):
                self._grad_input_part(grad, y6, w6, reads, positions, taps, dtype)
        result = np.ascontiguousarray(
            grad[:, before - first:before - first + depth].transpose(0, 2, 1, 3, 4))
        if not zeros:
            padding = np.r_[0:before, before + depth:count]
            for q, source in zip(padding, _depth_source(padding - before, depth,
                                                        geometry.padding_mode), strict=True):
                result[:, :, source] += grad[:, q]
        return result

    def _grad_input_part(self, grad, y6, w6, reads, positions, taps, dtype) -> None:
        """The input gradient at padded depths ``positions`` from depth taps ``taps``."""
        n, g = self.n, self.g
        c_out_g = self.c_out // g
        where = (slice(None), _index_or_slice(positions))
        shape = (n, len(positions), g, len(taps), c_out_g, self.oh, self.ow)
        check_index_range(shape, "grad_output (depth taps)")
        gathered = np.zeros(shape, dtype=dtype)
        for column, tap in enumerate(taps):
            read = reads[tap, positions]
            valid = read >= 0
            if valid.any():
                block = y6[:, :, :, _index_or_slice(read[valid])].transpose(0, 3, 1, 2, 4, 5)
                gathered[:, _index_or_slice(np.flatnonzero(valid)), :, column] = block
        # weight as (groups * len(taps) * C_out_g, C_in_g, kh, kw)
        w_taps = contiguous(w6[:, :, :, taps].transpose(0, 3, 1, 2, 4, 5), dtype).reshape(
            g * len(taps) * c_out_g, self.c_in_g, self.kh, self.kw)
        part = conv2d_grad_input(
            gathered.reshape(n * len(positions), g * len(taps) * c_out_g, self.oh, self.ow),
            w_taps, (n * len(positions), g * self.c_in_g, self.h, self.w),
            **self.conv2d_arguments)
        grad[where] = part.reshape(n, len(positions), g * self.c_in_g, self.h, self.w)


@half_precision("x", "weight", also=("bias",), route=bfloat16_route(rank=3))
@ieee
def conv3d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Ints3 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints3 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """3-D convolution (correlation): ``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]``.

    Args:
        x: ``(N, C_in, D, H, W)``, ``(C_in, D, H, W)`` or a bare volume ``(D, H, W)``.
        weight: ``(C_out, C_in // groups, kd, kh, kw)``, or ``(kd, kh, kw)`` for a volume.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or ``(sd, sh, sw)``.
        padding: an int, ``(pd, ph, pw)``, per side ``((front, back), (top, bottom),
            (left, right))`` (entries may mix ints and pairs), ``"valid"`` or ``"same"``.
        groups: independent channel groups (``C_in`` for depthwise).
        padding_mode: ``"zeros"``, ``"replicate"``, ``"reflect"``, ``"symmetric"`` or
            ``"circular"``, on every axis.

    Returns:
        ``(N, C_out, OD, OH, OW)`` (or the unbatched / bare form matching ``x``), in
        ``numpy.result_type(x, weight, float32)``.
    """
    x, weight, geometry = _forward_arguments(x, weight, 3, stride, padding, dilation, groups,
                                             padding_mode)
    dtype = compute_dtype(x, weight)
    b = _bias_vector(bias, geometry, dtype)
    y = conv3d_direct.forward(x, weight, b, geometry, dtype)
    if y is None:
        y = _Depth(geometry).forward(x, weight, b, dtype)
    return y.reshape(geometry.user_shape(geometry.output_shape))


@half_precision("grad_output", "weight")
@ieee
def conv3d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: Ints3 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints3 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv3d` with respect to ``x``, of shape ``input_shape``.

    With a non-zero ``padding_mode`` the gradient of each padded voxel is added to the
    input voxel it was copied from."""
    grad_output, weight, input_shape, geometry = _grad_input_arguments(
        grad_output, weight, input_shape, 3, stride, padding, dilation, groups, padding_mode)
    dtype = compute_dtype(grad_output, weight)
    grad = conv3d_direct.grad_input(grad_output, weight, geometry, dtype)
    if grad is None:
        grad = _Depth(geometry).grad_input(grad_output, weight, dtype)
    return grad.reshape(input_shape)


@half_precision("x", "grad_output")
@ieee
def conv3d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, ...],
    stride: Ints3 = 1,
    padding: int | tuple | str = 0,
    dilation: Ints3 = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Gradient of :func:`conv3d` with respect to ``weight``, of shape ``weight_shape``.

    Summed over the batch in a fixed order: the result does not depend on the thread count.
    """
    x, grad_output, weight_shape, geometry = _grad_weight_arguments(
        x, grad_output, weight_shape, 3, stride, padding, dilation, groups, padding_mode)
    dtype = compute_dtype(x, grad_output)
    grad = conv3d_direct.grad_weight(x, grad_output, geometry, dtype)
    if grad is None:
        grad = _Depth(geometry).grad_weight(x, grad_output, dtype)
    return grad.reshape(weight_shape)


@half_precision("grad_output")
def conv3d_grad_bias(grad_output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`conv3d` with respect to ``bias``: ``grad_output`` summed over
    everything but the channel axis. ``(C_out,)``; a 0-d array for a bare volume."""
    return _grad_bias(grad_output, 3)
