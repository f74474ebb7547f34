"""Activation layers, element-wise (ReLU, Sigmoid, Tanh) and global (Softmax).

Each keeps its output for the backward pass: all three element-wise derivatives are
cheap functions of the output.
"""

from __future__ import annotations

import numpy as np

from .layer import Layer, check_input, forward_not_called
from .receptive_field import ReceptiveField


def _float_input(x: object, layer: str) -> np.ndarray:
    x = check_input(x, "x", tuple(range(0, 33)), layer)
    return x if x.dtype.kind == "f" else x.astype(np.result_type(x, np.float32))


class _Elementwise(Layer):
    """An activation whose derivative is a function of its output ``y``."""

    def __init__(self) -> None:
        super().__init__()
        self._output: np.ndarray | None = None

    def _output_for_backward(self) -> np.ndarray:
        if self._output is None:
            raise forward_not_called(self)
        return self._output


class ReLU(_Elementwise):
    """``max(x, 0)``; its gradient at 0 is taken as 0, as in PyTorch."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input(x, "ReLU")
        self._output = np.maximum(x, 0)
        return self._output

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        y = self._output_for_backward()
        if not needs_input_grad:
            return None
        return grad_output * (y > 0)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x / 2)) / 2``, which never
    overflows."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input(x, "Sigmoid")
        y = np.tanh(x * x.dtype.type(0.5))
        y += 1
        y *= 0.5
        self._output = y
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        y = self._output_for_backward()
        if not needs_input_grad:
            return None
        # y (1 - y) g in one buffer: this runs on every feature map of a classic net.
        grad = np.subtract(1, y, dtype=np.result_type(y, grad_output))
        grad *= y
        grad *= grad_output
        return grad


class Tanh(_Elementwise):
    """``tanh(x)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._output = np.tanh(_float_input(x, "Tanh"))
        return self._output

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        y = self._output_for_backward()
        if not needs_input_grad:
            return None
        # (1 - y^2) g in one buffer: this runs on every feature map of a classic net.
        grad = np.square(y, dtype=np.result_type(y, grad_output))
        np.subtract(1, grad, out=grad)
        grad *= grad_output
        return grad


class Softmax(_Elementwise):
    """``exp(x) / sum(exp(x))`` along ``dim`` (default 1, the class axis of ``(N, C)``).

    A global layer: each output depends on every input along ``dim``. For training,
    feed the logits before it to :class:`~convpool.nn.CrossEntropyLoss` (``fit`` and
    ``train_epoch`` do that themselves for a net that ends in Softmax).
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"Softmax: dim must be an int, got {dim!r}")
        self.dim = dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input(x, "Softmax")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Softmax: dim={self.dim} is out of range for shape {x.shape}")
        shifted = x - x.max(axis=self.dim, keepdims=True)
        y = np.exp(shifted, out=shifted)
        y /= y.sum(axis=self.dim, keepdims=True)
        self._output = y
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        y = self._output_for_backward()
        if not needs_input_grad:
            return None
        inner = (grad_output * y).sum(axis=self.dim, keepdims=True)
        return y * (grad_output - inner)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        # Global along dim: for the (N, C) outputs of a classifier, the whole input.
        return field if len(input_shape) > 1 else ReceptiveField.whole(net_input_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
