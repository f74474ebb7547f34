"""Loss functions: ``loss(output, target)`` returns the loss as a float and keeps what
``loss.backward()`` needs to return the gradient with respect to ``output``."""

from __future__ import annotations

import numpy as np

_REDUCTIONS = ("mean", "sum")


def _check_reduction(reduction: object) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    return reduction  # type: ignore[return-value]


def _float(array: object, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "uif":
        raise TypeError(f"{name}: must hold real numbers, got dtype {array.dtype}")
    return array if array.dtype.kind == "f" else array.astype(np.float32)


class CrossEntropyLoss:
    """Cross entropy of class-index targets given logits, as ``torch.nn.CrossEntropyLoss``:
    log-softmax then negative log-likelihood, numerically stable (shifted by each row's
    maximum), averaged over the batch (``reduction="mean"``) or summed.

    ``output`` is ``(N, C)`` logits (not probabilities: the softmax is inside the loss);
    ``target`` is ``(N,)`` integer classes in ``[0, C)``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(reduction)
        self._saved: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        logits = _float(output, "output")
        target = np.asarray(target)
        if logits.ndim != 2:
            raise ValueError(f"output: expected (N, C) logits, got shape {logits.shape}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"target: expected integer class indices, got dtype {target.dtype}")
        if target.shape != logits.shape[:1]:
            raise ValueError(
                f"target: expected shape ({logits.shape[0]},) to match output {logits.shape}, "
                f"got {target.shape}"
            )
        classes = logits.shape[1]
        if target.size and (target.min() < 0 or target.max() >= classes):
            raise ValueError(
                f"target: class indices must be in [0, {classes}), got values from "
                f"{target.min()} to {target.max()}"
            )
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        picked = shifted[np.arange(len(target)), target] - np.log(sums[:, 0])
        self._saved = (exp / sums, target)
        total = -picked.sum(dtype=np.float64)
        return float(total / max(len(target), 1) if self.reduction == "mean" else total)

    def backward(self) -> np.ndarray:
        """``(softmax(output) - one_hot(target))``, divided by N for the mean."""
        if self._saved is None:
            raise RuntimeError("CrossEntropyLoss.backward called before the loss was computed")
        probabilities, target = self._saved
        grad = probabilities.copy()
        grad[np.arange(len(target)), target] -= 1
        if self.reduction == "mean" and len(target):
            grad /= len(target)
        return grad

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(reduction={self.reduction!r})"


class MSELoss:
    """Mean squared error ``mean((output - target) ** 2)`` over every element (or the
    sum), as ``torch.nn.MSELoss``."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = _check_reduction(reduction)
        self._difference: np.ndarray | None = None

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        output = _float(output, "output")
        target = _float(target, "target")
        if output.shape != target.shape:
            raise ValueError(
                f"target: expected the output's shape {output.shape}, got {target.shape}")
        difference = output - target
        self._difference = difference
        total = np.square(difference).sum(dtype=np.float64)
        return float(total / max(difference.size, 1) if self.reduction == "mean" else total)

    def backward(self) -> np.ndarray:
        """``2 (output - target)``, divided by the element count for the mean."""
        if self._difference is None:
            raise RuntimeError("MSELoss.backward called before the loss was computed")
        scale = 2.0 / max(self._difference.size, 1) if self.reduction == "mean" else 2.0
        return self._difference * self._difference.dtype.type(scale)

    def __repr__(self) -> str:
        return f"MSELoss(reduction={self.reduction!r})"
