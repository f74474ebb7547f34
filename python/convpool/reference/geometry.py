"""The oracle's window geometry, from the definitions: padding, output sizes, padding modes.

Written apart from the library's own argument handling, on purpose: an oracle that shared
the code it checks could not catch that code's mistakes. One axis at a time:

- a window of ``kernel`` taps ``dilation`` apart spans ``dilation * (kernel - 1) + 1``
  pixels; window ``o`` starts at padded position ``o * stride``;
- ``output_size``: as many windows as fit in the padded axis ``before + size + after``
  (``ceil_mode``: one more for a partial window at the end, as long as it starts inside
  the input or the padding before it);
- ``'same'`` padding: the least total padding that gives ``ceil(size / stride)`` windows,
  the odd pixel after;
- a padding mode says which input pixel each padded position copies (``padding_source``).
"""

from __future__ import annotations

import numbers

import numpy as np

Sides = tuple[tuple[int, int], tuple[int, int]]
"""``((top, bottom), (left, right))``: the padding on each side."""

PADDING_MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


def window_span(kernel: int, dilation: int) -> int:
    """How many pixels a window of ``kernel`` taps, ``dilation`` apart, covers."""
    return dilation * (kernel - 1) + 1


def output_size(size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
                ceil_mode: bool = False) -> int:
    """How many windows fit on one axis; zero or less when none does.

    ``floor((before + size + after - span) / stride) + 1``; with ``ceil_mode`` the
    ceiling instead, less one if that last window would start in the padding after the
    input (PyTorch's rule).
    """
    room = before + size + after - window_span(kernel, dilation)
    if not ceil_mode:
        return room // stride + 1
    count = -(-room // stride) + 1
    if (count - 1) * stride >= before + size:
        count -= 1
    return count


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """``(before, after)`` for ``ceil(size / stride)`` windows: the last one must end at
    ``(windows - 1) * stride + span``; the odd pixel goes after."""
    windows = -(-size // stride)
    total = max((windows - 1) * stride + window_span(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def _amount(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"padding: {what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"padding: {what} must be >= 0, got {value}")
    return int(value)


def resolve_padding(padding: object, in_size: tuple[int, int], kernel_size: tuple[int, int],
                    stride: tuple[int, int], dilation: tuple[int, int]) -> Sides:
    """Any accepted ``padding`` as ``((top, bottom), (left, right))``.

    ``p`` (every side), ``(ph, pw)``, ``((top, bottom), (left, right))`` (an entry may
    also be one int for both its sides), ``'valid'`` (none) or ``'same'``.
    """
    forms = "an int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same'"
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            top_bottom, left_right = (
                same_padding(in_size[a], kernel_size[a], stride[a], dilation[a]) for a in (0, 1))
            return top_bottom, left_right
        raise ValueError(f"padding: expected {forms}, got {padding!r}")
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = _amount(padding, "value")
        return (p, p), (p, p)
    if not isinstance(padding, (tuple, list)):
        raise TypeError(f"padding: expected {forms}, got {padding!r}")
    if len(padding) != 2:
        raise ValueError(f"padding: expected {forms}, got {padding!r}")
    sides = []
    for axis, entry in zip(("height", "width"), padding, strict=True):
        if isinstance(entry, (tuple, list)):
            if len(entry) != 2:
                raise ValueError(
                    f"padding: the {axis} entry must be an int or (before, after), got {entry!r}")
            sides.append((_amount(entry[0], f"{axis} before"), _amount(entry[1], f"{axis} after")))
        else:
            p = _amount(entry, axis)
            sides.append((p, p))
    return sides[0], sides[1]


def check_padding_mode(mode: object, sides: Sides, in_size: tuple[int, int]) -> str:
    """``mode``, if it is one of :data:`PADDING_MODES` and can make ``sides`` for this input.

    A mirror or a wrap-around can only copy pixels that exist: ``reflect`` (which skips
    the edge pixel) needs padding < size, ``symmetric`` and ``circular`` padding <= size;
    ``replicate`` needs a pixel to repeat.
    """
    if not isinstance(mode, str):
        raise TypeError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
    for axis, name in ((0, "height"), (1, "width")):
        size = in_size[axis]
        for pad in sides[axis]:
            if mode == "reflect" and not pad < size:
                raise ValueError(f"padding_mode='reflect': padding {pad} on the {name} axis "
                                 f"needs padding < input size {size}")
            if mode in ("symmetric", "circular") and not pad <= size:
                raise ValueError(f"padding_mode={mode!r}: padding {pad} on the {name} axis "
                                 f"needs padding <= input size {size}")
            if mode == "replicate" and pad and not size:
                raise ValueError("padding_mode='replicate': needs a non-empty input plane")
    return mode


def padding_source(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of the padded axis (``before + size + after`` of them), the input
    position it copies, or -1 for a zero.

    With ``i`` the position relative to the input's first pixel (negative in the padding
    before), for an input ``a b c d``:

    - ``zeros``: ``i`` inside the input, else -1 (``0 0 | a b c d | 0 0``);
    - ``replicate``: the nearest edge pixel (``a a | a b c d | d d``);
    - ``reflect``: mirrored about the edge pixels, period ``2 (size - 1)``
      (``c b | a b c d | c b``);
    - ``symmetric``: mirrored about the edges, period ``2 size`` (``b a | a b c d | d c``);
    - ``circular``: wrapped around, period ``size`` (``c d | a b c d | a b``).
    """
    i = np.arange(-before, size + after)
    inside = (0 <= i) & (i < size)
    if mode == "zeros" or size == 0:
        return np.where(inside, i, -1)
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    if mode == "circular":
        return i % size
    if mode == "reflect":
        period = 2 * (size - 1)
        if period == 0:
            return np.zeros_like(i)
        k = i % period
        return np.where(k < size, k, period - k)
    if mode == "symmetric":
        k = i % (2 * size)
        return np.where(k < size, k, 2 * size - 1 - k)
    raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {mode!r}")
