"""The table printed by :meth:`Sequential.summary`: shapes, parameter counts and
receptive fields, computed from shapes alone (no array is allocated)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .receptive_field import ReceptiveField

if TYPE_CHECKING:
    from .layer import Layer


@dataclass(frozen=True)
class SummaryRow:
    """One layer: its name (path of child names), description, output shape of one
    sample (None if unknown), parameter count and receptive field in the input (None
    for a non-image input, or when a layer on the way does not declare it)."""

    name: str
    layer: str
    output_shape: tuple[int, ...] | None
    parameters: int
    receptive_field: ReceptiveField | None


@dataclass(frozen=True)
class Summary:
    """What :meth:`Sequential.summary` returns; ``str(summary)`` is the table."""

    input_shape: tuple[int, ...]
    rows: tuple[SummaryRow, ...]
    total_parameters: int
    parameter_bytes: int

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """One sample's output shape; None if a layer does not declare its own."""
        return self.rows[-1].output_shape if self.rows else self.input_shape

    @property
    def receptive_field(self) -> ReceptiveField | None:
        """The receptive field shared by every output unit, or None: for a non-image
        input, when a layer does not declare its geometry, or when the output units are
        not all alike (after up-sampling; see ``ReceptiveField.period``), so that no
        single field describes them."""
        field = self.rows[-1].receptive_field if self.rows else None
        if field is None or field.period is not None:
            return None
        return field

    def __str__(self) -> str:
        header = ("#", "layer", "output shape", "params", "RF size", "RF jump", "RF start")
        image = len(self.input_shape) == 3
        lines = [("", "input", _shape(self.input_shape), "", *_field(
            ReceptiveField.of_input() if image else None, image))]
        for row in self.rows:
            lines.append((row.name, row.layer, _shape(row.output_shape), f"{row.parameters:,}",
                          *_field(row.receptive_field, image)))
        widths = [max(len(str(line[i])) for line in (header, *lines)) for i in range(len(header))]

        def render(cells) -> str:
            return "  ".join(
                str(cell).rjust(width) if i in (3,) else str(cell).ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "-" * len(render(header))
        total = (f"Total parameters: {self.total_parameters:,} "
                 f"({_bytes(self.parameter_bytes)})")
        field = self.rows[-1].receptive_field if self.rows else None
        text = [rule, render(header), rule, *(render(line) for line in lines), rule, total]
        if field is not None:
            size, jump, start = field.describe()
            text.append(f"Receptive field of the output: size {size}, jump {jump}, "
                        f"start {start}")
        elif image and self.rows:
            text.append("Receptive field of the output: unknown (a layer does not declare "
                        "its geometry)")
        return "\n".join(text)


def _shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else str(tuple(shape))


def _field(field: ReceptiveField | None, image: bool) -> tuple[str, str, str]:
    if field is None:
        return ("?", "?", "?") if image else ("-", "-", "-")
    return field.describe()


def _bytes(count: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _leaves(layer: Layer, prefix: str) -> Iterator[tuple[str, Layer]]:
    """Layers in order, chains (Sequential) opened, named by path ("layer1.0")."""
    if getattr(layer, "is_chain", False):
        for name, child in layer.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, layer


def _describe(layer: Layer) -> str:
    """One line: the layer's repr, or for a layer of layers its type and children."""
    children = [name for name, _ in layer.named_children()]
    if not children:
        return repr(layer)
    return f"{type(layer).__name__}({', '.join(children)})"


def summarize(model: Layer, input_shape: tuple[int, ...]) -> Summary:
    """The :class:`Summary` of ``model`` for one sample of ``input_shape`` (no batch axis)."""
    if not isinstance(input_shape, (tuple, list)) or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
        for s in input_shape
    ):
        raise ValueError(
            f"input_shape: expected one sample's shape as positive ints, e.g. (1, 28, 28), "
            f"got {input_shape!r}"
        )
    shape = tuple(int(s) for s in input_shape)
    image = len(shape) == 3
    net_input_size = (shape[1], shape[2]) if image else None
    field = ReceptiveField.of_input() if image else None
    rows = []
    total = 0
    parameter_bytes = 0
    known = True  # every layer so far declared its geometry
    for name, layer in _leaves(model, ""):
        if known:
            try:
                new_shape = layer.output_shape(shape)
            except NotImplementedError:  # UndeclaredGeometryError: unknown from here on
                known = False
            else:
                if field is not None:
                    field = layer.receptive_field(field, shape, net_input_size)
                shape = new_shape
        if not known:
            shape, field = None, None
        count = layer.num_parameters()
        total += count
        parameter_bytes += sum(p.size * p.dtype.itemsize for p in layer.parameters())
        rows.append(SummaryRow(name=name or "0", layer=_describe(layer), output_shape=shape,
                               parameters=count, receptive_field=field))
    return Summary(input_shape=tuple(int(s) for s in input_shape), rows=tuple(rows),
                   total_parameters=total, parameter_bytes=parameter_bytes)
