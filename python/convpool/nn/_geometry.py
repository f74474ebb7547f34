"""Window geometry shared by the layers: the shape of one sample and output sizes for
summaries, from :mod:`convpool.geometry` (arguments are checked there, at construction)."""

from __future__ import annotations

from ..geometry import Sides, output_sizes

_SAMPLE_FORMS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}


def spatial(layer: str, input_shape: tuple[int, ...], rank: int = 2) -> tuple[int, tuple]:
    """``(C, spatial)`` of one sample's shape (no batch axis): ``(C, (H, W))`` in 2-D."""
    if len(input_shape) != rank + 1:
        raise ValueError(f"{layer}: expects {_SAMPLE_FORMS[rank]} samples, got shape "
                         f"{tuple(input_shape)}")
    return input_shape[0], tuple(input_shape[1:])


def window_output_size(layer: str, in_size: tuple[int, ...], kernel: tuple[int, ...],
                       stride: tuple[int, ...], dilation: tuple[int, ...], sides: Sides,
                       ceil_mode: bool = False) -> tuple[int, ...]:
    """Output size of a window operation on every axis; a ValueError names the layer and
    every factor if the window does not fit."""
    try:
        return output_sizes(in_size, kernel, stride, dilation, sides, ceil_mode)
    except ValueError as error:
        raise ValueError(f"{layer}: {error}") from None
