"""Adaptive pooling layers (a given output size) and max unpooling."""

from __future__ import annotations

import numpy as np

from .._args import positive_pair
from ..adaptive_pool import adaptive_windows
from ..unpool import max_unpool2d_output_size
from ._geometry import spatial
from .layer import Layer, check_input, forward_not_called
from .pooling import MaxPool2d
from .receptive_field import ReceptiveField


class _AdaptivePool(Layer):
    name = "AdaptivePool"

    def __init__(self, output_size: int | tuple) -> None:
        super().__init__()
        items = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
        if len(items) != 2:
            raise ValueError(f"output_size: expected an int or a pair, got {output_size!r}")
        for item in items:
            if item is not None:
                positive_pair(item, "output_size")
        self.output_size = (items[0], items[1])
        self._input_shape: tuple[int, ...] | None = None

    def _resolved(self, in_size: tuple[int, int]) -> tuple[int, int]:
        return tuple(in_size[a] if self.output_size[a] is None else int(self.output_size[a])
                     for a in (0, 1))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial(self.name, input_shape)
        return (channels, *self._resolved(in_size))

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        """Output 1x1: the whole input. Sizes that divide: an ordinary window of
        ``in / out``. Otherwise windows of unequal size: a field that bounds the
        largest, with the mean jump ``in / out`` and the period of the whole input."""
        _, in_size = spatial(self.name, input_shape)
        out = self._resolved(in_size)
        if out == (1, 1):
            return ReceptiveField.whole(net_input_size)
        if in_size[0] % out[0] == 0 and in_size[1] % out[1] == 0:
            kernel = (in_size[0] // out[0], in_size[1] // out[1])
            return field.through_window(kernel, kernel, (1, 1), (0, 0))
        if field.jump is None:
            return field
        from fractions import Fraction

        size, jump, start = [], [], []
        for axis in (0, 1):
            starts, ends = adaptive_windows(in_size[axis], out[axis])
            largest = int((ends - starts).max())
            size.append(field.size[axis] + (largest - 1) * field.jump[axis])
            step = Fraction(in_size[axis], out[axis])
            jump.append(step * field.jump[axis])
            start.append(field.start[axis] + (int(ends[0]) - 1) / 2 * field.jump[axis])
        period = tuple(in_size[a] * field.jump[a] for a in (0, 1))
        return ReceptiveField(size=(size[0], size[1]), jump=(jump[0], jump[1]),
                              start=(start[0], start[1]), period=period)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over adaptive windows to a given output size, as
    ``torch.nn.AdaptiveAvgPool2d`` (``(1, 1)``: global average pooling that keeps the
    axes)."""

    name = "AdaptiveAvgPool2d"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), self.name)
        self._input_shape = self._keep(x.shape)
        return self._ops.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._input_shape is None:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        return self._ops.adaptive_avg_pool2d_grad_input(grad_output, self._input_shape)


class AdaptiveMaxPool2d(_AdaptivePool):
    """Maximum over adaptive windows to a given output size, as
    ``torch.nn.AdaptiveMaxPool2d``; the gradient goes to each window's maximum."""

    name = "AdaptiveMaxPool2d"

    def __init__(self, output_size: int | tuple) -> None:
        super().__init__(output_size)
        self._indices: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_input(x, "x", (3, 4), self.name)
        if self._keep(True) is None:
            self._input_shape = self._indices = None
            return self._ops.adaptive_max_pool2d(x, self.output_size)
        y, self._indices = self._ops.adaptive_max_pool2d(x, self.output_size,
                                                         return_indices=True)
        self._input_shape = x.shape
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._indices is None:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        return self._ops.adaptive_max_pool2d_grad_input(grad_output, self._indices,
                                                        self._input_shape)


class MaxUnpool2d(Layer):
    """Partial inverse of max pooling, as ``torch.nn.MaxUnpool2d``: each value goes back
    to where its maximum came from, zeros elsewhere (see :func:`convpool.max_unpool2d`).

    In a chain of layers the indices come from the :class:`MaxPool2d` given as
    ``indices_from`` (SegNet style: that layer then keeps its indices, even in inference
    mode), and the output has that layer's input size. ``forward(x, indices,
    output_size)`` takes them explicitly instead.
    """

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, *,
                 indices_from: MaxPool2d | None = None) -> None:
        super().__init__()
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else positive_pair(stride, "stride")
        self.padding = padding
        max_unpool2d_output_size((2, 2), self.kernel_size, self.stride, padding)
        if indices_from is not None and not isinstance(indices_from, MaxPool2d):
            raise TypeError(f"indices_from: expected a MaxPool2d, got "
                            f"{type(indices_from).__name__}")
        # Not a child (it belongs to the encoder): stored under a private name.
        self._pool = indices_from
        if indices_from is not None:
            indices_from._indices_wanted = True
        self._indices: np.ndarray | None = None

    def forward(self, x: np.ndarray, indices: np.ndarray | None = None,
                output_size: tuple[int, ...] | None = None) -> np.ndarray:
        x = check_input(x, "x", (3, 4), "MaxUnpool2d")
        if indices is None:
            if self._pool is None or self._pool._indices is None:
                raise ValueError(
                    "MaxUnpool2d: no indices: pass them, or build the layer with "
                    "indices_from=<the MaxPool2d> and run that layer's forward first")
            indices = self._pool._indices
            if output_size is None:
                output_size = self._pool._input_shape[-2:]
        self._indices = self._keep(indices)
        return self._ops.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding,
                                      output_size)

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._indices is None:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        return self._ops.max_unpool2d_grad_input(grad_output, self._indices)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, in_size = spatial("MaxUnpool2d", input_shape)
        return (channels, *max_unpool2d_output_size(in_size, self.kernel_size, self.stride,
                                                    self.padding))

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        # Where a value lands depends on the data (its index): a pixel may hold any
        # value of the window that pooled it, so the field is the pooling window's,
        # transposed.
        pads = self.padding if isinstance(self.padding, (tuple, list)) else (self.padding,) * 2
        return field.through_transpose(self.kernel_size, self.stride, (1, 1),
                                       (int(pads[0]), int(pads[1])))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
