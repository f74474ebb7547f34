"""Activation layers, element-wise (ReLU, ReLU6, Hardswish, Sigmoid, Tanh, Identity) and
global (Softmax).

Most keep their output for the backward pass (their derivatives are cheap functions of
it); Hardswish keeps its input. Inside inference mode none keeps anything.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import is_half
from .layer import ShapePreserving, check_input, forward_not_called
from .receptive_field import ReceptiveField


def _float_input(x: object, layer: str) -> np.ndarray:
    x = check_input(x, "x", tuple(range(0, 33)), layer)
    if x.dtype.kind == "f" or is_half(x.dtype):  # bfloat16 too: NumPy ufuncs keep it
        return x
    return x.astype(np.result_type(x, np.float32))


class _Elementwise(ShapePreserving):
    """An activation whose derivative is a function of its output ``y`` (or of its input,
    where ``keeps_input``): a subclass says ``_apply`` and ``_gradient``, the forward and
    backward bookkeeping is here once."""

    keeps_input = False

    def __init__(self) -> None:
        super().__init__()
        self._output: np.ndarray | None = None

    def _output_for_backward(self) -> np.ndarray:
        if self._output is None:
            raise forward_not_called(self)
        return self._output

    def _apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _gradient(self, grad_output: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """The input's gradient from the output's and what forward kept."""
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input(x, type(self).__name__)
        y = self._apply(x)
        self._output = self._keep(x if self.keeps_input else y)
        return y

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        kept = self._output_for_backward()
        if not needs_input_grad:
            return None
        return self._gradient(grad_output, kept)


class ReLU(_Elementwise):
    """``max(x, 0)``; its gradient at 0 is taken as 0, as in PyTorch."""

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def _gradient(self, grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
        return grad_output * (y > 0)


class ReLU6(_Elementwise):
    """``min(max(x, 0), 6)``, as ``torch.nn.ReLU6``; the gradient is 1 strictly between
    0 and 6 and 0 elsewhere (PyTorch's rule)."""

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0, 6)

    def _gradient(self, grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
        return grad_output * ((y > 0) & (y < 6))


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``, as ``torch.nn.Hardswish``; gradient 0 below -3, 1 above
    3, ``(2x + 3) / 6`` between (PyTorch's rule)."""

    keeps_input = True  # the derivative needs the input

    def _apply(self, x: np.ndarray) -> np.ndarray:
        y = np.clip(x + x.dtype.type(3), 0, 6)
        y *= x
        y /= x.dtype.type(6)
        return y

    def _gradient(self, grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
        slope = np.where(x < -3, 0, np.where(x <= 3, (2 * x + 3) / 6, 1)).astype(x.dtype)
        return grad_output * slope


class Identity(_Elementwise):
    """Returns its input unchanged (a placeholder, e.g. a residual block's shortcut)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._output = self._keep(True)
        return x

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        self._output_for_backward()
        return grad_output if needs_input_grad else None


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x / 2)) / 2``, which never
    overflows."""

    def _apply(self, x: np.ndarray) -> np.ndarray:
        y = np.tanh(x * x.dtype.type(0.5))
        y += 1
        y *= 0.5
        return y

    def _gradient(self, grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
        # y (1 - y) g in one buffer: this runs on every feature map of a classic net.
        grad = np.subtract(1, y, dtype=np.result_type(y, grad_output))
        grad *= y
        grad *= grad_output
        return grad


class Tanh(_Elementwise):
    """``tanh(x)``."""

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def _gradient(self, grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
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

    def _apply(self, x: np.ndarray) -> np.ndarray:
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Softmax: dim={self.dim} is out of range for shape {x.shape}")
        shifted = x - x.max(axis=self.dim, keepdims=True)
        y = np.exp(shifted, out=shifted)
        y /= y.sum(axis=self.dim, keepdims=True)
        return y

    def _gradient(self, grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
        inner = (grad_output * y).sum(axis=self.dim, keepdims=True)
        return y * (grad_output - inner)

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        # Global along dim: for the (N, C) outputs of a classifier, the whole input.
        return field if len(input_shape) > 1 else ReceptiveField.whole(net_input_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
