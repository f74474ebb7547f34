"""Receptive-field arithmetic: which input pixels a unit of a layer sees.

Per axis, three numbers describe the units of a feature map in input coordinates
(pixel indices of the net's input):

- ``size``: how many input pixels one unit sees (its receptive field's extent);
- ``jump``: how far apart, in input pixels, two neighbouring units' fields are;
- ``start``: the centre of the first unit's field (negative or fractional when
  padding or an even kernel put it there).

A window layer with kernel ``k``, stride ``s``, dilation ``d`` and ``p`` pixels of
padding before the input maps them as ``k' = d (k - 1) + 1``,
``size += (k' - 1) jump``, ``start += ((k' - 1) / 2 - p) jump``, ``jump *= s``.
Global layers (dense, softmax, global pooling) see the whole input.

Up-sampling layers (transposed convolution, nearest up-sampling) divide the jump, which
may then be a fraction; their units are no longer all alike (which input pixel a unit
reads repeats only every ``period`` input pixels, the coarser grid they came from), and
the field bounds every unit's. Branches that meet (residual sums, concatenations) see
the union of their fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

Pair = tuple[int, int]
Number = int | float | Fraction


def _tidy(value: Number) -> Number:
    """Integral fractions as ints, so that integer geometry stays integer."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units in the net's input, per axis ``(height, width)``.

    ``jump`` is None for a global layer, whose every unit sees the whole input.
    """

    size: tuple[Number, Number]
    jump: tuple[Number, Number] | None
    start: tuple[Number, Number]
    period: tuple[Number, Number] | None = None
    """None when every unit is alike (shifting the input by ``jump`` shifts the output
    by one unit); else the input shift after which the net repeats (after
    up-sampling)."""

    @classmethod
    def of_input(cls) -> ReceptiveField:
        """The input layer: every unit is one pixel."""
        return cls(size=(1, 1), jump=(1, 1), start=(0.0, 0.0))

    @classmethod
    def whole(cls, input_size: Pair) -> ReceptiveField:
        """A global layer's: the whole ``input_size`` picture, centred."""
        h, w = input_size
        return cls(size=(h, w), jump=None, start=((h - 1) / 2, (w - 1) / 2))

    @property
    def is_global(self) -> bool:
        return self.jump is None

    def through_window(self, kernel: Pair, stride: Pair, dilation: Pair,
                       pad_before: Pair) -> ReceptiveField:
        """The field after a window operation (convolution or pooling)."""
        if self.jump is None:
            return self
        size, jump, start = [], [], []
        for axis in (0, 1):
            span = dilation[axis] * (kernel[axis] - 1)  # k' - 1
            size.append(_tidy(self.size[axis] + span * self.jump[axis]))
            start.append(self.start[axis] + (span / 2 - pad_before[axis]) * self.jump[axis])
            jump.append(_tidy(self.jump[axis] * stride[axis]))
        return ReceptiveField(size=(size[0], size[1]), jump=(jump[0], jump[1]),
                              start=(start[0], start[1]),
                              period=self._period_after((jump[0], jump[1])))

    def _period_after(self, jump: tuple[Number, Number]) -> tuple[Number, Number] | None:
        """The period once the jump is ``jump``: gone when the jump is a multiple of it."""
        if self.period is None:
            return None
        if all(Fraction(j) % Fraction(p) == 0 for j, p in zip(jump, self.period, strict=True)):
            return None
        return self.period

    def through_transpose(self, kernel: Pair, stride: Pair, dilation: Pair,
                          padding: Pair) -> ReceptiveField:
        """The field after a transposed convolution (stride ``s`` divides the jump).

        Output pixel ``o`` reads the input pixels ``i`` with ``i * s + t * d - p = o``,
        all inside ``[(o + p - (k - 1) d) / s, (o + p) / s]``; that interval, in input
        units, bounds its field."""
        if self.jump is None:
            return self
        size, jump, start, period = [], [], [], []
        for axis in (0, 1):
            s = stride[axis]
            span = Fraction(dilation[axis] * (kernel[axis] - 1), s)
            size.append(_tidy(self.size[axis] + span * self.jump[axis]))
            offset = Fraction(2 * padding[axis] - dilation[axis] * (kernel[axis] - 1), 2 * s)
            start.append(_tidy(self.start[axis] + offset * self.jump[axis]))
            jump.append(_tidy(Fraction(self.jump[axis]) / s))
            period.append(self.jump[axis] if self.period is None else self.period[axis])
        unaligned = any(s > 1 for s in stride) or self.period is not None
        return ReceptiveField(size=(size[0], size[1]), jump=(jump[0], jump[1]),
                              start=(start[0], start[1]),
                              period=(period[0], period[1]) if unaligned else None)

    def through_upsampling(self, scale: Pair) -> ReceptiveField:
        """The field after nearest up-sampling by ``scale``: output unit ``u`` copies
        input unit ``floor(u / scale)``, within ``(scale - 1) / scale`` units of the line
        ``u / scale``."""
        if self.jump is None:
            return self
        return self.through_transpose(scale, scale, (1, 1), (0, 0))

    def union(self, other: ReceptiveField, net_input_size: Pair) -> ReceptiveField | None:
        """The field of units that see both fields' pixels (branches summed or
        concatenated unit by unit); None when the branches' units do not line up."""
        if self.jump is None or other.jump is None:
            return ReceptiveField.whole(net_input_size)
        if self.jump != other.jump:
            return None
        size, start = [], []
        for axis in (0, 1):
            lows = [f.start[axis] - Fraction(f.size[axis] - 1) / 2 for f in (self, other)]
            highs = [f.start[axis] + Fraction(f.size[axis] - 1) / 2 for f in (self, other)]
            low, high = min(lows), max(highs)
            size.append(_tidy(Fraction(high - low) + 1))
            start.append(_tidy(Fraction(low + high) / 2))
        periods = [f.period for f in (self, other) if f.period is not None]
        period = None
        if periods:
            period = tuple(_tidy(Fraction(math.lcm(*(Fraction(p[a]).numerator for p in periods)),
                                          math.gcd(*(Fraction(p[a]).denominator
                                                     for p in periods))))
                           for a in (0, 1))
        return replace(self, size=(size[0], size[1]), start=(start[0], start[1]),
                       period=period)

    def describe(self) -> tuple[str, str, str]:
        """``(size, jump, start)`` as short text for a table."""
        def pair(values, fmt="{:g}"):
            a, b = (fmt.format(float(v)) for v in values)
            return a if a == b else f"{a}x{b}"
        size = "{:g}x{:g}".format(*(float(v) for v in self.size))
        if self.jump is None:
            return f"{size} (global)", "-", pair(self.start)
        if self.period is not None:
            size += " (period " + pair(self.period) + ")"
        return size, pair(self.jump), pair(self.start)
