"""Pooling and its gradients: max, average, global and across channels.

Inputs are ``(N, C, H, W)`` or unbatched ``(C, H, W)``, any dtype NumPy can promote with
float32 to float32 or float64 (``numpy.result_type(x, float32)``: uint8, int8, int16 and
float32 compute in float32; int32, int64 and float64 in float64), any strides. Results are
new C-contiguous arrays of that dtype, in the rank of the input.

Each function resolves its arguments once (:func:`convpool.geometry.pool_geometry`), then
calls the compiled kernel with the resolved geometry. Semantics follow
``torch.nn.functional``; :mod:`convpool.reference.pool` is their executable form.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._args import (
    as_array,
    check_shape_tuple,
    computed_into,
    contiguous,
    deliver,
    result_and_target,
)
from .dtypes import half_precision
from .geometry import (
    Shape4,
    check_divisor_override,
    check_flag,
    check_index_range,
    compute_dtype,
    output_size,
    pool_geometry,
    pool_shape_4d,
    positive_int,
)

__all__ = [
    "avg_pool2d",
    "avg_pool2d_grad_input",
    "channel_pool",
    "channel_pool_grad_input",
    "global_avg_pool2d",
    "global_avg_pool2d_grad_input",
    "global_max_pool2d",
    "global_max_pool2d_grad_input",
    "max_pool2d",
    "max_pool2d_grad_input",
    "pooled_size",
]

def pooled_size(in_size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
                ceil_mode: bool) -> int:
    """Output size of a pooling window on one axis (:func:`convpool.geometry.output_size`)."""
    return output_size(in_size, kernel, stride, dilation, before, after, ceil_mode)


def _check_grad_shape(grad_output: np.ndarray, expected: tuple[int, ...]) -> None:
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


@half_precision("x", native_float16=True)
def max_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """2-D max pooling: the largest value of each window.

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size, dilation: an int or ``(height, width)``.
        stride: an int or a pair; ``None`` means ``kernel_size``.
        padding: int, ``(ph, pw)``, ``((top, bottom), (left, right))``, ``"valid"`` or
            ``"same"`` (:func:`convpool.padding.resolve_padding`). Padded pixels never
            win. Explicit padding must be at most ``kernel_size // 2`` per side.
        ceil_mode: round the output size up (PyTorch's rule: the last window starts inside
            the input or the padding before it).
        return_indices: also return the position of each maximum.
        out: optional array of the output's exact shape and dtype to write into; with
            ``return_indices`` a pair ``(values, indices)``, ``indices`` int64.

    Returns:
        ``y`` of shape ``(N, C, OH, OW)`` (or ``(C, OH, OW)``), or ``(y, indices)`` with
        int64 ``indices`` into each flattened ``H * W`` input plane, as PyTorch. On ties
        the first maximum in row-major order wins; a window holding NaN gives NaN and
        the index of its first NaN.
    """
    x, setup, return_indices, dtype = _max_pool2d_arguments(
        x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    if not return_indices and x.dtype == np.float16:
        dtype = x.dtype  # the float16 kernel: float16 in memory, float32 inside
    x4 = contiguous(x, dtype).reshape(setup.input_shape)
    shape = setup.user_shape(setup.output_shape)
    if not return_indices:
        return computed_into(
            out, shape, dtype, (x,),
            lambda y4: _core.max_pool2d_forward(x4, y4, None, setup.kernel_geometry),
            setup.output_shape)
    values_out, indices_out = _pair_out(out)
    y, y4 = result_and_target(values_out, shape, dtype, (x,), setup.output_shape)
    indices, indices4 = result_and_target(indices_out, shape, np.dtype(np.int64), (x, y),
                                          setup.output_shape)
    _core.max_pool2d_forward(x4, y4, indices4, setup.kernel_geometry)
    return deliver(y, y4), deliver(indices, indices4)


def _pair_out(out: object) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``max_pool2d``'s ``out`` with ``return_indices``: None or ``(values, indices)``."""
    if out is None:
        return None, None
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(
            f"out: with return_indices=True expected a pair (values, indices) of arrays, got "
            f"{type(out).__name__}")
    return out




@half_precision("grad_output")
def max_pool2d_grad_input(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``, of shape ``input_shape``.

    Each ``grad_output`` value is added to the input pixel its index names (overlapping
    windows accumulate). ``indices`` are those :func:`max_pool2d` returned (any integer
    dtype; each in ``[0, H * W)``), with the shape of ``grad_output``.
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, indices, input_shape, geometry, dtype = _max_pool2d_grad_input_arguments(
        grad_output, indices, input_shape)
    shape4 = pool_shape_4d(input_shape, "input_shape")
    out_shape4 = shape4[:2] + grad_output.shape[-2:]
    gy4 = contiguous(grad_output, dtype).reshape(out_shape4)
    indices4 = np.ascontiguousarray(indices, dtype=np.int64).reshape(out_shape4)
    return computed_into(out, input_shape, dtype, (grad_output, indices),
                         lambda grad: _core.max_pool2d_grad_input(gy4, indices4, grad), shape4)


def _max_pool2d_grad_input_arguments(grad_output, indices, input_shape):
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    n, c, h, w = pool_shape_4d(input_shape, "input_shape")
    grad_output = as_array(grad_output, "grad_output")
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        given = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
        raise TypeError(
            f"indices: expected an integer array (int64, as max_pool2d returns), got {given}"
        )
    if grad_output.ndim != len(input_shape) or grad_output.shape[:-2] != input_shape[:-2]:
        raise ValueError(
            f"grad_output: expected shape {input_shape[:-2]} + (OH, OW) to match input_shape "
            f"{input_shape}, got {grad_output.shape}"
        )
    if indices.shape != grad_output.shape:
        raise ValueError(
            f"indices: expected the shape of grad_output {grad_output.shape}, got {indices.shape}"
        )
    if h < 1 or w < 1:
        raise ValueError(f"input_shape: H and W must be >= 1, got {input_shape}")
    check_index_range(grad_output.shape, "grad_output")
    oh, ow = grad_output.shape[-2:]
    # the indices say where each gradient goes: only the plane sizes matter
    geometry = _core.PoolGeometry(n * c, _core.WindowAxis(h, oh, 1, 1, 1, 0, 0),
                                  _core.WindowAxis(w, ow, 1, 1, 1, 0, 0))
    return grad_output, indices, input_shape, geometry, compute_dtype(grad_output)


def _divisor(divisor_override: object) -> int:
    """0 for none, else the nonzero int to divide by."""
    return check_divisor_override(divisor_override) or 0


@half_precision("x", native_float16=True)
def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """2-D average pooling: the mean of each window.

    Arguments as :func:`max_pool2d` (no dilation). The divisor is ``divisor_override`` if
    given, else the number of window pixels inside the input plus padding
    (``count_include_pad=True``; a ``ceil_mode`` window hanging past the padding counts
    only its part inside, PyTorch's rule) or inside the input alone (``False``).
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).

    Returns:
        ``(N, C, OH, OW)`` (or ``(C, OH, OW)``).
    """
    x, setup, count_include_pad, divisor, dtype = _avg_pool2d_arguments(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if x.dtype == np.float16:
        dtype = x.dtype  # the float16 kernel: float16 in memory, float32 inside
    x4 = contiguous(x, dtype).reshape(setup.input_shape)
    return computed_into(
        out, setup.user_shape(setup.output_shape), dtype, (x,),
        lambda y4: _core.avg_pool2d_forward(x4, y4, setup.kernel_geometry,
                                            count_include_pad=count_include_pad,
                                            divisor_override=divisor),
        setup.output_shape)




@half_precision("grad_output")
def avg_pool2d_grad_input(
    grad_output: np.ndarray,
    input_shape: tuple[int, ...],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``, of shape ``input_shape``:
    each output gradient divided by its divisor and added to every input pixel of its
    window. ``out`` as :func:`avg_pool2d`'s."""
    grad_output, input_shape, setup, count_include_pad, divisor, dtype = (
        _avg_pool2d_grad_input_arguments(grad_output, input_shape, kernel_size, stride, padding,
                                         ceil_mode, count_include_pad, divisor_override))
    gy4 = contiguous(grad_output, dtype).reshape(setup.output_shape)
    return computed_into(
        out, input_shape, dtype, (grad_output,),
        lambda grad: _core.avg_pool2d_grad_input(gy4, grad, setup.kernel_geometry,
                                                 count_include_pad=count_include_pad,
                                                 divisor_override=divisor),
        setup.input_shape)


def _global_shape(shape: tuple[int, ...], name: str) -> Shape4:
    shape4 = pool_shape_4d(shape, name)
    if shape4[2] * shape4[3] < 1:
        raise ValueError(f"{name}: global pooling needs H and W >= 1, got shape {tuple(shape)}")
    return shape4


def _global_output_shape(shape: tuple[int, ...], keepdims: bool) -> tuple[int, ...]:
    return tuple(shape[:-2]) + ((1, 1) if keepdims else ())


def _global_grad(grad_output: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """``grad_output`` as ``(N, C)``: either output form (keepdims or not) is accepted."""
    accepted = [_global_output_shape(input_shape, keepdims) for keepdims in (False, True)]
    if grad_output.shape not in accepted:
        raise ValueError(
            f"grad_output: expected shape {accepted[0]} or {accepted[1]} for input shape "
            f"{tuple(input_shape)}, got {grad_output.shape}"
        )
    return grad_output


@half_precision("x")
def global_avg_pool2d(x: np.ndarray, keepdims: bool = False,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Mean of each ``H x W`` plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    (``(C,)`` / ``(C, 1, 1)`` for an unbatched input). Planes are summed in double.
    ``out`` as :func:`avg_pool2d`'s."""
    x, shape4, keepdims, dtype = _global_pool2d_arguments(x, keepdims)
    x4 = contiguous(x, dtype).reshape(shape4)
    return computed_into(out, _global_output_shape(x.shape, keepdims), dtype, (x,),
                         lambda y: _core.global_avg_pool2d_forward(x4, y), shape4[:2])


@half_precision("grad_output")
def global_avg_pool2d_grad_input(
    grad_output: np.ndarray, input_shape: tuple[int, ...], out: np.ndarray | None = None
) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d`: each plane receives its ``grad_output / (H * W)``.

    ``grad_output`` may have either output shape (with or without ``keepdims``).
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, input_shape, shape4, dtype = _global_avg_pool2d_grad_input_arguments(
        grad_output, input_shape)
    gy = contiguous(grad_output, dtype).reshape(shape4[:2])
    return computed_into(out, input_shape, dtype, (grad_output,),
                         lambda grad: _core.global_avg_pool2d_grad_input(gy, grad), shape4)


@half_precision("x")
def global_max_pool2d(x: np.ndarray, keepdims: bool = False,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Maximum of each ``H x W`` plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``.

    A plane holding NaN gives NaN. ``out`` as :func:`avg_pool2d`'s."""
    x, shape4, keepdims, dtype = _global_pool2d_arguments(x, keepdims)
    x4 = contiguous(x, dtype).reshape(shape4)
    return computed_into(out, _global_output_shape(x.shape, keepdims), dtype, (x,),
                         lambda y: _core.global_max_pool2d_forward(x4, y, None), shape4[:2])


@half_precision("grad_output", "x")
def global_max_pool2d_grad_input(grad_output: np.ndarray, x: np.ndarray,
                                  out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`global_max_pool2d` with respect to ``x`` (the forward input).

    Each plane's gradient goes to its maximum, found again in ``x`` as the forward finds
    it: the first occurrence in row-major order on ties, the first NaN if there is one.
    ``grad_output`` may have either output shape (with or without ``keepdims``).
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, x, shape4, dtype = _global_max_pool2d_grad_input_arguments(grad_output, x)
    gy = contiguous(grad_output, dtype).reshape(shape4[:2])
    x4 = contiguous(x, dtype).reshape(shape4)
    return computed_into(out, x.shape, dtype, (grad_output, x),
                         lambda grad: _core.global_max_pool2d_grad_input(gy, x4, grad), shape4)


_CHANNEL_MODES = ("max", "avg")


def _channelpool_geometry(shape: tuple[int, ...], size: object, mode: object, name: str):
    shape4 = pool_shape_4d(shape, name)
    size = positive_int(size, "size")
    if not isinstance(mode, str) or mode not in _CHANNEL_MODES:
        raise ValueError(f"mode: expected one of {_CHANNEL_MODES}, got {mode!r}")
    channels = shape4[1]
    if channels % size:
        raise ValueError(
            f"size: {size} must divide the number of channels {channels} ({name} shape "
            f"{tuple(shape)})"
        )
    out4 = (shape4[0], channels // size, shape4[2], shape4[3])
    return shape4, out4, size, mode


@half_precision("x")
def channel_pool(x: np.ndarray, size: int, mode: str = "max",
                 out: np.ndarray | None = None) -> np.ndarray:
    """Pooling across channels (maxout): the max or mean of each group of ``size``
    consecutive channels, pixel by pixel.

    ``(N, C, H, W) -> (N, C // size, H, W)`` (or ``(C, H, W) -> (C // size, H, W)``);
    ``size`` must divide ``C``. ``mode`` is ``"max"`` (NaN propagates) or ``"avg"``.
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    x, shape4, out4, size, mode, dtype = _channel_pool_arguments(x, size, mode)
    x4 = contiguous(x, dtype).reshape(shape4)
    kernel_mode = getattr(_core.ChannelPoolMode, mode)
    return computed_into(out, out4[4 - x.ndim :], dtype, (x,),
                         lambda y: _core.channel_pool_forward(x4, y, size=size, mode=kernel_mode),
                         out4)


@half_precision("grad_output", "x")
def channel_pool_grad_input(
    grad_output: np.ndarray, x: np.ndarray, size: int, mode: str = "max",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`channel_pool` with respect to ``x`` (the forward input).

    ``"max"``: each gradient goes to the winning channel of its group, found again in
    ``x`` (the first maximum on ties, the first NaN if there is one). ``"avg"``: each
    gradient is divided by ``size`` among the group (only the shape of ``x`` is used).
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, x, shape4, out4, size, mode, dtype = _channel_pool_grad_input_arguments(
        grad_output, x, size, mode)
    gy4 = contiguous(grad_output, dtype).reshape(out4)
    x4 = contiguous(x, dtype).reshape(shape4)
    kernel_mode = getattr(_core.ChannelPoolMode, mode)
    return computed_into(
        out, x.shape, dtype, (grad_output, x),
        lambda grad: _core.channel_pool_grad_input(gy4, x4, grad, size=size, mode=kernel_mode),
        shape4)



# Each function's arguments resolved once, by the function itself and by
# convpool.implementation (which fills in the public functions' defaults and asks the
# registry which implementation the resolved geometry would run).

def _max_pool2d_arguments(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x = as_array(x, "x")
    setup = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return x, setup, check_flag(return_indices, "return_indices"), compute_dtype(x)


def _avg_pool2d_arguments(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override):
    x = as_array(x, "x")
    setup = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    count_include_pad = check_flag(count_include_pad, "count_include_pad")
    return x, setup, count_include_pad, _divisor(divisor_override), compute_dtype(x)


def _avg_pool2d_grad_input_arguments(grad_output, input_shape, kernel_size, stride, padding,
                                     ceil_mode, count_include_pad, divisor_override):
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    setup = pool_geometry(input_shape, kernel_size, stride, padding, 1, ceil_mode, "input_shape")
    count_include_pad = check_flag(count_include_pad, "count_include_pad")
    divisor = _divisor(divisor_override)
    _check_grad_shape(grad_output, setup.user_shape(setup.output_shape))
    return (grad_output, input_shape, setup, count_include_pad, divisor,
            compute_dtype(grad_output))


def _global_pool2d_arguments(x, keepdims):
    x = as_array(x, "x")
    shape4 = _global_shape(x.shape, "x")
    return x, shape4, check_flag(keepdims, "keepdims"), compute_dtype(x)


def _global_avg_pool2d_grad_input_arguments(grad_output, input_shape):
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    shape4 = _global_shape(input_shape, "input_shape")
    grad_output = _global_grad(as_array(grad_output, "grad_output"), input_shape)
    return grad_output, input_shape, shape4, compute_dtype(grad_output)


def _global_max_pool2d_grad_input_arguments(grad_output, x):
    x = as_array(x, "x")
    shape4 = _global_shape(x.shape, "x")
    grad_output = _global_grad(as_array(grad_output, "grad_output"), x.shape)
    return grad_output, x, shape4, compute_dtype(grad_output, x)


def _channel_pool_arguments(x, size, mode):
    x = as_array(x, "x")
    shape4, out4, size, mode = _channelpool_geometry(x.shape, size, mode, "x")
    return x, shape4, out4, size, mode, compute_dtype(x)


def _channel_pool_grad_input_arguments(grad_output, x, size, mode):
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    shape4, out4, size, mode = _channelpool_geometry(x.shape, size, mode, "x")
    _check_grad_shape(grad_output, out4[4 - x.ndim :])
    return grad_output, x, shape4, out4, size, mode, compute_dtype(grad_output, x)


def _max_pool2d_problem(*args):
    _, setup, _, dtype = _max_pool2d_arguments(*args)
    return setup.kernel_geometry, dtype


def _max_pool2d_grad_input_problem(*args):
    *_, geometry, dtype = _max_pool2d_grad_input_arguments(*args)
    return geometry, dtype


def _avg_pool2d_problem(*args):
    _, setup, _, _, dtype = _avg_pool2d_arguments(*args)
    return setup.kernel_geometry, dtype


def _avg_pool2d_grad_input_problem(*args):
    _, _, setup, _, _, dtype = _avg_pool2d_grad_input_arguments(*args)
    return setup.kernel_geometry, dtype


def _planes(shape4: Shape4) -> _core.GlobalPoolShape:
    n, c, h, w = shape4
    return _core.GlobalPoolShape(n * c, h * w)


def _global_pool2d_problem(*args):
    _, shape4, _, dtype = _global_pool2d_arguments(*args)
    return _planes(shape4), dtype


def _global_avg_pool2d_grad_input_problem(*args):
    *_, shape4, dtype = _global_avg_pool2d_grad_input_arguments(*args)
    return _planes(shape4), dtype


def _global_max_pool2d_grad_input_problem(*args):
    *_, shape4, dtype = _global_max_pool2d_grad_input_arguments(*args)
    return _planes(shape4), dtype


def _channels(shape4: Shape4, size: int) -> _core.ChannelPoolShape:
    n, c, h, w = shape4
    return _core.ChannelPoolShape(n, c, size, h * w)


def _channel_pool_problem(*args):
    _, shape4, _, size, _, dtype = _channel_pool_arguments(*args)
    return _channels(shape4, size), dtype


def _channel_pool_grad_input_problem(*args):
    _, _, shape4, _, size, _, dtype = _channel_pool_grad_input_arguments(*args)
    return _channels(shape4, size), dtype
