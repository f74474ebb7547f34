"""The geometry of convolution and pooling: every rule about sizes, written once.

A call's geometry arguments (kernel, stride, padding in any form, dilation, groups,
padding mode, ceil_mode) are resolved here, once, into a :class:`ConvGeometry` or a
:class:`PoolGeometry`. Their ``kernel_geometry`` is the plain value the compiled layer
receives: the bindings check only what protects memory (dtypes, ranks, contiguity, that
the arrays' shapes agree with the geometry, index bounds) and trust the rest.

Rules that need no input size (a padding form, a padding-mode name, pooling's
``padding <= kernel_size // 2``) have their own functions, so that layers can check their
arguments at construction.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from . import _core

__all__ = [
    "INDEX_LIMIT",
    "PADDING_MODES",
    "ConvGeometry",
    "PoolGeometry",
    "Sides",
    "check_groups",
    "check_index_range",
    "check_padding",
    "check_padding_mode",
    "check_padding_mode_limits",
    "check_pool_padding",
    "compute_dtype",
    "conv_geometry",
    "output_size",
    "pool_geometry",
    "positive_int",
    "positive_pair",
    "resolve_padding",
    "same_padding",
]

Pair = tuple[int, int]
Shape4 = tuple[int, int, int, int]

Sides = tuple[tuple[int, int], tuple[int, int]]
"""``((top, bottom), (left, right))``: padding resolved per side."""

PADDING_MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")

_AXES = ((0, "height"), (1, "width"))


# --- sizes and limits -----------------------------------------------------------------

INDEX_LIMIT = 2**62
"""Every size, stride, dilation and padding, and every product of an array's sizes, stays
below this: the kernels' int64 index arithmetic (sums of a few such terms) cannot overflow.
The compiled layer checks the same limit on what it is given."""


def check_index_range(shape: tuple[int, ...], name: str) -> None:
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
    """An int or a pair of ints, each >= 1, as ``(height, width)``: a kernel size, stride
    or dilation."""
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
    """An int >= 1 (groups, a channel pool's size, a thread count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")
    _check_below_limit(value, name, value)
    return int(value)


# --- the dtype rule -------------------------------------------------------------------

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


# --- padding --------------------------------------------------------------------------

def _nonnegative_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"padding: {what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"padding: {what} must be >= 0, got {value}")
    if value >= INDEX_LIMIT:
        raise ValueError(f"padding: {what} must be < 2**62 (64-bit index arithmetic), got {value}")
    return int(value)


def check_padding(padding: object) -> Sides | str:
    """Check a ``padding`` argument's form without an input size: ``"valid"`` or
    ``"same"`` as they are, anything else as explicit ``((top, bottom), (left, right))``.

    Forms: ``int p`` (all sides), ``(ph, pw)`` (top/bottom, left/right),
    ``((top, bottom), (left, right))``, ``"valid"`` and ``"same"``.
    """
    if isinstance(padding, str):
        if padding in ("valid", "same"):
            return padding
        raise ValueError(
            f"padding: expected an int, a pair, a pair of pairs, 'valid' or 'same', got {padding!r}"
        )
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = _nonnegative_int(padding, "value")
        return (p, p), (p, p)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        sides = []
        for (_, axis), item in zip(_AXES, padding, strict=True):
            if isinstance(item, (tuple, list)):
                if len(item) != 2:
                    raise ValueError(
                        f"padding: the {axis} entry must be an int or (before, after), got {item!r}"
                    )
                sides.append((_nonnegative_int(item[0], f"{axis} before"),
                              _nonnegative_int(item[1], f"{axis} after")))
            else:
                p = _nonnegative_int(item, axis)
                sides.append((p, p))
        return sides[0], sides[1]
    # a sequence of the wrong length is a wrong value; anything else (float, None, bool) a
    # wrong type
    error = ValueError if isinstance(padding, (tuple, list)) else TypeError
    raise error(
        "padding: expected an int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same', "
        f"got {padding!r}"
    )


def same_padding(in_size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Padding (before, after) that gives ``ceil(in_size / stride)`` outputs on one axis.

    The total is ``max((out - 1) * stride + dilation * (kernel - 1) + 1 - in_size, 0)``;
    the odd pixel goes after (bottom/right), as TensorFlow and PyTorch place it.
    """
    out = math.ceil(in_size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - in_size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: object,
    in_size: tuple[int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> Sides:
    """Resolve any accepted ``padding`` form to ``((top, bottom), (left, right))``
    (:func:`check_padding` lists the forms; ``"same"`` gives ``ceil(in / stride)`` outputs
    on each axis, for any stride, dilation and kernel size)."""
    form = check_padding(padding)
    if form == "valid":
        return (0, 0), (0, 0)
    if form == "same":
        return tuple(  # type: ignore[return-value]
            same_padding(in_size[a], kernel_size[a], stride[a], dilation[a]) for a in (0, 1)
        )
    return form  # type: ignore[return-value]


def check_padding_mode(mode: object) -> str:
    """Check a ``padding_mode`` name (one of :data:`PADDING_MODES`)."""
    if not isinstance(mode, str):
        raise TypeError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    return mode


def check_padding_mode_limits(mode: str, sides: Sides, in_size: tuple[int, int]) -> None:
    """ValueError unless padding mode ``mode`` can produce ``sides`` for this input size:
    reflect needs pad < size, symmetric and circular pad <= size, replicate a non-empty
    plane."""
    limits = {"reflect": ("<", 0), "symmetric": ("<=", 1), "circular": ("<=", 1)}
    if mode in limits:
        op, slack = limits[mode]
        for axis, name in _AXES:
            for pad in sides[axis]:
                if pad > in_size[axis] - 1 + slack:
                    raise ValueError(
                        f"padding_mode={mode!r}: padding {pad} on the {name} axis needs padding "
                        f"{op} input size {in_size[axis]}"
                    )
    if mode == "replicate" and min(in_size) == 0 and any(p for s in sides for p in s):
        raise ValueError("padding_mode='replicate': needs a non-empty input plane")


def check_pool_padding(padding: object, kernel_size: tuple[int, int]) -> Sides | str:
    """Check a pooling ``padding`` without an input size: its form, and PyTorch's rule that
    explicit padding is at most ``kernel_size // 2`` per side (a side padded by more would
    give windows that start or end beyond the input; ``"same"`` is chosen by the resolver
    and exempt)."""
    form = check_padding(padding)
    if isinstance(form, str):
        return form
    for axis, axis_name in _AXES:
        k = kernel_size[axis]
        if max(form[axis]) > k // 2:
            raise ValueError(
                f"padding: {form[axis]} on the {axis_name} axis is more than half the kernel "
                f"size {k}: each side must be <= kernel_size // 2 = {k // 2}"
            )
    return form


# --- output sizes ---------------------------------------------------------------------

def output_size(in_size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
                ceil_mode: bool = False) -> int:
    """The number of windows on one axis: the one output-size rule of the library.

    ``floor((in + before + after - dilation * (kernel - 1) - 1) / stride) + 1``, below 1
    when the dilated kernel does not fit the padded input. With ``ceil_mode`` (pooling)
    the ceiling, reduced by one if that last window would start at or beyond
    ``in + before`` (PyTorch's rule: a window starts inside the input or the padding
    before it).
    """
    span = in_size + before + after - dilation * (kernel - 1) - 1
    if not ceil_mode or span < 0:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= in_size + before:
        out -= 1
    return out


def _window_axis(in_size: int, out_size: int, kernel: int, stride: int, dilation: int,
                 sides: tuple[int, int]) -> _core.WindowAxis:
    return _core.WindowAxis(in_size, out_size, kernel, stride, dilation, sides[0], sides[1])


# --- convolution ----------------------------------------------------------------------

@dataclass(frozen=True)
class ConvGeometry:
    """One convolution's resolved geometry, in the kernels' 4-D terms."""

    input_shape: Shape4  # (N, C_in, H, W)
    weight_shape: Shape4  # (C_out, C_in // groups, kh, kw)
    output_shape: Shape4  # (N, C_out, OH, OW)
    stride: Pair
    dilation: Pair
    sides: Sides
    groups: int
    padding_mode: str
    input_ndim: int  # 4 batched, 3 unbatched, 2 picture

    @cached_property
    def kernel_geometry(self) -> _core.Conv2dGeometry:
        """The plain value the compiled layer receives; the kernels read the padding mode
        themselves (no padded copy of the input)."""
        n, c_in, h, w = self.input_shape
        c_out, _, kh, kw = self.weight_shape
        rows = _window_axis(h, self.output_shape[2], kh, self.stride[0], self.dilation[0],
                            self.sides[0])
        cols = _window_axis(w, self.output_shape[3], kw, self.stride[1], self.dilation[1],
                            self.sides[1])
        return _core.Conv2dGeometry(n, c_in, c_out, self.groups, rows, cols,
                                    getattr(_core.PaddingMode, self.padding_mode))

    @cached_property
    def user_output_shape(self) -> tuple[int, ...]:
        return self.user_shape(self.output_shape)

    def user_shape(self, shape4: tuple[int, ...]) -> tuple[int, ...]:
        """A 4-D shape in the rank the user called with."""
        return shape4[4 - self.input_ndim :] if self.input_ndim > 2 else shape4[2:]


def as_4d(shape: tuple[int, ...], ndim: int) -> Shape4:
    """A convolution shape of rank ``ndim`` (4, 3 unbatched, 2 picture) as 4-D."""
    return (1,) * (4 - ndim) + tuple(shape) if ndim > 2 else (1, 1) + tuple(shape)  # type: ignore[return-value]


def check_groups(in_channels: int, out_channels: int, groups: object) -> int:
    """``groups`` as an int >= 1 that divides both channel counts."""
    groups = positive_int(groups, "groups")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups: {groups} must divide in_channels ({in_channels}) and out_channels "
            f"({out_channels})"
        )
    return groups


def conv_geometry(input_shape, weight_shape, stride, padding, dilation, groups,
                  padding_mode) -> ConvGeometry:
    """Resolve a convolution's arguments for an input and a weight of these shapes.

    Repeated calls with the same arguments (a training loop) reuse the result, which keeps
    the per-call overhead of small convolutions to microseconds.
    """
    key = (tuple(input_shape), tuple(weight_shape), stride, padding, dilation, groups, padding_mode)
    cacheable = _cacheable  # spelled out: a generator here costs a microsecond per call
    if (cacheable(stride) and cacheable(padding) and cacheable(dilation) and cacheable(groups)
            and cacheable(padding_mode)):
        return _cached_conv_geometry(*key)
    return _resolve_conv_geometry(*key)  # lists, floats, bools, NumPy ints


def _cacheable(value: object) -> bool:
    """Exact ints and strs, or tuples of them: 1, 1.0 and True are equal and hash alike, so a
    cache keyed on anything looser would accept ``stride=True`` after ``stride=1``."""
    kind = type(value)
    if kind is int or kind is str:
        return True
    return kind is tuple and all(_cacheable(item) for item in value)


def _resolve_conv_geometry(input_shape, weight_shape, stride, padding, dilation, groups,
                           padding_mode) -> ConvGeometry:
    ndim = len(input_shape)
    if ndim not in (2, 3, 4):
        raise ValueError(
            f"x: expected (N, C, H, W), (C, H, W) or a 2-D picture (H, W), got shape {input_shape}"
        )
    weight_ndim = 2 if ndim == 2 else 4
    if len(weight_shape) != weight_ndim:
        expected = "(kh, kw) for a 2-D picture" if ndim == 2 else "(C_out, C_in // groups, kh, kw)"
        raise ValueError(f"weight: expected {expected}, got shape {tuple(weight_shape)}")
    x4 = as_4d(tuple(input_shape), ndim)
    w4 = (1, 1) + tuple(weight_shape) if ndim == 2 else tuple(weight_shape)
    stride = positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    n, c_in, h, w = x4
    c_out, c_in_g, kh, kw = w4
    if min(c_in, c_out, kh, kw) < 1:
        positive_int(groups, "groups")
        raise ValueError(
            f"x, weight: channel and kernel sizes must be >= 1, got x {tuple(input_shape)}, "
            f"weight {tuple(weight_shape)}"
        )
    groups = check_groups(c_in, c_out, groups)
    if c_in_g * groups != c_in:
        raise ValueError(
            f"weight: shape {tuple(weight_shape)} needs in_channels = {c_in_g} x groups ({groups}) "
            f"= {c_in_g * groups}, but x has {c_in} channels (shape {tuple(input_shape)})"
        )
    sides = resolve_padding(padding, (h, w), (kh, kw), stride, dilation)
    padding_mode = check_padding_mode(padding_mode)
    check_padding_mode_limits(padding_mode, sides, (h, w))
    out_hw = []
    for axis, name in _AXES:
        size = output_size((h, w)[axis], (kh, kw)[axis], stride[axis], dilation[axis], *sides[axis])
        if size < 1:
            raise ValueError(
                f"output {name} would be {size}: input {(h, w)[axis]}, kernel {(kh, kw)[axis]}, "
                f"stride {stride[axis]}, dilation {dilation[axis]}, padding {sides[axis]} "
                "(the dilated kernel must fit in the padded input)"
            )
        out_hw.append(size)
    (top, bottom), (left, right) = sides
    check_index_range((n, c_in, h + top + bottom, w + left + right), "x (padded)")
    check_index_range(w4, "weight")
    check_index_range((n, c_out, *out_hw), "output")
    return ConvGeometry(
        input_shape=x4, weight_shape=w4, output_shape=(n, c_out, out_hw[0], out_hw[1]),
        stride=stride, dilation=dilation, sides=sides, groups=groups,
        padding_mode=padding_mode, input_ndim=ndim,
    )


_cached_conv_geometry = lru_cache(maxsize=1024)(_resolve_conv_geometry)


# --- pooling --------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolGeometry:
    """One windowed pooling's resolved geometry, in the kernels' 4-D terms."""

    input_shape: Shape4  # (N, C, H, W)
    output_shape: Shape4  # (N, C, OH, OW)
    kernel_size: Pair
    stride: Pair
    dilation: Pair
    sides: Sides
    ceil_mode: bool
    input_ndim: int  # 4 batched, 3 unbatched

    def user_shape(self, shape4: tuple[int, ...]) -> tuple[int, ...]:
        """A 4-D shape in the rank the user called with."""
        return tuple(shape4[4 - self.input_ndim :])

    @cached_property
    def kernel_geometry(self) -> _core.PoolGeometry:
        """The plain value the compiled layer receives."""
        n, c, h, w = self.input_shape
        rows = _window_axis(h, self.output_shape[2], self.kernel_size[0], self.stride[0],
                            self.dilation[0], self.sides[0])
        cols = _window_axis(w, self.output_shape[3], self.kernel_size[1], self.stride[1],
                            self.dilation[1], self.sides[1])
        return _core.PoolGeometry(n * c, rows, cols)


def pool_shape_4d(shape: tuple[int, ...], name: str) -> Shape4:
    """A pooling input shape, ``(N, C, H, W)`` or unbatched ``(C, H, W)``, as 4-D."""
    if len(shape) not in (3, 4):
        raise ValueError(f"{name}: expected (N, C, H, W) or (C, H, W), got shape {tuple(shape)}")
    check_index_range(shape, name)
    return (1,) * (4 - len(shape)) + tuple(shape)  # type: ignore[return-value]


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool: True or False (NumPy's included), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _first_window_without_input(in_size: int, out_size: int, kernel: int, stride: int,
                                dilation: int, before: int) -> int | None:
    """The first output position whose window holds no input pixel, or None.

    A contiguous window (dilation 1) misses the input only if it ends before it or starts
    after it, so the first and last windows decide. A dilated one can also straddle the
    input between two taps: window ``o`` holds the taps ``t`` with
    ``0 <= o * stride - before + t * dilation < in_size``, a range of ``t`` to intersect
    with ``[0, kernel)``, one per window. (Called once every extent is known to be below
    2**62, so the int64 arithmetic cannot overflow.)"""
    if dilation == 1:
        if kernel - 1 - before < 0:
            return 0
        return out_size - 1 if (out_size - 1) * stride - before > in_size - 1 else None
    starts = np.arange(out_size, dtype=np.int64) * stride - before
    first_tap = np.maximum(-(starts // dilation), 0)  # ceil(-start / dilation), at least 0
    last_tap = np.minimum((in_size - 1 - starts) // dilation, kernel - 1)
    empty = first_tap > last_tap
    return int(np.argmax(empty)) if empty.any() else None


def pool_geometry(input_shape: tuple[int, ...], kernel_size: object, stride: object,
                  padding: object, dilation: object, ceil_mode: object,
                  name: str = "x") -> PoolGeometry:
    """Resolve a windowed pooling's arguments for an input of this shape."""
    shape4 = pool_shape_4d(input_shape, name)
    kernel = positive_pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else positive_pair(stride, "stride")
    dilation = positive_pair(dilation, "dilation")
    ceil_mode = check_flag(ceil_mode, "ceil_mode")
    n, c, h, w = shape4
    if h < 1 or w < 1:
        raise ValueError(f"{name}: pooling needs H and W >= 1, got shape {tuple(input_shape)}")
    check_pool_padding(padding, kernel)
    sides = resolve_padding(padding, (h, w), kernel, stride, dilation)
    (top, bottom), (left, right) = sides
    check_index_range((n, c, h + top + bottom, w + left + right), f"{name} (padded)")
    out_hw = []
    for axis, axis_name in _AXES:
        k, (before, after), in_size = kernel[axis], sides[axis], (h, w)[axis]
        extent = dilation[axis] * (k - 1) + 1
        if extent > in_size + before + after:
            raise ValueError(
                f"kernel_size: the {axis_name} window spans {extent} pixels (kernel {k}, "
                f"dilation {dilation[axis]}), more than the padded input {in_size} + "
                f"{before} + {after} = {in_size + before + after}"
            )
        size = output_size(in_size, k, stride[axis], dilation[axis], before, after, ceil_mode)
        empty = _first_window_without_input(in_size, size, k, stride[axis], dilation[axis],
                                            before)
        if empty is not None:
            raise ValueError(
                f"{axis_name}: the window of output position {empty} lies entirely in the "
                f"padding (input {in_size}, kernel {k}, stride {stride[axis]}, dilation "
                f"{dilation[axis]}, padding before {before})"
            )
        out_hw.append(size)
    return PoolGeometry(
        input_shape=shape4, output_shape=(n, c, out_hw[0], out_hw[1]), kernel_size=kernel,
        stride=stride, dilation=dilation, sides=sides, ceil_mode=ceil_mode,
        input_ndim=len(input_shape),
    )
