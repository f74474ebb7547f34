"""Training helpers: one epoch over mini-batches (``train_epoch``), evaluation,
prediction, and ``fit`` over epochs with a history of loss and accuracy."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._args import positive_int
from .activations import Softmax
from .inference import inference_mode
from .init import Seed, as_generator
from .layer import Layer
from .losses import CrossEntropyLoss
from .optim import Optimizer
from .progress import progress_bar
from .schedulers import LRScheduler
from .sequential import Sequential


@dataclass(frozen=True)
class EpochResult:
    """Mean loss per sample, accuracy (None unless the targets are class indices and the
    outputs ``(N, C)`` scores), samples seen and wall time of one pass over the data."""

    loss: float
    accuracy: float | None
    samples: int
    seconds: float

    def __str__(self) -> str:
        """``accuracy: 0.9800 (147 of 150), loss: 0.0712`` (the loss alone without an
        accuracy)."""
        if self.accuracy is None:
            return f"loss: {self.loss:.4f}"
        return (f"accuracy: {self.accuracy:.4f} ({round(self.accuracy * self.samples)} of "
                f"{self.samples}), loss: {self.loss:.4f}")


@dataclass
class History:
    """Per epoch: training loss and accuracy, validation loss and accuracy (empty
    without validation data), and seconds spent training."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loss)


def _model_dtype(model: Layer) -> np.dtype:
    for parameter in model.parameters():
        return parameter.dtype
    return np.dtype(np.float32)


def _check_data(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype.kind not in "uif":
        raise TypeError(f"x: must hold real numbers, got dtype {x.dtype}")
    if x.ndim < 1 or y.ndim < 1 or len(x) != len(y):
        raise ValueError(
            f"x, y: need one target per sample along the first axis, got x {x.shape}, "
            f"y {y.shape}"
        )
    if len(x) == 0:
        raise ValueError(f"x: needs at least one sample, got shape {x.shape}")
    return x, y


def _verbosity(verbose: object) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0 (silent), 1 (a progress bar per epoch) or 2 "
                         f"(a line per epoch), got {verbose!r}")
    return verbose


def training_net(model: Layer, loss: object) -> Layer:
    """The net whose output the loss sees: without a final Softmax when the loss is
    :class:`CrossEntropyLoss`, which applies the softmax itself (stably, on logits)."""
    if (isinstance(loss, CrossEntropyLoss) and isinstance(model, Sequential) and len(model)
            and isinstance(model.layers[-1], Softmax)):
        return model[:-1]
    return model


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None,
             dtype: np.dtype) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(x), batch_size):
        if order is None:
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        else:
            index = order[start:start + batch_size]
            xb, yb = x[index], y[index]
        yield xb.astype(dtype, copy=False), yb


def _correct(output: np.ndarray, target: np.ndarray) -> int | None:
    if output.ndim == 2 and target.ndim == 1 and target.dtype.kind in "iu":
        return int(np.count_nonzero(output.argmax(axis=1) == target))
    return None


class _Tally:
    """Running sums for an epoch's mean loss and accuracy."""

    def __init__(self) -> None:
        self.loss = 0.0
        self.correct: int | None = 0
        self.samples = 0
        self.start = time.perf_counter()

    def add(self, loss: float, output: np.ndarray, target: np.ndarray) -> None:
        n = len(target)
        self.loss += loss * n
        self.samples += n
        correct = _correct(output, target)
        self.correct = None if correct is None or self.correct is None else self.correct + correct

    def values(self) -> dict[str, float]:
        values = {"loss": self.loss / max(self.samples, 1)}
        if self.correct is not None:
            values["acc"] = self.correct / max(self.samples, 1)
        return values

    def result(self) -> EpochResult:
        accuracy = None if self.correct is None else self.correct / max(self.samples, 1)
        return EpochResult(loss=self.loss / max(self.samples, 1), accuracy=accuracy,
                           samples=self.samples, seconds=time.perf_counter() - self.start)


def train_epoch(model: Layer, loss, optimizer: Optimizer, x: np.ndarray, y: np.ndarray,
                batch_size: int = 64, *, seed: Seed = None, shuffle: bool = True,
                verbose: int = 0, description: str = "train",
                scheduler: LRScheduler | None = None) -> EpochResult:
    """One pass over ``(x, y)`` in mini-batches: forward, loss, backward, optimizer step.

    Args:
        model: the net (put in training mode). If it ends in Softmax and ``loss`` is a
            :class:`CrossEntropyLoss`, the loss gets the logits before the Softmax.
        loss: e.g. ``CrossEntropyLoss()``; called as ``loss(output, target)``.
        optimizer: built over ``model.parameters()``.
        x, y: samples and targets along the first axis. Batches are cast to the
            model's dtype.
        batch_size: samples per update (the last batch may be smaller).
        seed: shuffles with this int seed or ``numpy.random.Generator``.
        shuffle: visit the samples in a random order.
        verbose: 0 silent, 1 a tqdm progress bar (a line without tqdm), 2 a line.
        scheduler: a per-batch learning-rate schedule (e.g. ``OneCycleLR``), stepped
            after every batch.

    Returns:
        The epoch's mean training loss, accuracy, samples and seconds.
    """
    x, y = _check_data(x, y)
    batch_size = positive_int(batch_size, "batch_size")
    verbose = _verbosity(verbose)
    net = training_net(model, loss)
    model.train()
    order = as_generator(seed).permutation(len(x)) if shuffle else None
    tally = _Tally()
    bar = progress_bar(-(-len(x) // batch_size), description, verbose)
    for xb, yb in _batches(x, y, batch_size, order, _model_dtype(model)):
        output = net.forward(xb)
        value = loss(output, yb)
        optimizer.zero_grad()
        net.backward(loss.backward(), needs_input_grad=False)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        tally.add(value, output, yb)
        bar.update()
        bar.set_postfix(**tally.values())
    bar.close()
    return tally.result()


def evaluate(model: Layer, loss, x: np.ndarray, y: np.ndarray, batch_size: int = 256
             ) -> EpochResult:
    """Mean loss and accuracy of ``model`` on ``(x, y)`` in evaluation mode and inference
    mode (nothing kept for backward; the model's mode is restored afterwards)."""
    x, y = _check_data(x, y)
    batch_size = positive_int(batch_size, "batch_size")
    net = training_net(model, loss)
    was_training = model.training
    model.eval()
    tally = _Tally()
    try:
        with inference_mode():
            for xb, yb in _batches(x, y, batch_size, None, _model_dtype(model)):
                output = net.forward(xb)
                tally.add(loss(output, yb), output, yb)
    finally:
        model.train(was_training)
    return tally.result()


def predict(model: Layer, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``model``'s outputs for ``x`` in evaluation mode and inference mode, computed
    batch by batch."""
    x = np.asarray(x)
    batch_size = positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    try:
        dtype = _model_dtype(model)
        with inference_mode():
            outputs = [model.forward(x[start:start + batch_size].astype(dtype, copy=False))
                       for start in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outputs) if outputs else np.empty((0,), dtype=_model_dtype(model))


def fit(model: Layer, loss, optimizer: Optimizer, x: np.ndarray, y: np.ndarray, *,
        epochs: int = 10, batch_size: int = 64,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None, seed: Seed = 0,
        shuffle: bool = True, verbose: int = 1, scheduler: LRScheduler | None = None,
        callbacks: Sequence[object] = ()) -> History:
    """Train for ``epochs`` passes (see :func:`train_epoch`), evaluating on
    ``validation_data`` after each; returns the :class:`History`.

    Args:
        seed: int or Generator; fixes the shuffling, so a run is reproducible.
        verbose: 0 silent; 1 a progress bar per epoch (tqdm; one line per epoch without
            it) and the validation result; 2 one line per epoch.
        scheduler: a learning-rate schedule, stepped after every epoch (after every
            batch for per-batch schedules such as ``OneCycleLR``).
        callbacks: e.g. ``[EarlyStopping(patience=3)]`` or ``[BestWeights()]``; each
            may define ``on_train_begin(model)``, ``on_epoch_end(epoch, history,
            model)`` (True stops training) and ``on_train_end(model, history)``.
    """
    epochs = positive_int(epochs, "epochs")
    verbose = _verbosity(verbose)
    x, y = _check_data(x, y)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data: expected a pair (x, y)")
        _check_data(*validation_data)
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        raise TypeError(f"scheduler: expected a convpool.nn learning-rate schedule, got "
                        f"{type(scheduler).__name__}")
    callbacks = list(callbacks)
    generator = as_generator(seed)
    history = History()
    for callback in callbacks:
        if hasattr(callback, "on_train_begin"):
            callback.on_train_begin(model)
    per_batch = scheduler if scheduler is not None and scheduler.per_batch else None
    for epoch in range(1, epochs + 1):
        result = train_epoch(model, loss, optimizer, x, y, batch_size, seed=generator,
                             shuffle=shuffle, verbose=verbose, scheduler=per_batch,
                             description=f"epoch {epoch}/{epochs}")
        history.loss.append(result.loss)
        history.accuracy.append(result.accuracy)
        history.seconds.append(result.seconds)
        if scheduler is not None and not scheduler.per_batch:
            scheduler.step()
        if validation_data is not None:
            checked = evaluate(model, loss, *validation_data)
            history.val_loss.append(checked.loss)
            history.val_accuracy.append(checked.accuracy)
            if verbose:
                text = f"  validation: loss {checked.loss:.4g}"
                if checked.accuracy is not None:
                    text += f", accuracy {checked.accuracy:.4f}"
                print(text)
        stop = False
        for callback in callbacks:
            if hasattr(callback, "on_epoch_end"):
                stop = bool(callback.on_epoch_end(epoch, history, model)) or stop
        if stop:
            break
    for callback in callbacks:
        if hasattr(callback, "on_train_end"):
            callback.on_train_end(model, history)
    return history
