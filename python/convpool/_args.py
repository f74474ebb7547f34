"""Array arguments shared by the public functions: conversion of array-likes, shapes given
as tuples, ``out=`` arrays. Done once per call, in Python, so that the kernels receive only
contiguous float32/float64 arrays (the geometry is :mod:`convpool.geometry`'s)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from . import _buffers

# The geometry module owns sizes, limits and the dtype rule; they are importable from here
# too, where existing code looks for them.
from .geometry import (  # noqa: E402, F401
    INDEX_LIMIT,
    check_flag,
    check_index_range,
    compute_dtype,
    positive_int,
    positive_pair,
)


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


def contiguous(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A C-contiguous array of ``dtype`` (the same object when it already is one)."""
    if array.dtype == dtype and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array, dtype=dtype)


def check_shape_tuple(shape: object, name: str, ndims: Sequence[int]) -> tuple[int, ...]:
    """A shape given as a sequence of non-negative ints with one of the allowed lengths."""
    if type(shape) is tuple and len(shape) in ndims:  # the common case, without the generator
        for size in shape:  # and the isinstance checks against numbers.Integral (5 us)
            if type(size) is not int or size < 0:
                break
        else:
            return shape
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


def check_grad_shape(grad_output: np.ndarray, expected: tuple[int, ...]) -> None:
    """ValueError unless ``grad_output`` has the shape of the forward pass's output."""
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


def integer_array(indices: object, name: str = "indices") -> np.ndarray:
    """``indices`` if it is a NumPy integer array (as max pooling returns)."""
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        given = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
        raise TypeError(f"{name}: expected an integer array (int64, as max pooling returns), "
                        f"got {given}")
    return indices


def result_and_target(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype,
                      inputs: Sequence[np.ndarray], kernel_shape: tuple[int, ...]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(result, target)``: what the function returns (a new array of ``shape``, large ones
    from :mod:`convpool._buffers`, or the user's ``out`` once checked by
    :func:`output_array`) and the C-contiguous array of ``kernel_shape`` the kernel fills
    (the result itself, or a scratch copy for a non-contiguous ``out``; see
    :func:`deliver`)."""
    if out is None:
        target = _buffers.empty(kernel_shape, dtype)
        return (target if kernel_shape == shape else target.reshape(shape)), target
    out = output_array(out, shape, dtype, inputs)
    plain = out.view(np.ndarray)  # np.matrix and other subclasses reshape on their own terms
    if plain.flags.c_contiguous:
        return out, (plain if kernel_shape == shape else plain.reshape(kernel_shape))
    return out, np.empty(kernel_shape, dtype)


def deliver(result: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``result`` once it holds what the kernel wrote into ``target``."""
    if not np.may_share_memory(result, target):  # a scratch copy: the bounds tell
        result.view(np.ndarray)[...] = target.reshape(result.shape)
    return result


def computed_into(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype,
                  inputs: Sequence[np.ndarray], compute, kernel_shape: tuple[int, ...] | None = None
                  ) -> np.ndarray:
    """The result of ``compute(target)``, which fills a C-contiguous ``target`` of
    ``kernel_shape`` (default ``shape``), as :func:`result_and_target` provides it."""
    kernel_shape = shape if kernel_shape is None else kernel_shape
    if out is None:  # the common case, kept short
        target = _buffers.empty(kernel_shape, dtype)
        compute(target)
        return target if kernel_shape == shape else target.reshape(shape)
    result, target = result_and_target(out, shape, dtype, inputs, kernel_shape)
    compute(target)
    return deliver(result, target)
