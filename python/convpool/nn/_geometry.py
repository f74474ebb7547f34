"""Window geometry shared by the convolution and pooling layers: argument checks at
construction, output shapes and padding for summaries."""

from __future__ import annotations

from .._args import positive_pair
from ..padding import Sides, resolve_padding
from ..pool import pooled_size

Pair = tuple[int, int]

_FAR = 1 << 30  # an input size large enough for any padding form to resolve


def check_padding_form(padding: object, kernel: Pair, stride: Pair, dilation: Pair) -> None:
    """Raise now (at construction) for a padding no input size could accept."""
    resolve_padding(padding, (_FAR, _FAR), kernel, stride, dilation)


def window_output_size(layer: str, in_size: Pair, kernel: Pair, stride: Pair, dilation: Pair,
                       sides: Sides, ceil_mode: bool = False) -> Pair:
    """Output ``(OH, OW)`` of a window operation; a ValueError names every factor if the
    window does not fit."""
    result = []
    for axis, name in ((0, "height"), (1, "width")):
        # The pooling kernels' own rule; without ceil_mode it is the convolution's too.
        size = pooled_size(in_size[axis], kernel[axis], stride[axis], dilation[axis],
                           *sides[axis], ceil_mode)
        if size < 1:
            raise ValueError(
                f"{layer}: output {name} would be {size}: input {in_size[axis]}, kernel "
                f"{kernel[axis]}, stride {stride[axis]}, dilation {dilation[axis]}, padding "
                f"{sides[axis]}"
            )
        result.append(size)
    return result[0], result[1]


def pairs(kernel_size: object, stride: object, dilation: object) -> tuple[Pair, Pair, Pair]:
    """kernel, stride (defaults to the kernel when None) and dilation as pairs."""
    kernel = positive_pair(kernel_size, "kernel_size")
    stride_pair = kernel if stride is None else positive_pair(stride, "stride")
    return kernel, stride_pair, positive_pair(dilation, "dilation")


def spatial(layer: str, input_shape: tuple[int, ...]) -> tuple[int, Pair]:
    """``(C, (H, W))`` of one sample's ``(C, H, W)`` shape."""
    if len(input_shape) != 3:
        raise ValueError(f"{layer}: expects (C, H, W) samples, got shape {tuple(input_shape)}")
    c, h, w = input_shape
    return c, (h, w)
