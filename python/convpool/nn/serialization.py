"""Saving and loading a model's parameters as ``.npz`` (keys as PyTorch's state dict)."""

from __future__ import annotations

import os

import numpy as np

from .layer import Layer


def save(model: Layer, path: str | os.PathLike) -> None:
    """Write ``model.state_dict()`` to ``path`` (NumPy's ``.npz``; the suffix is added
    by NumPy when missing)."""
    if not isinstance(model, Layer):
        raise TypeError(f"model: expected a convpool.nn Layer, got {type(model).__name__}")
    np.savez(path, **model.state_dict())


def load(model: Layer, path: str | os.PathLike, strict: bool = True) -> None:
    """Set ``model``'s parameters from a file written by :func:`save` (or any ``.npz``
    keyed like a PyTorch state dict of the same architecture)."""
    if not isinstance(model, Layer):
        raise TypeError(f"model: expected a convpool.nn Layer, got {type(model).__name__}")
    with np.load(path, allow_pickle=False) as archive:
        model.load_state_dict({key: archive[key] for key in archive.files}, strict=strict)
