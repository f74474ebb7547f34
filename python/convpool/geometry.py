"""The geometry of convolution and pooling: every rule about sizes, written once, for any
number of spatial axes (1-D signals, 2-D pictures, 3-D volumes).

A call's geometry arguments (kernel, stride, padding in any form, dilation, groups,
padding mode, ceil_mode) are resolved here, once, into a :class:`ConvGeometry` or a
:class:`PoolGeometry`. Their ``kernel_geometry`` is the plain value the compiled layer
receives (2-D; the 1-D and 3-D functions map their geometry onto the 2-D kernels): the
bindings check only what protects memory (dtypes, ranks, contiguity, that the arrays'
shapes agree with the geometry, index bounds) and trust the rest.

Rules that need no input size (a padding form, a padding-mode name, pooling's
``padding <= kernel_size // 2``) have their own functions, so that layers check their
arguments once, at construction (:func:`check_conv_arguments`,
:func:`check_pool_arguments`), and the limits that need a size when an input arrives.
The oracle (:mod:`convpool.reference`) states the same rules in its own words, apart.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from . import _core

__all__ = [
    "AXIS_NAMES",
    "INDEX_LIMIT",
    "PADDING_MODES",
    "ConvGeometry",
    "PoolGeometry",
    "Sides",
    "check_conv_arguments",
    "check_divisor_override",
    "check_flag",
    "check_groups",
    "check_output_padding",
    "check_index_range",
    "check_padding",
    "check_padding_mode",
    "check_padding_mode_limits",
    "check_pool_arguments",
    "check_pool_padding",
    "compute_dtype",
    "conv_geometry",
    "output_size",
    "output_sizes",
    "pool_geometry",
    "positive_int",
    "positive_ints",
    "non_negative_ints",
    "positive_pair",
    "resolve_padding",
    "same_padding",
    "transposed_output_size",
]

Pair = tuple[int, int]
Shape4 = tuple[int, int, int, int]

Sides = tuple[tuple[int, int], ...]
"""``(before, after)`` padding per spatial axis: ``((top, bottom), (left, right))`` in 2-D."""

PADDING_MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")

AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
"""The spatial axes' names, by rank, as errors name them."""


def _axis_names(rank: int) -> tuple[str, ...]:
    if rank not in AXIS_NAMES:
        raise ValueError(f"rank: convpool has 1-D, 2-D and 3-D operations, got rank {rank!r}")
    return AXIS_NAMES[rank]


# --- sizes and limits -----------------------------------------------------------------

INDEX_LIMIT = 2**62
"""Every size, stride, dilation and padding, and every product of an array's sizes, stays
below this: the kernels' int64 index arithmetic (sums of a few such terms) cannot overflow.
The compiled layer checks the same limit on what it is given."""


def check_index_range(shape: tuple[int, ...], name: str) -> None:
    """ValueError unless the product of ``shape``'s sizes (zeros counted as ones: the kernels
    multiply leading sizes before they see the zero) is below :data:`INDEX_LIMIT`."""
    if 0 < math.prod(map(int, shape)) < INDEX_LIMIT:  # the common case, in C loops
        return
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


_INT_FORMS = {1: "an int or 1 ints", 2: "an int or a pair of ints", 3: "an int or 3 ints"}


def positive_ints(value: object, rank: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each >= 1, one per spatial axis: a kernel
    size, stride or dilation."""
    form = _INT_FORMS[rank]
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    if len(items) != rank:
        raise ValueError(f"{name}: expected {form}, got {value!r}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name}: expected {form}, got {value!r}")
        if item < 1:
            raise ValueError(f"{name}: must be >= 1, got {value!r}")
        _check_below_limit(item, name, value)
    return tuple(int(item) for item in items)


def positive_pair(value: object, name: str) -> Pair:
    """An int or a pair of ints, each >= 1, as ``(height, width)``."""
    return positive_ints(value, 2, name)  # type: ignore[return-value]


def positive_int(value: object, name: str) -> int:
    """An int >= 1 (groups, a channel pool's size, a thread count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")
    _check_below_limit(value, name, value)
    return int(value)


def check_divisor_override(value: object) -> int | None:
    """Average pooling's ``divisor_override``: None, or a nonzero int (of either sign) that
    replaces every window's divisor."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"divisor_override: expected None or an int, got {value!r}")
    if value == 0:
        raise ValueError("divisor_override: must not be 0")
    if abs(value) >= INDEX_LIMIT:
        raise ValueError(f"divisor_override: must lie in (-2**62, 2**62), got {value}")
    return int(value)


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool: True or False (NumPy's included), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


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


def _padding_forms(rank: int) -> str:
    return {1: "an int, (p,), (before, after)",
            2: "an int, (ph, pw), ((top, bottom), (left, right))",
            3: "an int, (pd, ph, pw), ((before, after), ...) per axis"}[rank]


def check_padding(padding: object, rank: int = 2) -> Sides | str:
    """Check a ``padding`` argument's form without an input size: ``"valid"`` or
    ``"same"`` as they are, anything else as explicit ``(before, after)`` per axis.

    Forms: an int (every side), one entry per axis, each an int or ``(before, after)``
    (2-D: ``(ph, pw)`` or ``((top, bottom), (left, right))``), ``"valid"`` and ``"same"``.
    In 1-D a pair of ints ``(before, after)`` is the per-side form (the per-axis form is
    ``(p,)``).
    """
    names = _axis_names(rank)
    forms = _padding_forms(rank)
    if isinstance(padding, str):
        if padding in ("valid", "same"):
            return padding
        raise ValueError(f"padding: expected {forms}, 'valid' or 'same', got {padding!r}")
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = _nonnegative_int(padding, "value")
        return ((p, p),) * rank
    if isinstance(padding, (tuple, list)):
        if rank == 1 and len(padding) == 2 and not any(
                isinstance(item, (tuple, list)) for item in padding):
            return ((_nonnegative_int(padding[0], "length before"),
                     _nonnegative_int(padding[1], "length after")),)
        if len(padding) == rank:
            sides = []
            for axis, item in zip(names, padding, strict=True):
                if isinstance(item, (tuple, list)):
                    if len(item) != 2:
                        raise ValueError(f"padding: the {axis} entry must be an int or "
                                         f"(before, after), got {item!r}")
                    sides.append((_nonnegative_int(item[0], f"{axis} before"),
                                  _nonnegative_int(item[1], f"{axis} after")))
                else:
                    p = _nonnegative_int(item, axis)
                    sides.append((p, p))
            return tuple(sides)
    # a sequence of the wrong length is a wrong value; anything else (float, None, bool) a
    # wrong type
    error = ValueError if isinstance(padding, (tuple, list)) else TypeError
    raise error(f"padding: expected {forms}, 'valid' or 'same', got {padding!r}")


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
    in_size: tuple[int, ...],
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> Sides:
    """Resolve any accepted ``padding`` form to ``(before, after)`` per axis (as many axes
    as ``in_size`` has; :func:`check_padding` lists the forms). ``"same"`` gives
    ``ceil(in / stride)`` outputs on each axis, for any stride, dilation and kernel size."""
    form = check_padding(padding, len(in_size))
    if form == "valid":
        return ((0, 0),) * len(in_size)
    if form == "same":
        return tuple(same_padding(*axis) for axis in zip(in_size, kernel_size, stride, dilation,
                                                         strict=True))
    return form  # type: ignore[return-value]


def check_padding_mode(mode: object) -> str:
    """Check a ``padding_mode`` name (one of :data:`PADDING_MODES`)."""
    if not isinstance(mode, str):
        raise TypeError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    return mode


def check_padding_mode_limits(mode: str, sides: Sides, in_size: tuple[int, ...]) -> None:
    """ValueError unless padding mode ``mode`` can produce ``sides`` for this input size:
    reflect needs pad < size, symmetric and circular pad <= size, replicate a non-empty
    input."""
    limits = {"reflect": ("<", 0), "symmetric": ("<=", 1), "circular": ("<=", 1)}
    if mode in limits:
        op, slack = limits[mode]
        for name, size, pads in zip(_axis_names(len(in_size)), in_size, sides, strict=True):
            for pad in pads:
                if pad > size - 1 + slack:
                    raise ValueError(
                        f"padding_mode={mode!r}: padding {pad} on the {name} axis needs padding "
                        f"{op} input size {size}"
                    )
    if mode == "replicate" and min(in_size) == 0 and any(p for s in sides for p in s):
        raise ValueError("padding_mode='replicate': needs a non-empty input plane")


def check_pool_padding(padding: object, kernel_size: tuple[int, ...]) -> Sides | str:
    """Check a pooling ``padding`` without an input size: its form, and PyTorch's rule that
    explicit padding is at most ``kernel_size // 2`` per side (a side padded by more would
    give windows that start or end beyond the input; ``"same"`` is chosen by the resolver
    and exempt)."""
    form = check_padding(padding, len(kernel_size))
    if isinstance(form, str):
        return form
    for axis_name, k, side in zip(_axis_names(len(kernel_size)), kernel_size, form, strict=True):
        if max(side) > k // 2:
            raise ValueError(
                f"padding: {side} on the {axis_name} axis is more than half the kernel "
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


def output_sizes(in_size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...], sides: Sides, ceil_mode: bool = False
                 ) -> tuple[int, ...]:
    """:func:`output_size` on every axis; a ValueError names every factor of an axis where
    the dilated kernel does not fit the padded input."""
    sizes = []
    for name, n, k, s, d, side in zip(_axis_names(len(in_size)), in_size, kernel, stride,
                                      dilation, sides, strict=True):
        size = output_size(n, k, s, d, *side, ceil_mode)
        if size < 1:
            raise ValueError(
                f"output {name} would be {size}: input {n}, kernel {k}, stride {s}, "
                f"dilation {d}, padding {tuple(side)} (the dilated kernel must fit in the "
                "padded input)"
            )
        sizes.append(size)
    return tuple(sizes)


def non_negative_ints(value: object, rank: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each >= 0, one per spatial axis (a transposed
    convolution's padding and output padding)."""
    form = _INT_FORMS[rank]
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    if len(items) != rank or any(
            isinstance(item, bool) or not isinstance(item, numbers.Integral) for item in items):
        raise TypeError(f"{name}: expected {form}, got {value!r}")
    if any(item < 0 for item in items):
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    for item in items:
        _check_below_limit(item, name, value)
    return tuple(int(item) for item in items)


def check_output_padding(output_padding: tuple[int, ...], stride: tuple[int, ...],
                         dilation: tuple[int, ...]) -> None:
    """A transposed convolution's output padding is smaller than the stride or the
    dilation on each axis (PyTorch's rule: otherwise it adds rows no stride reaches)."""
    for op, s, d in zip(output_padding, stride, dilation, strict=True):
        if op >= max(s, d):
            raise ValueError(
                f"output_padding: must be smaller than stride or dilation on each axis, got "
                f"output_padding {output_padding}, stride {stride}, dilation {dilation}")


def transposed_output_size(in_size: int, kernel: int, stride: int, dilation: int, padding: int,
                           output_padding: int) -> int:
    """The output size of a transposed convolution on one axis: the input size of the
    convolution it transposes, ``(in - 1) * stride - 2 * padding + dilation * (kernel - 1)
    + output_padding + 1``."""
    return (in_size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _window_axis(in_size: int, out_size: int, kernel: int, stride: int, dilation: int,
                 sides: tuple[int, int]) -> _core.WindowAxis:
    return _core.WindowAxis(in_size, out_size, kernel, stride, dilation, sides[0], sides[1])


# --- convolution ----------------------------------------------------------------------

@dataclass(frozen=True)
class ConvGeometry:
    """One convolution's resolved geometry, batched: ``(N, C, *spatial)`` for any rank
    (``(N, C, H, W)`` in 2-D, where :attr:`kernel_geometry` is what the kernels take)."""

    input_shape: tuple[int, ...]  # (N, C_in, *spatial)
    weight_shape: tuple[int, ...]  # (C_out, C_in // groups, *kernel)
    output_shape: tuple[int, ...]  # (N, C_out, *output spatial)
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    sides: Sides
    groups: int
    padding_mode: str
    input_ndim: int  # rank + 2 batched, rank + 1 unbatched, rank a bare signal/picture/volume

    @property
    def rank(self) -> int:
        return len(self.stride)

    @cached_property
    def kernel_geometry(self) -> _core.Conv2dGeometry:
        """The plain value the compiled 2-D layer receives; the kernels read the padding mode
        themselves (no padded copy of the input)."""
        if self.rank != 2:
            raise ValueError(f"kernel_geometry: the compiled layer takes 2-D geometry, this "
                             f"one has rank {self.rank}")
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

    def user_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A batched shape in the rank the user called with."""
        rank = self.rank
        if self.input_ndim > rank:
            return tuple(shape[rank + 2 - self.input_ndim:])
        return tuple(shape[2:])


def as_batched(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """A convolution shape (batched, unbatched, or a bare signal/picture/volume of ``rank``
    axes) as ``(N, C, *spatial)``."""
    if len(shape) == rank:
        return (1, 1, *shape)
    return (1,) * (rank + 2 - len(shape)) + tuple(shape)


def as_4d(shape: tuple[int, ...], ndim: int) -> Shape4:
    """A 2-D convolution shape of rank ``ndim`` (4, 3 unbatched, 2 picture) as 4-D."""
    return as_batched(tuple(shape)[:ndim], 2)  # type: ignore[return-value]


def check_groups(in_channels: int, out_channels: int, groups: object) -> int:
    """``groups`` as an int >= 1 that divides both channel counts."""
    groups = positive_int(groups, "groups")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups: {groups} must divide in_channels ({in_channels}) and out_channels "
            f"({out_channels})"
        )
    return groups


def check_conv_arguments(rank: int, in_channels: object, out_channels: object,
                         kernel_size: object, stride: object, padding: object, dilation: object,
                         groups: object, padding_mode: object) -> dict:
    """A convolution layer's arguments checked by form alone, before any input is seen
    (channel counts, sizes, the padding's form, the padding mode's name; the limits that
    need an input size are checked when one arrives). Returns them resolved, by name."""
    in_channels = positive_int(in_channels, "in_channels")
    out_channels = positive_int(out_channels, "out_channels")
    return dict(
        in_channels=in_channels, out_channels=out_channels,
        groups=check_groups(in_channels, out_channels, groups),
        kernel_size=positive_ints(kernel_size, rank, "kernel_size"),
        stride=positive_ints(stride, rank, "stride"),
        padding=_checked_form(padding, rank),
        dilation=positive_ints(dilation, rank, "dilation"),
        padding_mode=check_padding_mode(padding_mode),
    )


def _checked_form(padding: object, rank: int) -> object:
    """``padding`` as given (layers keep the user's form for their repr), once its form is
    checked."""
    check_padding(padding, rank)
    return padding


_SHAPE_FORMS = {1: ("(N, C, L)", "(C, L)", "a signal (L,)", "(k,)"),
                2: ("(N, C, H, W)", "(C, H, W)", "a 2-D picture (H, W)", "(kh, kw)"),
                3: ("(N, C, D, H, W)", "(C, D, H, W)", "a volume (D, H, W)", "(kd, kh, kw)")}


def conv_geometry(input_shape, weight_shape, stride, padding, dilation, groups,
                  padding_mode, rank: int = 2) -> ConvGeometry:
    """Resolve a convolution's arguments for an input and a weight of these shapes
    (``rank`` spatial axes).

    Repeated calls with the same arguments (a training loop) reuse the result, which keeps
    the per-call overhead of small convolutions to microseconds.
    """
    key = (tuple(input_shape), tuple(weight_shape), stride, padding, dilation, groups,
           padding_mode, rank)
    cacheable = _cacheable  # spelled out: a generator here costs a microsecond per call
    if ((type(stride) is int or cacheable(stride)) and (type(padding) is int or cacheable(padding))
            and (type(dilation) is int or cacheable(dilation)) and type(groups) is int
            and type(padding_mode) is str and type(rank) is int):
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
                           padding_mode, rank) -> ConvGeometry:
    batched_form, unbatched_form, bare_form, kernel_form = _SHAPE_FORMS[rank]
    ndim = len(input_shape)
    if ndim not in (rank, rank + 1, rank + 2):
        raise ValueError(f"x: expected {batched_form}, {unbatched_form} or {bare_form}, got "
                         f"shape {tuple(input_shape)}")
    weight_ndim = rank if ndim == rank else rank + 2
    if len(weight_shape) != weight_ndim:
        expected = (f"{kernel_form} for {bare_form}" if ndim == rank
                    else f"(C_out, C_in // groups, {kernel_form[1:-1].rstrip(',')})")
        raise ValueError(f"weight: expected {expected}, got shape {tuple(weight_shape)}")
    x_shape = as_batched(tuple(input_shape), rank)
    w_shape = (1, 1, *weight_shape) if ndim == rank else tuple(weight_shape)
    stride = positive_ints(stride, rank, "stride")
    dilation = positive_ints(dilation, rank, "dilation")
    n, c_in, *size = x_shape
    c_out, c_in_g, *kernel = w_shape
    if min(c_in, c_out, *kernel) < 1:
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
    size, kernel = tuple(size), tuple(kernel)
    sides = resolve_padding(padding, size, kernel, stride, dilation)
    padding_mode = check_padding_mode(padding_mode)
    check_padding_mode_limits(padding_mode, sides, size)
    out = output_sizes(size, kernel, stride, dilation, sides)
    padded = tuple(s + before + after for s, (before, after) in zip(size, sides, strict=True))
    check_index_range((n, c_in, *padded), "x (padded)")
    check_index_range(w_shape, "weight")
    check_index_range((n, c_out, *out), "output")
    return ConvGeometry(
        input_shape=x_shape, weight_shape=w_shape, output_shape=(n, c_out, *out),
        stride=stride, dilation=dilation, sides=sides, groups=groups,
        padding_mode=padding_mode, input_ndim=ndim,
    )


_cached_conv_geometry = lru_cache(maxsize=1024)(_resolve_conv_geometry)


# --- pooling --------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolGeometry:
    """One windowed pooling's resolved geometry, batched: ``(N, C, *spatial)``."""

    input_shape: tuple[int, ...]  # (N, C, *spatial)
    output_shape: tuple[int, ...]  # (N, C, *output spatial)
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    sides: Sides
    ceil_mode: bool
    input_ndim: int  # rank + 2 batched, rank + 1 unbatched

    @property
    def rank(self) -> int:
        return len(self.kernel_size)

    def user_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A batched shape in the rank the user called with."""
        return tuple(shape[len(shape) - self.input_ndim:])

    @cached_property
    def kernel_geometry(self) -> _core.PoolGeometry:
        """The plain value the compiled 2-D layer receives."""
        if self.rank != 2:
            raise ValueError(f"kernel_geometry: the compiled layer takes 2-D geometry, this "
                             f"one has rank {self.rank}")
        n, c, h, w = self.input_shape
        rows = _window_axis(h, self.output_shape[2], self.kernel_size[0], self.stride[0],
                            self.dilation[0], self.sides[0])
        cols = _window_axis(w, self.output_shape[3], self.kernel_size[1], self.stride[1],
                            self.dilation[1], self.sides[1])
        return _core.PoolGeometry(n * c, rows, cols)


def pool_input_shape(shape: tuple[int, ...], name: str, rank: int = 2) -> tuple[int, ...]:
    """A pooling input shape, ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, batched."""
    if len(shape) not in (rank + 1, rank + 2):
        batched_form, unbatched_form, *_ = _SHAPE_FORMS[rank]
        raise ValueError(f"{name}: expected {batched_form} or {unbatched_form}, got shape "
                         f"{tuple(shape)}")
    check_index_range(shape, name)
    return (1,) * (rank + 2 - len(shape)) + tuple(shape)


def pool_shape_4d(shape: tuple[int, ...], name: str) -> Shape4:
    """A 2-D pooling input shape, ``(N, C, H, W)`` or unbatched ``(C, H, W)``, as 4-D."""
    return pool_input_shape(shape, name, 2)  # type: ignore[return-value]


def check_pool_arguments(rank: int, kernel_size: object, stride: object, padding: object,
                         dilation: object, ceil_mode: object) -> dict:
    """A pooling layer's window arguments checked by form alone, before any input is seen
    (sizes, the padding's form and ``padding <= kernel_size // 2``). Returns them resolved,
    by name (``stride`` defaults to the kernel size)."""
    kernel = positive_ints(kernel_size, rank, "kernel_size")
    check_pool_padding(padding, kernel)
    return dict(
        kernel_size=kernel,
        stride=kernel if stride is None else positive_ints(stride, rank, "stride"),
        padding=padding,
        dilation=positive_ints(dilation, rank, "dilation"),
        ceil_mode=check_flag(ceil_mode, "ceil_mode"),
    )


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
                  name: str = "x", rank: int = 2) -> PoolGeometry:
    """Resolve a windowed pooling's arguments for an input of this shape (``rank``
    spatial axes).

    Repeated calls with the same arguments reuse the result, as :func:`conv_geometry`'s.
    """
    if (_cacheable(kernel_size) and (stride is None or _cacheable(stride))
            and _cacheable(padding) and _cacheable(dilation) and type(ceil_mode) is bool):
        return _cached_pool_geometry(tuple(input_shape), kernel_size, stride, padding, dilation,
                                     ceil_mode, name, rank)
    return _resolve_pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode,
                                  name, rank)


def _resolve_pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode,
                           name, rank) -> PoolGeometry:
    shape = pool_input_shape(tuple(input_shape), name, rank)
    window = check_pool_arguments(rank, kernel_size, stride, padding, dilation, ceil_mode)
    kernel, stride, dilation = window["kernel_size"], window["stride"], window["dilation"]
    ceil_mode = window["ceil_mode"]
    n, c, *size = shape
    names = _axis_names(rank)
    if min(size) < 1:
        sizes = "H and W" if rank == 2 else f"every spatial size ({', '.join(names)})"
        raise ValueError(f"{name}: pooling needs {sizes} >= 1, got shape {tuple(input_shape)}")
    size = tuple(size)
    sides = resolve_padding(padding, size, kernel, stride, dilation)
    padded = tuple(s + before + after for s, (before, after) in zip(size, sides, strict=True))
    check_index_range((n, c, *padded), f"{name} (padded)")
    out = []
    for axis, axis_name in enumerate(names):
        k, (before, after), in_size = kernel[axis], sides[axis], size[axis]
        extent = dilation[axis] * (k - 1) + 1
        if extent > in_size + before + after:
            raise ValueError(
                f"kernel_size: the {axis_name} window spans {extent} pixels (kernel {k}, "
                f"dilation {dilation[axis]}), more than the padded input {in_size} + "
                f"{before} + {after} = {in_size + before + after}"
            )
        out_size = output_size(in_size, k, stride[axis], dilation[axis], before, after,
                               ceil_mode)
        empty = _first_window_without_input(in_size, out_size, k, stride[axis], dilation[axis],
                                            before)
        if empty is not None:
            raise ValueError(
                f"{axis_name}: the window of output position {empty} lies entirely in the "
                f"padding (input {in_size}, kernel {k}, stride {stride[axis]}, dilation "
                f"{dilation[axis]}, padding before {before})"
            )
        out.append(out_size)
    return PoolGeometry(
        input_shape=shape, output_shape=(n, c, *out), kernel_size=kernel, stride=stride,
        dilation=dilation, sides=sides, ceil_mode=ceil_mode, input_ndim=len(input_shape),
    )


_cached_pool_geometry = lru_cache(maxsize=1024)(_resolve_pool_geometry)
