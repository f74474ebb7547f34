"""Pictures of a net: its kernels, its feature maps for one input, its training curves.

Needs matplotlib (``pip install matplotlib``, or the ``viz`` extra); ``import convpool``
never loads it.
Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no
global state, no window) and, given ``path``, also writes it as a PNG of exactly
``figsize * dpi`` pixels.
"""

from __future__ import annotations

import os

import numpy as np

from .nn.conv import Conv2d
from .nn.layer import Layer
from .nn.sequential import Sequential
from .nn.training import History

__all__ = ["plot_feature_maps", "plot_history", "plot_kernels"]

PathLike = str | os.PathLike


def _figure(size: tuple[float, float]):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "convpool.viz needs matplotlib: pip install matplotlib") from None
    return Figure(figsize=size)


def _finish(figure, path: PathLike | None, dpi: int):
    figure.set_dpi(dpi)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=dpi, format="png")
    return figure


def _leaves(model: Layer) -> list[Layer]:
    if isinstance(model, Sequential):
        return [leaf for layer in model.layers for leaf in _leaves(layer)]
    return [model]


def _hide_ticks(axis) -> None:
    axis.set_xticks([])
    axis.set_yticks([])


def plot_kernels(model_or_weight: Layer | np.ndarray, *, layer: int = 0, max_kernels: int = 64,
                 path: PathLike | None = None, dpi: int = 100):
    """The kernels of a convolution as a grid: one row per output channel, one column
    per input channel, red for positive and blue for negative weights on one shared
    symmetric scale (white is 0).

    Args:
        model_or_weight: a :class:`~convpool.nn.Conv2d`, a net (its ``layer``-th
            Conv2d is shown, counting from 0), or a weight array ``(C_out, C_in, kh, kw)``.
        max_kernels: at most this many kernels are drawn (whole rows first).
    """
    if isinstance(model_or_weight, Layer):
        convolutions = [leaf for leaf in _leaves(model_or_weight) if isinstance(leaf, Conv2d)]
        if not 0 <= layer < len(convolutions):
            raise ValueError(
                f"layer: the net has {len(convolutions)} Conv2d layers, got layer={layer}")
        weight = convolutions[layer].weight.data
    else:
        weight = np.asarray(model_or_weight)
    if weight.ndim != 4 or weight.dtype.kind not in "uif":
        raise ValueError(
            f"model_or_weight: expected a Conv2d, a net or a (C_out, C_in, kh, kw) weight "
            f"array, got shape {weight.shape}")
    columns = min(weight.shape[1], max_kernels)
    rows = max(1, min(weight.shape[0], max_kernels // columns))
    shown = np.asarray(weight[:rows, :columns], dtype=np.float64)
    top = float(np.abs(shown).max()) or 1.0
    figure = _figure((0.5 + 0.9 * columns, 0.5 + 0.9 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    image = None
    for q in range(rows):
        for p in range(columns):
            image = axes[q, p].imshow(shown[q, p], cmap="RdBu_r", vmin=-top, vmax=top)
            _hide_ticks(axes[q, p])
    figure.colorbar(image, ax=axes, shrink=0.8)
    figure.suptitle(f"kernels {tuple(weight.shape)}"
                    + (f", first {rows}x{columns}" if (rows, columns) != weight.shape[:2] else ""))
    return _finish(figure, path, dpi)


def plot_feature_maps(model: Layer, x: np.ndarray, *, max_maps: int = 8,
                      path: PathLike | None = None, dpi: int = 100):
    """The feature maps of each layer for one input ``x`` ``(C, H, W)``: the input in the
    first row, then one row per layer whose output is still a picture (up to
    ``max_maps`` channels each, each map on its own grey scale). The model runs in
    evaluation mode and is left in it."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x: expected one picture (C, H, W), got shape {x.shape}")
    model.eval()
    rows = [("input", x)]
    value = x[None]
    for index, leaf in enumerate(_leaves(model)):
        value = leaf.forward(value)
        if value.ndim != 4:
            break
        rows.append((f"{index}: {type(leaf).__name__}", value[0]))
    columns = min(max_maps, max(maps.shape[0] for _, maps in rows))
    figure = _figure((1.0 + 1.3 * columns, 1.3 * len(rows)))
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for r, (title, maps) in enumerate(rows):
        for c in range(columns):
            axis = axes[r, c]
            _hide_ticks(axis)
            if c >= maps.shape[0]:
                axis.set_axis_off()
                continue
            axis.imshow(maps[c], cmap="gray")
            if c == 0:
                axis.set_ylabel(f"{title}\n{maps.shape[1]}x{maps.shape[2]}", fontsize=7)
    figure.suptitle("feature maps")
    return _finish(figure, path, dpi)


def plot_history(history: History, *, path: PathLike | None = None, dpi: int = 100):
    """Training curves from :func:`convpool.nn.fit`'s :class:`~convpool.nn.History`:
    loss per epoch (left) and accuracy per epoch (right), validation dashed when
    present."""
    if not isinstance(history, History):
        raise TypeError(f"history: expected a convpool.nn.History, got {type(history).__name__}")
    if len(history) == 0:
        raise ValueError("history: no epoch recorded")
    figure = _figure((9.0, 3.5))
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    epochs = np.arange(1, len(history) + 1)
    for axis, train, validation, name in (
        (loss_axis, history.loss, history.val_loss, "loss"),
        (accuracy_axis, history.accuracy, history.val_accuracy, "accuracy"),
    ):
        for values, label, style in ((train, "training", "-"), (validation, "validation", "--")):
            points = [(e, v) for e, v in zip(epochs, values, strict=False) if v is not None]
            if points:
                axis.plot(*zip(*points, strict=True), style, marker=".", label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    figure.tight_layout()
    return _finish(figure, path, dpi)
