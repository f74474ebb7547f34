"""Max unpooling (``torch.nn.functional.max_unpool2d``): each value goes back to the
position its max-pooling index names, zeros elsewhere.

That is exactly the scatter of ``max_pool2d_grad_input``, which computes it. Where two
indices name the same position (overlapping pooling windows can choose the same pixel)
the values are added; PyTorch keeps one of them. Unpooling is linear, and its gradient
is the gather :func:`max_unpool2d_grad_input`. With ``layout="NHWC"`` the arrays are
channels last (the indices the same flat plane positions), scattered by the NHWC kernel.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._args import as_array, positive_pair
from .dtypes import half_precision
from .layout import check_layout, nchw_shape
from .pool import max_pool2d_grad_input

__all__ = ["max_unpool2d", "max_unpool2d_grad_input", "max_unpool2d_output_size"]

Pair = tuple[int, int]


def max_unpool2d_output_size(input_size: Pair, kernel_size: object, stride: object = None,
                             padding: object = 0, output_size: object = None) -> Pair:
    """``(H_out, W_out)``: ``(H - 1) * stride - 2 * padding + kernel_size`` per axis, or
    ``output_size`` (its last two entries), which must lie within ``stride`` of that."""
    kernel = positive_pair(kernel_size, "kernel_size")
    stride_pair = kernel if stride is None else positive_pair(stride, "stride")
    pads = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    if len(pads) != 2 or any(isinstance(p, bool) or not isinstance(p, numbers.Integral)
                             for p in pads):
        raise TypeError(f"padding: expected an int or a pair of ints, got {padding!r}")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding: must be >= 0, got {padding!r}")
    default = [(input_size[a] - 1) * stride_pair[a] - 2 * int(pads[a]) + kernel[a]
               for a in (0, 1)]
    if output_size is None:
        if min(default) < 1:
            raise ValueError(
                f"max_unpool2d: output size would be {tuple(default)} for input "
                f"{tuple(input_size)}, kernel {kernel}, stride {stride_pair}, padding {padding}")
        return default[0], default[1]
    if not isinstance(output_size, (tuple, list)) or len(output_size) < 2 or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in output_size):
        raise TypeError(f"output_size: expected a tuple of ints, got {output_size!r}")
    wanted = (int(output_size[-2]), int(output_size[-1]))
    for axis in (0, 1):
        low, high = default[axis] - stride_pair[axis], default[axis] + stride_pair[axis]
        if not (max(low, 1) <= wanted[axis] <= high):
            raise ValueError(
                f"output_size: {tuple(output_size)} must be within a stride of the default "
                f"size {tuple(default)} (between {max(low, 1)} and {high} on axis {axis})")
    return wanted


@half_precision("x")
def max_unpool2d(x: np.ndarray, indices: np.ndarray, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
                 output_size: tuple[int, ...] | None = None, layout: str = "NCHW") -> np.ndarray:
    """Partial inverse of :func:`max_pool2d`, as ``torch.nn.functional.max_unpool2d``.

    ``x`` ``(N, C, H, W)`` or ``(C, H, W)`` and ``indices`` of the same shape (integer,
    flat positions in each output plane, as ``max_pool2d(..., return_indices=True)``
    gives). The output plane size is from :func:`max_unpool2d_output_size`; every index
    must lie in it (ValueError naming it otherwise). Result dtype:
    ``numpy.result_type(x, float32)``. With ``layout="NHWC"``, ``x``, ``indices`` and the
    result are ``(N, H, W, C)`` or ``(H, W, C)``, and a 3- or 4-entry ``output_size`` is
    a shape in that layout.
    """
    x = as_array(x, "x")
    layout = check_layout(layout)
    if x.ndim not in (3, 4):
        expected = "(N, C, H, W) or (C, H, W)" if layout == "NCHW" else "(N, H, W, C) or (H, W, C)"
        raise ValueError(f"x: expected {expected}, got shape {x.shape}")
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        given = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
        raise TypeError(f"indices: expected an integer array (as max_pool2d returns), got "
                        f"{given}")
    if indices.shape != x.shape:
        raise ValueError(f"indices: expected the shape of x {x.shape}, got {indices.shape}")
    shape = nchw_shape(x.shape, layout)
    if layout == "NHWC" and isinstance(output_size, (tuple, list)) and len(output_size) in (3, 4):
        output_size = nchw_shape(tuple(output_size), layout)
    out = max_unpool2d_output_size(shape[-2:], kernel_size, stride, padding, output_size)
    nchw_out = (*shape[:-2], *out)
    if layout == "NHWC":
        return max_pool2d_grad_input(x, indices, (*nchw_out[:-3], *out, nchw_out[-3]),
                                     layout="NHWC")
    return max_pool2d_grad_input(x, indices, nchw_out)


@half_precision("grad_output")
def max_unpool2d_grad_input(grad_output: np.ndarray, indices: np.ndarray,
                            layout: str = "NCHW") -> np.ndarray:
    """Gradient of :func:`max_unpool2d` with respect to ``x``: ``grad_output`` read at
    each index (shape and dtype of ``indices``' plane layout, values of ``grad_output``);
    arrays in ``layout``."""
    grad_output = as_array(grad_output, "grad_output")
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        raise TypeError("indices: expected an integer array (as max_pool2d returns)")
    if check_layout(layout) == "NHWC":
        if grad_output.ndim not in (3, 4) or indices.ndim != grad_output.ndim:
            raise ValueError(
                f"indices, grad_output: expected (N, H, W, C) or (H, W, C) with the same rank, "
                f"got indices {indices.shape}, grad_output {grad_output.shape}")
        grad = max_unpool2d_grad_input(np.moveaxis(grad_output, -1, -3),
                                       np.moveaxis(indices, -1, -3))
        return np.ascontiguousarray(np.moveaxis(grad, -3, -1))
    if grad_output.ndim not in (3, 4) or indices.ndim != grad_output.ndim or (
            indices.shape[:-2] != grad_output.shape[:-2]):
        raise ValueError(
            f"indices, grad_output: expected (N, C, H, W) or (C, H, W) with the same leading "
            f"sizes, got indices {indices.shape}, grad_output {grad_output.shape}")
    plane = grad_output.shape[-2] * grad_output.shape[-1]
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        bad = indices[(indices < 0) | (indices >= plane)].flat[0]
        raise ValueError(f"indices: each must be in [0, {plane}) (the output plane), got {bad}")
    flat_grad = grad_output.reshape(*grad_output.shape[:-2], plane)
    flat_index = indices.reshape(*indices.shape[:-2], -1).astype(np.int64, copy=False)
    dtype = np.result_type(grad_output, np.float32)
    return np.take_along_axis(flat_grad, flat_index, axis=-1).reshape(indices.shape).astype(
        dtype, copy=False)
