"""NumPy arithmetic in plain IEEE terms, as the compiled kernels compute."""

from __future__ import annotations

import functools

import numpy as np


def ieee(function):
    """Run ``function``'s NumPy arithmetic in plain IEEE terms, as the compiled kernels do
    (inf - inf is NaN, without NumPy's warning, which the test suite makes an error)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return function(*args, **kwargs)

    return wrapper
