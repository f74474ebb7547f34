"""Dropout: in training, zero each value with probability p and scale the rest by
1 / (1 - p) (inverted dropout, as PyTorch); the identity in evaluation mode."""

from __future__ import annotations

import numbers

import numpy as np

from .init import Seed, as_generator
from .layer import ShapePreserving, forward_not_called


class Dropout(ShapePreserving):
    """Randomly zero values with probability ``p`` while training.

    ``seed`` (int or ``numpy.random.Generator``) makes the masks reproducible.
    """

    def __init__(self, p: float = 0.5, *, seed: Seed = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"Dropout: p must be a number, got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self._generator = as_generator(seed)
        self._mask: np.ndarray | None = None
        self._ran = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._ran = self._keep(True) or False
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        keep = self._generator.random(x.shape, dtype=np.float64 if dtype == np.float64
                                      else np.float32) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        mask = keep.astype(dtype) * dtype.type(scale)
        self._mask = self._keep(mask)
        return x * mask

    def backward(self, grad_output: np.ndarray, *, needs_input_grad: bool = True
                 ) -> np.ndarray | None:
        if not self._ran:
            raise forward_not_called(self)
        if not needs_input_grad:
            return None
        return grad_output if self._mask is None else grad_output * self._mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
