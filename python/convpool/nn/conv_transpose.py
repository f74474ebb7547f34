"""The transposed convolution layer (up-sampling by a learned kernel)."""

from __future__ import annotations

import numpy as np

from ..conv_transpose import conv_transpose2d_output_size
from ..geometry import (
    check_groups,
    check_output_padding,
    non_negative_ints,
    positive_int,
    positive_pair,
)
from ._geometry import spatial
from .init import Seed, as_generator, draw_seed, float_dtype, uniform_initializer
from .layer import Layer, check_input, forward_not_called
from .parameter import Parameter
from .receptive_field import ReceptiveField


class ConvTranspose2d(Layer):
    """Transposed convolution over ``(N, C_in, H, W)`` (or ``(C_in, H, W)``) inputs, as
    ``torch.nn.ConvTranspose2d`` (see :func:`convpool.conv_transpose2d`).

    ``weight`` is ``(in_channels, out_channels // groups, kh, kw)`` and ``bias``
    ``(out_channels,)``, initialised as PyTorch does: ``U(-1/sqrt(fan_in),
    1/sqrt(fan_in))`` with ``fan_in = out_channels // groups * kh * kw`` (PyTorch reads it
    from the weight's second axis). Output size per axis: ``(H - 1) * stride - 2 *
    padding + dilation * (k - 1) + output_padding + 1``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0,
                 output_padding: int | tuple[int, int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | tuple[int, int] = 1, *, dtype: object = np.float32,
                 seed: Seed = None) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.groups = check_groups(self.in_channels, self.out_channels, groups)
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = positive_pair(stride, "stride")
        self.dilation = positive_pair(dilation, "dilation")
        self.padding = non_negative_ints(padding, 2, "padding")
        self.output_padding = non_negative_ints(output_padding, 2, "output_padding")
        check_output_padding(self.output_padding, self.stride, self.dilation)
        dtype = float_dtype(dtype)
        generator = as_generator(seed)
        fan_in = self.out_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        initializer = uniform_initializer(fan_in)
        shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        self.weight = self._add_parameter(
            Parameter(shape, dtype, initializer, draw_seed(generator), "weight"))
        self.bias = (self._add_parameter(Parameter((self.out_channels,), dtype, initializer,
                                                   draw_seed(generator), "bias"))
                     if bias else None)
        self._input: np.ndarray | None = None

    def _geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, groups=self.groups,
                    dilation=self.dilation)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "ConvTranspose2d")
        if x.shape[-3] != self.in_channels:
            raise ValueError(
                f"ConvTranspose2d: x has {x.shape[-3]} channels (shape {x.shape}), the layer "
                f"expects in_channels={self.in_channels}")
        self._input = self._keep(x)
        bias = None if self.bias is None else self.bias.data
        return self._ops.conv_transpose2d(x, self.weight.data, bias, **self._geometry())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._input
        if x is None:
            raise forward_not_called(self)
        geometry = self._geometry()
        self.weight.accumulate_grad(self._ops.conv_transpose2d_grad_weight(
            x, grad_output, self.weight.shape, **geometry))
        if self.bias is not None:
            self.bias.accumulate_grad(self._ops.conv2d_grad_bias(grad_output))
        if not needs_input_grad:
            return None
        return self._ops.conv_transpose2d_grad_input(grad_output, self.weight.data, x.shape,
                                                     **geometry)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial("ConvTranspose2d", input_shape)
        if channels != self.in_channels:
            raise ValueError(f"ConvTranspose2d: input has {channels} channels, the layer "
                             f"expects {self.in_channels}")
        return (self.out_channels, *conv_transpose2d_output_size(
            in_size, self.kernel_size, self.stride, self.padding, self.output_padding,
            self.dilation))

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return field.through_transpose(self.kernel_size, self.stride, self.dilation,
                                       self.padding)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        for name, default in (("stride", (1, 1)), ("padding", (0, 0)),
                              ("output_padding", (0, 0)), ("dilation", (1, 1))):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text if self.bias is not None else text + ", bias=False"

