"""Per-side padding for convpool's transposed convolution, shared by the framework bridges.

:func:`convpool.conv_transpose2d` crops ``padding`` rows from the top and the bottom of the
full output alike. The bridges also take ``((top, bottom), (left, right))``: that is
convpool's transposed convolution with the smaller side's padding on each axis, whose
output is then cropped by the difference on the larger side (``output_padding`` still
adds its rows at the bottom and right, as convpool's does). The gradients are convpool's
gradient functions of the uncropped output, with zeros where the crop cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import convpool
from convpool.conv_transpose import _Transpose

Pair = tuple[int, int]
Sides = tuple[Pair, Pair]


@dataclass(frozen=True)
class PerSide:
    """One call's geometry: convpool's arguments and the crop of its output."""

    output_shape: tuple[int, ...]  # the bridge's output, in the rank of the input
    convpool_shape: tuple[int, ...]  # convpool.conv_transpose2d's output (uncropped)
    padding: Pair  # the symmetric padding convpool applies
    crop: Pair  # rows (columns) cut from the top (left) of convpool's output
    keywords: dict  # convpool's geometry keywords


def per_side(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride: object,
             sides: Sides, output_padding: object, groups: object,
             dilation: object) -> PerSide:
    """The geometry of a transposed convolution of ``input_shape`` (``(N, C_in, H, W)`` or
    ``(C_in, H, W)``) with per-side ``sides``, checked by convpool (same messages). Output
    size per axis ``(H - 1) * stride - top - bottom + dilation * (k - 1) + output_padding
    + 1``."""
    padding = (min(sides[0]), min(sides[1]))
    geometry = _Transpose(tuple(input_shape), tuple(weight_shape), stride, padding,
                          output_padding, groups, dilation)
    crop = (sides[0][0] - padding[0], sides[1][0] - padding[1])
    size = tuple(geometry.output_size[a] - (sides[a][0] - padding[a])
                 - (sides[a][1] - padding[a]) for a in (0, 1))
    if min(size) < 1:
        raise ValueError(
            f"conv_transpose2d: output size would be {size}: input {tuple(input_shape[-2:])}, "
            f"kernel {tuple(weight_shape[-2:])}, stride {geometry.stride}, padding {sides}, "
            f"output_padding {geometry.output_padding}, dilation {geometry.dilation}")
    keywords = dict(stride=geometry.stride, padding=padding,
                    output_padding=geometry.output_padding, groups=geometry.groups,
                    dilation=geometry.dilation)
    convpool_shape = geometry.output_shape
    return PerSide(tuple(convpool_shape[:-2]) + size, tuple(convpool_shape), padding, crop,
                   keywords)


def _cropped(geometry: PerSide, y: np.ndarray) -> np.ndarray:
    if tuple(y.shape) == geometry.output_shape:
        return y
    (top, left), (height, width) = geometry.crop, geometry.output_shape[-2:]
    return np.ascontiguousarray(y[..., top:top + height, left:left + width])


def _uncropped(geometry: PerSide, grad_output: np.ndarray) -> np.ndarray:
    """``grad_output`` back in convpool's output shape: zeros where the crop cut."""
    if tuple(grad_output.shape) != geometry.output_shape:
        raise ValueError(f"grad_output: expected shape {geometry.output_shape}, got "
                         f"{tuple(grad_output.shape)}")
    if geometry.output_shape == geometry.convpool_shape:
        return grad_output
    (top, left), (height, width) = geometry.crop, geometry.output_shape[-2:]
    full = np.zeros(geometry.convpool_shape, dtype=grad_output.dtype)
    full[..., top:top + height, left:left + width] = grad_output
    return full


def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: object,
                     sides: Sides, output_padding: object, groups: object,
                     dilation: object) -> np.ndarray:
    """:func:`convpool.conv_transpose2d` with per-side padding."""
    geometry = per_side(x.shape, weight.shape, stride, sides, output_padding, groups, dilation)
    return _cropped(geometry, convpool.conv_transpose2d(x, weight, bias, **geometry.keywords))


def conv_transpose2d_grad_input(grad_output: np.ndarray, weight: np.ndarray,
                                input_shape: tuple[int, ...], stride: object, sides: Sides,
                                output_padding: object, groups: object,
                                dilation: object) -> np.ndarray:
    """:func:`convpool.conv_transpose2d_grad_input` with per-side padding."""
    geometry = per_side(tuple(input_shape), weight.shape, stride, sides, output_padding, groups,
                        dilation)
    return convpool.conv_transpose2d_grad_input(_uncropped(geometry, grad_output), weight,
                                                tuple(input_shape), **geometry.keywords)


def conv_transpose2d_grad_weight(x: np.ndarray, grad_output: np.ndarray,
                                 weight_shape: tuple[int, ...], stride: object, sides: Sides,
                                 output_padding: object, groups: object,
                                 dilation: object) -> np.ndarray:
    """:func:`convpool.conv_transpose2d_grad_weight` with per-side padding."""
    geometry = per_side(x.shape, tuple(weight_shape), stride, sides, output_padding, groups,
                        dilation)
    return convpool.conv_transpose2d_grad_weight(x, _uncropped(geometry, grad_output),
                                                 tuple(weight_shape), **geometry.keywords)
