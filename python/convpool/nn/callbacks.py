"""Callbacks for :func:`convpool.nn.fit`: keep the best weights, stop early.

A callback is any object with some of ``on_train_begin(model)``,
``on_epoch_end(epoch, history, model)`` (return True to stop training) and
``on_train_end(model, history)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

_MONITORED = ("loss", "accuracy", "val_loss", "val_accuracy")


class BestWeights:
    """Remember the model's state (parameters and buffers) at its best epoch by
    ``monitor`` and restore it when training ends. ``mode`` ``"min"`` for losses,
    ``"max"`` for accuracies (``"auto"`` picks by the name)."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 min_delta: float = 0.0) -> None:
        if monitor not in _MONITORED:
            raise ValueError(f"monitor: expected one of {_MONITORED}, got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or \
                min_delta < 0:
            raise ValueError(f"min_delta: expected a number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.mode = ("max" if "accuracy" in monitor else "min") if mode == "auto" else mode
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, np.ndarray] | None = None

    def _value(self, history) -> float:
        values = getattr(history, self.monitor)
        if not values or values[-1] is None:
            raise ValueError(
                f"monitor: {self.monitor!r} has no value (give fit validation_data to "
                f"monitor val_*, and class-index targets for accuracy)")
        return float(values[-1])

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, model) -> None:
        self.best = self.best_epoch = self.best_state = None

    def on_epoch_end(self, epoch: int, history, model) -> bool:
        value = self._value(history)
        if self._improved(value):
            self.best, self.best_epoch = value, epoch
            self.best_state = model.state_dict()
        return False

    def on_train_end(self, model, history) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class EarlyStopping(BestWeights):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; with
    ``restore_best_weights`` (default) the model ends with its best epoch's state."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto",
                 min_delta: float = 0.0, restore_best_weights: bool = True) -> None:
        super().__init__(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or \
                patience < 0:
            raise ValueError(f"patience: expected an int >= 0, got {patience!r}")
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.stopped_epoch: int | None = None

    def on_train_begin(self, model) -> None:
        super().on_train_begin(model)
        self.stopped_epoch = None

    def on_epoch_end(self, epoch: int, history, model) -> bool:
        super().on_epoch_end(epoch, history, model)
        if epoch != self.best_epoch and epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model, history) -> None:
        if self.restore_best_weights:
            super().on_train_end(model, history)
