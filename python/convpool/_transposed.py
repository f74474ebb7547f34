"""Geometry of the transposed convolution, shared by the framework bridges.

A transposed convolution is the input gradient of the convolution with the same weight
and geometry; its output is that convolution's input.
"""

from __future__ import annotations

from . import conv as _conv
from ._args import positive_pair

Sides = tuple[tuple[int, int], tuple[int, int]]


def transposed_output_shape(input_shape: tuple[int, ...], weight_shape: tuple[int, ...],
                            stride: object, sides: Sides, output_padding: tuple[int, int],
                            dilation: object, groups: int) -> tuple[int, ...]:
    """The output shape of a transposed convolution of ``input_shape`` (``(N, C_in, H, W)``
    or ``(C_in, H, W)``) with a ``(C_in, C_out // groups, kh, kw)`` weight: per axis
    ``(H - 1) * stride - before - after + dilation * (k - 1) + output_padding + 1``.

    ValueError unless ``output_padding`` is below the stride or the dilation (PyTorch's rule)
    and the convolution maps that output back to ``input_shape``.
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
    output_shape = tuple(input_shape[:-3]) + (weight_shape[1] * groups, *size)
    setup = _conv._setup(output_shape, tuple(weight_shape), stride, sides, dilation, groups,
                         "zeros")
    if setup.user_output_shape != tuple(input_shape):
        raise ValueError(
            f"x, weight: a transposed convolution of x {tuple(input_shape)} needs weight "
            f"(C_in = {input_shape[-3]}, C_out // groups, kh, kw), got {tuple(weight_shape)}"
        )
    return output_shape
