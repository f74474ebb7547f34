"""Half-precision storage: float16, and bfloat16 where ``ml_dtypes`` is installed.

convpool computes in float32 or float64. Arrays of a 16-bit float type are *stored* in
it: every convolution and pooling function computes them in float32 and returns its
floating-point results in the storage type, the float32 result rounded once (to nearest,
ties to even). Which storage type a call has follows NumPy's promotion of its data
arguments (``numpy.result_type``):

- float16 with float16 (or with an integer type NumPy promotes to float16, such as
  uint8): float16;
- bfloat16 with bfloat16 (or uint8/int8): bfloat16;
- a 16-bit float with float32 or float64: that wider type, computed as before (the
  16-bit operand is widened exactly);
- float16 with bfloat16: NumPy has no common type, a ``TypeError``.

Max pooling without indices and average pooling (2-D) read and write float16 in the
compiled kernels; every other path widens its 16-bit operands to float32 once on entry.

bfloat16 is recognised by its dtype (``ml_dtypes.bfloat16``): this module never imports
``ml_dtypes``, which is not a dependency of convpool.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["HALF_NAMES", "half_precision", "is_half", "storage_dtype"]

HALF_NAMES = ("float16", "bfloat16")
"""The 16-bit float types stored in memory and computed in float32."""

_FLOAT16 = np.dtype(np.float16)
ndarray = np.ndarray
_FLOAT32 = np.dtype(np.float32)

F = TypeVar("F", bound=Callable[..., Any])


def is_half(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is float16 or ``ml_dtypes.bfloat16``."""
    return dtype == _FLOAT16 or (dtype.kind == "V" and dtype.name == "bfloat16")


def _is_half_array(value: object) -> bool:
    # itemsize first: one attribute read settles the float32/float64 calls every layer makes
    return (isinstance(value, np.ndarray) and value.dtype.itemsize == 2
            and is_half(value.dtype))


def storage_dtype(arrays: Sequence[np.ndarray]) -> np.dtype:
    """The type a call's floating-point results are returned in when one of ``arrays``
    is a 16-bit float: ``numpy.result_type(*arrays)``, made at least a float (integers
    alone compute in float32). A ``TypeError`` when NumPy has no common type."""
    try:
        dtype = np.result_type(*arrays)
    except (TypeError, np.exceptions.DTypePromotionError):
        names = ", ".join(str(a.dtype) for a in arrays)
        raise TypeError(
            f"dtype: these inputs have no common type ({names}); float16 and bfloat16 "
            f"do not mix: convert one of them (to float32, or to the other)") from None
    if dtype.kind not in "fV":
        dtype = np.result_type(dtype, _FLOAT32)
    return dtype


def _widened(value: object) -> object:
    """A 16-bit float array as float32 (exact); anything else unchanged."""
    if not _is_half_array(value):
        return value
    if value.dtype == _FLOAT16 and value.flags.c_contiguous:
        from . import _core  # F16C, threaded: NumPy's astype is scalar, tens of times slower

        widened = np.empty(value.shape, _FLOAT32)
        _core.float16_to_float32(value, widened)
        return widened
    return value.astype(_FLOAT32)


def _rounded(result: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``result`` rounded once to ``dtype`` (to nearest, ties to even; inf beyond the range)."""
    if dtype == _FLOAT16 and result.dtype == _FLOAT32 and result.flags.c_contiguous:
        from . import _core

        rounded = np.empty(result.shape, _FLOAT16)
        _core.float32_to_float16(result, rounded)
        return rounded
    with np.errstate(over="ignore"):  # beyond the type's range: inf, as IEEE rounds
        return result.astype(dtype)


def _stored(result: object, dtype: np.dtype) -> object:
    """Floating-point results (an array, or the arrays of a tuple) in ``dtype``; integer
    results (max-pooling indices) unchanged."""
    if isinstance(result, tuple):
        return tuple(_stored(item, dtype) for item in result)
    if isinstance(result, np.ndarray) and result.dtype.kind == "f" and result.dtype != dtype:
        return _rounded(result, dtype)
    return result


def half_precision(*data: str, also: Sequence[str] = (), native_float16: bool = False,
                   route: Callable[[Callable, tuple, dict], Any] | None = None
                   ) -> Callable[[F], F]:
    """Give a float32/float64 function float16 and bfloat16 storage (see the module).

    Args:
        data: the parameters whose types decide the storage type (``x``, ``weight``,
            ``grad_output``, ...), as the function's own dtype rule reads them.
        also: further array parameters that are widened but do not take part in the
            rule (``bias``).
        native_float16: the function itself accepts float16 arrays (its kernels read
            them); float16 operands are then passed unchanged and its float32 results,
            if any, rounded to float16.
        route: asked first for a call with a 16-bit float operand, as
            ``route(function, args, kwargs)``: its result unless None (a kernel that
            computes in the 16-bit type itself, :func:`convpool.bf16_dot.bfloat16_route`).
            A hook here rather than one more decorator: a wrapper layer costs a
            microsecond on every call, 16-bit or not.

    A call without a 16-bit float operand runs the function unchanged. A function with
    an ``out=`` parameter writes the rounded result into the user's array, which must
    then have the storage type.
    """

    def decorate(function: F) -> F:
        parameters = list(inspect.signature(function).parameters)
        watched = tuple((name, parameters.index(name)) for name in (*data, *also))
        deciding = frozenset(data)
        has_out = "out" in parameters
        out_position = parameters.index("out") if has_out else -1

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            count = len(args)
            for name, position in watched:
                value = args[position] if position < count else kwargs.get(name)
                # inline, not _is_half_array: this loop runs on every call of every layer
                if isinstance(value, ndarray) and value.dtype.itemsize == 2 and is_half(
                        value.dtype):
                    break
            else:
                return function(*args, **kwargs)  # no 16-bit float: the common case
            if route is not None:
                result = route(function, args, kwargs)
                if result is not None:
                    return result
            return _call_half(function, args, kwargs, watched, deciding, native_float16,
                              out_position)

        return wrapper  # type: ignore[return-value]

    return decorate


def _call_half(function: Callable[..., Any], args: tuple, kwargs: dict,
               watched: tuple[tuple[str, int], ...], deciding: frozenset[str],
               native_float16: bool, out_position: int) -> Any:
    from ._args import as_array

    args = list(args)
    values = {}
    for name, position in watched:
        in_args = position < len(args)
        value = args[position] if in_args else kwargs.get(name)
        if value is None:
            continue
        if not isinstance(value, np.ndarray) and name in deciding:
            value = as_array(value, name)  # a list takes part in the rule as NumPy reads it
        values[name] = (value, position, in_args)
    dtype = storage_dtype([v for name, (v, _, _) in values.items()
                           if name in deciding and isinstance(v, np.ndarray)])
    keep = native_float16 and dtype == _FLOAT16
    for name, (value, position, in_args) in values.items():
        if keep and isinstance(value, np.ndarray) and value.dtype == _FLOAT16:
            continue
        widened = _widened(value)
        if widened is value:
            continue
        if in_args:
            args[position] = widened
        else:
            kwargs[name] = widened
    if not is_half(dtype):  # mixed with a wider type: the function's own rule decides
        return function(*args, **kwargs)
    out = None
    if out_position >= 0:
        if out_position < len(args):
            out, args[out_position] = args[out_position], None
        else:
            out = kwargs.pop("out", None)
    result = _stored(function(*args, **kwargs), dtype)
    if out is None:
        return result
    return _into(out, result, [v for v, _, _ in values.values() if isinstance(v, np.ndarray)])


def _into(out: object, result: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """``result`` copied into the user's ``out=`` array, checked as the functions check it."""
    from ._args import output_array

    target = output_array(out, result.shape, result.dtype, inputs)
    target[...] = result
    return target
