"""A trainable array with its gradient, allocated and initialised on first use.

Deferring the allocation lets a net be described and summarised (shapes, parameter
counts) even when its weights would not fit in memory, such as a fully connected
net on a 400x600 picture with 2.4 billion weights. Each parameter draws its own seed when it is
created, so the values do not depend on the order in which parameters are first used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Initializer = Callable[[np.random.Generator, tuple[int, ...], np.dtype], np.ndarray]


class Parameter:
    """``data`` (the values) and ``grad`` (their gradient, or None before a backward pass).

    Args:
        shape: the array's shape.
        dtype: float32 or float64.
        initializer: ``initializer(generator, shape, dtype)`` returns the initial values.
        seed: the seed of the generator handed to ``initializer``.
        name: the parameter's name inside its layer (``"weight"``, ``"bias"``).
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, initializer: Initializer,
                 seed: int, name: str) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.grad: np.ndarray | None = None
        self._initializer: Initializer | None = initializer
        self._seed = seed
        self._data: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Number of values (known without allocating them)."""
        return math.prod(self.shape)

    @property
    def materialized(self) -> bool:
        """Whether the values exist yet (they are made on first access of ``data``)."""
        return self._data is not None

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            values = self._initializer(np.random.default_rng(self._seed), self.shape, self.dtype)
            self._data = np.ascontiguousarray(values, dtype=self.dtype)
            self._initializer = None
        return self._data

    @data.setter
    def data(self, values: np.ndarray) -> None:
        if values is self._data:  # an in-place update such as ``p.data -= step``
            return
        values = np.asarray(values)
        if values.shape != self.shape:
            raise ValueError(
                f"{self.name}: expected shape {self.shape}, got {values.shape}"
            )
        if values.dtype.kind not in "uif":
            raise TypeError(f"{self.name}: expected real numbers, got dtype {values.dtype}")
        self._data = np.array(values, dtype=self.dtype, order="C")
        self._initializer = None

    def initialize_with(self, initializer: Initializer) -> Parameter:
        """Draw the values afresh (same seed) from ``initializer(generator, shape,
        dtype)``, on first use as always; returns the parameter."""
        self._initializer = initializer
        self._data = None
        self.grad = None
        return self

    def astype(self, dtype: np.dtype) -> None:
        """Convert the values (and gradient) to ``dtype`` in place of the old arrays."""
        self.dtype = np.dtype(dtype)
        if self._data is not None:
            self._data = self._data.astype(self.dtype)
        if self.grad is not None:
            self.grad = self.grad.astype(self.dtype)

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """Add ``grad`` to the stored gradient (or store it, after ``zero_grad``)."""
        if self.grad is None:
            self.grad = grad if grad.dtype == self.dtype else grad.astype(self.dtype)
        else:
            self.grad += grad

    def __repr__(self) -> str:
        state = "" if self.materialized else ", not yet initialised"
        return f"Parameter({self.name}, shape={self.shape}, dtype={self.dtype}{state})"
