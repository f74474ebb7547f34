"""Pooling and its gradients: max, average, global and across channels.

Inputs are ``(N, C, H, W)`` or unbatched ``(C, H, W)`` (``layout="NHWC"``: ``(N, H, W, C)``
or ``(H, W, C)``, channels last, read by kernels of their own), any dtype NumPy can promote
with float32 to float32 or float64 (``numpy.result_type(x, float32)``: uint8, int8, int16 and
float32 compute in float32; int32, int64 and float64 in float64), any strides. Results are
new C-contiguous arrays of that dtype, in the rank and layout of the input; an NCHW-shaped
input stored channels-last (``x_nhwc.transpose(0, 3, 1, 2)``) is pooled by the NHWC kernels
without a copy and its result comes back in the same memory format, as PyTorch's
``channels_last`` tensors do.

Each function resolves its arguments once (:func:`convpool.geometry.pool_geometry`), then
calls the compiled kernel with the resolved geometry. Semantics follow
``torch.nn.functional``; :mod:`convpool.reference.pool` is their executable form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from ._args import (
    as_array,
    check_shape_tuple,
    computed_into,
    contiguous,
    output_array,
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
from .layout import check_layout, from_nchw_shape, nchw_shape, stored_channels_last

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

@dataclass(frozen=True)
class _Stored:
    """How the kernels see one call's arrays.

    ``layout`` is the layout the kernels read; ``view`` says that the caller's arrays are
    NCHW-shaped views of channels-last memory (read through their NHWC view, results
    returned as NCHW-shaped views of NHWC arrays); ``ndim`` is the caller's rank.
    """

    layout: str
    view: bool
    ndim: int

    @property
    def channels_last(self) -> bool:
        return self.layout == "NHWC"

    def kernel_array(self, array: np.ndarray) -> np.ndarray:
        """A caller's array (batched or not) as the kernels index it, without copying."""
        return array.transpose(0, 2, 3, 1) if self.view else array

    def kernel_shape(self, shape4: tuple[int, ...]) -> tuple[int, ...]:
        """A 4-D NCHW shape in the kernels' layout."""
        if self.layout == "NCHW" and type(shape4) is tuple:  # the common case, kept short
            return shape4
        return from_nchw_shape(tuple(shape4), self.layout)

    def result(self, array4: np.ndarray) -> np.ndarray:
        """A 4-D result in the kernels' layout, as the caller sees it."""
        if self.view:
            return array4.transpose(0, 3, 1, 2)
        return array4.reshape(array4.shape[4 - self.ndim :])


# Every _Stored a call can have, made once: building one costs a microsecond per call.
_STORED = {(layout, view, ndim): _Stored(layout, view, ndim)
           for layout in ("NCHW", "NHWC") for view in (False, True) for ndim in (3, 4)}


def _stored(array: np.ndarray, layout: object, name: str) -> _Stored:
    """The layout ``array`` (a pooling input, 3-D or 4-D in ``layout``) is read in."""
    layout = check_layout(layout)
    ndim = array.ndim
    if ndim != 3 and ndim != 4:
        expected = "(N, C, H, W) or (C, H, W)" if layout == "NCHW" else "(N, H, W, C) or (H, W, C)"
        raise ValueError(f"{name}: expected {expected} for layout {layout!r}, got shape "
                         f"{array.shape}")
    if layout == "NCHW" and ndim == 4 and stored_channels_last(array):
        return _STORED["NHWC", True, 4]
    return _STORED[layout, False, ndim]


def _shape_stored(shape: tuple[int, ...], layout: object, name: str) -> _Stored:
    """:func:`_stored` for a result given only by its shape (``input_shape``): NCHW-shaped
    views are recognised on the arrays, not on shapes."""
    layout = check_layout(layout)
    if len(shape) not in (3, 4):
        expected = "(N, C, H, W) or (C, H, W)" if layout == "NCHW" else "(N, H, W, C) or (H, W, C)"
        raise ValueError(f"{name}: expected {expected} for layout {layout!r}, got {shape}")
    return _STORED[layout, False, len(shape)]


def _kernel_geometry(setup, stored: _Stored) -> _core.PoolGeometry:
    """The resolved geometry with the layout the kernels read."""
    g = setup.kernel_geometry
    if not stored.channels_last:
        return g
    return _core.PoolGeometry(g.planes, g.rows, g.cols, channels_last=True,
                              channels=setup.input_shape[1])


def _result_and_target(out: np.ndarray | None, stored: _Stored, kernel_shape4: tuple[int, ...],
                       dtype: np.dtype, inputs: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``(result, target)`` as :func:`convpool._args.result_and_target`, for a kernel that
    fills a C-contiguous 4-D ``target`` in the kernels' layout (``kernel_shape4``) while the
    result (and ``out``) has the caller's shape: for an NCHW-shaped view of channels-last
    memory, an NCHW-shaped view of an NHWC array (or ``out`` itself)."""
    if not stored.view:
        return result_and_target(out, kernel_shape4[4 - stored.ndim :], dtype, inputs,
                                 kernel_shape4)
    if out is None:
        target = np.empty(kernel_shape4, dtype)
        return stored.result(target), target
    n, h, w, c = kernel_shape4
    out = output_array(out, (n, c, h, w), dtype, inputs)
    nhwc = out.view(np.ndarray).transpose(0, 2, 3, 1)
    return out, (nhwc if nhwc.flags.c_contiguous else np.empty(kernel_shape4, dtype))


def _deliver(stored: _Stored, result: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``result`` once it holds what the kernel wrote into ``target``."""
    if not np.may_share_memory(result, target):  # a scratch copy
        result.view(np.ndarray)[...] = stored.result(target)
    return result


def _into(out: np.ndarray | None, stored: _Stored, kernel_shape4: tuple[int, ...],
          dtype: np.dtype, inputs: tuple, compute) -> np.ndarray:
    """The result of ``compute(target)`` (see :func:`_result_and_target`)."""
    if not stored.view:  # the result is the target, reshaped: the common case, kept short
        return computed_into(out, kernel_shape4[4 - stored.ndim :], dtype, inputs, compute,
                             kernel_shape4)
    result, target = _result_and_target(out, stored, kernel_shape4, dtype, inputs)
    compute(target)
    return _deliver(stored, result, target)


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
    layout: str = "NCHW",
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
            ``return_indices`` a pair ``(values, indices)``, ``indices`` int64. Shapes are
            in the call's layout.
        layout: ``"NCHW"`` or ``"NHWC"`` (``x`` is ``(N, H, W, C)`` or ``(H, W, C)``, and so
            are the results).

    Returns:
        ``y`` of shape ``(N, C, OH, OW)`` (or ``(C, OH, OW)``), or ``(y, indices)`` with
        int64 ``indices`` into each flattened ``H * W`` input plane, as PyTorch. On ties
        the first maximum in row-major order wins; a window holding NaN gives NaN and
        the index of its first NaN. The indices are the same in either layout.
    """
    x, setup, return_indices, dtype, stored = _max_pool2d_arguments(
        x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout)
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(setup.input_shape))
    out_shape = stored.kernel_shape(setup.output_shape)
    geometry = _kernel_geometry(setup, stored)
    if not return_indices:
        return _into(out, stored, out_shape, dtype, (x,),
                     lambda y4: _core.max_pool2d_forward(x4, y4, None, geometry))
    values_out, indices_out = _pair_out(out)
    y, y4 = _result_and_target(values_out, stored, out_shape, dtype, (x,))
    indices, indices4 = _result_and_target(indices_out, stored, out_shape, np.dtype(np.int64),
                                           (x, y))
    _core.max_pool2d_forward(x4, y4, indices4, geometry)
    return _deliver(stored, y, y4), _deliver(stored, indices, indices4)


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
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``, of shape ``input_shape``.

    Each ``grad_output`` value is added to the input pixel its index names (overlapping
    windows accumulate). ``indices`` are those :func:`max_pool2d` returned (any integer
    dtype; each in ``[0, H * W)``), with the shape of ``grad_output``. With
    ``layout="NHWC"``, ``grad_output``, ``indices``, ``input_shape`` and the result are
    channels last. ``out``: optional array of the result's shape (in ``layout``) and dtype
    to write into (as :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, indices, shape4, out_shape4, geometry, dtype, stored = (
        _max_pool2d_grad_input_arguments(grad_output, indices, input_shape, layout))
    out_kernel_shape = stored.kernel_shape(out_shape4)
    gy4 = contiguous(stored.kernel_array(grad_output), dtype).reshape(out_kernel_shape)
    indices4 = np.ascontiguousarray(stored.kernel_array(indices), dtype=np.int64).reshape(
        out_kernel_shape)
    return _into(out, stored, stored.kernel_shape(shape4), dtype, (grad_output, indices),
                 lambda grad: _core.max_pool2d_grad_input(
                     gy4, indices4, grad, channels_last=stored.channels_last))


def _max_pool2d_grad_input_arguments(grad_output, indices, input_shape, layout):
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    stored = _shape_stored(input_shape, layout, "input_shape")
    if stored.layout == "NCHW" and grad_output.ndim == 4 and stored_channels_last(grad_output):
        stored = _STORED["NHWC", True, 4]
    layout = check_layout(layout)  # the caller's: checked in NCHW terms below
    input_shape_given = input_shape
    input_shape = nchw_shape(input_shape, layout)
    n, c, h, w = pool_shape_4d(input_shape, "input_shape")
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        given = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
        raise TypeError(
            f"indices: expected an integer array (int64, as max_pool2d returns), got {given}"
        )
    grad_nchw = nchw_shape(grad_output.shape, layout)
    if grad_output.ndim != len(input_shape) or grad_nchw[:-2] != input_shape[:-2]:
        expected = (f"{input_shape_given[:-2]} + (OH, OW)" if layout == "NCHW"
                    else f"{input_shape_given[:-3]} + (OH, OW, {c})")
        raise ValueError(
            f"grad_output: expected shape {expected} to match input_shape "
            f"{input_shape_given}, got {grad_output.shape}"
        )
    if indices.shape != grad_output.shape:
        raise ValueError(
            f"indices: expected the shape of grad_output {grad_output.shape}, got {indices.shape}"
        )
    if h < 1 or w < 1:
        raise ValueError(f"input_shape: H and W must be >= 1, got {input_shape_given}")
    check_index_range(grad_output.shape, "grad_output")
    oh, ow = grad_nchw[-2:]
    # the indices say where each gradient goes: only the plane sizes matter
    geometry = _core.PoolGeometry(n * c, _core.WindowAxis(h, oh, 1, 1, 1, 0, 0),
                                  _core.WindowAxis(w, ow, 1, 1, 1, 0, 0),
                                  channels_last=stored.channels_last, channels=max(c, 1))
    return (grad_output, indices, (n, c, h, w), (n, c, oh, ow), geometry,
            compute_dtype(grad_output), stored)


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
    layout: str = "NCHW",
) -> np.ndarray:
    """2-D average pooling: the mean of each window.

    Arguments as :func:`max_pool2d` (no dilation). The divisor is ``divisor_override`` if
    given, else the number of window pixels inside the input plus padding
    (``count_include_pad=True``; a ``ceil_mode`` window hanging past the padding counts
    only its part inside, PyTorch's rule) or inside the input alone (``False``).
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).

    Returns:
        ``(N, C, OH, OW)`` (or ``(C, OH, OW)``); ``(N, OH, OW, C)`` (or ``(OH, OW, C)``)
        with ``layout="NHWC"``.
    """
    x, setup, count_include_pad, divisor, dtype, stored = _avg_pool2d_arguments(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, layout)
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(setup.input_shape))
    geometry = _kernel_geometry(setup, stored)
    return _into(out, stored, stored.kernel_shape(setup.output_shape), dtype, (x,),
                 lambda y4: _core.avg_pool2d_forward(x4, y4, geometry,
                                                     count_include_pad=count_include_pad,
                                                     divisor_override=divisor))




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
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``, of shape ``input_shape``:
    each output gradient divided by its divisor and added to every input pixel of its
    window. With ``layout="NHWC"``, ``grad_output``, ``input_shape`` and the result are
    channels last. ``out`` as :func:`avg_pool2d`'s."""
    grad_output, input_shape, setup, count_include_pad, divisor, dtype, stored = (
        _avg_pool2d_grad_input_arguments(grad_output, input_shape, kernel_size, stride, padding,
                                         ceil_mode, count_include_pad, divisor_override, layout))
    gy4 = contiguous(stored.kernel_array(grad_output), dtype).reshape(
        stored.kernel_shape(setup.output_shape))
    geometry = _kernel_geometry(setup, stored)
    return _into(out, stored, stored.kernel_shape(setup.input_shape), dtype, (grad_output,),
                 lambda grad: _core.avg_pool2d_grad_input(gy4, grad, geometry,
                                                          count_include_pad=count_include_pad,
                                                          divisor_override=divisor))


def _global_shape(shape: tuple[int, ...], name: str, layout: str = "NCHW") -> Shape4:
    """The NCHW 4-D shape of a global pooling input given in ``layout``."""
    shape4 = pool_shape_4d(nchw_shape(tuple(shape), layout), name)
    if shape4[2] * shape4[3] < 1:
        raise ValueError(f"{name}: global pooling needs H and W >= 1, got shape {tuple(shape)}")
    return shape4


def _global_output_shape(shape: tuple[int, ...], keepdims: bool, layout: str = "NCHW"
                         ) -> tuple[int, ...]:
    if layout == "NHWC":
        return tuple(shape[:-3]) + ((1, 1, shape[-1]) if keepdims else (shape[-1],))
    return tuple(shape[:-2]) + ((1, 1) if keepdims else ())


def _global_grad(grad_output: np.ndarray, input_shape: tuple[int, ...], layout: str) -> np.ndarray:
    """``grad_output`` as ``(N, C)``: either output form (keepdims or not) is accepted."""
    accepted = [_global_output_shape(input_shape, keepdims, layout) for keepdims in (False, True)]
    if grad_output.shape not in accepted:
        raise ValueError(
            f"grad_output: expected shape {accepted[0]} or {accepted[1]} for input shape "
            f"{tuple(input_shape)}, got {grad_output.shape}"
        )
    return grad_output


@half_precision("x")
def global_avg_pool2d(x: np.ndarray, keepdims: bool = False, out: np.ndarray | None = None,
                      layout: str = "NCHW") -> np.ndarray:
    """Mean of each ``H x W`` plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    (``(C,)`` / ``(C, 1, 1)`` for an unbatched input; ``(N, 1, 1, C)`` / ``(1, 1, C)``
    with ``keepdims`` and ``layout="NHWC"``). Planes are summed in double.
    ``out`` as :func:`avg_pool2d`'s."""
    x, shape4, keepdims, dtype, stored, layout = _global_pool2d_arguments(x, keepdims, layout)
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(shape4))
    return computed_into(out, _global_output_shape(x.shape, keepdims, layout), dtype, (x,),
                         lambda y: _core.global_avg_pool2d_forward(
                             x4, y, channels_last=stored.channels_last), shape4[:2])


@half_precision("grad_output")
def global_avg_pool2d_grad_input(
    grad_output: np.ndarray, input_shape: tuple[int, ...], out: np.ndarray | None = None,
    layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d`: each plane receives its ``grad_output / (H * W)``.

    ``grad_output`` may have either output shape (with or without ``keepdims``);
    ``input_shape`` and the result are in ``layout``. ``out``: optional array of the
    result's shape and dtype to write into (as :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, input_shape, shape4, dtype, stored = _global_avg_pool2d_grad_input_arguments(
        grad_output, input_shape, layout)
    gy = contiguous(grad_output, dtype).reshape(shape4[:2])
    return _into(out, stored, stored.kernel_shape(shape4), dtype, (grad_output,),
                 lambda grad: _core.global_avg_pool2d_grad_input(
                     gy, grad, channels_last=stored.channels_last))


@half_precision("x")
def global_max_pool2d(x: np.ndarray, keepdims: bool = False, out: np.ndarray | None = None,
                      layout: str = "NCHW") -> np.ndarray:
    """Maximum of each ``H x W`` plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    (shapes as :func:`global_avg_pool2d`'s).

    A plane holding NaN gives NaN. ``out`` as :func:`avg_pool2d`'s."""
    x, shape4, keepdims, dtype, stored, layout = _global_pool2d_arguments(x, keepdims, layout)
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(shape4))
    return computed_into(out, _global_output_shape(x.shape, keepdims, layout), dtype, (x,),
                         lambda y: _core.global_max_pool2d_forward(
                             x4, y, None, channels_last=stored.channels_last), shape4[:2])


@half_precision("grad_output", "x")
def global_max_pool2d_grad_input(grad_output: np.ndarray, x: np.ndarray,
                                 out: np.ndarray | None = None, layout: str = "NCHW"
                                 ) -> np.ndarray:
    """Gradient of :func:`global_max_pool2d` with respect to ``x`` (the forward input).

    Each plane's gradient goes to its maximum, found again in ``x`` as the forward finds
    it: the first occurrence in row-major order on ties, the first NaN if there is one.
    ``grad_output`` may have either output shape (with or without ``keepdims``); the
    result has the shape, layout (and memory format) of ``x``. ``out``: optional array of
    the result's shape and dtype to write into (as :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, x, shape4, dtype, stored = _global_max_pool2d_grad_input_arguments(
        grad_output, x, layout)
    gy = contiguous(grad_output, dtype).reshape(shape4[:2])
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(shape4))
    return _into(out, stored, stored.kernel_shape(shape4), dtype, (grad_output, x),
                 lambda grad: _core.global_max_pool2d_grad_input(
                     gy, x4, grad, channels_last=stored.channels_last))


_CHANNEL_MODES = ("max", "avg")


def _channelpool_geometry(shape: tuple[int, ...], size: object, mode: object, name: str,
                          layout: str = "NCHW"):
    """NCHW 4-D input and output shapes of a channel pooling whose input is in ``layout``."""
    shape4 = pool_shape_4d(nchw_shape(tuple(shape), layout), name)
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
def channel_pool(x: np.ndarray, size: int, mode: str = "max", out: np.ndarray | None = None,
                 layout: str = "NCHW") -> np.ndarray:
    """Pooling across channels (maxout): the max or mean of each group of ``size``
    consecutive channels, pixel by pixel.

    ``(N, C, H, W) -> (N, C // size, H, W)`` (or ``(C, H, W) -> (C // size, H, W)``; with
    ``layout="NHWC"``, ``(N, H, W, C) -> (N, H, W, C // size)``); ``size`` must divide
    ``C``. ``mode`` is ``"max"`` (NaN propagates) or ``"avg"``.
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    x, shape4, out4, size, mode, dtype, stored = _channel_pool_arguments(x, size, mode, layout)
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(shape4))
    kernel_mode = getattr(_core.ChannelPoolMode, mode)
    return _into(out, stored, stored.kernel_shape(out4), dtype, (x,),
                 lambda y: _core.channel_pool_forward(x4, y, size=size, mode=kernel_mode,
                                                      channels_last=stored.channels_last))


@half_precision("grad_output", "x")
def channel_pool_grad_input(
    grad_output: np.ndarray, x: np.ndarray, size: int, mode: str = "max",
    out: np.ndarray | None = None, layout: str = "NCHW",
) -> np.ndarray:
    """Gradient of :func:`channel_pool` with respect to ``x`` (the forward input).

    ``"max"``: each gradient goes to the winning channel of its group, found again in
    ``x`` (the first maximum on ties, the first NaN if there is one). ``"avg"``: each
    gradient is divided by ``size`` among the group (only the shape of ``x`` is used).
    ``out``: optional array of the result's shape and dtype to write into (as
    :func:`convpool.conv2d`'s ``out``).
    """
    grad_output, x, shape4, out4, size, mode, dtype, stored = _channel_pool_grad_input_arguments(
        grad_output, x, size, mode, layout)
    gy4 = contiguous(stored.kernel_array(grad_output), dtype).reshape(stored.kernel_shape(out4))
    x4 = contiguous(stored.kernel_array(x), dtype).reshape(stored.kernel_shape(shape4))
    kernel_mode = getattr(_core.ChannelPoolMode, mode)
    return _into(out, stored, stored.kernel_shape(shape4), dtype, (grad_output, x),
                 lambda grad: _core.channel_pool_grad_input(gy4, x4, grad, size=size,
                                                            mode=kernel_mode,
                                                            channels_last=stored.channels_last))



# Each function's arguments resolved once, by the function itself and by
# convpool.implementation (which fills in the public functions' defaults and asks the
# registry which implementation the resolved geometry would run).

def _max_pool2d_arguments(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                          layout):
    x = as_array(x, "x")
    stored = _stored(x, layout, "x")
    setup = pool_geometry(nchw_shape(x.shape, layout), kernel_size, stride, padding, dilation,
                          ceil_mode)
    return_indices = check_flag(return_indices, "return_indices")
    dtype = _float16_kernel_dtype(x, stored) if not return_indices else compute_dtype(x)
    return x, setup, return_indices, dtype, stored


def _avg_pool2d_arguments(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override, layout):
    x = as_array(x, "x")
    stored = _stored(x, layout, "x")
    setup = pool_geometry(nchw_shape(x.shape, layout), kernel_size, stride, padding, 1,
                          ceil_mode)
    count_include_pad = check_flag(count_include_pad, "count_include_pad")
    return (x, setup, count_include_pad, _divisor(divisor_override),
            _float16_kernel_dtype(x, stored), stored)


def _float16_kernel_dtype(x: np.ndarray, stored: _Stored) -> np.dtype:
    """The dtype the kernels of max pooling (without indices) and average pooling read:
    float16 itself for NCHW float16 ``x`` (the registry's float16 lists: float16 in memory,
    float32 inside), else the usual compute dtype."""
    if x.dtype == np.float16 and not stored.channels_last:
        return x.dtype
    return compute_dtype(x)


def _avg_pool2d_grad_input_arguments(grad_output, input_shape, kernel_size, stride, padding,
                                     ceil_mode, count_include_pad, divisor_override, layout):
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    stored = _shape_stored(input_shape, layout, "input_shape")
    if stored.layout == "NCHW" and grad_output.ndim == 4 and stored_channels_last(grad_output):
        stored = _STORED["NHWC", True, 4]
    setup = pool_geometry(nchw_shape(input_shape, layout), kernel_size, stride, padding, 1,
                          ceil_mode, "input_shape")
    count_include_pad = check_flag(count_include_pad, "count_include_pad")
    divisor = _divisor(divisor_override)
    _check_grad_shape(grad_output, from_nchw_shape(setup.user_shape(setup.output_shape), layout))
    return (grad_output, input_shape, setup, count_include_pad, divisor,
            compute_dtype(grad_output), stored)


def _global_pool2d_arguments(x, keepdims, layout):
    x = as_array(x, "x")
    stored = _stored(x, layout, "x")
    shape4 = _global_shape(x.shape, "x", layout)
    return x, shape4, check_flag(keepdims, "keepdims"), compute_dtype(x), stored, layout


def _global_avg_pool2d_grad_input_arguments(grad_output, input_shape, layout):
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    stored = _shape_stored(input_shape, layout, "input_shape")
    shape4 = _global_shape(input_shape, "input_shape", layout)
    grad_output = _global_grad(as_array(grad_output, "grad_output"), input_shape, layout)
    return grad_output, input_shape, shape4, compute_dtype(grad_output), stored


def _global_max_pool2d_grad_input_arguments(grad_output, x, layout):
    x = as_array(x, "x")
    stored = _stored(x, layout, "x")
    shape4 = _global_shape(x.shape, "x", layout)
    grad_output = _global_grad(as_array(grad_output, "grad_output"), x.shape, layout)
    return grad_output, x, shape4, compute_dtype(grad_output, x), stored


def _channel_pool_arguments(x, size, mode, layout):
    x = as_array(x, "x")
    stored = _stored(x, layout, "x")
    shape4, out4, size, mode = _channelpool_geometry(x.shape, size, mode, "x", layout)
    return x, shape4, out4, size, mode, compute_dtype(x), stored


def _channel_pool_grad_input_arguments(grad_output, x, size, mode, layout):
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    stored = _stored(x, layout, "x")
    shape4, out4, size, mode = _channelpool_geometry(x.shape, size, mode, "x", layout)
    _check_grad_shape(grad_output, from_nchw_shape(out4[4 - x.ndim :], layout))
    return grad_output, x, shape4, out4, size, mode, compute_dtype(grad_output, x), stored


def _max_pool2d_problem(*args):
    _, setup, _, dtype, stored = _max_pool2d_arguments(*args)
    return _kernel_geometry(setup, stored), dtype


def _max_pool2d_grad_input_problem(*args):
    *_, geometry, dtype, _ = _max_pool2d_grad_input_arguments(*args)
    return geometry, dtype


def _avg_pool2d_problem(*args):
    _, setup, _, _, dtype, stored = _avg_pool2d_arguments(*args)
    return _kernel_geometry(setup, stored), dtype


def _avg_pool2d_grad_input_problem(*args):
    _, _, setup, _, _, dtype, stored = _avg_pool2d_grad_input_arguments(*args)
    return _kernel_geometry(setup, stored), dtype


def _planes(shape4: Shape4, stored: _Stored) -> _core.GlobalPoolShape:
    n, c, h, w = shape4
    return _core.GlobalPoolShape(n * c, h * w, channels_last=stored.channels_last,
                                 channels=max(c, 1))


def _global_pool2d_problem(*args):
    _, shape4, _, dtype, stored, _ = _global_pool2d_arguments(*args)
    return _planes(shape4, stored), dtype


def _global_avg_pool2d_grad_input_problem(*args):
    *_, shape4, dtype, stored = _global_avg_pool2d_grad_input_arguments(*args)
    return _planes(shape4, stored), dtype


def _global_max_pool2d_grad_input_problem(*args):
    *_, shape4, dtype, stored = _global_max_pool2d_grad_input_arguments(*args)
    return _planes(shape4, stored), dtype


def _channels(shape4: Shape4, size: int, stored: _Stored) -> _core.ChannelPoolShape:
    n, c, h, w = shape4
    return _core.ChannelPoolShape(n, c, size, h * w, channels_last=stored.channels_last)


def _channel_pool_problem(*args):
    _, shape4, _, size, _, dtype, stored = _channel_pool_arguments(*args)
    return _channels(shape4, size, stored), dtype


def _channel_pool_grad_input_problem(*args):
    _, _, shape4, _, size, _, dtype, stored = _channel_pool_grad_input_arguments(*args)
    return _channels(shape4, size, stored), dtype
