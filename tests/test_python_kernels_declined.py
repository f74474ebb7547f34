"""The Python implementations in front of the compiled registry (convpool.python_kernels)
remember the geometries that every entry turned away by shape alone, so that a loop over
the same small layers does not ask them again on every call. Forcing an entry must still
run it on such a geometry, and the remembered answer must be the one asking gives."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, forced_implementation
from convpool import python_kernels
from convpool import reference as ref
from convpool.geometry import conv_geometry


def small_rank_one_layer(rng):
    x = rng.standard_normal((1, 1, 9, 9)).astype(np.float32)
    w = np.outer(rng.standard_normal(3), rng.standard_normal(3)).astype(np.float32)
    return x, w.reshape(1, 1, 3, 3)


def test_a_small_layer_is_remembered_as_declined_by_every_entry(rng):
    x, w = small_rank_one_layer(rng)
    convpool.conv2d(x, w, padding=1)
    setup = conv_geometry(x.shape, w.shape, 1, 1, 1, 1, "zeros")
    assert python_kernels._DECLINED.get(("conv2d", id(setup))) is setup
    assert all(entry.declines("conv2d", setup) for entry in python_kernels.IMPLEMENTATIONS)
    assert python_kernels.kernel("conv2d", setup, False, (x, w)) is None


@pytest.mark.parametrize("name", python_kernels.NAMES)
def test_a_forced_entry_runs_on_a_geometry_remembered_as_declined(rng, name):
    x, w = small_rank_one_layer(rng)
    expected = ref.conv2d(x, w, padding=1)
    assert_close(convpool.conv2d(x, w, padding=1), expected, np.float32, "compiled")
    with forced_implementation("conv2d", name):  # asserts that the entry ran
        assert_close(convpool.conv2d(x, w, padding=1), expected, np.float32, name)
    assert_close(convpool.conv2d(x, w, padding=1), expected, np.float32, "compiled again")


def test_a_layer_an_entry_takes_is_not_remembered_as_declined(rng):
    # A large rank-one kernel on a large picture: the separable path's own case.
    x = rng.standard_normal((1, 1, 256, 256)).astype(np.float32)
    w = np.outer(rng.standard_normal(15), rng.standard_normal(15)).astype(np.float32)
    w = w.reshape(1, 1, 15, 15)
    setup = conv_geometry(x.shape, w.shape, 1, 0, 1, 1, "zeros")
    assert not all(entry.declines("conv2d", setup) for entry in python_kernels.IMPLEMENTATIONS)
    y = convpool.conv2d(x, w)
    assert python_kernels._DECLINED.get(("conv2d", id(setup))) is None
    assert_close(y, ref.conv2d(x, w), np.float32)
