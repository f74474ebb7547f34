"""Geometry of the transposed convolution, shared by the framework bridges.

A transposed convolution is the input gradient of the convolution with the same weight
and geometry. ``output_padding`` adds rows (columns) at the bottom (right) of its output:
it takes them back from the bottom (right) padding, and the rows beyond that padding
receive nothing from the input (only the bias). So the output is the input gradient of a
convolution with ``bottom - output_padding`` padding (at least 0), followed by those zero
rows: a geometry the convolution maps back exactly, whatever the stride and dilation.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import geometry as _geometry
from ._args import positive_pair

Sides = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class TransposedGeometry:
    output_shape: tuple[int, ...]  # in the rank of the input
    conv_shape: tuple[int, ...]  # the convolution's input: the output without the zero rows
    conv_sides: Sides  # the convolution's padding
    zero_rows: tuple[int, int]  # rows at the bottom and columns at the right that stay zero


def transposed_geometry(input_shape: tuple[int, ...], weight_shape: tuple[int, ...],
                        stride: object, sides: Sides, output_padding: tuple[int, int],
                        dilation: object, groups: int) -> TransposedGeometry:
    """The geometry of a transposed convolution of ``input_shape`` (``(N, C_in, H, W)`` or
    ``(C_in, H, W)``) with a ``(C_in, C_out // groups, kh, kw)`` weight. Output size per axis
    ``(H - 1) * stride - before - after + dilation * (k - 1) + output_padding + 1``;
    ``output_padding`` must be below the stride or the dilation (PyTorch's rule).
    """
    if len(input_shape) not in (3, 4):
        raise ValueError(f"x: expected (N, C_in, H, W) or (C_in, H, W), got shape {input_shape}")
    if len(weight_shape) != 4:
        raise ValueError(
            f"weight: expected (C_in, C_out // groups, kh, kw), got shape {weight_shape}"
        )
    stride = positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    for axis in (0, 1):
        if not 0 <= output_padding[axis] < max(stride[axis], dilation[axis]):
            raise ValueError(
                f"output_padding: {tuple(output_padding)} must be >= 0 and smaller than the "
                f"stride {stride} or the dilation {dilation} on each axis"
            )
    if groups < 1 or weight_shape[0] % groups:
        raise ValueError(
            f"groups: {groups} must be >= 1 and divide the weight's first axis (C_in = "
            f"{weight_shape[0]})"
        )
    size = [
        (input_shape[-2 + axis] - 1) * stride[axis] - sum(sides[axis])
        + dilation[axis] * (weight_shape[2 + axis] - 1) + output_padding[axis] + 1
        for axis in (0, 1)
    ]
    if min(size) < 1:
        raise ValueError(
            f"output size would be {tuple(size)}: input {tuple(input_shape[-2:])}, kernel "
            f"{tuple(weight_shape[2:])}, stride {stride}, padding {sides}, dilation {dilation}"
        )
    after = [sides[axis][1] - output_padding[axis] for axis in (0, 1)]
    zero_rows = (max(-after[0], 0), max(-after[1], 0))
    conv_sides = ((sides[0][0], max(after[0], 0)), (sides[1][0], max(after[1], 0)))
    channels = weight_shape[1] * groups
    output_shape = tuple(input_shape[:-3]) + (channels, *size)
    conv_shape = tuple(input_shape[:-3]) + (channels, size[0] - zero_rows[0],
                                            size[1] - zero_rows[1])
    setup = _geometry.conv_geometry(conv_shape, tuple(weight_shape), stride, conv_sides,
                                    dilation, groups, "zeros")
    if setup.user_output_shape != tuple(input_shape):
        raise ValueError(
            f"x, weight: a transposed convolution of x {tuple(input_shape)} needs weight "
            f"(C_in = {input_shape[-3]}, C_out // groups, kh, kw), got {tuple(weight_shape)}"
        )
    return TransposedGeometry(output_shape, conv_shape, conv_sides, zero_rows)
