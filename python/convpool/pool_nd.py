"""1-D and 3-D pooling and their gradients, on the compiled 2-D kernels (and a 3-D kernel
for max pooling with indices).

- 1-D: ``(N, C, L)`` is pooled as ``(N, C, 1, L)`` with a ``(1, k)`` window (a view).
  Max-pooling indices into the 1-row plane are indices into ``L``.
- 3-D max pooling with indices: one pass of the compiled kernel
  (csrc/kernels/max_pool3d.cpp): each window's taps in row-major ``(d, h, w)`` order, so
  the flat index ``d * H * W + h * W + w`` is the first maximum (the first NaN if there is
  one), as in PyTorch and :func:`convpool.max_pool2d`.
- 3-D pooling otherwise is separable. The 2-D kernels pool every ``H x W`` plane
  (``(N, C * D, H, W)``, a view), then the depth window combines ``kd`` of those results:
  a maximum over ``(d, h, w)`` is the maximum over ``d`` of the planes' maxima (NaN if any
  is NaN). An average's divisor is a product over the axes (PyTorch's rule), so the mean
  of the planes' means is the 3-D mean.

Arguments, errors and results follow :mod:`convpool.pool` and ``torch.nn.functional``.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._args import (
    as_array,
    check_grad_shape,
    check_shape_tuple,
    compute_dtype,
    integer_array,
)
from ._ieee import ieee
from .dtypes import half_precision
from .geometry import PoolGeometry, check_divisor_override, pool_geometry, pool_input_shape
from .geometry import check_flag as flag
from .pool import (
    avg_pool2d,
    avg_pool2d_grad_input,
    global_avg_pool2d,
    global_avg_pool2d_grad_input,
    global_max_pool2d,
    global_max_pool2d_grad_input,
    max_pool2d,
    max_pool2d_grad_input,
)

__all__ = [
    "avg_pool1d",
    "avg_pool1d_grad_input",
    "avg_pool3d",
    "avg_pool3d_grad_input",
    "global_avg_pool1d",
    "global_avg_pool1d_grad_input",
    "global_avg_pool3d",
    "global_avg_pool3d_grad_input",
    "global_max_pool1d",
    "global_max_pool1d_grad_input",
    "global_max_pool3d",
    "global_max_pool3d_grad_input",
    "max_pool1d",
    "max_pool1d_grad_input",
    "max_pool3d",
    "max_pool3d_grad_input",
]


def _spatial_padding(padding: object, geometry: PoolGeometry, axes: slice) -> object:
    """The padding of some axes as the 2-D functions take it: 'same' stays a word (its
    sides may exceed the explicit-padding limit), anything else becomes explicit sides."""
    if isinstance(padding, str):
        return padding
    return tuple(geometry.sides[axes])


# --- 1-D --------------------------------------------------------------------------------


def _pool_2d_of_1d(geometry: PoolGeometry, padding: object) -> dict:
    return dict(kernel_size=(1, geometry.kernel_size[0]), stride=(1, geometry.stride[0]),
                padding=padding if isinstance(padding, str) else ((0, 0), geometry.sides[0]),
                ceil_mode=geometry.ceil_mode)


def _plane(array: np.ndarray, batched: tuple[int, ...]) -> np.ndarray:
    """``(N, C, L)`` (or ``(C, L)``) as ``(N, C, 1, L)``: a view."""
    return array.reshape(batched)[:, :, np.newaxis, :]


@half_precision("x")
def max_pool1d(
    x: np.ndarray,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """1-D max pooling: the largest value of each window.

    Args:
        x: ``(N, C, L)`` or ``(C, L)``.
        kernel_size, dilation: an int or ``(k,)``.
        stride: an int or ``(s,)``; None means ``kernel_size``.
        padding: an int, ``(p,)``, ``(before, after)``, ``"valid"`` or ``"same"``. Padding
            never wins; explicit padding must be at most ``kernel_size // 2`` per side.
        ceil_mode: round the output length up (the last window starts inside the input or
            the padding before it).
        return_indices: also return the int64 position of each maximum in ``L``.

    Returns:
        ``y`` of shape ``(N, C, OL)`` (or ``(C, OL)``), or ``(y, indices)``. Ties go to the
        first maximum; a window holding NaN gives NaN and the index of its first NaN.
    """
    x = as_array(x, "x")
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, rank=1)
    return_indices = flag(return_indices, "return_indices")
    result = max_pool2d(_plane(x, geometry.input_shape), dilation=(1, geometry.dilation[0]),
                        return_indices=return_indices, **_pool_2d_of_1d(geometry, padding))
    shape = geometry.user_shape(geometry.output_shape)
    if return_indices:
        return result[0].reshape(shape), result[1].reshape(shape)
    return result.reshape(shape)


def _max_grad(grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...],
              rank: int) -> np.ndarray:
    """Both ranks on :func:`max_pool2d_grad_input`: indices into ``L`` or ``D * H * W``
    are indices into a plane of one row of that length."""
    shape = pool_input_shape(input_shape, "input_shape", rank)
    grad_output = as_array(grad_output, "grad_output")
    indices = integer_array(indices)
    if grad_output.ndim != len(input_shape) or grad_output.shape[:-rank] != input_shape[:-rank]:
        spatial = "(OL,)" if rank == 1 else "(OD, OH, OW)"
        raise ValueError(
            f"grad_output: expected shape {input_shape[:-rank]} + {spatial} to match "
            f"input_shape {input_shape}, got {grad_output.shape}")
    if indices.shape != grad_output.shape:
        raise ValueError(
            f"indices: expected the shape of grad_output {grad_output.shape}, got {indices.shape}")
    n, c = shape[:2]
    plane = int(np.prod(shape[2:]))
    if plane < 1:
        raise ValueError(f"input_shape: every spatial size must be >= 1, got {input_shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        what = "L" if rank == 1 else "D * H * W"
        raise ValueError(f"indices: must lie in [0, {what}) = [0, {plane}), got values in "
                         f"[{indices.min()}, {indices.max()}]")
    outputs = int(np.prod(grad_output.shape[len(grad_output.shape) - rank:]))
    grad = max_pool2d_grad_input(grad_output.reshape(n, c, 1, outputs),
                                 indices.reshape(n, c, 1, outputs), (n, c, 1, plane))
    return grad.reshape(input_shape)


@half_precision("grad_output")
def max_pool1d_grad_input(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient of :func:`max_pool1d` with respect to ``x``: each ``grad_output`` value is
    added at the position its index names (overlapping windows accumulate)."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (2, 3))
    return _max_grad(grad_output, indices, input_shape, 1)


@half_precision("x")
def avg_pool1d(
    x: np.ndarray,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """1-D average pooling: the mean of each window; arguments as :func:`max_pool1d` (no
    dilation) and :func:`convpool.avg_pool2d` (``count_include_pad``,
    ``divisor_override``). Returns ``(N, C, OL)`` (or ``(C, OL)``)."""
    x = as_array(x, "x")
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode, rank=1)
    y = avg_pool2d(_plane(x, geometry.input_shape), count_include_pad=count_include_pad,
                   divisor_override=divisor_override, **_pool_2d_of_1d(geometry, padding))
    return y.reshape(geometry.user_shape(geometry.output_shape))


@half_precision("grad_output")
def avg_pool1d_grad_input(
    grad_output: np.ndarray,
    input_shape: tuple[int, ...],
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool1d` with respect to ``x``, of shape ``input_shape``."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (2, 3))
    grad_output = as_array(grad_output, "grad_output")
    geometry = pool_geometry(input_shape, kernel_size, stride, padding, 1, ceil_mode,
                             "input_shape", rank=1)
    check_grad_shape(grad_output, geometry.user_shape(geometry.output_shape))
    n, c, length = geometry.input_shape
    grad = avg_pool2d_grad_input(
        _plane(grad_output, geometry.output_shape), (n, c, 1, length),
        count_include_pad=count_include_pad, divisor_override=divisor_override,
        **_pool_2d_of_1d(geometry, padding))
    return grad.reshape(input_shape)


# --- 3-D --------------------------------------------------------------------------------


def _planes(x: np.ndarray, geometry: PoolGeometry) -> np.ndarray:
    """``(N, C, D, H, W)`` as ``(N, C * D, H, W)``: a view of a contiguous array."""
    n, c, d, h, w = geometry.input_shape
    return x.reshape(n, c * d, h, w)


def _pool_2d_of_3d(geometry: PoolGeometry, padding: object) -> dict:
    return dict(kernel_size=geometry.kernel_size[1:], stride=geometry.stride[1:],
                padding=_spatial_padding(padding, geometry, slice(1, 3)),
                ceil_mode=geometry.ceil_mode)


def _depth_windows(geometry: PoolGeometry):
    """Per depth tap ``t``: the output depths whose window reads the input at that tap, as
    a slice, and the input depths they read, as a slice (every other tap is padding)."""
    depth = geometry.input_shape[2]
    od = geometry.output_shape[2]
    k, stride, dilation = geometry.kernel_size[0], geometry.stride[0], geometry.dilation[0]
    before = geometry.sides[0][0]
    for tap in range(k):
        offset = tap * dilation - before  # input depth of output 0 at this tap
        first = max(0, -(offset // stride))  # ceil(-offset / stride)
        last = min(od - 1, (depth - 1 - offset) // stride)
        if first > last:
            continue
        yield (slice(first, last + 1),
               slice(first * stride + offset, last * stride + offset + 1, stride))


@half_precision("x")
@ieee
def max_pool3d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """3-D max pooling: the largest value of each ``kd x kh x kw`` window.

    Args:
        x: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.
        kernel_size, dilation: an int or ``(d, h, w)``.
        stride: an int or a triple; None means ``kernel_size``.
        padding: an int, ``(pd, ph, pw)``, per side ``((front, back), (top, bottom),
            (left, right))``, ``"valid"`` or ``"same"``; explicit padding at most
            ``kernel_size // 2`` per side. Padding never wins.
        ceil_mode: round the output sizes up (PyTorch's rule).
        return_indices: also return the int64 flat index ``d * H * W + h * W + w`` of each
            maximum in its channel's volume, as PyTorch.

    Returns:
        ``y`` of shape ``(N, C, OD, OH, OW)`` (or unbatched), or ``(y, indices)``. Ties go
        to the first maximum in row-major ``(d, h, w)`` order; a window holding NaN gives
        NaN and the index of its first NaN.
    """
    x = as_array(x, "x")
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, rank=3)
    return_indices = flag(return_indices, "return_indices")
    if return_indices:
        return _max_pool3d_with_indices(x, geometry)
    n, c, depth, h, w = geometry.input_shape
    _, _, od, oh, ow = geometry.output_shape
    pooled = max_pool2d(_planes(x, geometry), dilation=geometry.dilation[1:],
                        **_pool_2d_of_3d(geometry, padding)).reshape(n, c, depth, oh, ow)
    y = np.full((n, c, od, oh, ow), -np.inf, dtype=pooled.dtype)
    for outputs, inputs in _depth_windows(geometry):
        target = y[:, :, outputs]
        np.maximum(target, pooled[:, :, inputs], out=target)  # NaN wins
    return y.reshape(geometry.user_shape(geometry.output_shape))


def _max_pool3d_with_indices(x: np.ndarray, geometry: PoolGeometry
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Values and flat indices in one pass of the compiled 3-D kernel
    (csrc/kernels/max_pool3d.cpp): pooling the planes in 2-D with indices and then
    matching the depths' maxima took five passes over the data."""
    dtype = compute_dtype(x)
    x5 = np.ascontiguousarray(x, dtype=dtype).reshape(geometry.input_shape)
    y = np.empty(geometry.output_shape, dtype=dtype)
    indices = np.empty(geometry.output_shape, dtype=np.int64)
    if y.size:
        _core.max_pool3d_forward(x5, y, indices, tuple(geometry.kernel_size),
                                 tuple(geometry.stride), tuple(geometry.dilation),
                                 tuple(before for before, _ in geometry.sides),
                                 tuple(after for _, after in geometry.sides))
    shape = geometry.user_shape(geometry.output_shape)
    return y.reshape(shape), indices.reshape(shape)


@half_precision("grad_output")
def max_pool3d_grad_input(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient of :func:`max_pool3d` with respect to ``x``: each ``grad_output`` value is
    added to the voxel its flat index (into ``D * H * W``) names."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (4, 5))
    return _max_grad(grad_output, indices, input_shape, 3)


def _depth_divisors(geometry: PoolGeometry, count_include_pad: bool) -> np.ndarray:
    """Per output depth: the depth factor of PyTorch's divisor."""
    depth = geometry.input_shape[2]
    od = geometry.output_shape[2]
    (before, after), k, stride = geometry.sides[0], geometry.kernel_size[0], geometry.stride[0]
    start = np.arange(od) * stride - before
    if count_include_pad:
        return np.minimum(start + k, depth + after) - start
    return np.minimum(start + k, depth) - np.maximum(start, 0)


@half_precision("x")
@ieee
def avg_pool3d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """3-D average pooling: the mean of each window; arguments as :func:`max_pool3d` (no
    dilation). The divisor is ``divisor_override`` if given, else the product over the
    axes of the window's taps inside the input plus padding (``count_include_pad``; a
    ``ceil_mode`` window past the padding counts only its part inside) or inside the
    input alone. Returns ``(N, C, OD, OH, OW)`` (or unbatched)."""
    x = as_array(x, "x")
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode, rank=3)
    count_include_pad = flag(count_include_pad, "count_include_pad")
    divisor = check_divisor_override(divisor_override)
    n, c, depth, h, w = geometry.input_shape
    _, _, od, oh, ow = geometry.output_shape
    # with an override, planes give their sums and the depth sum is divided once
    planes = avg_pool2d(_planes(x, geometry), count_include_pad=count_include_pad,
                        divisor_override=None if divisor is None else 1,
                        **_pool_2d_of_3d(geometry, padding)).reshape(n, c, depth, oh, ow)
    y = np.zeros((n, c, od, oh, ow), dtype=planes.dtype)
    for outputs, inputs in _depth_windows(geometry):
        y[:, :, outputs] += planes[:, :, inputs]
    if divisor is not None:
        y /= divisor
    else:
        y /= _depth_divisors(geometry, count_include_pad).astype(y.dtype)[:, None, None]
    return y.reshape(geometry.user_shape(geometry.output_shape))


@half_precision("grad_output")
@ieee
def avg_pool3d_grad_input(
    grad_output: np.ndarray,
    input_shape: tuple[int, ...],
    kernel_size: int | tuple[int, int, int],
    stride: int | tuple[int, int, int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool3d` with respect to ``x``, of shape ``input_shape``:
    each output gradient divided by its divisor and added to every voxel of its window."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (4, 5))
    grad_output = as_array(grad_output, "grad_output")
    geometry = pool_geometry(input_shape, kernel_size, stride, padding, 1, ceil_mode,
                             "input_shape", rank=3)
    count_include_pad = flag(count_include_pad, "count_include_pad")
    divisor = check_divisor_override(divisor_override)
    check_grad_shape(grad_output, geometry.user_shape(geometry.output_shape))
    dtype = compute_dtype(grad_output)
    n, c, depth, h, w = geometry.input_shape
    _, _, od, oh, ow = geometry.output_shape
    grad_output = grad_output.reshape(geometry.output_shape).astype(dtype, copy=False)
    if divisor is not None:
        scaled = grad_output / dtype.type(divisor)
    else:
        scaled = grad_output / _depth_divisors(geometry, count_include_pad).astype(
            dtype)[:, None, None]
    planes = np.zeros((n, c, depth, oh, ow), dtype=dtype)
    for outputs, inputs in _depth_windows(geometry):
        planes[:, :, inputs] += scaled[:, :, outputs]
    grad = avg_pool2d_grad_input(
        planes.reshape(n, c * depth, oh, ow), (n, c * depth, h, w),
        count_include_pad=count_include_pad, divisor_override=None if divisor is None else 1,
        **_pool_2d_of_3d(geometry, padding))
    return grad.reshape(input_shape)


# --- global -----------------------------------------------------------------------------


def _global_plane(shape: tuple[int, ...], rank: int, name: str) -> tuple[int, int, int, int]:
    """The 2-D plane ``(N, C, 1, L)`` or ``(N, C, D * H, W)`` a global pool reads."""
    batched = pool_input_shape(shape, name, rank)
    if min(batched[2:]) < 1:
        raise ValueError(f"{name}: global pooling needs every spatial size >= 1, got shape "
                         f"{tuple(shape)}")
    n, c = batched[:2]
    return (n, c, 1, batched[2]) if rank == 1 else (n, c, batched[2] * batched[3], batched[4])


def _global_output_shape(shape: tuple[int, ...], rank: int, keepdims: bool):
    return tuple(shape[:-rank]) + ((1,) * rank if keepdims else ())


def _global_grad(grad_output: object, input_shape: tuple[int, ...], rank: int) -> np.ndarray:
    grad_output = as_array(grad_output, "grad_output")
    accepted = [_global_output_shape(input_shape, rank, keep) for keep in (False, True)]
    if grad_output.shape not in accepted:
        raise ValueError(
            f"grad_output: expected shape {accepted[0]} or {accepted[1]} for input shape "
            f"{tuple(input_shape)}, got {grad_output.shape}")
    return grad_output.reshape(accepted[0])


def _global_pool(pool, x: object, rank: int, keepdims: object) -> np.ndarray:
    x = as_array(x, "x")
    plane = _global_plane(x.shape, rank, "x")
    keepdims = flag(keepdims, "keepdims")
    y = pool(x.reshape(plane))
    return y.reshape(_global_output_shape(x.shape, rank, keepdims))


@half_precision("x")
def global_avg_pool1d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Mean of each channel's signal: ``(N, C, L) -> (N, C)`` (``(N, C, 1)`` with
    ``keepdims``; ``(C,)`` / ``(C, 1)`` unbatched)."""
    return _global_pool(global_avg_pool2d, x, 1, keepdims)


@half_precision("x")
def global_avg_pool3d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Mean of each channel's volume: ``(N, C, D, H, W) -> (N, C)`` (``(N, C, 1, 1, 1)``
    with ``keepdims``)."""
    return _global_pool(global_avg_pool2d, x, 3, keepdims)


@half_precision("x")
def global_max_pool1d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Maximum of each channel's signal (NaN if it holds one): ``(N, C, L) -> (N, C)``."""
    return _global_pool(global_max_pool2d, x, 1, keepdims)


@half_precision("x")
def global_max_pool3d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Maximum of each channel's volume (NaN if it holds one): ``(N, C, D, H, W) -> (N, C)``."""
    return _global_pool(global_max_pool2d, x, 3, keepdims)


def _global_avg_grad(grad_output, input_shape, rank: int, ndims) -> np.ndarray:
    input_shape = check_shape_tuple(input_shape, "input_shape", ndims)
    plane = _global_plane(input_shape, rank, "input_shape")
    grad_output = _global_grad(grad_output, input_shape, rank)
    grad = global_avg_pool2d_grad_input(grad_output.reshape(plane[:2]), plane)
    return grad.reshape(input_shape)


def _global_max_grad(grad_output, x, rank: int) -> np.ndarray:
    x = as_array(x, "x")
    plane = _global_plane(x.shape, rank, "x")
    grad_output = _global_grad(grad_output, x.shape, rank)
    grad = global_max_pool2d_grad_input(grad_output.reshape(plane[:2]), x.reshape(plane))
    return grad.reshape(x.shape)


@half_precision("grad_output")
def global_avg_pool1d_grad_input(grad_output: np.ndarray, input_shape: tuple[int, ...]
                                 ) -> np.ndarray:
    """Gradient of :func:`global_avg_pool1d`: each signal receives ``grad_output / L``."""
    return _global_avg_grad(grad_output, input_shape, 1, (2, 3))


@half_precision("grad_output")
def global_avg_pool3d_grad_input(grad_output: np.ndarray, input_shape: tuple[int, ...]
                                 ) -> np.ndarray:
    """Gradient of :func:`global_avg_pool3d`: each volume receives ``grad_output / (D H W)``."""
    return _global_avg_grad(grad_output, input_shape, 3, (4, 5))


@half_precision("grad_output", "x")
def global_max_pool1d_grad_input(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`global_max_pool1d` with respect to ``x`` (the forward input): to
    each signal's first maximum (its first NaN if it holds one)."""
    return _global_max_grad(grad_output, x, 1)


@half_precision("grad_output", "x")
def global_max_pool3d_grad_input(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`global_max_pool3d` with respect to ``x``: to each volume's first
    maximum in row-major ``(d, h, w)`` order (its first NaN if it holds one)."""
    return _global_max_grad(grad_output, x, 3)
