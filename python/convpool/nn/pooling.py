"""Pooling layers: per channel over windows (max, average), global (one number per
channel), and across channels (maxout), calling the compiled kernels."""

from __future__ import annotations

import numpy as np

from .._args import positive_int
from ..padding import resolve_padding
from ._geometry import check_padding_form, pairs, spatial, window_output_size
from .layer import Layer, check_input, forward_not_called
from .receptive_field import ReceptiveField


class _WindowPool(Layer):
    """Shared geometry of the max and average pooling layers."""

    name = "Pool"

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = pairs(kernel_size, stride, dilation)
        check_padding_form(padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding
        self.ceil_mode = bool(ceil_mode)
        self._input: np.ndarray | None = None

    def _sides(self, in_size: tuple[int, int]):
        return resolve_padding(self.padding, in_size, self.kernel_size, self.stride, self.dilation)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial(self.name, input_shape)
        oh, ow = window_output_size(self.name, in_size, self.kernel_size, self.stride,
                                    self.dilation, self._sides(in_size), self.ceil_mode)
        return channels, oh, ow

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        (top, _), (left, _) = self._sides(spatial(self.name, input_shape)[1])
        return field.through_window(self.kernel_size, self.stride, self.dilation, (top, left))

    def _saved_input(self) -> np.ndarray:
        if self._input is None:
            raise forward_not_called(self)
        return self._input

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            text += f", stride={self.stride}"
        if self.padding not in (0, "valid"):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.ceil_mode:
            text += ", ceil_mode=True"
        return text


class MaxPool2d(_WindowPool):
    """Maximum over each window, per channel, as ``torch.nn.MaxPool2d`` (stride defaults
    to the kernel size; padded pixels are never selected). The backward pass routes each
    gradient to the input pixel that held the maximum."""

    name = "MaxPool2d"

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple | str = 0, dilation: int | tuple[int, int] = 1,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self._indices: np.ndarray | None = None
        self._indices_wanted = False  # set by a MaxUnpool2d that reads them
        self._input_shape: tuple[int, ...] | None = None

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "MaxPool2d")
        self._input = self._keep(x)
        self._input_shape = x.shape
        if not self._indices_wanted and (not self.training or self._input is None):
            # Inference needs no argmax; a later backward recomputes it.
            self._indices = None
            return self._ops.max_pool2d(x, **self._arguments())
        y, indices = self._ops.max_pool2d(x, return_indices=True, **self._arguments())
        self._indices = indices if self._indices_wanted else self._keep(indices)
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        if self._indices is None:
            _, self._indices = self._ops.max_pool2d(x, return_indices=True, **self._arguments())
        return self._ops.max_pool2d_grad_input(grad_output, self._indices, x.shape)


class AvgPool2d(_WindowPool):
    """Mean over each window, per channel, as ``torch.nn.AvgPool2d``
    (``count_include_pad``: padded zeros count in the divisor; ``divisor_override``
    replaces the divisor)."""

    name = "AvgPool2d"

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple | str = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = (None if divisor_override is None
                                 else positive_int(divisor_override, "divisor_override"))

    def _arguments(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "AvgPool2d")
        self._input = self._keep(x)
        return self._ops.avg_pool2d(x, **self._arguments())

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        return self._ops.avg_pool2d_grad_input(grad_output, x.shape, **self._arguments())

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if not self.count_include_pad:
            text += ", count_include_pad=False"
        if self.divisor_override is not None:
            text += f", divisor_override={self.divisor_override}"
        return text


class _GlobalPool(Layer):
    """One number per channel: ``(N, C, H, W) -> (N, C)`` (``(N, C, 1, 1)`` with
    ``keepdims``). A global layer: each output sees its whole channel."""

    name = "GlobalPool"

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = bool(keepdims)
        self._input: np.ndarray | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, _ = spatial(self.name, input_shape)
        return (channels, 1, 1) if self.keepdims else (channels,)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return ReceptiveField.whole(net_input_size)

    def _saved_input(self) -> np.ndarray:
        if self._input is None:
            raise forward_not_called(self)
        return self._input

    def extra_repr(self) -> str:
        return "keepdims=True" if self.keepdims else ""


class GlobalAvgPool2d(_GlobalPool):
    """Mean of each channel (with a softmax after it, a classification head without
    dense layers)."""

    name = "GlobalAvgPool2d"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), self.name)
        self._input = self._keep(x)
        return self._ops.global_avg_pool2d(x, keepdims=self.keepdims)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        return self._ops.global_avg_pool2d_grad_input(grad_output, x.shape)


class GlobalMaxPool2d(_GlobalPool):
    """Maximum of each channel; the gradient goes to the pixel that held it."""

    name = "GlobalMaxPool2d"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), self.name)
        self._input = self._keep(x)
        return self._ops.global_max_pool2d(x, keepdims=self.keepdims)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        x = self._saved_input()
        if not needs_input_grad:
            return None
        return self._ops.global_max_pool2d_grad_input(grad_output, x)


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


