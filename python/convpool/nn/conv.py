"""The convolution layers (correlation, as in CNNs) for 1-D signals, 2-D pictures and 3-D
volumes, calling :func:`convpool.conv1d`, :func:`convpool.conv2d` and
:func:`convpool.conv3d`. One rank-generic base holds the code; the classes name the rank."""

from __future__ import annotations

import math

import numpy as np

from ..geometry import check_conv_arguments, check_padding_mode_limits, resolve_padding
from ._geometry import spatial, window_output_size
from .init import Seed, as_generator, draw_seed, float_dtype, uniform_initializer
from .layer import Layer, check_input, forward_not_called
from .parameter import Parameter
from .receptive_field import ReceptiveField

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


class _ConvNd(Layer):
    """A convolution over ``rank`` spatial axes: ``(N, C_in, *spatial)`` or unbatched
    ``(C_in, *spatial)`` inputs. Its arguments are checked once, here, by form; the limits
    that need an input size (padding modes, the kernel fitting) when an input arrives."""

    rank = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, dtype, seed) -> None:
        super().__init__()
        arguments = check_conv_arguments(self.rank, in_channels, out_channels, kernel_size,
                                         stride, padding, dilation, groups, padding_mode)
        self.in_channels = arguments["in_channels"]
        self.out_channels = arguments["out_channels"]
        self.groups = arguments["groups"]
        self.kernel_size = arguments["kernel_size"]
        self.stride = arguments["stride"]
        self.padding = arguments["padding"]
        self.dilation = arguments["dilation"]
        self.padding_mode = arguments["padding_mode"]
        dtype = float_dtype(dtype)
        generator = as_generator(seed)
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
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

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def _op(self, suffix: str = ""):
        return getattr(self._ops, f"conv{self.rank}d{suffix}")

    def _check(self, x: object) -> np.ndarray:
        x = check_input(x, "x", (self.rank + 1, self.rank + 2), self._name)
        channels = x.shape[-self.rank - 1]
        if channels != self.in_channels:
            raise ValueError(f"{self._name}: x has {channels} channels (shape {x.shape}), the "
                             f"layer expects in_channels={self.in_channels}")
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        bias = None if self.bias is None else self.bias.data
        return self._op()(x, self.weight.data, bias, **self._geometry())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._input
        if x is None:
            raise forward_not_called(self)
        weight = self.weight.data
        geometry = self._geometry()
        self.weight.accumulate_grad(
            self._op("_grad_weight")(x, grad_output, weight.shape, **geometry))
        if self.bias is not None:
            self.bias.accumulate_grad(self._op("_grad_bias")(grad_output))
        if not needs_input_grad:
            return None
        return self._op("_grad_input")(grad_output, weight, x.shape, **geometry)

    def _sides(self, in_size: tuple[int, ...]):
        return resolve_padding(self.padding, in_size, self.kernel_size, self.stride, self.dilation)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial(self._name, input_shape, self.rank)
        if channels != self.in_channels:
            raise ValueError(f"{self._name}: input has {channels} channels, the layer expects "
                             f"{self.in_channels}")
        sides = self._sides(in_size)
        check_padding_mode_limits(self.padding_mode, sides, in_size)
        out = window_output_size(self._name, in_size, self.kernel_size, self.stride,
                                 self.dilation, sides)
        return (self.out_channels, *out)

    def extra_repr(self) -> str:
        ones = (1,) * self.rank
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != ones:
            text += f", stride={self.stride}"
        if self.padding not in (0, "valid"):
            text += f", padding={self.padding!r}"
        if self.dilation != ones:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text


class Conv1d(_ConvNd):
    """``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]`` over ``(N, C_in, L)`` (or ``(C_in, L)``)
    signals; arguments as :func:`convpool.conv1d` and ``torch.nn.Conv1d``. ``weight`` is
    ``(out_channels, in_channels // groups, k)``, initialised as PyTorch does."""

    rank = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int],
                 stride: int | tuple[int] = 1, padding: int | tuple | str = 0,
                 dilation: int | tuple[int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, dtype: object = np.float32,
                 seed: Seed = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, seed)


class Conv2d(_ConvNd):
    """``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]`` over ``(N, C_in, H, W)`` (or
    unbatched ``(C_in, H, W)``) inputs; arguments as :func:`convpool.conv2d` and
    ``torch.nn.Conv2d``.

    ``weight`` is ``(out_channels, in_channels // groups, kh, kw)`` and ``bias``
    ``(out_channels,)``, both initialised as PyTorch does:
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = in_channels // groups * kh * kw``.
    ``seed`` (int or ``numpy.random.Generator``) makes the initialisation reproducible.
    """

    rank = 2

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
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, seed)

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

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        (top, _), (left, _) = self._sides(spatial("Conv2d", input_shape)[1])
        return field.through_window(self.kernel_size, self.stride, self.dilation, (top, left))


class Conv3d(_ConvNd):
    """``y[n, q] = b[q] + sum_p W[q, p] * x[n, p]`` over ``(N, C_in, D, H, W)`` (or
    unbatched) volumes; arguments as :func:`convpool.conv3d` and ``torch.nn.Conv3d``.
    ``weight`` is ``(out_channels, in_channels // groups, kd, kh, kw)``."""

    rank = 3

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple | str = 0,
                 dilation: int | tuple[int, int, int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, dtype: object = np.float32,
                 seed: Seed = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, seed)
