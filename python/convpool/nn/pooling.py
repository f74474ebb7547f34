"""Pooling layers for 1-D signals, 2-D pictures and 3-D volumes: per channel over windows
(max, average), global (one number per channel), and across channels (maxout), calling
the compiled kernels. One rank-generic base per kind holds the code; the classes name the
rank."""

from __future__ import annotations

import numpy as np

from ..geometry import (
    check_divisor_override,
    check_flag,
    check_pool_arguments,
    positive_int,
    resolve_padding,
)
from ._geometry import spatial, window_output_size
from .layer import Layer, check_input, forward_not_called
from .receptive_field import ReceptiveField

__all__ = [
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "ChannelPool",
    "GlobalAvgPool1d",
    "GlobalAvgPool2d",
    "GlobalAvgPool3d",
    "GlobalMaxPool1d",
    "GlobalMaxPool2d",
    "GlobalMaxPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
]


class _PoolLayer(Layer):
    """What every pooling layer over ``rank`` spatial axes shares: its input's check and
    the input kept for backward."""

    rank = 0

    def __init__(self) -> None:
        super().__init__()
        self._input: np.ndarray | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def _check(self, x: object) -> np.ndarray:
        return check_input(x, "x", (self.rank + 1, self.rank + 2), self.name)

    def _saved_input(self) -> np.ndarray:
        if self._input is None:
            raise forward_not_called(self)
        return self._input


class _WindowPool(_PoolLayer):
    """The geometry of the max and average pooling layers, checked once, by form, at
    construction (kernel, stride, padding's form and ``padding <= kernel_size // 2``)."""

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        super().__init__()
        window = check_pool_arguments(self.rank, kernel_size, stride, padding, dilation,
                                      ceil_mode)
        self.kernel_size = window["kernel_size"]
        self.stride = window["stride"]
        self.padding = window["padding"]
        self.dilation = window["dilation"]
        self.ceil_mode = window["ceil_mode"]

    def _sides(self, in_size: tuple[int, ...]):
        return resolve_padding(self.padding, in_size, self.kernel_size, self.stride, self.dilation)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial(self.name, input_shape, self.rank)
        out = window_output_size(self.name, in_size, self.kernel_size, self.stride,
                                 self.dilation, self._sides(in_size), self.ceil_mode)
        return (channels, *out)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        if self.rank != 2:  # receptive fields are traced through pictures
            return None
        (top, _), (left, _) = self._sides(spatial(self.name, input_shape)[1])
        return field.through_window(self.kernel_size, self.stride, self.dilation, (top, left))

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


class _MaxPool(_WindowPool):
    """Maximum over each window, per channel; the backward pass routes each gradient to
    the input pixel that held the maximum."""

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self._indices: np.ndarray | None = None
        self._indices_wanted = False  # set by an unpooling layer that reads them
        self._input_shape: tuple[int, ...] | None = None

    def _op(self, suffix: str = ""):
        return getattr(self._ops, f"max_pool{self.rank}d{suffix}")

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        self._input_shape = x.shape
        if not self._indices_wanted and (not self.training or self._input is None):
            # Inference needs no argmax; a later backward recomputes it.
            self._indices = None
            return self._op()(x, **self._arguments())
        y, indices = self._op()(x, return_indices=True, **self._arguments())
        self._indices = indices if self._indices_wanted else self._keep(indices)
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        if self._indices is None:
            _, self._indices = self._op()(x, return_indices=True, **self._arguments())
        return self._op("_grad_input")(grad_output, self._indices, x.shape)


class _AvgPool(_WindowPool):
    """Mean over each window, per channel (``count_include_pad``: padded zeros count in
    the divisor; ``divisor_override`` replaces the divisor)."""

    def __init__(self, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = check_flag(count_include_pad, "count_include_pad")
        self.divisor_override = check_divisor_override(divisor_override)

    def _op(self, suffix: str = ""):
        return getattr(self._ops, f"avg_pool{self.rank}d{suffix}")

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        return self._op()(x, **self._arguments())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        return self._op("_grad_input")(grad_output, x.shape, **self._arguments())

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if not self.count_include_pad:
            text += ", count_include_pad=False"
        if self.divisor_override is not None:
            text += f", divisor_override={self.divisor_override}"
        return text


class MaxPool1d(_MaxPool):
    """Maximum over each window of ``(N, C, L)`` signals, as ``torch.nn.MaxPool1d``
    (stride defaults to the kernel size; padding never wins)."""

    rank = 1

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int] = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool2d(_MaxPool):
    """Maximum over each window, per channel, as ``torch.nn.MaxPool2d`` (stride defaults
    to the kernel size; padded pixels are never selected). The backward pass routes each
    gradient to the input pixel that held the maximum."""

    rank = 2

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int, int] = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool3d(_MaxPool):
    """Maximum over each ``kd x kh x kw`` window of ``(N, C, D, H, W)`` volumes, as
    ``torch.nn.MaxPool3d``."""

    rank = 3

    def __init__(self, kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int, int, int] = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)


class AvgPool1d(_AvgPool):
    """Mean over each window of ``(N, C, L)`` signals, as ``torch.nn.AvgPool1d``."""

    rank = 1

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)


class AvgPool2d(_AvgPool):
    """Mean over each window, per channel, as ``torch.nn.AvgPool2d``
    (``count_include_pad``: padded zeros count in the divisor; ``divisor_override``
    replaces the divisor)."""

    rank = 2

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)


class AvgPool3d(_AvgPool):
    """Mean over each window of ``(N, C, D, H, W)`` volumes, as ``torch.nn.AvgPool3d``."""

    rank = 3

    def __init__(self, kernel_size: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)


class _GlobalPool(_PoolLayer):
    """One number per channel: ``(N, C, *spatial) -> (N, C)`` (ones kept with
    ``keepdims``). A global layer: each output sees its whole channel."""

    kind = ""

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = check_flag(keepdims, "keepdims")

    def _op(self, suffix: str = ""):
        return getattr(self._ops, f"global_{self.kind}_pool{self.rank}d{suffix}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        return self._op()(x, keepdims=self.keepdims)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        # the maximum's gradient goes where the maximum was: it needs the input itself
        return self._op("_grad_input")(grad_output, x if self.kind == "max" else x.shape)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, _ = spatial(self.name, input_shape, self.rank)
        return (channels, *(1,) * self.rank) if self.keepdims else (channels,)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        if self.rank != 2:  # receptive fields are traced through pictures
            return None
        return ReceptiveField.whole(net_input_size)

    def extra_repr(self) -> str:
        return "keepdims=True" if self.keepdims else ""


class GlobalAvgPool1d(_GlobalPool):
    """Mean of each channel's signal."""

    rank, kind = 1, "avg"


class GlobalMaxPool1d(_GlobalPool):
    """Maximum of each channel's signal; the gradient goes to where it was."""

    rank, kind = 1, "max"


class GlobalAvgPool2d(_GlobalPool):
    """Mean of each channel (with a softmax after it, a classification head without
    dense layers)."""

    rank, kind = 2, "avg"


class GlobalMaxPool2d(_GlobalPool):
    """Maximum of each channel; the gradient goes to the pixel that held it."""

    rank, kind = 2, "max"


class GlobalAvgPool3d(_GlobalPool):
    """Mean of each channel's volume."""

    rank, kind = 3, "avg"


class GlobalMaxPool3d(_GlobalPool):
    """Maximum of each channel's volume; the gradient goes to where it was."""

    rank, kind = 3, "max"


class ChannelPool(Layer):
    """Pooling across channel barriers (maxout): the max or mean of each group of
    ``size`` consecutive channels, ``(N, C, H, W) -> (N, C // size, H, W)``."""

    def __init__(self, size: int, mode: str = "max") -> None:
        super().__init__()
        self.size = positive_int(size, "size")
        if mode not in ("max", "avg"):
            raise ValueError(f"ChannelPool: mode must be 'max' or 'avg', got {mode!r}")
        self.mode = mode
        self._input: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "ChannelPool")
        self._input = self._keep(x)
        return self._ops.channel_pool(x, self.size, self.mode)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._input is None:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        return self._ops.channel_pool_grad_input(grad_output, self._input, self.size, self.mode)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, (h, w) = spatial("ChannelPool", input_shape)
        if channels % self.size:
            raise ValueError(
                f"ChannelPool: size {self.size} must divide the channel count {channels}")
        return channels // self.size, h, w

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return field

    def extra_repr(self) -> str:
        return f"size={self.size}, mode={self.mode!r}"


