"""The channels-last (NHWC) side of :mod:`convpool.conv`: the same geometry, resolved on the
NCHW shape, handed to the registry's channels-last kernels with ``channels_last`` set.

Arrays reach the kernels as C-contiguous ``(N, H, W, C)``: an NHWC call's arrays as they
are (an unbatched picture gains a leading axis of one, a view), and an NCHW-shaped array
stored channels-last (:func:`convpool.layout.stored_channels_last`) through its NHWC view
``x.transpose(0, 2, 3, 1)``, also without a copy; its result is returned in the same memory
format. The channels-last kernels read every padding mode themselves, as the NCHW ones do
(``common/padding.h``): no padded copy of the input is made.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import _core
from ._args import contiguous, output_array
from .geometry import ConvGeometry


def explicit_padding(setup: ConvGeometry) -> bool:
    """Whether the padding holds data: a non-zero padding mode with some padding (the
    channels-last kernels read it; callers that treat padding as zeros must not)."""
    return setup.padding_mode != "zeros" and any(p for side in setup.sides for p in side)


@lru_cache(maxsize=256)
def kernel_geometry(setup: ConvGeometry) -> _core.Conv2dGeometry:
    """``setup.kernel_geometry`` with the channels-last flag set."""
    g = setup.kernel_geometry
    return _core.Conv2dGeometry(g.batch, g.in_channels, g.out_channels, g.groups, g.rows, g.cols,
                                g.padding_mode, channels_last=True)


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
    x4 = as_nhwc(x, layout, dtype, nhwc4(setup.input_shape))
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
    grad = np.empty(nhwc4(setup.input_shape), dtype)
    _core.conv2d_grad_input(gy4, w4, grad, kernel_geometry(setup))
    return from_nhwc(grad, layout, user_shape)


def grad_weight(x: np.ndarray, grad_output: np.ndarray, setup: ConvGeometry, dtype: np.dtype,
                layout: str) -> np.ndarray:
    """conv2d_grad_weight's channels-last path: ``(C_out, C_in // groups, kh, kw)``."""
    x4 = as_nhwc(x, layout, dtype, nhwc4(setup.input_shape))
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
