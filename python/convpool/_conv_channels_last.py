"""The channels-last (NHWC) side of :mod:`convpool.conv`: the same geometry, resolved on the
NCHW shape, handed to the registry's channels-last kernels with ``channels_last`` set.

Arrays reach the kernels as C-contiguous ``(N, H, W, C)``: an NHWC call's arrays as they
are (an unbatched picture gains a leading axis of one, a view), and an NCHW-shaped array
stored channels-last (:func:`convpool.layout.stored_channels_last`) through its NHWC view
``x.transpose(0, 2, 3, 1)``, also without a copy; its result is returned in the same memory
format. Non-zero padding modes pad a channels-last copy of the input (and fold the input
gradient back) with NumPy, by the same index rule the NCHW kernels read the modes with
(``common/padding.h``); the channels-last kernels do not read the modes themselves yet.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import _core
from ._args import contiguous, output_array
from .geometry import ConvGeometry

# convpool's padding modes as numpy.pad names them: the same index rules.
_NUMPY_PAD_MODE = {"replicate": "edge", "reflect": "reflect", "symmetric": "symmetric",
                   "circular": "wrap"}


def explicit_padding(setup: ConvGeometry) -> bool:
    """Whether the channels-last kernels need a padded copy: a non-zero padding mode with
    some padding (they read zero padding only)."""
    return setup.padding_mode != "zeros" and any(p for side in setup.sides for p in side)


def kernel_input_shape(setup: ConvGeometry) -> tuple[int, int, int, int]:
    """The NCHW shape of the input the kernels read: padded for :func:`explicit_padding`."""
    n, c, h, w = setup.input_shape
    if not explicit_padding(setup):
        return n, c, h, w
    (top, bottom), (left, right) = setup.sides
    return n, c, h + top + bottom, w + left + right


@lru_cache(maxsize=256)
def kernel_geometry(setup: ConvGeometry) -> _core.Conv2dGeometry:
    """``setup.kernel_geometry`` with the channels-last flag set; with a padded copy of the
    input (:func:`explicit_padding`), the geometry of that copy: zero padding, none left."""
    g = setup.kernel_geometry
    rows, cols = g.rows, g.cols
    if explicit_padding(setup):
        _, _, h, w = kernel_input_shape(setup)
        rows = _core.WindowAxis(h, rows.out_size, rows.kernel, rows.stride, rows.dilation, 0, 0)
        cols = _core.WindowAxis(w, cols.out_size, cols.kernel, cols.stride, cols.dilation, 0, 0)
    return _core.Conv2dGeometry(g.batch, g.in_channels, g.out_channels, g.groups, rows, cols,
                                _core.PaddingMode.zeros, channels_last=True)


def delivered(result: np.ndarray, out: np.ndarray | None, inputs: tuple) -> np.ndarray:
    """``result``, or ``out`` (checked as every ``out=``) holding it."""
    if out is None:
        return result
    out = output_array(out, result.shape, result.dtype, inputs)
    out.view(np.ndarray)[...] = result
    return out


def nhwc4(shape4: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """An NCHW 4-D shape as the channels-last kernels hold it."""
    n, c, h, w = shape4
    return n, h, w, c


@lru_cache(maxsize=64)
def _source_indices(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each padded position on one axis, the input position it copies."""
    return np.pad(np.arange(size), (before, after), mode=_NUMPY_PAD_MODE[mode])


def _padded_axes(setup: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    _, _, h, w = setup.input_shape
    (top, bottom), (left, right) = setup.sides
    return (_source_indices(h, top, bottom, setup.padding_mode),
            _source_indices(w, left, right, setup.padding_mode))


def pad(setup: ConvGeometry, x4: np.ndarray) -> np.ndarray:
    """The NHWC input as the kernel reads it: padded beforehand for non-zero padding modes."""
    if not explicit_padding(setup):
        return x4
    rows, cols = _padded_axes(setup)
    return np.ascontiguousarray(x4[:, rows][:, :, cols])


def pad_backward(setup: ConvGeometry, grad_padded: np.ndarray) -> np.ndarray:
    """The gradient of :func:`pad`: each padded pixel's gradient added to its source pixel."""
    rows, cols = _padded_axes(setup)
    n, _, h, w = setup.input_shape
    by_rows = np.zeros((n, h, grad_padded.shape[2], grad_padded.shape[3]), grad_padded.dtype)
    np.add.at(by_rows, (slice(None), rows), grad_padded)
    folded = np.zeros((n, h, w, grad_padded.shape[3]), grad_padded.dtype)
    np.add.at(folded, (slice(None), slice(None), cols), by_rows)
    return folded


def as_nhwc(array: np.ndarray, layout: str, dtype: np.dtype, shape4: tuple[int, ...]) -> np.ndarray:
    """``array`` (an NHWC call's array, or an NCHW-shaped one stored channels-last) as a
    C-contiguous ``(N, H, W, C)`` array of ``dtype``: a view when it already is one."""
    if layout == "NCHW":
        array = array.transpose(0, 2, 3, 1)
    array = contiguous(array, dtype)
    return array if array.shape == shape4 else array.reshape(shape4)


def from_nhwc(y4: np.ndarray, layout: str, user_shape: tuple[int, ...]) -> np.ndarray:
    """A kernel's ``(N, H, W, C)`` result in the caller's terms: reshaped to the NHWC call's
    rank, or, for an NCHW call on channels-last storage, its NCHW-shaped view."""
    if layout == "NCHW":
        return y4.transpose(0, 3, 1, 2)
    return y4 if y4.shape == user_shape else y4.reshape(user_shape)


def forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, out: np.ndarray | None,
            setup: ConvGeometry, dtype: np.dtype, layout: str,
            user_shape: tuple[int, ...]) -> np.ndarray:
    """conv2d's channels-last path (``user_shape``: the result's shape in ``layout``)."""
    x4 = pad(setup, as_nhwc(x, layout, dtype, nhwc4(setup.input_shape)))
    w4 = contiguous(weight, dtype).reshape(setup.weight_shape)
    shape4 = nhwc4(setup.output_shape)
    if out is None:
        y4 = np.empty(shape4, dtype)
        _core.conv2d_forward(x4, w4, bias, y4, kernel_geometry(setup))
        return from_nhwc(y4, layout, user_shape)
    plain = out.view(np.ndarray)
    view = plain.transpose(0, 2, 3, 1) if layout == "NCHW" else plain
    if view.flags.c_contiguous:
        _core.conv2d_forward(x4, w4, bias, view.reshape(shape4), kernel_geometry(setup))
    else:
        y4 = np.empty(shape4, dtype)
        _core.conv2d_forward(x4, w4, bias, y4, kernel_geometry(setup))
        plain[...] = from_nhwc(y4, layout, user_shape)
    return out


def grad_input(grad_output: np.ndarray, weight: np.ndarray, setup: ConvGeometry,
               dtype: np.dtype, layout: str, user_shape: tuple[int, ...]) -> np.ndarray:
    """conv2d_grad_input's channels-last path."""
    gy4 = as_nhwc(grad_output, layout, dtype, nhwc4(setup.output_shape))
    w4 = contiguous(weight, dtype).reshape(setup.weight_shape)
    grad = np.empty(nhwc4(kernel_input_shape(setup)), dtype)
    _core.conv2d_grad_input(gy4, w4, grad, kernel_geometry(setup))
    if explicit_padding(setup):
        grad = pad_backward(setup, grad)
    return from_nhwc(grad, layout, user_shape)


def grad_weight(x: np.ndarray, grad_output: np.ndarray, setup: ConvGeometry, dtype: np.dtype,
                layout: str) -> np.ndarray:
    """conv2d_grad_weight's channels-last path: ``(C_out, C_in // groups, kh, kw)``."""
    x4 = pad(setup, as_nhwc(x, layout, dtype, nhwc4(setup.input_shape)))
    gy4 = as_nhwc(grad_output, layout, dtype, nhwc4(setup.output_shape))
    grad = np.empty(setup.weight_shape, dtype)
    _core.conv2d_grad_weight(x4, gy4, grad, kernel_geometry(setup))
    return grad


def grad_bias(grad_output: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """conv2d_grad_bias of an NHWC ``grad_output``: summed over every axis but the last."""
    channels = grad_output.shape[-1]
    rows = contiguous(grad_output, dtype).reshape(-1, channels) if channels else \
        np.empty((0, 0), dtype)
    grad = np.empty(channels, dtype)
    _core.conv2d_grad_bias_nhwc(rows, grad)
    return grad
