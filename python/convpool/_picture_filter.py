"""A 2-D kernel on a picture with channels: the same kernel filters every channel (what
OpenCV's ``filter2D`` and SciPy's filters do), for :func:`convpool.conv2d`.

The call is a depthwise convolution (``groups = C``, the kernel repeated per channel), and
its geometry is resolved as one. It runs as a single-channel convolution, without copying
the picture:

- ``(N, C, H, W)`` / ``(C, H, W)``: the ``N * C`` planes are ``N * C`` one-channel pictures.
- ``(N, H, W, C)`` / ``(H, W, C)`` at stride 1: an interleaved row of ``W`` pixels of ``C``
  channels is one row of ``W * C`` values, and channel ``c`` of output pixel ``j`` reads
  values ``(j - left + t * dx) * C + c``: the ``(H, W * C)`` plane convolved with the kernel
  dilated by ``C`` along the columns, column padding multiplied by ``C``. The plane kernels
  then run along whole interleaved rows.
- ``(N, H, W, C)`` at other strides: the channels-last depthwise kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._conv_channels_last import explicit_padding
from .geometry import ConvGeometry, conv_geometry
from .layout import from_nchw_shape, nchw_shape, stored_channels_last


@dataclass(frozen=True)
class PictureFilter:
    """How one call runs: ``plane_call`` holds the one-channel convolution's ``(x, weight,
    keyword arguments)``; None means the channels-last depthwise kernels with ``setup``."""

    setup: ConvGeometry  # the depthwise convolution the call means, on NCHW shapes
    layout: str  # the layout the picture is read in
    transposed: bool  # an NCHW-shaped picture stored channels-last, read as its NHWC view
    user_shape: tuple[int, ...]  # the result's shape, as the caller holds it
    plane_call: tuple | None
    plane_output_shape: tuple[int, ...]


def is_picture_filter(x: np.ndarray, weight: np.ndarray) -> bool:
    """Whether conv2d was given a 2-D kernel for a picture with a channel axis."""
    return weight.ndim == 2 and x.ndim in (3, 4)


def plan(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups, padding_mode,
         layout: str) -> PictureFilter:
    """Resolve the call (the same errors as any convolution of these shapes)."""
    transposed = layout == "NCHW" and stored_channels_last(x)
    if transposed:  # read the channels-last storage as the NHWC picture it is
        x = x.transpose(0, 2, 3, 1)
        layout = "NHWC"
    shape = nchw_shape(x.shape, layout)
    channels = shape[-3]
    if not (isinstance(groups, (int, np.integer)) and not isinstance(groups, bool)
            and groups in (1, channels)):
        raise ValueError(
            f"groups: a 2-D kernel filters each of the {channels} channels on its own; groups "
            f"must be 1 or {channels}, got {groups!r}"
        )
    kh, kw = weight.shape
    setup = conv_geometry(shape, (channels, 1, kh, kw), stride, padding, dilation, channels,
                          padding_mode)
    user_shape = from_nchw_shape(setup.user_output_shape, layout)
    if transposed:
        user_shape = setup.output_shape
    x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)
    kernel4 = weight.reshape(1, 1, kh, kw)
    if layout == "NCHW":
        n, c, h, w = setup.input_shape
        planes = x4.reshape(n * c, 1, h, w)
        call = (planes, kernel4, dict(stride=setup.stride, padding=setup.sides,
                                      dilation=setup.dilation, padding_mode=padding_mode))
        return PictureFilter(setup, layout, False, user_shape, call,
                             (n, c) + setup.output_shape[2:])
    if setup.stride != (1, 1) or explicit_padding(setup):
        return PictureFilter(setup, layout, transposed, user_shape, None, ())
    n, h, w, c = x4.shape
    (top, bottom), (left, right) = setup.sides
    plane = x4.reshape(n, 1, h, w * c)
    call = (plane, kernel4, dict(padding=((top, bottom), (left * c, right * c)),
                                 dilation=(setup.dilation[0], setup.dilation[1] * c)))
    _, _, oh, ow = setup.output_shape
    return PictureFilter(setup, layout, transposed, user_shape, call, (n, oh, ow, c))


def bias_per_channel(bias: object, channels: int, dtype: np.dtype) -> np.ndarray | None:
    """A picture filter's bias: one value for every channel, or one per channel."""
    if bias is None:
        return None
    b = np.asarray(bias)
    if b.dtype.kind not in "uif" or b.shape not in ((), (1,), (channels,)):
        raise ValueError(
            f"bias: a 2-D kernel on {channels} channels takes a scalar, (1,) or ({channels},) "
            f"bias, got shape {b.shape} dtype {b.dtype}"
        )
    return np.broadcast_to(b.astype(dtype, copy=False).reshape(-1), (channels,))
