"""Padding resolution, shared by convolution, pooling and the NumPy oracle.

Every accepted ``padding`` form becomes one explicit answer: how many pixels go on the
top, bottom, left and right of the input. The output size then follows from one formula.
"""

from __future__ import annotations

import math
import numbers

from ._args import INDEX_LIMIT

Sides = tuple[tuple[int, int], tuple[int, int]]
"""``((top, bottom), (left, right))``: padding resolved per side."""

PADDING_MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


def _nonnegative_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"padding: {what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"padding: {what} must be >= 0, got {value}")
    if value >= INDEX_LIMIT:
        raise ValueError(f"padding: {what} must be < 2**62 (64-bit index arithmetic), got {value}")
    return int(value)


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
    """Resolve any accepted ``padding`` form to ``((top, bottom), (left, right))``.

    Forms: ``int p`` (all sides), ``(ph, pw)`` (top/bottom, left/right),
    ``((top, bottom), (left, right))``, ``"valid"`` (none) and ``"same"`` (output
    ``ceil(in / stride)`` on each axis, for any stride, dilation and kernel size).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return tuple(  # type: ignore[return-value]
                same_padding(in_size[a], kernel_size[a], stride[a], dilation[a]) for a in (0, 1)
            )
        raise ValueError(
            f"padding: expected an int, a pair, a pair of pairs, 'valid' or 'same', got {padding!r}"
        )
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = _nonnegative_int(padding, "value")
        return (p, p), (p, p)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        sides = []
        for axis, item in zip(("height", "width"), padding, strict=True):
            if isinstance(item, (tuple, list)):
                if len(item) != 2:
                    raise ValueError(
                        f"padding: the {axis} entry must be an int or (before, after), got {item!r}"
                    )
                before = _nonnegative_int(item[0], f"{axis} before")
                after = _nonnegative_int(item[1], f"{axis} after")
                sides.append((before, after))
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


def output_size(
    in_size: int, kernel: int, stride: int, dilation: int, before: int, after: int
) -> int:
    """``floor((in + before + after - dilation * (kernel - 1) - 1) / stride) + 1``."""
    return (in_size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def check_padding_mode(mode: object, sides: Sides, in_size: tuple[int, int]) -> str:
    """Validate ``padding_mode`` and that it can produce ``sides`` for this input size."""
    if not isinstance(mode, str):
        raise TypeError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    limits = {"reflect": ("<", 0), "symmetric": ("<=", 1), "circular": ("<=", 1)}
    if mode in limits:
        op, slack = limits[mode]
        for axis, name in ((0, "height"), (1, "width")):
            for pad in sides[axis]:
                if pad > in_size[axis] - 1 + slack:
                    raise ValueError(
                        f"padding_mode={mode!r}: padding {pad} on the {name} axis needs padding "
                        f"{op} input size {in_size[axis]}"
                    )
    if mode == "replicate" and min(in_size) == 0 and any(p for s in sides for p in s):
        raise ValueError("padding_mode='replicate': needs a non-empty input plane")
    return mode
