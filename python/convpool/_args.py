"""Argument normalisation shared by the public functions: done once per call, in Python,
so that the kernels receive only contiguous float32/float64 arrays and plain ints."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

Pair = tuple[int, int]

INDEX_LIMIT = 2**62
"""Every size, stride, dilation and padding, and every product of an array's sizes, stays
below this: the kernels' int64 index arithmetic (sums of a few such terms) cannot overflow."""


def check_index_range(shape: Sequence[int], name: str) -> None:
    """ValueError unless the product of ``shape``'s sizes (zeros counted as ones: the kernels
    multiply leading sizes before they see the zero) is below :data:`INDEX_LIMIT`."""
    count = 1
    for size in shape:
        count *= max(int(size), 1)
    if count >= INDEX_LIMIT:
        raise ValueError(
            f"{name}: shape {tuple(int(s) for s in shape)} is too large for 64-bit index "
            f"arithmetic (the product of its sizes must be < 2**62)"
        )


def _check_below_limit(value: int, name: str, given: object) -> None:
    if value >= INDEX_LIMIT:
        raise ValueError(f"{name}: must be < 2**62 (64-bit index arithmetic), got {given!r}")


def positive_pair(value: object, name: str) -> Pair:
    """An int or a pair of ints, each >= 1, as ``(height, width)``."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
        if item < 1:
            raise ValueError(f"{name}: must be >= 1, got {value!r}")
        _check_below_limit(item, name, value)
    return int(items[0]), int(items[1])


def positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")
    _check_below_limit(value, name, value)
    return int(value)


def as_array(value: object, name: str) -> np.ndarray:
    """Arrays pass through; lists and scalars are converted as ``numpy.asarray`` would."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise TypeError(f"{name}: cannot be converted to a numeric array ({error})") from None
    if array.dtype.kind not in "uif":
        raise TypeError(
            f"{name}: dtype must be a real number type (float32, float64 or an integer), "
            f"got {array.dtype}"
        )
    return array


_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtype(*arrays: np.ndarray) -> np.dtype:
    """``numpy.result_type(*arrays, float32)``, which must be float32 or float64."""
    first = arrays[0].dtype
    # NumPy's own float32/float64 dtype objects, compared by identity: the common case in
    # a few tens of nanoseconds (an equal dtype that is another object takes the long way).
    if first is _NATIVE[0] or first is _NATIVE[1]:
        for array in arrays[1:]:
            if array.dtype is not first:
                break
        else:
            return first
    dtype = np.result_type(*arrays, np.float32)
    if dtype not in (np.float32, np.float64):
        raise TypeError(
            f"dtype: convpool computes in float32 or float64; these inputs need {dtype} "
            f"({', '.join(str(a.dtype) for a in arrays)})"
        )
    return dtype


def contiguous(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A C-contiguous array of ``dtype`` (the same object when it already is one)."""
    if array.dtype == dtype and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array, dtype=dtype)


def check_shape_tuple(shape: object, name: str, ndims: Sequence[int]) -> tuple[int, ...]:
    """A shape given as a sequence of non-negative ints with one of the allowed lengths."""
    if not isinstance(shape, (tuple, list)) or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in shape
    ):
        raise TypeError(f"{name}: expected a tuple of ints, got {shape!r}")
    if len(shape) not in ndims:
        allowed = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name}: expected {allowed} dimensions, got {tuple(shape)}")
    if any(s < 0 for s in shape):
        raise ValueError(f"{name}: sizes must be >= 0, got {tuple(shape)}")
    return tuple(int(s) for s in shape)


def output_array(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype,
                 inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Check a user's ``out=`` array, or make a new one."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(
            f"out: expected shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError("out: array is read-only")
    for array in inputs:
        if np.shares_memory(out, array):
            raise ValueError("out: must not share memory with an input")
    return out
