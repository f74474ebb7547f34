"""Pooling layers for 1-D signals, 2-D pictures and 3-D volumes: per channel over windows
(max, average), global (one number per channel), and across channels (maxout), calling
the compiled kernels. One rank-generic base per kind holds the code; the classes name the
rank."""

from __future__ import annotations

import inspect
from functools import lru_cache

import numpy as np

from ..geometry import (
    check_divisor_override,
    check_flag,
    check_pool_arguments,
    positive_int,
    resolve_padding,
)
from ..layout import check_layout, from_nchw_shape, nchw_shape
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


@lru_cache(maxsize=128)
def _takes_layout(function) -> bool:
    """Whether ``function`` (a pooling function of a layer's kernel module) has a
    ``layout`` argument: convpool's do, the NumPy oracle's do not."""
    try:
        return "layout" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _channels_first(value):
    """A channels-last array (3-D or 4-D) or shape as channels-first; others unchanged."""
    if isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value):
        return nchw_shape(value, "NHWC")
    if isinstance(value, np.ndarray) and value.ndim in (3, 4):
        return np.moveaxis(value, -1, -3)
    return value


def _channels_last(value):
    """The inverse of :func:`_channels_first` on a result (or a tuple of results)."""
    if isinstance(value, tuple):
        return tuple(_channels_last(v) for v in value)
    if isinstance(value, np.ndarray) and value.ndim in (3, 4):
        return np.moveaxis(value, -3, -1)
    return value


class _PoolLayer(Layer):
    """What every pooling layer over ``rank`` spatial axes shares: its input's check, the
    input kept for backward and, in 2-D, the layout of its arrays (``"NCHW"``, or
    ``"NHWC"``: ``(N, H, W, C)`` batches and ``(H, W, C)`` samples)."""

    rank = 0
    layout = "NCHW"

    def __init__(self) -> None:
        super().__init__()
        self._input: np.ndarray | None = None

    def _set_layout(self, layout: object) -> None:
        self.layout = check_layout(layout)

    def _call(self, op_name: str, *args, **kwargs):
        """``op_name`` of the layer's kernel module on arrays in the layer's layout: with
        ``layout=`` where the function takes it (the channels-last kernels), otherwise on
        channels-first views, the results moved back."""
        function = getattr(self._ops, op_name)
        if self.layout == "NCHW":
            return function(*args, **kwargs)
        if _takes_layout(function):
            return function(*args, layout=self.layout, **kwargs)
        return _channels_last(function(*map(_channels_first, args), **kwargs))

    def _sample_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """One sample's shape in NCHW terms ``(C, *spatial)``."""
        return nchw_shape(tuple(input_shape), self.layout)

    def _in_layout(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return from_nchw_shape(tuple(shape), self.layout)

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
        channels, in_size = spatial(self.name, self._sample_shape(input_shape), self.rank)
        out = window_output_size(self.name, in_size, self.kernel_size, self.stride,
                                 self.dilation, self._sides(in_size), self.ceil_mode)
        return self._in_layout((channels, *out))

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        if self.rank != 2:  # receptive fields are traced through pictures
            return None
        (top, _), (left, _) = self._sides(spatial(self.name, self._sample_shape(input_shape))[1])
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
        if self.layout != "NCHW":
            text += f", layout={self.layout!r}"
        return text


class _MaxPool(_WindowPool):
    """Maximum over each window, per channel; the backward pass routes each gradient to
    the input pixel that held the maximum."""

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self._indices: np.ndarray | None = None
        self._indices_wanted = False  # set by an unpooling layer that reads them
        self._input_shape: tuple[int, ...] | None = None

    def _op_name(self, suffix: str = "") -> str:
        return f"max_pool{self.rank}d{suffix}"

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
            return self._call(self._op_name(), x, **self._arguments())
        y, indices = self._call(self._op_name(), x, return_indices=True, **self._arguments())
        self._indices = indices if self._indices_wanted else self._keep(indices)
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        if self._indices is None:
            _, self._indices = self._call(self._op_name(), x, return_indices=True,
                                          **self._arguments())
        return self._call(self._op_name("_grad_input"), grad_output, self._indices, x.shape)


class _AvgPool(_WindowPool):
    """Mean over each window, per channel (``count_include_pad``: padded zeros count in
    the divisor; ``divisor_override`` replaces the divisor)."""

    def __init__(self, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = check_flag(count_include_pad, "count_include_pad")
        self.divisor_override = check_divisor_override(divisor_override)

    def _op_name(self, suffix: str = "") -> str:
        return f"avg_pool{self.rank}d{suffix}"

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        return self._call(self._op_name(), x, **self._arguments())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        return self._call(self._op_name("_grad_input"), grad_output, x.shape,
                          **self._arguments())

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
    gradient to the input pixel that held the maximum. ``layout="NHWC"``: channels-last
    ``(N, H, W, C)`` batches in and out, run by the channels-last kernels."""

    rank = 2

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int, int] = 1,
                 ceil_mode: bool = False, layout: str = "NCHW") -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self._set_layout(layout)


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
    replaces the divisor). ``layout="NHWC"``: channels-last arrays in and out."""

    rank = 2

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None,
                 layout: str = "NCHW") -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)
        self._set_layout(layout)


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

    def _op_name(self, suffix: str = "") -> str:
        return f"global_{self.kind}_pool{self.rank}d{suffix}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x)
        self._input = self._keep(x)
        return self._call(self._op_name(), x, keepdims=self.keepdims)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        # the maximum's gradient goes where the maximum was: it needs the input itself
        return self._call(self._op_name("_grad_input"), grad_output,
                          x if self.kind == "max" else x.shape)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, _ = spatial(self.name, self._sample_shape(input_shape), self.rank)
        return self._in_layout((channels, *(1,) * self.rank)) if self.keepdims else (channels,)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField | None:
        if self.rank != 2:  # receptive fields are traced through pictures
            return None
        return ReceptiveField.whole(net_input_size)

    def extra_repr(self) -> str:
        parts = (["keepdims=True"] if self.keepdims else []) + \
            ([f"layout={self.layout!r}"] if self.layout != "NCHW" else [])
        return ", ".join(parts)


class _GlobalPool2d(_GlobalPool):
    """A global pooling layer on pictures: ``layout="NHWC"`` takes ``(N, H, W, C)``
    batches and returns ``(N, C)`` (``(N, 1, 1, C)`` with ``keepdims``)."""

    rank = 2

    def __init__(self, keepdims: bool = False, layout: str = "NCHW") -> None:
        super().__init__(keepdims)
        self._set_layout(layout)


class GlobalAvgPool1d(_GlobalPool):
    """Mean of each channel's signal."""

    rank, kind = 1, "avg"


class GlobalMaxPool1d(_GlobalPool):
    """Maximum of each channel's signal; the gradient goes to where it was."""

    rank, kind = 1, "max"


class GlobalAvgPool2d(_GlobalPool2d):
    """Mean of each channel (with a softmax after it, a classification head without
    dense layers)."""

    kind = "avg"


class GlobalMaxPool2d(_GlobalPool2d):
    """Maximum of each channel; the gradient goes to the pixel that held it."""

    kind = "max"


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


