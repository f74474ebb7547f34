"""Flatten: reshape a range of axes into one (a view, no copy)."""

from __future__ import annotations

import math

import numpy as np

from .layer import Layer, forward_not_called
from .receptive_field import ReceptiveField


class Flatten(Layer):
    """Merge axes ``start_dim`` to ``end_dim`` into one, as ``torch.nn.Flatten``
    (default: everything but the batch axis). Each unit keeps its receptive field."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim = start_dim
        self.end_dim = end_dim
        self._input_shape: tuple[int, ...] | None = None

    def _flat_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        ndim = len(shape)
        start = self.start_dim + ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < ndim:
            raise ValueError(
                f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do not select "
                f"axes of an input of shape {shape}"
            )
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._input_shape = x.shape
        return x.reshape(self._flat_shape(x.shape))

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if self._input_shape is None:
            raise forward_not_called(self)
        return np.asarray(grad_output).reshape(self._input_shape) if needs_input_grad else None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        # One sample's shape lacks the batch axis the dims count.
        return self._flat_shape((1, *input_shape))[1:]

    def receptive_field(self, field: ReceptiveField, input_shape: tuple[int, ...],
                        net_input_size: tuple[int, int]) -> ReceptiveField:
        return field

    def extra_repr(self) -> str:
        if (self.start_dim, self.end_dim) == (1, -1):
            return ""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
