"""Which kernel implementation a call runs.

Every operation has an ordered list of implementations in the compiled registry, fastest
first, each with a predicate saying which cases it supports (``docs/design.md``). These
functions resolve a call's arguments exactly as the call would and ask the registry,
without running anything.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from . import _core, conv, pool, python_kernels

__all__ = ["implementation", "implementations"]

# operation -> (the public function, whose signature and defaults apply; what the function
# hands the kernels, as (geometry, compute dtype))
_OPERATIONS: dict[str, tuple[Callable, Callable]] = {
    "conv2d": (conv.conv2d, conv._conv2d_problem),
    "conv2d_grad_input": (conv.conv2d_grad_input, conv._conv2d_grad_input_problem),
    "conv2d_grad_weight": (conv.conv2d_grad_weight, conv._conv2d_grad_weight_problem),
    "max_pool2d": (pool.max_pool2d, pool._max_pool2d_problem),
    "max_pool2d_grad_input": (pool.max_pool2d_grad_input, pool._max_pool2d_grad_input_problem),
    "avg_pool2d": (pool.avg_pool2d, pool._avg_pool2d_problem),
    "avg_pool2d_grad_input": (pool.avg_pool2d_grad_input, pool._avg_pool2d_grad_input_problem),
    "global_avg_pool2d": (pool.global_avg_pool2d, pool._global_pool2d_problem),
    "global_avg_pool2d_grad_input": (pool.global_avg_pool2d_grad_input,
                                     pool._global_avg_pool2d_grad_input_problem),
    "global_max_pool2d": (pool.global_max_pool2d, pool._global_pool2d_problem),
    "global_max_pool2d_grad_input": (pool.global_max_pool2d_grad_input,
                                     pool._global_max_pool2d_grad_input_problem),
    "channel_pool": (pool.channel_pool, pool._channel_pool_problem),
    "channel_pool_grad_input": (pool.channel_pool_grad_input,
                                pool._channel_pool_grad_input_problem),
}


def _problem(op: object, args: tuple, kwargs: dict):
    if not isinstance(op, str) or op not in _OPERATIONS:
        raise ValueError(f"op: expected one of {tuple(_OPERATIONS)}, got {op!r}")
    function, problem = _OPERATIONS[op]
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{op}: {error}") from None
    bound.apply_defaults()
    bound.arguments.pop("out", None)  # where the result would go does not choose the kernel
    geometry, dtype = problem(*bound.arguments.values())
    return geometry, np.dtype(dtype).name, bound.arguments


def _kernel_dtype(op: str, *args: object, **kwargs: object) -> str:
    """The element type of the registry list that ``op(*args, **kwargs)`` runs:
    ``"float32"``, ``"float64"`` or ``"float16"`` (max pooling without indices and average
    pooling read float16 NCHW arrays themselves; every other 16-bit call computes on a
    float32 copy)."""
    return _problem(op, args, kwargs)[1]


def implementation(op: str, *args, **kwargs) -> str:
    """The name of the implementation that ``op(*args, **kwargs)`` would run.

    ``op`` names a public function (``"conv2d"``, ``"conv2d_grad_input"``,
    ``"max_pool2d"``, ...); the arguments are that function's. Raises what the call would
    raise for bad arguments. Example: ``implementation("conv2d", x, w, padding=1)`` is
    ``"winograd"`` for a 3x3 float32 layer with 16 or more channels each way.
    """
    geometry, dtype, arguments = _problem(op, args, kwargs)
    operands = python_kernels.operands_of(op, geometry, arguments)
    if operands is not None:
        name = python_kernels.running(op, geometry, dtype == "float64", operands)
        if name is not None:
            return name
    return _core.chosen_implementation(op, dtype, geometry)


def implementations(op: str, *args: object, **kwargs: object) -> list[str]:
    """Every implementation of ``op`` that supports this call, in the order they are tried
    (the first is the one that runs), at the SIMD level in use. The Python
    implementations (``"separable"``, ``"fft"``: :mod:`convpool.python_kernels`) come
    first when their cost model chooses them, last when they support the call but the
    others are expected to be faster."""
    geometry, dtype, arguments = _problem(op, args, kwargs)
    names = list(_core.supporting_implementations(op, dtype, geometry))
    operands = python_kernels.operands_of(op, geometry, arguments)
    if operands is None:
        return names
    return python_kernels.supporting(op, geometry, dtype == "float64", operands, names)
