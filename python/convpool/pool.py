"""Pooling and its gradients: max, average, global and across channels.

Inputs are ``(N, C, H, W)`` or unbatched ``(C, H, W)``, any dtype NumPy can promote with
float32 to float32 or float64 (``numpy.result_type(x, float32)``: uint8, int8, int16 and
float32 compute in float32; int32, int64 and float64 in float64), any strides. Results are
new C-contiguous arrays of that dtype, in the rank of the input.

Each function normalises its arguments once (:class:`_PoolSetup`), then calls the compiled
kernel. Semantics follow ``torch.nn.functional`` (see ``docs/api.md``, Pooling);
:mod:`convpool.reference.pool` is their executable form.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from . import _core
from ._args import (
    INDEX_LIMIT,
    as_array,
    check_index_range,
    check_shape_tuple,
    compute_dtype,
    contiguous,
    positive_int,
    positive_pair,
)
from .padding import Sides, resolve_padding

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

Shape4 = tuple[int, int, int, int]


def pooled_size(
    in_size: int, kernel: int, stride: int, dilation: int, before: int, after: int, ceil_mode: bool
) -> int:
    """Output size of a pooling window on one axis, PyTorch's rule.

    ``floor((in + before + after - dilation * (kernel - 1) - 1) / stride) + 1``, or with
    ``ceil_mode`` the ceiling, reduced by one if that last window would start at or beyond
    ``in + before`` (it must start inside the input or the padding before it).
    """
    span = in_size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= in_size + before:
        out -= 1
    return out


@dataclass(frozen=True)
class _PoolSetup:
    """One call's resolved geometry, in the kernels' 4-D terms."""

    input_shape: Shape4  # (N, C, H, W)
    output_shape: Shape4  # (N, C, OH, OW)
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    sides: Sides
    ceil_mode: bool
    input_ndim: int  # 4 batched, 3 unbatched

    @property
    def flat_padding(self) -> tuple[int, int, int, int]:
        (top, bottom), (left, right) = self.sides
        return top, bottom, left, right

    def user_shape(self, shape4: tuple[int, ...]) -> tuple[int, ...]:
        """A 4-D shape in the rank the user called with."""
        return tuple(shape4[4 - self.input_ndim :])


def _as_4d(shape: tuple[int, ...], name: str) -> Shape4:
    if len(shape) not in (3, 4):
        raise ValueError(f"{name}: expected (N, C, H, W) or (C, H, W), got shape {tuple(shape)}")
    check_index_range(shape, name)
    return (1,) * (4 - len(shape)) + tuple(shape)  # type: ignore[return-value]


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _setup(
    input_shape: tuple[int, ...],
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    ceil_mode: object,
    name: str = "x",
) -> _PoolSetup:
    shape4 = _as_4d(input_shape, name)
    kernel = positive_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    ceil_mode = _flag(ceil_mode, "ceil_mode")
    n, c, h, w = shape4
    if h < 1 or w < 1:
        raise ValueError(f"{name}: pooling needs H and W >= 1, got shape {tuple(input_shape)}")
    sides = resolve_padding(padding, (h, w), kernel, stride, dilation)
    out_hw = []
    for axis, axis_name in ((0, "height"), (1, "width")):
        k, before, after = kernel[axis], *sides[axis]
        # PyTorch's rule: a side padded by more than half the kernel would give windows
        # that start (or end) beyond the input. 'same' padding is chosen by the resolver.
        if not isinstance(padding, str) and max(before, after) > k // 2:
            raise ValueError(
                f"padding: {sides[axis]} on the {axis_name} axis is more than half the kernel "
                f"size {k}: each side must be <= kernel_size // 2 = {k // 2}"
            )
        in_size = (h, w)[axis]
        extent = dilation[axis] * (k - 1) + 1
        if extent > in_size + before + after:
            raise ValueError(
                f"kernel_size: the {axis_name} window spans {extent} pixels (kernel {k}, "
                f"dilation {dilation[axis]}), more than the padded input {in_size} + "
                f"{before} + {after} = {in_size + before + after}"
            )
        out_hw.append(
            pooled_size(in_size, k, stride[axis], dilation[axis], before, after, ceil_mode)
        )
    (top, bottom), (left, right) = sides
    check_index_range((n, c, h + top + bottom, w + left + right), f"{name} (padded)")
    return _PoolSetup(
        input_shape=shape4, output_shape=(n, c, out_hw[0], out_hw[1]), kernel_size=kernel,
        stride=stride, dilation=dilation, sides=sides, ceil_mode=ceil_mode,
        input_ndim=len(input_shape),
    )


def _check_grad_shape(grad_output: np.ndarray, expected: tuple[int, ...]) -> None:
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


def max_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple | str = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
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

    Returns:
        ``y`` of shape ``(N, C, OH, OW)`` (or ``(C, OH, OW)``), or ``(y, indices)`` with
        int64 ``indices`` into each flattened ``H * W`` input plane, as PyTorch. On ties
        the first maximum in row-major order wins; a window holding NaN gives NaN and
        the index of its first NaN.
    """
    x = as_array(x, "x")
    setup = _setup(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = _flag(return_indices, "return_indices")
    dtype = compute_dtype(x)
    y = np.empty(setup.output_shape, dtype=dtype)
    indices = np.empty(setup.output_shape, dtype=np.int64) if return_indices else None
    if y.size:  # no planes: nothing to compute (the row scratch alone would be O(W))
        _core.max_pool2d_forward(
            contiguous(x, dtype).reshape(setup.input_shape), y, indices,
            kernel_size=setup.kernel_size, stride=setup.stride, padding=setup.flat_padding,
            dilation=setup.dilation, ceil_mode=setup.ceil_mode,
        )
    y = y.reshape(setup.user_shape(setup.output_shape))
    if indices is None:
        return y
    return y, indices.reshape(y.shape)


def max_pool2d_grad_input(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``, of shape ``input_shape``.

    Each ``grad_output`` value is added to the input pixel its index names (overlapping
    windows accumulate). ``indices`` are those :func:`max_pool2d` returned (any integer
    dtype; each in ``[0, H * W)``), with the shape of ``grad_output``.
    """
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    shape4 = _as_4d(input_shape, "input_shape")
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
    if shape4[2] < 1 or shape4[3] < 1:
        raise ValueError(f"input_shape: H and W must be >= 1, got {input_shape}")
    check_index_range(grad_output.shape, "grad_output")
    dtype = compute_dtype(grad_output)
    out_shape4 = shape4[:2] + grad_output.shape[-2:]
    grad = np.empty(shape4, dtype=dtype)
    if not grad.size:
        return grad.reshape(input_shape)
    _core.max_pool2d_grad_input(
        contiguous(grad_output, dtype).reshape(out_shape4),
        np.ascontiguousarray(indices, dtype=np.int64).reshape(out_shape4),
        grad,
    )
    return grad.reshape(input_shape)


def _divisor(divisor_override: object) -> int:
    """0 for none, else the nonzero int to divide by."""
    if divisor_override is None:
        return 0
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
        raise TypeError(f"divisor_override: expected None or an int, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override: must not be 0")
    if abs(divisor_override) >= INDEX_LIMIT:
        raise ValueError(f"divisor_override: must lie in (-2**62, 2**62), got {divisor_override}")
    return int(divisor_override)


def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """2-D average pooling: the mean of each window.

    Arguments as :func:`max_pool2d` (no dilation). The divisor is ``divisor_override`` if
    given, else the number of window pixels inside the input plus padding
    (``count_include_pad=True``; a ``ceil_mode`` window hanging past the padding counts
    only its part inside, PyTorch's rule) or inside the input alone (``False``).

    Returns:
        ``(N, C, OH, OW)`` (or ``(C, OH, OW)``).
    """
    x = as_array(x, "x")
    setup = _setup(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    count_include_pad = _flag(count_include_pad, "count_include_pad")
    divisor = _divisor(divisor_override)
    dtype = compute_dtype(x)
    y = np.empty(setup.output_shape, dtype=dtype)
    if not y.size:  # no planes: nothing to compute (the divisors alone would be O(H + W))
        return y.reshape(setup.user_shape(setup.output_shape))
    _core.avg_pool2d_forward(
        contiguous(x, dtype).reshape(setup.input_shape), y, kernel_size=setup.kernel_size,
        stride=setup.stride, padding=setup.flat_padding, ceil_mode=setup.ceil_mode,
        count_include_pad=count_include_pad, divisor_override=divisor,
    )
    return y.reshape(setup.user_shape(setup.output_shape))


def avg_pool2d_grad_input(
    grad_output: np.ndarray,
    input_shape: tuple[int, ...],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``, of shape ``input_shape``:
    each output gradient divided by its divisor and added to every input pixel of its
    window."""
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    grad_output = as_array(grad_output, "grad_output")
    setup = _setup(input_shape, kernel_size, stride, padding, 1, ceil_mode, "input_shape")
    count_include_pad = _flag(count_include_pad, "count_include_pad")
    divisor = _divisor(divisor_override)
    _check_grad_shape(grad_output, setup.user_shape(setup.output_shape))
    dtype = compute_dtype(grad_output)
    grad = np.empty(setup.input_shape, dtype=dtype)
    if not grad.size:
        return grad.reshape(input_shape)
    _core.avg_pool2d_grad_input(
        contiguous(grad_output, dtype).reshape(setup.output_shape), grad,
        kernel_size=setup.kernel_size, stride=setup.stride, padding=setup.flat_padding,
        ceil_mode=setup.ceil_mode, count_include_pad=count_include_pad,
        divisor_override=divisor,
    )
    return grad.reshape(input_shape)


def _global_shape(shape: tuple[int, ...], name: str) -> Shape4:
    shape4 = _as_4d(shape, name)
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


def global_avg_pool2d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Mean of each ``H x W`` plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    (``(C,)`` / ``(C, 1, 1)`` for an unbatched input). Planes are summed in double."""
    x = as_array(x, "x")
    shape4 = _global_shape(x.shape, "x")
    keepdims = _flag(keepdims, "keepdims")
    dtype = compute_dtype(x)
    y = np.empty(shape4[:2], dtype=dtype)
    _core.global_avg_pool2d_forward(contiguous(x, dtype).reshape(shape4), y)
    return y.reshape(_global_output_shape(x.shape, keepdims))


def global_avg_pool2d_grad_input(
    grad_output: np.ndarray, input_shape: tuple[int, ...]
) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d`: each plane receives its ``grad_output / (H * W)``.

    ``grad_output`` may have either output shape (with or without ``keepdims``).
    """
    input_shape = check_shape_tuple(input_shape, "input_shape", (3, 4))
    shape4 = _global_shape(input_shape, "input_shape")
    grad_output = _global_grad(as_array(grad_output, "grad_output"), input_shape)
    dtype = compute_dtype(grad_output)
    grad = np.empty(shape4, dtype=dtype)
    _core.global_avg_pool2d_grad_input(contiguous(grad_output, dtype).reshape(shape4[:2]), grad)
    return grad.reshape(input_shape)


def global_max_pool2d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Maximum of each ``H x W`` plane: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``.

    A plane holding NaN gives NaN."""
    x = as_array(x, "x")
    shape4 = _global_shape(x.shape, "x")
    keepdims = _flag(keepdims, "keepdims")
    dtype = compute_dtype(x)
    y = np.empty(shape4[:2], dtype=dtype)
    _core.global_max_pool2d_forward(contiguous(x, dtype).reshape(shape4), y, None)
    return y.reshape(_global_output_shape(x.shape, keepdims))


def global_max_pool2d_grad_input(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`global_max_pool2d` with respect to ``x`` (the forward input).

    Each plane's gradient goes to its maximum, found again in ``x`` as the forward finds
    it: the first occurrence in row-major order on ties, the first NaN if there is one.
    ``grad_output`` may have either output shape (with or without ``keepdims``).
    """
    x = as_array(x, "x")
    shape4 = _global_shape(x.shape, "x")
    grad_output = _global_grad(as_array(grad_output, "grad_output"), x.shape)
    dtype = compute_dtype(grad_output, x)
    grad = np.empty(shape4, dtype=dtype)
    _core.global_max_pool2d_grad_input(
        contiguous(grad_output, dtype).reshape(shape4[:2]), contiguous(x, dtype).reshape(shape4),
        grad,
    )
    return grad.reshape(x.shape)


_CHANNEL_MODES = ("max", "avg")


def _channel_setup(shape: tuple[int, ...], size: object, mode: object, name: str):
    shape4 = _as_4d(shape, name)
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


def channel_pool(x: np.ndarray, size: int, mode: str = "max") -> np.ndarray:
    """Pooling across channels (maxout): the max or mean of each group of ``size``
    consecutive channels, pixel by pixel.

    ``(N, C, H, W) -> (N, C // size, H, W)`` (or ``(C, H, W) -> (C // size, H, W)``);
    ``size`` must divide ``C``. ``mode`` is ``"max"`` (NaN propagates) or ``"avg"``.
    """
    x = as_array(x, "x")
    shape4, out4, size, mode = _channel_setup(x.shape, size, mode, "x")
    dtype = compute_dtype(x)
    y = np.empty(out4, dtype=dtype)
    _core.channel_pool_forward(contiguous(x, dtype).reshape(shape4), y, size=size, mode=mode)
    return y.reshape(out4[4 - x.ndim :])


def channel_pool_grad_input(
    grad_output: np.ndarray, x: np.ndarray, size: int, mode: str = "max"
) -> np.ndarray:
    """Gradient of :func:`channel_pool` with respect to ``x`` (the forward input).

    ``"max"``: each gradient goes to the winning channel of its group, found again in
    ``x`` (the first maximum on ties, the first NaN if there is one). ``"avg"``: each
    gradient is divided by ``size`` among the group (only the shape of ``x`` is used).
    """
    x = as_array(x, "x")
    grad_output = as_array(grad_output, "grad_output")
    shape4, out4, size, mode = _channel_setup(x.shape, size, mode, "x")
    _check_grad_shape(grad_output, out4[4 - x.ndim :])
    dtype = compute_dtype(grad_output, x)
    grad = np.empty(shape4, dtype=dtype)
    _core.channel_pool_grad_input(
        contiguous(grad_output, dtype).reshape(out4), contiguous(x, dtype).reshape(shape4), grad,
        size=size, mode=mode,
    )
    return grad.reshape(x.shape)
