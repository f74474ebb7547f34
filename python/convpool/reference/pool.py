"""The NumPy oracle for pooling and its gradients.

Written to be read, not to be fast: every output pixel is one explicit window. Window
``(i, j)`` covers input rows ``i * sy - top + s * dy`` (``s < kh``) and columns
``j * sx - left + t * dx`` (``t < kw``); the taps that fall outside the input are padding.
Padding never wins a max and never adds to a sum; it only counts towards an average's
divisor when ``count_include_pad`` says so.

- max: the window's values in row-major order, ``numpy.argmax`` picks the first maximum
  (and the first NaN, which it treats as the largest value); the index is the flat
  position ``row * W + col`` in the input plane.
- average: the window's sum (in float64) divided by ``divisor_override``, or by the
  number of taps inside the input plus padding (``count_include_pad``; a ``ceil_mode``
  window hanging past the padding counts only what lies inside it), or inside the input.
- global: one max or mean per plane; channel pooling: the max or mean of groups of
  ``size`` consecutive channels.

Results are in ``numpy.result_type(x, float32)``, in plain IEEE arithmetic (a NaN or inf
reaches exactly the windows that hold it). This module never touches the compiled
kernels, nor the library's argument handling: its geometry is its own
(``convpool.reference.geometry``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._arguments import as_array, positive_int, positive_pair, result_dtype, shape_tuple
from ._ieee import ieee
from .geometry import output_size, resolve_padding, window_span

__all__ = [
    "avg_pool2d",
    "avg_pool2d_grad_input",
    "channel_pool",
    "channel_pool_grad_input",
    "global_avg_pool2d",
    "global_avg_pool2d_grad_input",
    "global_max_pool2d",
    "global_max_pool2d_grad_input",
    "max_pool2d",
    "max_pool2d_grad_input",
]


# --- geometry -------------------------------------------------------------------------


def _batched(array: np.ndarray, name: str) -> np.ndarray:
    """``(N, C, H, W)`` as it is, ``(C, H, W)`` with a batch axis of 1 in front."""
    if array.ndim not in (3, 4):
        raise ValueError(f"{name}: expected (N, C, H, W) or (C, H, W), got shape {array.shape}")
    return array if array.ndim == 4 else array[np.newaxis]


def _unbatched_like(result: np.ndarray, ndim: int) -> np.ndarray:
    return result if ndim == 4 else result[0]


def _pooled_size(in_size, kernel, stride, dilation, before, after, ceil_mode) -> int:
    """How many windows fit on one axis; ValueError if not even one."""
    extent, padded = window_span(kernel, dilation), before + in_size + after
    if extent > padded:
        raise ValueError(
            f"kernel_size: the window spans {extent} pixels, more than the padded input {padded}"
        )
    return output_size(in_size, kernel, stride, dilation, before, after, ceil_mode)


class _Windows:
    """The windows of one axis: which input positions each output position reads."""

    def __init__(self, in_size, kernel, stride, dilation, before, after, ceil_mode, explicit):
        if explicit and max(before, after) > kernel // 2:
            raise ValueError(
                f"padding: ({before}, {after}) is more than half the kernel size {kernel}"
            )
        self.in_size, self.kernel, self.stride, self.dilation = in_size, kernel, stride, dilation
        self.before, self.after = before, after
        self.out_size = _pooled_size(in_size, kernel, stride, dilation, before, after, ceil_mode)

    def taps(self, o: int) -> list[int]:
        """Every input position window ``o`` covers, padding included."""
        return [o * self.stride - self.before + k * self.dilation for k in range(self.kernel)]

    def inside(self, o: int) -> list[int]:
        """The positions of window ``o`` that lie in the input."""
        inside = [p for p in self.taps(o) if 0 <= p < self.in_size]
        if not inside:
            raise ValueError(f"the window of output position {o} lies entirely in the padding")
        return inside

    def inside_padded(self, o: int) -> int:
        """How many taps of window ``o`` lie in the input or its padding."""
        return sum(-self.before <= p < self.in_size + self.after for p in self.taps(o))


def _axes(shape, kernel_size, stride, padding, dilation, ceil_mode) -> tuple[_Windows, _Windows]:
    h, w = shape[-2:]
    if h < 1 or w < 1:
        raise ValueError(f"x: pooling needs H and W >= 1, got shape {tuple(shape)}")
    kernel = positive_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    sides = resolve_padding(padding, (h, w), kernel, stride, dilation)
    explicit = not isinstance(padding, str)
    return tuple(  # type: ignore[return-value]
        _Windows((h, w)[a], kernel[a], stride[a], dilation[a], *sides[a], bool(ceil_mode), explicit)
        for a in (0, 1)
    )


def _window(planes: np.ndarray, rows: list[int], cols: list[int]) -> np.ndarray:
    """``planes[..., rows, cols]`` as ``(N, C, len(rows) * len(cols))``, row-major."""
    block = planes[:, :, rows, :][:, :, :, cols]
    return block.reshape(planes.shape[0], planes.shape[1], len(rows) * len(cols))


# --- max pooling ----------------------------------------------------------------------


@ieee
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Oracle of :func:`convpool.max_pool2d`."""
    x = as_array(x, "x")
    dtype = result_dtype(x)
    x4 = _batched(x, "x").astype(dtype)
    n, c, _, width = x4.shape
    rows, cols = _axes(x4.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, rows.out_size, cols.out_size), dtype=dtype)
    indices = np.empty(y.shape, dtype=np.int64)
    for i in range(rows.out_size):
        for j in range(cols.out_size):
            r, q = rows.inside(i), cols.inside(j)
            values = _window(x4, r, q)
            best = np.argmax(values, axis=-1)  # first maximum; first NaN if any
            y[:, :, i, j] = np.take_along_axis(values, best[..., np.newaxis], -1)[..., 0]
            row, col = np.asarray(r)[best // len(q)], np.asarray(q)[best % len(q)]
            indices[:, :, i, j] = row * width + col
    y, indices = _unbatched_like(y, x.ndim), _unbatched_like(indices, x.ndim)
    return (y, indices) if return_indices else y


@ieee
def max_pool2d_grad_input(grad_output, indices, input_shape):
    """Oracle of :func:`convpool.max_pool2d_grad_input`: each gradient is added to the
    input pixel its index names."""
    input_shape = shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices: expected an integer array, got {indices.dtype}")
    if indices.shape != grad_output.shape or grad_output.ndim != len(input_shape):
        raise ValueError(
            f"indices {indices.shape} and grad_output {grad_output.shape} must have one shape "
            f"of rank len(input_shape) = {len(input_shape)}"
        )
    h, w = input_shape[-2:]
    if indices.size and (indices.min() < 0 or indices.max() >= h * w):
        raise ValueError(f"indices: must lie in [0, H*W) = [0, {h * w})")
    dtype = result_dtype(grad_output)
    gy = grad_output.reshape(-1, grad_output.shape[-2] * grad_output.shape[-1])
    where = indices.reshape(gy.shape).astype(np.int64)
    grad = np.zeros((gy.shape[0], h * w), dtype=np.float64)
    planes = np.arange(gy.shape[0])[:, np.newaxis]
    np.add.at(grad, (np.broadcast_to(planes, where.shape), where), gy.astype(np.float64))
    return grad.reshape(input_shape).astype(dtype)


# --- average pooling ------------------------------------------------------------------


def _divisor(rows: _Windows, cols: _Windows, i, j, count_include_pad, divisor_override):
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
            raise TypeError(f"divisor_override: expected None or an int, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("divisor_override: must not be 0")
        return divisor_override
    if count_include_pad:
        return rows.inside_padded(i) * cols.inside_padded(j)
    return len(rows.inside(i)) * len(cols.inside(j))


@ieee
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Oracle of :func:`convpool.avg_pool2d`."""
    x = as_array(x, "x")
    dtype = result_dtype(x)
    x4 = _batched(x, "x").astype(np.float64)
    rows, cols = _axes(x4.shape, kernel_size, stride, padding, 1, ceil_mode)
    y = np.empty(x4.shape[:2] + (rows.out_size, cols.out_size))
    for i in range(rows.out_size):
        for j in range(cols.out_size):
            total = _window(x4, rows.inside(i), cols.inside(j)).sum(axis=-1)
            y[:, :, i, j] = total / _divisor(rows, cols, i, j, count_include_pad, divisor_override)
    return _unbatched_like(y, x.ndim).astype(dtype)


@ieee
def avg_pool2d_grad_input(grad_output, input_shape, kernel_size, stride=None, padding=0,
                          ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Oracle of :func:`convpool.avg_pool2d_grad_input`: each output gradient, divided
    by its divisor, is added to every input pixel of its window."""
    input_shape = shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    dtype = result_dtype(grad_output)
    shape4 = (1,) * (4 - len(input_shape)) + input_shape
    rows, cols = _axes(shape4, kernel_size, stride, padding, 1, ceil_mode)
    expected = input_shape[:-2] + (rows.out_size, cols.out_size)
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")
    gy = _batched(grad_output.astype(np.float64), "grad_output")
    grad = np.zeros(shape4)
    for i in range(rows.out_size):
        for j in range(cols.out_size):
            r, q = rows.inside(i), cols.inside(j)
            share = gy[:, :, i, j] / _divisor(rows, cols, i, j, count_include_pad, divisor_override)
            grad[:, :, r[0] : r[-1] + 1, q[0] : q[-1] + 1] += share[:, :, np.newaxis, np.newaxis]
    return grad.reshape(input_shape).astype(dtype)


# --- global pooling -------------------------------------------------------------------


def _planes(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as ``(..., H * W)``: one row per plane."""
    if x.ndim not in (3, 4) or x.shape[-1] * x.shape[-2] < 1:
        raise ValueError(
            f"{name}: expected (N, C, H, W) or (C, H, W) with H, W >= 1, got {x.shape}"
        )
    return x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))


def _global_grad(grad_output: np.ndarray, input_shape) -> np.ndarray:
    """``grad_output`` as one value per plane, from either output form."""
    if grad_output.shape not in (tuple(input_shape[:-2]), tuple(input_shape[:-2]) + (1, 1)):
        raise ValueError(f"grad_output: shape {grad_output.shape} does not fit input {input_shape}")
    return grad_output.reshape(tuple(input_shape[:-2]))


@ieee
def global_avg_pool2d(x, keepdims=False):
    """Oracle of :func:`convpool.global_avg_pool2d`."""
    x = as_array(x, "x")
    y = _planes(x, "x").astype(np.float64).mean(axis=-1)
    return (y[..., np.newaxis, np.newaxis] if keepdims else y).astype(result_dtype(x))


@ieee
def global_avg_pool2d_grad_input(grad_output, input_shape):
    """Oracle of :func:`convpool.global_avg_pool2d_grad_input`."""
    input_shape = shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    gy = _global_grad(grad_output, input_shape).astype(np.float64)
    share = gy / (input_shape[-1] * input_shape[-2])
    grad = np.broadcast_to(share[..., np.newaxis, np.newaxis], input_shape)
    return grad.astype(result_dtype(grad_output))


@ieee
def global_max_pool2d(x, keepdims=False):
    """Oracle of :func:`convpool.global_max_pool2d`."""
    x = as_array(x, "x")
    planes = _planes(x, "x")
    best = np.argmax(planes, axis=-1)[..., np.newaxis]
    y = np.take_along_axis(planes, best, -1)[..., 0]
    return (y[..., np.newaxis, np.newaxis] if keepdims else y).astype(result_dtype(x))


@ieee
def global_max_pool2d_grad_input(grad_output, x):
    """Oracle of :func:`convpool.global_max_pool2d_grad_input`: each plane's gradient goes
    to the first maximum (or first NaN) of that plane of ``x``."""
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    planes = _planes(x, "x")
    gy = _global_grad(grad_output, x.shape)
    grad = np.zeros(planes.shape)
    best = np.argmax(planes, axis=-1)[..., np.newaxis]
    np.put_along_axis(grad, best, gy[..., np.newaxis].astype(np.float64), -1)
    return grad.reshape(x.shape).astype(result_dtype(grad_output, x))


# --- pooling across channels ----------------------------------------------------------


def _groups(x: np.ndarray, size, mode) -> np.ndarray:
    """``x`` as ``(N, C // size, size, H, W)``: the channel groups."""
    size = positive_int(size, "size")
    if mode not in ("max", "avg"):
        raise ValueError(f"mode: expected 'max' or 'avg', got {mode!r}")
    x4 = _batched(x, "x")
    n, c, h, w = x4.shape
    if c % size:
        raise ValueError(f"size: {size} must divide the number of channels {c}")
    return x4.reshape(n, c // size, size, h, w)


@ieee
def channel_pool(x, size, mode="max"):
    """Oracle of :func:`convpool.channel_pool`."""
    x = as_array(x, "x")
    groups = _groups(x, size, mode).astype(np.float64)
    y = groups.max(axis=2) if mode == "max" else groups.mean(axis=2)
    return _unbatched_like(y, x.ndim).astype(result_dtype(x))


@ieee
def channel_pool_grad_input(grad_output, x, size, mode="max"):
    """Oracle of :func:`convpool.channel_pool_grad_input`: max sends each gradient to the
    first winning channel of its group (the first NaN if any), avg splits it evenly."""
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    groups = _groups(x, size, mode)
    gy = _batched(grad_output, "grad_output").astype(np.float64)[:, :, np.newaxis]
    if gy.shape[:2] + gy.shape[3:] != groups.shape[:2] + groups.shape[3:]:
        raise ValueError(f"grad_output: shape {grad_output.shape} does not fit x {x.shape}")
    if mode == "max":
        winner = np.argmax(groups, axis=2)[:, :, np.newaxis]
        grad = np.zeros(groups.shape)
        np.put_along_axis(grad, winner, gy, axis=2)
    else:
        grad = np.broadcast_to(gy / groups.shape[2], groups.shape)
    return grad.reshape(x.shape).astype(result_dtype(grad_output, x))
