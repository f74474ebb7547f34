"""Padding resolution, kept importable as ``convpool.padding``: the rules live in
:mod:`convpool.geometry`, which owns every geometry rule of the library."""

from __future__ import annotations

from . import geometry
from .geometry import PADDING_MODES, Sides, output_size, resolve_padding, same_padding

__all__ = ["PADDING_MODES", "Sides", "check_padding_mode", "output_size", "resolve_padding",
           "same_padding"]


def check_padding_mode(mode: object, sides: Sides, in_size: tuple[int, int]) -> str:
    """Validate ``padding_mode`` and that it can produce ``sides`` for this input size
    (:func:`convpool.geometry.check_padding_mode` and
    :func:`~convpool.geometry.check_padding_mode_limits` in one call)."""
    mode = geometry.check_padding_mode(mode)
    geometry.check_padding_mode_limits(mode, sides, in_size)
    return mode
