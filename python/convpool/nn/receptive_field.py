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
"""

from __future__ import annotations

from dataclasses import dataclass

Pair = tuple[int, int]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units in the net's input, per axis ``(height, width)``.

    ``jump`` is None for a global layer, whose every unit sees the whole input.
    """

    size: Pair
    jump: Pair | None
    start: tuple[float, float]

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
            size.append(self.size[axis] + span * self.jump[axis])
            start.append(self.start[axis] + (span / 2 - pad_before[axis]) * self.jump[axis])
            jump.append(self.jump[axis] * stride[axis])
        return ReceptiveField(size=(size[0], size[1]), jump=(jump[0], jump[1]),
                              start=(start[0], start[1]))

    def describe(self) -> tuple[str, str, str]:
        """``(size, jump, start)`` as short text for a table."""
        def pair(values, fmt="{}"):
            a, b = (fmt.format(v) for v in values)
            return a if a == b else f"{a}x{b}"
        size = f"{self.size[0]}x{self.size[1]}"
        if self.jump is None:
            return f"{size} (global)", "-", pair(self.start, "{:g}")
        return size, pair(self.jump), pair(self.start, "{:g}")
