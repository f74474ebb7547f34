"""State dicts on disk: one ``.npz`` file per model, keyed like PyTorch's state dict.

One suffix rule both ways: a path without ``.npz`` gets it, on saving and on loading. A
PyTorch ``.pt``/``.pth`` file is read through ``torch.load(weights_only=True)`` when torch
is installed, and is otherwise a clear error. A damaged file is a ValueError naming it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

_TORCH_SUFFIXES = (".pt", ".pth")


def npz_path(path: str | os.PathLike) -> Path:
    """``path`` with ``.npz`` appended unless it ends in ``.npz`` (as ``numpy.savez``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def write_state(state: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` (``.npz`` appended if missing); returns the path."""
    target = npz_path(path)
    np.savez(target, **state)
    return target


def read_state(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a state-dict file: a ``.npz`` (suffix appended if missing), or a
    PyTorch ``.pt``/``.pth`` state dict when torch is installed."""
    if isinstance(path, (str, os.PathLike)) and Path(path).suffix in _TORCH_SUFFIXES:
        return _read_torch(Path(path))
    target = npz_path(path)
    if not target.exists():
        raise FileNotFoundError(f"path: no such file {str(target)!r}")
    try:
        # Opened here, so that the file is closed even when NumPy fails half-way.
        with open(target, "rb") as file:
            archive = np.load(file, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it holds one array, not a state dict")
            with archive:
                return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        size = target.stat().st_size
        why = "it is empty" if size == 0 else f"it is not a complete .npz archive ({error})"
        raise ValueError(f"path: cannot read {str(target)!r}: {why}") from None


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"path: {str(path)!r} is a PyTorch file, which needs torch to read; install "
            f"torch, or save its state dict as .npz: numpy.savez(path, **{{k: v.numpy() for "
            f"k, v in model.state_dict().items()}})") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"],
                                                                         dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"path: {str(path)!r} holds a {type(state).__name__}, not a state dict")
    return {key: value.detach().cpu().numpy() for key, value in state.items()
            if hasattr(value, "detach")}
