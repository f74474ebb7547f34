"""How the oracle reads its arguments: arrays, dtypes, integers, shapes and ``out=``.

The same rules as the library's (the test suite checks both refuse the same calls), but
the oracle's own code, so that a mistake in the library's argument handling shows up as a
disagreement.
"""

from __future__ import annotations

import numbers

import numpy as np


def as_array(value: object, name: str) -> np.ndarray:
    """``value`` as a NumPy array of real numbers (lists converted as ``numpy.asarray``)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name}: cannot be converted to a numeric array ({error})") from None
    if array.dtype.kind not in "uif":
        raise TypeError(f"{name}: dtype must be a real number type (float32, float64 or an "
                        f"integer), got {array.dtype}")
    return array


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """``numpy.result_type(*arrays, float32)``: float32 or float64, nothing else."""
    dtype = np.result_type(*arrays, np.float32)
    if dtype not in (np.float32, np.float64):
        given = ", ".join(str(array.dtype) for array in arrays)
        raise TypeError(f"dtype: convpool computes in float32 or float64; these inputs need "
                        f"{dtype} ({given})")
    return dtype


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value: object, name: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")
    return int(value)


def positive_pair(value: object, name: str) -> tuple[int, int]:
    """An int (both axes) or a pair of ints, each >= 1, as ``(height, width)``."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if not all(_is_int(item) for item in items):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(items) < 1:
        raise ValueError(f"{name}: must be >= 1, got {value!r}")
    return int(items[0]), int(items[1])


def shape_tuple(shape: object, name: str, ranks: tuple[int, ...]) -> tuple[int, ...]:
    """A shape argument: a tuple or list of ``len`` in ``ranks`` of ints >= 0."""
    if not isinstance(shape, (tuple, list)) or not all(_is_int(size) for size in shape):
        raise TypeError(f"{name}: expected a tuple of ints, got {shape!r}")
    if len(shape) not in ranks:
        allowed = " or ".join(str(rank) for rank in ranks)
        raise ValueError(f"{name}: expected {allowed} dimensions, got {tuple(shape)}")
    if any(size < 0 for size in shape):
        raise ValueError(f"{name}: sizes must be >= 0, got {tuple(shape)}")
    return tuple(int(size) for size in shape)


def output_array(out: object, shape: tuple[int, ...], dtype: np.dtype,
                 inputs: tuple[np.ndarray, ...]) -> np.ndarray:
    """A new result array, or the caller's ``out`` once it is known to fit."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(
            f"out: expected shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out: array is read-only")
    if any(np.shares_memory(out, array) for array in inputs):
        raise ValueError("out: must not share memory with an input")
    return out
