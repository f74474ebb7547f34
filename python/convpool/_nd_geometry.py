"""Argument checks and window geometry for the 1-D and 3-D functions.

The 1-D and 3-D functions run on the compiled 2-D kernels; they check their arguments
here first, in their own terms (a length axis, or depth/height/width), so that an error
names the axis the caller knows, then hand the 2-D functions arguments that are valid.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from ._args import INDEX_LIMIT, check_index_range, positive_int

Sides = tuple[tuple[int, int], ...]
"""``(before, after)`` padding per spatial axis."""

PADDING_MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")

AXIS_NAMES = {1: ("length",), 3: ("depth", "height", "width")}


def ieee(function):
    """Run ``function``'s NumPy arithmetic in plain IEEE terms, as the compiled kernels do
    (inf - inf is NaN, without NumPy's warning, which the test suite makes an error)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            return function(*args, **kwargs)

    return wrapper


def int_tuple(value: object, rank: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each >= 1."""
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    if len(items) != rank:
        raise ValueError(f"{name}: expected an int or {rank} ints, got {value!r}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name}: expected an int or {rank} ints, got {value!r}")
        if item < 1:
            raise ValueError(f"{name}: must be >= 1, got {value!r}")
        if item >= INDEX_LIMIT:
            raise ValueError(f"{name}: must be < 2**62 (64-bit index arithmetic), got {value!r}")
    return tuple(int(item) for item in items)


def flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _pad_amount(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"padding: {what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"padding: {what} must be >= 0, got {value}")
    if value >= INDEX_LIMIT:
        raise ValueError(f"padding: {what} must be < 2**62 (64-bit index arithmetic), got {value}")
    return int(value)


def same_sides(in_size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """'same' on one axis: ``ceil(in / stride)`` outputs, the odd pixel after."""
    out = math.ceil(in_size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - in_size, 0)
    return total // 2, total - total // 2


def resolve_sides(padding: object, in_size: tuple[int, ...], kernel: tuple[int, ...],
                  stride: tuple[int, ...], dilation: tuple[int, ...]) -> Sides:
    """Any accepted ``padding`` form as ``(before, after)`` per axis.

    Forms: an int (every side), a sequence of one entry per axis, each an int or a
    ``(before, after)`` pair, ``"valid"`` or ``"same"``. In 1-D a pair of ints
    ``(before, after)`` is the per-side form (the per-axis form is ``(p,)``).
    """
    rank = len(in_size)
    names = AXIS_NAMES[rank]
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding == "same":
            return tuple(same_sides(*axis) for axis in zip(in_size, kernel, stride, dilation,
                                                               strict=True))
        raise ValueError(
            f"padding: expected an int, a sequence, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = _pad_amount(padding, "value")
        return ((p, p),) * rank
    if isinstance(padding, (tuple, list)):
        if rank == 1 and len(padding) == 2 and not any(
                isinstance(item, (tuple, list)) for item in padding):
            return ((_pad_amount(padding[0], "length before"),
                     _pad_amount(padding[1], "length after")),)
        if len(padding) == rank:
            sides = []
            for name, item in zip(names, padding, strict=True):
                if isinstance(item, (tuple, list)):
                    if len(item) != 2:
                        raise ValueError(
                            f"padding: the {name} entry must be an int or (before, after), "
                            f"got {item!r}")
                    sides.append((_pad_amount(item[0], f"{name} before"),
                                  _pad_amount(item[1], f"{name} after")))
                else:
                    p = _pad_amount(item, name)
                    sides.append((p, p))
            return tuple(sides)
    forms = ("an int, (p,), (before, after)" if rank == 1
             else "an int, (pd, ph, pw), ((before, after), ...) per axis")
    error = ValueError if isinstance(padding, (tuple, list)) else TypeError
    raise error(f"padding: expected {forms}, 'valid' or 'same', got {padding!r}")


def check_padding_mode(mode: object, sides: Sides, in_size: tuple[int, ...]) -> str:
    """``padding_mode`` valid, and able to produce ``sides`` from this input size."""
    if not isinstance(mode, str):
        raise TypeError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    limits = {"reflect": ("<", 0), "symmetric": ("<=", 1), "circular": ("<=", 1)}
    names = AXIS_NAMES[len(in_size)]
    if mode in limits:
        op, slack = limits[mode]
        for name, size, pads in zip(names, in_size, sides, strict=True):
            for pad in pads:
                if pad > size - 1 + slack:
                    raise ValueError(
                        f"padding_mode={mode!r}: padding {pad} on the {name} axis needs "
                        f"padding {op} input size {size}")
    if mode == "replicate" and min(in_size) == 0 and any(p for s in sides for p in s):
        raise ValueError("padding_mode='replicate': needs a non-empty input")
    return mode


def conv_output_size(in_size: int, kernel: int, stride: int, dilation: int, before: int,
                     after: int) -> int:
    return (in_size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def pooled_size(in_size: int, kernel: int, stride: int, dilation: int, before: int,
                after: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size; with ``ceil_mode`` the last window must start
    inside the input or the padding before it."""
    span = in_size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= in_size + before:
        out -= 1
    return out


# --- convolution --------------------------------------------------------------------


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution's resolved geometry, batched: ``(N, C_in, *spatial)``."""

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    sides: Sides
    groups: int
    padding_mode: str
    user_ndim: int  # rank + 2 batched, rank + 1 unbatched, rank a bare signal/volume

    def user_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A batched shape in the rank the caller used."""
        rank = len(self.stride)
        return tuple(shape[rank + 2 - self.user_ndim:]) if self.user_ndim > rank \
            else tuple(shape[2:])


def _batched_shape(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    if len(shape) == rank:
        return (1, 1, *shape)
    return (1,) * (rank + 2 - len(shape)) + tuple(shape)


def conv_geometry(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], rank: int,
                  stride: object, padding: object, dilation: object, groups: object,
                  padding_mode: object) -> ConvGeometry:
    forms = {1: ("(N, C, L)", "(C, L)", "a signal (L,)"),
             3: ("(N, C, D, H, W)", "(C, D, H, W)", "a volume (D, H, W)")}[rank]
    ndim = len(input_shape)
    if ndim not in (rank, rank + 1, rank + 2):
        raise ValueError(f"x: expected {forms[0]}, {forms[1]} or {forms[2]}, got shape "
                         f"{tuple(input_shape)}")
    kernel_form = "(k,)" if rank == 1 else "(kd, kh, kw)"
    weight_ndim = rank if ndim == rank else rank + 2
    if len(weight_shape) != weight_ndim:
        expected = (f"{kernel_form} for {forms[2]}" if ndim == rank
                    else f"(C_out, C_in // groups, {kernel_form[1:-1].rstrip(',')})")
        raise ValueError(f"weight: expected {expected}, got shape {tuple(weight_shape)}")
    x_shape = _batched_shape(tuple(input_shape), rank)
    w_shape = (1, 1, *weight_shape) if ndim == rank else tuple(weight_shape)
    stride = int_tuple(stride, rank, "stride")
    dilation = int_tuple(dilation, rank, "dilation")
    groups = positive_int(groups, "groups")
    n, c_in, *size = x_shape
    c_out, c_in_g, *kernel = w_shape
    if min(c_in, c_out, *kernel) < 1:
        raise ValueError(f"x, weight: channel and kernel sizes must be >= 1, got x "
                         f"{tuple(input_shape)}, weight {tuple(weight_shape)}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups: {groups} must divide in_channels ({c_in}) and out_channels "
                         f"({c_out})")
    if c_in_g * groups != c_in:
        raise ValueError(
            f"weight: shape {tuple(weight_shape)} needs in_channels = {c_in_g} x groups "
            f"({groups}) = {c_in_g * groups}, but x has {c_in} channels (shape "
            f"{tuple(input_shape)})")
    sides = resolve_sides(padding, tuple(size), tuple(kernel), stride, dilation)
    padding_mode = check_padding_mode(padding_mode, sides, tuple(size))
    out = []
    for axis, name in enumerate(AXIS_NAMES[rank]):
        o = conv_output_size(size[axis], kernel[axis], stride[axis], dilation[axis], *sides[axis])
        if o < 1:
            raise ValueError(
                f"output {name} would be {o}: input {size[axis]}, kernel {kernel[axis]}, "
                f"stride {stride[axis]}, dilation {dilation[axis]}, padding {sides[axis]} "
                "(the dilated kernel must fit in the padded input)")
        out.append(o)
    padded = [s + b + a for s, (b, a) in zip(size, sides, strict=True)]
    check_index_range((n, c_in, *padded), "x (padded)")
    check_index_range(w_shape, "weight")
    check_index_range((n, c_out, *out), "output")
    return ConvGeometry(x_shape, w_shape, (n, c_out, *out), stride, dilation, sides, groups,
                        padding_mode, ndim)


def check_grad_output(geometry: ConvGeometry, grad_output: np.ndarray) -> None:
    expected = geometry.user_shape(geometry.output_shape)
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


# --- pooling ------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolGeometry:
    """One pooling call's resolved geometry, batched: ``(N, C, *spatial)``."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    sides: Sides
    ceil_mode: bool
    user_ndim: int  # rank + 2 batched, rank + 1 unbatched

    def user_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[len(shape) - self.user_ndim:])


def pool_input_shape(shape: tuple[int, ...], rank: int, name: str) -> tuple[int, ...]:
    """``shape`` batched; ValueError unless it is ``(N, C, *spatial)`` or ``(C, *spatial)``."""
    if len(shape) not in (rank + 1, rank + 2):
        forms = {1: "(N, C, L) or (C, L)", 3: "(N, C, D, H, W) or (C, D, H, W)"}[rank]
        raise ValueError(f"{name}: expected {forms}, got shape {tuple(shape)}")
    check_index_range(shape, name)
    return (1,) * (rank + 2 - len(shape)) + tuple(shape)


def pool_geometry(input_shape: tuple[int, ...], rank: int, kernel_size: object, stride: object,
                  padding: object, dilation: object, ceil_mode: object,
                  name: str = "x") -> PoolGeometry:
    shape = pool_input_shape(tuple(input_shape), rank, name)
    kernel = int_tuple(kernel_size, rank, "kernel_size")
    stride = kernel if stride is None else int_tuple(stride, rank, "stride")
    dilation = int_tuple(dilation, rank, "dilation")
    ceil_mode = flag(ceil_mode, "ceil_mode")
    n, c, *size = shape
    names = AXIS_NAMES[rank]
    if min(size) < 1:
        raise ValueError(f"{name}: pooling needs every spatial size >= 1 ({', '.join(names)}), "
                         f"got shape {tuple(input_shape)}")
    sides = resolve_sides(padding, tuple(size), kernel, stride, dilation)
    out = []
    for axis, axis_name in enumerate(names):
        k, (before, after) = kernel[axis], sides[axis]
        # PyTorch's rule for explicit padding; 'same' is chosen by the resolver.
        if not isinstance(padding, str) and max(before, after) > k // 2:
            raise ValueError(
                f"padding: {sides[axis]} on the {axis_name} axis is more than half the kernel "
                f"size {k}: each side must be <= kernel_size // 2 = {k // 2}")
        extent = dilation[axis] * (k - 1) + 1
        if extent > size[axis] + before + after:
            raise ValueError(
                f"kernel_size: the {axis_name} window spans {extent} (kernel {k}, dilation "
                f"{dilation[axis]}), more than the padded input {size[axis]} + {before} + "
                f"{after} = {size[axis] + before + after}")
        o = pooled_size(size[axis], k, stride[axis], dilation[axis], before, after, ceil_mode)
        # Only windows that start in the padding before the input can miss it entirely.
        for first in range(min(o, -(-before // stride[axis]))):
            taps = [first * stride[axis] - before + t * dilation[axis] for t in range(k)]
            if not any(0 <= p < size[axis] for p in taps):
                raise ValueError(
                    f"padding: window {first} on the {axis_name} axis lies entirely in the "
                    f"padding (kernel {k}, dilation {dilation[axis]}, padding {sides[axis]})")
        out.append(o)
    padded = [s + b + a for s, (b, a) in zip(size, sides, strict=True)]
    check_index_range((n, c, *padded), f"{name} (padded)")
    return PoolGeometry(shape, (n, c, *out), kernel, stride, dilation, sides, ceil_mode,
                        len(input_shape))


def check_grad_shape(grad_output: np.ndarray, expected: tuple[int, ...]) -> None:
    if grad_output.shape != expected:
        raise ValueError(f"grad_output: expected shape {expected}, got {grad_output.shape}")


def integer_array(indices: object, name: str = "indices") -> np.ndarray:
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu":
        given = indices.dtype if isinstance(indices, np.ndarray) else type(indices).__name__
        raise TypeError(f"{name}: expected an integer array (int64, as max pooling returns), "
                        f"got {given}")
    return indices

