"""1-D and 3-D layers: convolution, max and average pooling, global pooling, as
``torch.nn.Conv1d`` ... ``torch.nn.AvgPool3d``, calling :func:`convpool.conv1d` and
friends. They follow the 2-D layers (``nn.Conv2d``, ``nn.MaxPool2d``...): the same
arguments, initialisation, ``forward`` / ``backward`` and state-dict names."""

from __future__ import annotations

import math

import numpy as np

from .._args import positive_int
from .._nd_geometry import (
    AXIS_NAMES,
    check_padding_mode,
    conv_output_size,
    int_tuple,
    pooled_size,
    resolve_sides,
)
from .init import Seed, as_generator, draw_seed, float_dtype, uniform_initializer
from .layer import Layer, check_input, forward_not_called
from .parameter import Parameter

__all__ = [
    "AvgPool1d",
    "AvgPool3d",
    "Conv1d",
    "Conv3d",
    "GlobalAvgPool1d",
    "GlobalAvgPool3d",
    "GlobalMaxPool1d",
    "GlobalMaxPool3d",
    "MaxPool1d",
    "MaxPool3d",
]

_FAR = 1 << 30  # an input size large enough for any padding form to resolve


def _sample_size(layer: str, rank: int, input_shape: tuple[int, ...]) -> tuple[int, tuple]:
    """``(C, spatial)`` of one sample's shape (no batch axis)."""
    if len(input_shape) != rank + 1:
        form = "(C, L)" if rank == 1 else "(C, D, H, W)"
        raise ValueError(f"{layer}: expects {form} samples, got shape {tuple(input_shape)}")
    return input_shape[0], tuple(input_shape[1:])


def _output_size(layer: str, sizes) -> tuple[int, ...]:
    for name, (size, detail) in zip(AXIS_NAMES[len(sizes)], sizes, strict=True):
        if size < 1:
            raise ValueError(f"{layer}: output {name} would be {size}: {detail}")
    return tuple(size for size, _ in sizes)


class _ConvNd(Layer):
    rank = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, dtype, seed) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.groups = positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"groups: {groups} must divide in_channels ({in_channels}) and "
                             f"out_channels ({out_channels})")
        rank = self.rank
        self.kernel_size = int_tuple(kernel_size, rank, "kernel_size")
        self.stride = int_tuple(stride, rank, "stride")
        self.dilation = int_tuple(dilation, rank, "dilation")
        resolve_sides(padding, (_FAR,) * rank, self.kernel_size, self.stride, self.dilation)
        self.padding = padding
        self.padding_mode = check_padding_mode(padding_mode, ((0, 0),) * rank, (1,) * rank)
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
            if bias else None)
        self._name = name
        self._input: np.ndarray | None = None

    def _geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def _op(self, suffix: str = ""):
        return getattr(self._ops, f"conv{self.rank}d{suffix}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (self.rank + 1, self.rank + 2), self._name)
        channels = x.shape[-self.rank - 1]
        if channels != self.in_channels:
            raise ValueError(f"{self._name}: x has {channels} channels (shape {x.shape}), the "
                             f"layer expects in_channels={self.in_channels}")
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

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, size = _sample_size(self._name, self.rank, input_shape)
        if channels != self.in_channels:
            raise ValueError(f"{self._name}: input has {channels} channels, the layer expects "
                             f"{self.in_channels}")
        sides = resolve_sides(self.padding, size, self.kernel_size, self.stride, self.dilation)
        check_padding_mode(self.padding_mode, sides, size)
        out = _output_size(self._name, [
            (conv_output_size(n, k, s, d, *side), f"input {n}, kernel {k}, stride {s}, "
             f"dilation {d}, padding {side}")
            for n, k, s, d, side in zip(size, self.kernel_size, self.stride, self.dilation,
                                        sides, strict=True)])
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


class _WindowPoolNd(Layer):
    rank = 0

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        super().__init__()
        rank = self.rank
        self.kernel_size = int_tuple(kernel_size, rank, "kernel_size")
        self.stride = self.kernel_size if stride is None else int_tuple(stride, rank, "stride")
        self.dilation = int_tuple(dilation, rank, "dilation")
        sides = resolve_sides(padding, (_FAR,) * rank, self.kernel_size, self.stride,
                              self.dilation)
        if not isinstance(padding, str):
            for name, side, k in zip(AXIS_NAMES[rank], sides, self.kernel_size, strict=True):
                if max(side) > k // 2:
                    raise ValueError(f"padding: {side} on the {name} axis is more than half "
                                     f"the kernel size {k} (at most {k // 2} per side)")
        self.padding = padding
        self.ceil_mode = bool(ceil_mode)
        self._input: np.ndarray | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        name = type(self).__name__
        channels, size = _sample_size(name, self.rank, input_shape)
        sides = resolve_sides(self.padding, size, self.kernel_size, self.stride, self.dilation)
        out = _output_size(name, [
            (pooled_size(n, k, s, d, *side, self.ceil_mode),
             f"input {n}, kernel {k}, stride {s}, dilation {d}, padding {side}")
            for n, k, s, d, side in zip(size, self.kernel_size, self.stride, self.dilation,
                                        sides, strict=True)])
        return (channels, *out)

    def _saved_input(self) -> np.ndarray:
        if self._input is None:
            raise forward_not_called(self)
        return self._input

    def _check(self, x) -> np.ndarray:
        return check_input(x, "x", (self.rank + 1, self.rank + 2), type(self).__name__)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            text += f", stride={self.stride}"
        if self.padding not in (0, "valid"):
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.rank:
            text += f", dilation={self.dilation}"
        if self.ceil_mode:
            text += ", ceil_mode=True"
        return text


class _MaxPoolNd(_WindowPoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self._indices: np.ndarray | None = None

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        pool = getattr(self._ops, f"max_pool{self.rank}d")
        if not self.training or self._input is None:
            self._indices = None  # inference needs no argmax; a later backward recomputes it
            return pool(x, **self._arguments())
        y, self._indices = pool(x, return_indices=True, **self._arguments())
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        if self._indices is None:
            _, self._indices = getattr(self._ops, f"max_pool{self.rank}d")(
                x, return_indices=True, **self._arguments())
        return getattr(self._ops, f"max_pool{self.rank}d_grad_input")(
            grad_output, self._indices, x.shape)


class MaxPool1d(_MaxPoolNd):
    """Maximum over each window of ``(N, C, L)`` signals, as ``torch.nn.MaxPool1d``
    (stride defaults to the kernel size; padding never wins)."""

    rank = 1

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int] = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool3d(_MaxPoolNd):
    """Maximum over each ``kd x kh x kw`` window of ``(N, C, D, H, W)`` volumes, as
    ``torch.nn.MaxPool3d``."""

    rank = 3

    def __init__(self, kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int, int, int] = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class _AvgPoolNd(_WindowPoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = (None if divisor_override is None
                                 else positive_int(divisor_override, "divisor_override"))

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        return getattr(self._ops, f"avg_pool{self.rank}d")(x, **self._arguments())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        return getattr(self._ops, f"avg_pool{self.rank}d_grad_input")(
            grad_output, x.shape, **self._arguments())

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if not self.count_include_pad:
            text += ", count_include_pad=False"
        if self.divisor_override is not None:
            text += f", divisor_override={self.divisor_override}"
        return text


class AvgPool1d(_AvgPoolNd):
    """Mean over each window of ``(N, C, L)`` signals, as ``torch.nn.AvgPool1d``."""

    rank = 1

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)


class AvgPool3d(_AvgPoolNd):
    """Mean over each window of ``(N, C, D, H, W)`` volumes, as ``torch.nn.AvgPool3d``."""

    rank = 3

    def __init__(self, kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)


class _GlobalPoolNd(Layer):
    """One number per channel: ``(N, C, *spatial) -> (N, C)`` (ones kept with
    ``keepdims``)."""

    rank = 0
    kind = ""

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = bool(keepdims)
        self._input: np.ndarray | None = None

    def _op(self, suffix: str = ""):
        return getattr(self._ops, f"global_{self.kind}_pool{self.rank}d{suffix}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (self.rank + 1, self.rank + 2), type(self).__name__)
        self._input = self._keep(x)
        return self._op()(x, keepdims=self.keepdims)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._input is None:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        x = self._input
        return self._op("_grad_input")(grad_output, x if self.kind == "max" else x.shape)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, _ = _sample_size(type(self).__name__, self.rank, input_shape)
        return (channels, *(1,) * self.rank) if self.keepdims else (channels,)

    def extra_repr(self) -> str:
        return "keepdims=True" if self.keepdims else ""


class GlobalAvgPool1d(_GlobalPoolNd):
    """Mean of each channel's signal."""

    rank, kind = 1, "avg"


class GlobalMaxPool1d(_GlobalPoolNd):
    """Maximum of each channel's signal; the gradient goes to where it was."""

    rank, kind = 1, "max"


class GlobalAvgPool3d(_GlobalPoolNd):
    """Mean of each channel's volume."""

    rank, kind = 3, "avg"


class GlobalMaxPool3d(_GlobalPoolNd):
    """Maximum of each channel's volume; the gradient goes to where it was."""

    rank, kind = 3, "max"
