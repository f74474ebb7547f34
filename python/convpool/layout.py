"""Where the channels are: the ``layout`` argument of the 2-D functions.

``"NCHW"`` (the default) holds a batch as ``(N, C, H, W)`` and a picture as ``(C, H, W)``;
``"NHWC"`` (channels-last, as Pillow, OpenCV, imageio and scikit-image hold pictures) holds
them as ``(N, H, W, C)`` and ``(H, W, C)``. The geometry is always resolved on the NCHW
shape (:func:`nchw_shape`), so every size rule stays written once; the kernels for either
layout receive the same geometry.

An NCHW-shaped array stored channels-last (``x.transpose(0, 3, 1, 2)`` of an NHWC array,
PyTorch's ``channels_last`` memory format) is recognised by :func:`stored_channels_last`, so
that a function can run its NHWC kernel on it without a copy and return its result in the
same memory format.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LAYOUTS",
    "check_layout",
    "from_nchw_shape",
    "nchw_shape",
    "stored_channels_last",
]

LAYOUTS = ("NCHW", "NHWC")


def check_layout(layout: object) -> str:
    """``layout`` checked: ``"NCHW"`` or ``"NHWC"`` (exactly these spellings)."""
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout: expected 'NCHW' or 'NHWC', got {layout!r}")
    return layout


def nchw_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """``shape`` (3-D or 4-D, in ``layout``) reordered to NCHW; other ranks are returned as
    they are, for the geometry's own rank check to report."""
    if layout == "NHWC" and len(shape) in (3, 4):
        return (*shape[:-3], shape[-1], shape[-3], shape[-2])
    return tuple(shape)


def from_nchw_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The inverse of :func:`nchw_shape`: an NCHW shape (3-D or 4-D) in ``layout``."""
    if layout == "NHWC" and len(shape) in (3, 4):
        return (*shape[:-3], shape[-2], shape[-1], shape[-3])
    return tuple(shape)


def stored_channels_last(x: np.ndarray) -> bool:
    """Whether the 4-D NCHW-shaped ``x`` is stored channels-last: its NHWC view
    ``x.transpose(0, 2, 3, 1)`` is C-contiguous while ``x`` itself is not."""
    return (x.ndim == 4 and not x.flags.c_contiguous
            and x.transpose(0, 2, 3, 1).flags.c_contiguous)
