"""Plain IEEE arithmetic for the oracle, as the compiled kernels do it."""

from __future__ import annotations

import functools

import numpy as np


def ieee(function):
    """Run ``function`` without NumPy's warnings about IEEE results (inf - inf is NaN,
    inf * 0 is NaN, a float32 sum may overflow to inf, x / 0 is inf): they are the
    expected answers."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return function(*args, **kwargs)

    return wrapper
