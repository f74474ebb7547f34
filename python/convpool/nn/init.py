"""Default initialisation (PyTorch's) and seed handling."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..dtypes import is_half

Seed = int | np.random.Generator | None
"""An int seed, a ``numpy.random.Generator`` (shared between layers for a reproducible
net), or None for fresh entropy."""

_TYPES = (np.float32, np.float64)


def as_generator(seed: Seed, name: str = "seed") -> np.random.Generator:
    """A generator from an int seed, a Generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"{name}: expected an int, a numpy.random.Generator or None, got {seed!r}")


def draw_seed(generator: np.random.Generator) -> int:
    """A child seed for one parameter, drawn when the parameter is created."""
    return int(generator.integers(2**63))


def float_dtype(dtype: object) -> np.dtype:
    """float32 or float64, or a 16-bit storage type (float16, ``ml_dtypes.bfloat16``:
    computed in float32, :mod:`convpool.dtypes`); anything else is a TypeError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64 (or float16 / bfloat16 storage), "
                        f"got {dtype!r}") from None
    if resolved not in _TYPES and not is_half(resolved):
        raise TypeError(f"dtype: expected float32 or float64 (or float16 / bfloat16 storage), "
                        f"got {resolved}")
    return resolved


def uniform_initializer(fan_in: int):
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for conv and linear
    weights (Kaiming-uniform with ``a = sqrt(5)``) and for their biases."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def initialize(generator: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype):
        return generator.uniform(-bound, bound, size=shape).astype(dtype)

    return initialize


def normal_initializer(std: float, mean: float = 0.0):
    """``N(mean, std^2)``, e.g. ``std = sqrt(2 / fan_out)``: He (Kaiming) normal with
    ``mode="fan_out"``, torchvision's choice for ResNet and MobileNet convolutions."""

    def initialize(generator: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype):
        return generator.normal(mean, std, size=shape).astype(dtype)

    return initialize


def constant_initializer(value: float):
    """Every value ``value`` (zeros for a bias, ones for a batch norm's scale)."""

    def initialize(generator: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype):
        return np.full(shape, value, dtype=dtype)

    return initialize
