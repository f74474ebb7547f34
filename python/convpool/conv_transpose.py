"""Transposed convolution (``torch.nn.functional.conv_transpose2d``) and its gradients,
computed by the compiled convolution kernels.

A transposed convolution is the input gradient of a convolution: with the same weight,
stride, padding, dilation and groups, ``conv_transpose2d(x, w)`` is
``conv2d_grad_input(x, w, input_shape)`` for the input shape whose convolution has
``x``'s size. So its own gradients are the convolution's other passes:

- ``conv_transpose2d_grad_input(g, w, ...)`` is ``conv2d(g, w, ...)``;
- ``conv_transpose2d_grad_weight(x, g, ...)`` is ``conv2d_grad_weight(g, x, ...)`` (the
  roles of input and output gradient swapped);
- the bias gradient is ``conv2d_grad_bias(g)``.

The weight has PyTorch's layout ``(C_in, C_out // groups, kh, kw)``, which is exactly the
layout of the convolution being transposed (``C_in`` is that convolution's output).
Output size per axis: ``(H - 1) * stride - 2 * padding + dilation * (k - 1) +
output_padding + 1``; ``output_padding`` (each < max(stride, dilation)) adds rows and
columns at the bottom and right that only the padding can reach.
"""

from __future__ import annotations

import numpy as np

from ._args import as_array, check_shape_tuple
from .conv import conv2d, conv2d_grad_input, conv2d_grad_weight
from .dtypes import half_precision
from .geometry import (
    check_output_padding,
    non_negative_ints,
    positive_int,
    positive_pair,
    transposed_output_size,
)

__all__ = [
    "conv_transpose2d",
    "conv_transpose2d_grad_input",
    "conv_transpose2d_grad_weight",
    "conv_transpose2d_output_size",
]

Pair = tuple[int, int]


class _Transpose:
    """One call's resolved geometry.

    The convolution being transposed has padding ``before`` on top/left and ``after`` on
    bottom/right, chosen so that its output has exactly the transposed input's size;
    ``extra`` rows/columns of output padding that no input pixel can reach are appended
    as zeros.
    """

    def __init__(self, x_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride: object,
                 padding: object, output_padding: object, groups: object,
                 dilation: object) -> None:
        if len(x_shape) not in (3, 4):
            raise ValueError(f"x: expected (N, C_in, H, W) or (C_in, H, W), got shape {x_shape}")
        if len(weight_shape) != 4:
            raise ValueError(
                f"weight: expected (C_in, C_out // groups, kh, kw), got shape {weight_shape}")
        self.batched = len(x_shape) == 4
        self.x_shape: tuple[int, int, int, int] = (
            tuple(x_shape) if self.batched else (1, *x_shape))  # type: ignore[assignment]
        self.stride = positive_pair(stride, "stride")
        self.dilation = positive_pair(dilation, "dilation")
        self.padding = non_negative_ints(padding, 2, "padding")
        self.output_padding = non_negative_ints(output_padding, 2, "output_padding")
        check_output_padding(self.output_padding, self.stride, self.dilation)
        self.groups = positive_int(groups, "groups")
        n, c_in, h, w = self.x_shape
        w_in, c_out_g, kh, kw = weight_shape
        if w_in != c_in:
            raise ValueError(
                f"weight: has {w_in} input channels (shape {tuple(weight_shape)}) but x has "
                f"{c_in} (shape {tuple(x_shape)})")
        if c_in % self.groups:
            raise ValueError(f"groups: {self.groups} must divide the input channels {c_in}")
        if min(c_out_g, kh, kw) < 1 or h < 1 or w < 1:
            raise ValueError(
                f"x, weight: spatial and channel sizes must be >= 1, got x {tuple(x_shape)}, "
                f"weight {tuple(weight_shape)}")
        self.kernel = (kh, kw)
        self.out_channels = c_out_g * self.groups
        sizes, sides, extra, reach = [], [], [], []
        for axis, name in ((0, "height"), (1, "width")):
            s, d, p, op = (self.stride[axis], self.dilation[axis], self.padding[axis],
                           self.output_padding[axis])
            size = transposed_output_size(self.x_shape[2 + axis], self.kernel[axis], s, d, p, op)
            if size < 1:
                raise ValueError(
                    f"conv_transpose2d: output {name} would be {size}: input "
                    f"{self.x_shape[2 + axis]}, kernel {self.kernel[axis]}, stride {s}, "
                    f"dilation {d}, padding {p}, output_padding {op}")
            # Rows past p + s - 1 of output padding lie beyond every input pixel's reach.
            reachable = min(op, p + s - 1)
            sizes.append(size)
            reach.append(size - (op - reachable))
            sides.append((p, max(0, p - reachable)))
            extra.append(op - reachable)
        self.output_size: Pair = (sizes[0], sizes[1])
        self.reached: Pair = (reach[0], reach[1])
        self.sides = ((sides[0][0], sides[0][1]), (sides[1][0], sides[1][1]))
        self.extra: Pair = (extra[0], extra[1])

    @property
    def output_shape(self) -> tuple[int, ...]:
        shape = (self.x_shape[0], self.out_channels, *self.output_size)
        return shape if self.batched else shape[1:]

    def conv_arguments(self) -> dict:
        return dict(stride=self.stride, padding=self.sides, dilation=self.dilation,
                    groups=self.groups)

    def reached_part(self, grad_output: np.ndarray) -> np.ndarray:
        """The rows and columns of an output-shaped array that some input pixel reaches."""
        return grad_output[..., :self.reached[0], :self.reached[1]]


def conv_transpose2d_output_size(input_size: Pair, kernel_size: object, stride: object = 1,
                                 padding: object = 0, output_padding: object = 0,
                                 dilation: object = 1) -> Pair:
    """``(H_out, W_out)`` of :func:`conv_transpose2d` for an input of ``(H, W)``."""
    kh, kw = positive_pair(kernel_size, "kernel_size")
    geometry = _Transpose((1, 1, *input_size), (1, 1, kh, kw), stride, padding, output_padding,
                          1, dilation)
    return geometry.output_size


@half_precision("x", "weight", also=("bias",))
def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    ``x`` is ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``; ``weight`` is
    ``(C_in, C_out // groups, kh, kw)``; ``bias`` ``(C_out,)``. Each input pixel ``(i, j)``
    adds ``x[n, p, i, j] * weight[p, q]`` to the output window that starts at
    ``(i * stride - padding, j * stride - padding)`` with taps ``dilation`` apart.
    Padding is an int or a pair (it crops the output). The result's dtype is
    ``numpy.result_type(x, weight, float32)``. Gradients:
    :func:`conv_transpose2d_grad_input`, :func:`conv_transpose2d_grad_weight` and
    ``conv2d_grad_bias``.
    """
    x = as_array(x, "x")
    weight = as_array(weight, "weight")
    geometry = _Transpose(x.shape, weight.shape, stride, padding, output_padding, groups,
                          dilation)
    x4 = x if geometry.batched else x[np.newaxis]
    n = x4.shape[0]
    reached_shape = (n, geometry.out_channels, *geometry.reached)
    y = conv2d_grad_input(x4, weight, reached_shape, **geometry.conv_arguments())
    if geometry.extra != (0, 0):
        y = np.pad(y, ((0, 0), (0, 0), (0, geometry.extra[0]), (0, geometry.extra[1])))
    if bias is not None:
        bias = as_array(bias, "bias")
        if bias.shape != (geometry.out_channels,):
            raise ValueError(
                f"bias: expected shape ({geometry.out_channels},), got {bias.shape}")
        y += bias.astype(y.dtype, copy=False)[:, np.newaxis, np.newaxis]
    return y if geometry.batched else y[0]


@half_precision("grad_output", "weight")
def conv_transpose2d_grad_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: tuple[int, ...],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Gradient of :func:`conv_transpose2d` with respect to ``x`` (of ``input_shape``):
    the convolution ``conv2d(grad_output, weight)`` with the same geometry."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    weight = as_array(weight, "weight")
    geometry = _Transpose(input_shape, weight.shape, stride, padding, output_padding, groups,
                          dilation)
    _check_grad_output(grad_output, geometry)
    g4 = grad_output if geometry.batched else grad_output[np.newaxis]
    grad = conv2d(geometry.reached_part(g4), weight, **geometry.conv_arguments())
    return grad if geometry.batched else grad[0]


@half_precision("x", "grad_output")
def conv_transpose2d_grad_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: tuple[int, int, int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Gradient of :func:`conv_transpose2d` with respect to ``weight`` (of
    ``weight_shape``): ``conv2d_grad_weight(grad_output, x)``, the convolution's weight
    gradient with input and output gradient in swapped roles."""
    weight_shape = check_shape_tuple(weight_shape, "weight_shape", (4,))
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    geometry = _Transpose(x.shape, weight_shape, stride, padding, output_padding, groups,
                          dilation)
    _check_grad_output(grad_output, geometry)
    x4 = x if geometry.batched else x[np.newaxis]
    g4 = grad_output if geometry.batched else grad_output[np.newaxis]
    return conv2d_grad_weight(geometry.reached_part(g4), x4, weight_shape,
                              **geometry.conv_arguments())


def _check_grad_output(grad_output: np.ndarray, geometry: _Transpose) -> None:
    if grad_output.shape != geometry.output_shape:
        x_shape = geometry.x_shape if geometry.batched else geometry.x_shape[1:]
        raise ValueError(
            f"grad_output: expected shape {geometry.output_shape} (the output of "
            f"conv_transpose2d for x {x_shape}), got {grad_output.shape}")
