"""The convolution layer (correlation, as in CNNs), calling the compiled kernels."""

from __future__ import annotations

import numpy as np

from .._args import positive_int
from ..padding import check_padding_mode, resolve_padding
from ._geometry import check_padding_form, pairs, spatial, window_output_size
from .init import Seed, as_generator, draw_seed, float_dtype, uniform_initializer
from .layer import Layer, check_input, forward_not_called
from .parameter import Parameter
from .receptive_field import ReceptiveField


class Conv2d(Layer):
    """``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]`` over ``(N, C_in, H, W)`` (or
    unbatched ``(C_in, H, W)``) inputs; arguments as :func:`convpool.conv2d` and
    ``torch.nn.Conv2d``.

    ``weight`` is ``(out_channels, in_channels // groups, kh, kw)`` and ``bias``
    ``(out_channels,)``, both initialised as PyTorch does:
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = in_channels // groups * kh * kw``.
    ``seed`` (int or ``numpy.random.Generator``) makes the initialisation reproducible.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        dtype: object = np.float32,
        seed: Seed = None,
    ) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.groups = positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups: {groups} must divide in_channels ({in_channels}) and out_channels "
                f"({out_channels})"
            )
        self.kernel_size, self.stride, self.dilation = pairs(kernel_size, stride, dilation)
        check_padding_form(padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding
        self.padding_mode = check_padding_mode(padding_mode, ((0, 0), (0, 0)), (1, 1))
        dtype = float_dtype(dtype)
        generator = as_generator(seed)
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        initializer = uniform_initializer(fan_in)
        weight_shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = self._add_parameter(
            Parameter(weight_shape, dtype, initializer, draw_seed(generator), "weight"))
        self.bias = (
            self._add_parameter(
                Parameter((self.out_channels,), dtype, initializer, draw_seed(generator), "bias"))
            if bias else None
        )
        self._input: np.ndarray | None = None

    def _geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "Conv2d")
        if x.shape[-3] != self.in_channels:
            raise ValueError(
                f"Conv2d: x has {x.shape[-3]} channels (shape {x.shape}), the layer expects "
                f"in_channels={self.in_channels}"
            )
        self._input = self._keep(x)
        bias = None if self.bias is None else self.bias.data
        return self._ops.conv2d(x, self.weight.data, bias, **self._geometry())

    def folds_into(self, following: Layer) -> bool:
        """Whether ``following`` is a batch norm that this convolution can absorb: one in
        evaluation mode with running statistics over this layer's output channels."""
        return (getattr(following, "foldable", None) is not None
                and following.foldable(self.out_channels))

    def forward_folded(self, x: np.ndarray, batch_norm: Layer) -> np.ndarray:
        """``batch_norm(self(x))`` as one convolution: the batch norm's per-channel scale
        multiplies the weights and its shift joins the bias (inference only)."""
        x = check_input(x, "x", (3, 4), "Conv2d")
        scale, shift = batch_norm.scale_and_shift()
        weight = self.weight.data * scale.astype(self.weight.dtype)[:, None, None, None]
        bias = shift if self.bias is None else shift + scale * self.bias.data
        return self._ops.conv2d(x, weight, bias.astype(self.weight.dtype), **self._geometry())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._input
        if x is None:
            raise forward_not_called(self)
        weight = self.weight.data
        geometry = self._geometry()
        self.weight.accumulate_grad(
            self._ops.conv2d_grad_weight(x, grad_output, weight.shape, **geometry))
        if self.bias is not None:
            self.bias.accumulate_grad(self._ops.conv2d_grad_bias(grad_output))
        if not needs_input_grad:
            return None
        return self._ops.conv2d_grad_input(grad_output, weight, x.shape, **geometry)

    def _sides(self, in_size: tuple[int, int]):
        return resolve_padding(self.padding, in_size, self.kernel_size, self.stride, self.dilation)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial("Conv2d", input_shape)
        if channels != self.in_channels:
            raise ValueError(
                f"Conv2d: input has {channels} channels, the layer expects {self.in_channels}")
        sides = self._sides(in_size)
        check_padding_mode(self.padding_mode, sides, in_size)
        oh, ow = window_output_size("Conv2d", in_size, self.kernel_size, self.stride,
                                    self.dilation, sides)
        return self.out_channels, oh, ow

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        (top, _), (left, _) = self._sides(spatial("Conv2d", input_shape)[1])
        return field.through_window(self.kernel_size, self.stride, self.dilation, (top, left))

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            text += f", stride={self.stride}"
        if self.padding not in (0, "valid"):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text
