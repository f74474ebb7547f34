"""Adaptive average and max pooling (``torch.nn.functional.adaptive_*_pool2d``): the
output size is given and the windows follow from it.

Output row ``i`` of ``out`` pools input rows ``floor(i * H / out)`` to
``ceil((i + 1) * H / out)`` (exclusive), PyTorch's rule; columns likewise. When the
output size divides the input size the windows are those of an ordinary pooling with
kernel = stride = ``H / out``, and the compiled ``avg_pool2d`` / ``max_pool2d`` run.
Otherwise the windows differ in size (and may overlap) and the pooling runs in NumPy,
axis by axis (a window is a rectangle, so both poolings separate): the average as two
matrix products with the row and column averaging matrices, the maximum over the
windows of each size at once.

Gradients: :func:`adaptive_avg_pool2d_grad_input` (the transposed averaging) and
:func:`adaptive_max_pool2d_grad_input`, which is ``max_pool2d_grad_input`` on the
indices ``adaptive_max_pool2d(..., return_indices=True)`` gave.

With ``layout="NHWC"`` the arrays are channels last; they are pooled through their NCHW-
shaped views (no copy), which the compiled functions serve with their NHWC kernels.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._args import as_array, check_shape_tuple, compute_dtype
from .dtypes import half_precision
from .layout import check_layout, nchw_shape
from .pool import avg_pool2d, avg_pool2d_grad_input, max_pool2d, max_pool2d_grad_input

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_grad_input",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_grad_input",
    "adaptive_windows",
]

Pair = tuple[int, int]


def adaptive_windows(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the ``out_size`` windows over ``in_size`` pixels (PyTorch's
    rule: ``floor(i * in / out)`` to ``ceil((i + 1) * in / out)``)."""
    i = np.arange(out_size, dtype=np.int64)
    return (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)


def _output_size(output_size: object, in_size: Pair) -> Pair:
    items = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(items) != 2:
        raise ValueError(f"output_size: expected an int or a pair, got {output_size!r}")
    result = []
    for item, size in zip(items, in_size, strict=True):
        if item is None:
            result.append(size)
            continue
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(
                f"output_size: expected an int, a pair of ints or None, got {output_size!r}")
        if item < 1:
            raise ValueError(f"output_size: must be >= 1, got {output_size!r}")
        result.append(int(item))
    return result[0], result[1]


def _as_nchw(array: np.ndarray, layout: str) -> np.ndarray:
    """A 3-D or 4-D array in ``layout`` as an NCHW-shaped view (the same array for NCHW)."""
    if layout == "NHWC" and array.ndim in (3, 4):
        return np.moveaxis(array, -1, -3)
    return array


def _in_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """An NCHW-shaped result in ``layout``: C-contiguous (a view when its memory already is
    channels last, as the compiled NHWC kernels leave it)."""
    if layout == "NHWC":
        return np.ascontiguousarray(np.moveaxis(array, -3, -1))
    return array


def _setup(x: object, output_size: object, layout: object = "NCHW"
           ) -> tuple[np.ndarray, Pair, bool]:
    """``x`` as a 4-D NCHW-shaped array, the resolved output size, and whether ``x`` was
    batched."""
    x = as_array(x, "x")
    if check_layout(layout) == "NHWC" and x.ndim not in (3, 4):
        raise ValueError(f"x: expected (N, H, W, C) or (H, W, C), got shape {x.shape}")
    x = _as_nchw(x, layout)
    if x.ndim not in (3, 4):
        raise ValueError(f"x: expected (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"x: H and W must be >= 1, got shape {x.shape}")
    out = _output_size(output_size, x.shape[-2:])
    return (x if x.ndim == 4 else x[np.newaxis]), out, x.ndim == 4


def _divides(in_size: tuple[int, ...], out: Pair) -> bool:
    return in_size[0] % out[0] == 0 and in_size[1] % out[1] == 0


def _averaging_matrix(in_size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    """``(out_size, in_size)``: row ``i`` averages window ``i``."""
    starts, ends = adaptive_windows(in_size, out_size)
    columns = np.arange(in_size)
    inside = (columns >= starts[:, None]) & (columns < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(dtype)


@half_precision("x")
def adaptive_avg_pool2d(x: np.ndarray, output_size: int | tuple, layout: str = "NCHW"
                        ) -> np.ndarray:
    """Mean over each adaptive window, as ``torch.nn.functional.adaptive_avg_pool2d``.

    ``x`` is ``(N, C, H, W)`` or ``(C, H, W)`` (``layout="NHWC"``: ``(N, H, W, C)`` or
    ``(H, W, C)``, and so is the result); ``output_size`` an int, a pair, or a pair
    with None for "keep that axis". Result dtype: ``numpy.result_type(x, float32)``.
    """
    x4, out, batched = _setup(x, output_size, layout)
    h, w = x4.shape[-2:]
    if _divides((h, w), out):
        y = avg_pool2d(x4, (h // out[0], w // out[1]))
    else:
        dtype = compute_dtype(x4)
        rows = _averaging_matrix(h, out[0], dtype)
        cols = _averaging_matrix(w, out[1], dtype)
        y = np.matmul(np.matmul(rows, x4.astype(dtype, copy=False)), cols.T)
    return _in_layout(y if batched else y[0], layout)


@half_precision("grad_output")
def adaptive_avg_pool2d_grad_input(grad_output: np.ndarray, input_shape: tuple[int, ...],
                                   layout: str = "NCHW") -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` with respect to ``x`` (of
    ``input_shape``): each output's gradient spread evenly over its window.
    ``grad_output``, ``input_shape`` and the result are in ``layout``."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    if check_layout(layout) == "NHWC":
        if grad_output.ndim not in (3, 4):
            raise ValueError(f"grad_output: expected (N, OH, OW, C) or (OH, OW, C), got shape "
                             f"{grad_output.shape}")
        grad = adaptive_avg_pool2d_grad_input(_as_nchw(grad_output, layout),
                                              nchw_shape(input_shape, layout))
        return _in_layout(grad, layout)
    if grad_output.ndim != len(input_shape) or grad_output.shape[:-2] != input_shape[:-2]:
        raise ValueError(
            f"grad_output: expected shape {input_shape[:-2]} + (OH, OW) to match input_shape "
            f"{input_shape}, got {grad_output.shape}")
    h, w = input_shape[-2:]
    if h < 1 or w < 1:
        raise ValueError(f"input_shape: H and W must be >= 1, got {input_shape}")
    out = grad_output.shape[-2:]
    if min(out) < 1:
        raise ValueError(f"grad_output: OH and OW must be >= 1, got {grad_output.shape}")
    if _divides((h, w), out):
        return avg_pool2d_grad_input(grad_output, input_shape, (h // out[0], w // out[1]))
    dtype = compute_dtype(grad_output)
    rows = _averaging_matrix(h, out[0], dtype)
    cols = _averaging_matrix(w, out[1], dtype)
    return np.matmul(np.matmul(rows.T, grad_output.astype(dtype, copy=False)), cols)


def _max_along_last_axis(x: np.ndarray, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and argmax (an index into the last axis) over each adaptive window of the last
    axis. Windows are grouped by size, so each size is one vectorised reduction. The
    argmax is the first maximum, or the first NaN (NaN wins, as in every max here)."""
    starts, ends = adaptive_windows(x.shape[-1], out_size)
    lengths = ends - starts
    values = np.empty((*x.shape[:-1], out_size), dtype=x.dtype)
    where = np.empty((*x.shape[:-1], out_size), dtype=np.int64)
    for length in np.unique(lengths):
        chosen = np.flatnonzero(lengths == length)
        windows = np.lib.stride_tricks.sliding_window_view(x, int(length), axis=-1)
        windows = windows[..., starts[chosen], :]
        best = windows.argmax(axis=-1)
        values[..., chosen] = np.take_along_axis(windows, best[..., np.newaxis], -1)[..., 0]
        where[..., chosen] = starts[chosen] + best
    return values, where


@half_precision("x")
def adaptive_max_pool2d(x: np.ndarray, output_size: int | tuple, return_indices: bool = False,
                        layout: str = "NCHW") -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Maximum over each adaptive window, as ``torch.nn.functional.adaptive_max_pool2d``.

    With ``return_indices`` also the int64 flat index (into each ``H * W`` plane) of each
    maximum: the first in row-major order, or the first NaN (as :func:`max_pool2d`).
    ``layout="NHWC"``: ``x`` and the results are channels last (the same indices).
    """
    x4, out, batched = _setup(x, output_size, layout)
    if not isinstance(return_indices, (bool, np.bool_)):
        raise TypeError(f"return_indices: expected a bool, got {return_indices!r}")
    h, w = x4.shape[-2:]
    if _divides((h, w), out):
        result = max_pool2d(x4, (h // out[0], w // out[1]), return_indices=return_indices)
        y, indices = result if return_indices else (result, None)
    else:
        x4 = x4.astype(compute_dtype(x4), copy=False)
        row_max, column = _max_along_last_axis(x4, out[1])             # (N, C, H, OW)
        y_t, row = _max_along_last_axis(row_max.swapaxes(-1, -2), out[0])  # (N, C, OW, OH)
        y = np.ascontiguousarray(y_t.swapaxes(-1, -2))
        row = row.swapaxes(-1, -2)                                       # (N, C, OH, OW)
        indices = row * w + np.take_along_axis(column, row, axis=-2)
    if not batched:
        y = y[0]
        indices = None if indices is None else indices[0]
    y = _in_layout(y, layout)
    if not return_indices:
        return y
    return y, (_in_layout(indices, layout) if layout == "NHWC"
               else np.ascontiguousarray(indices))


@half_precision("grad_output")
def adaptive_max_pool2d_grad_input(grad_output: np.ndarray, indices: np.ndarray,
                                   input_shape: tuple[int, ...], layout: str = "NCHW"
                                   ) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool2d` with respect to ``x``: each output's
    gradient added at its index (``max_pool2d_grad_input``, in ``layout``)."""
    return max_pool2d_grad_input(grad_output, indices, input_shape, layout=layout)
