"""Pooling on small planes (up to about 14x14, the last stages of real networks), against
the NumPy oracle at every SIMD level and implementation, on one thread and two.

Small planes take the kernels' short paths: global pooling sums and maximises each plane
in whole vectors plus one last vector that ends at the plane's end (its lanes already
counted masked out), or one element at a time when the plane is narrower than a vector;
many planes share one thread. Plane sizes here cross every vector width (4, 8, 16 lanes).
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, each_implementation
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

THREADS = (1, 2)
FIXTURES = [HealthCheck.function_scoped_fixture]

# Values that stress the maximum's rules: ties (small integers), infinities, NaN.
SPECIALS = (np.inf, -np.inf, np.nan)


def planes(draw, dtype, max_side: int = 14, with_specials: bool = True) -> np.ndarray:
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 40))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 9, size=(n, c, h, w)).astype(dtype)
    if with_specials and draw(st.booleans()):
        count = draw(st.integers(1, 4))
        flat = x.reshape(-1)
        for value in rng.choice(SPECIALS, size=count):
            flat[rng.integers(0, flat.size)] = value
    return x


@st.composite
def small_plane_inputs(draw, with_specials=True):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return planes(draw, dtype, with_specials=with_specials)


@pytest.mark.parametrize("threads", THREADS)
@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURES)
@given(x=small_plane_inputs())
def test_global_max_pool_on_small_planes_matches_oracle(threads, x):
    convpool.set_num_threads(threads)
    expected = ref.global_max_pool2d(x)
    grad_y = np.arange(1, expected.size + 1, dtype=x.dtype).reshape(expected.shape)
    expected_grad = ref.global_max_pool2d_grad_input(grad_y, x)
    for label in each_implementation("global_max_pool2d", "global_max_pool2d_grad_input"):
        np.testing.assert_array_equal(convpool.global_max_pool2d(x), expected, err_msg=label)
        np.testing.assert_array_equal(convpool.global_max_pool2d_grad_input(grad_y, x),
                                      expected_grad, err_msg=label)


@pytest.mark.parametrize("threads", THREADS)
@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURES)
@given(x=small_plane_inputs(with_specials=False))
def test_global_avg_pool_on_small_planes_matches_oracle(threads, x):
    convpool.set_num_threads(threads)
    expected = ref.global_avg_pool2d(x)
    grad_y = np.linspace(-1, 1, expected.size, dtype=x.dtype).reshape(expected.shape)
    expected_grad = ref.global_avg_pool2d_grad_input(grad_y, x.shape)
    for label in each_implementation("global_avg_pool2d", "global_avg_pool2d_grad_input"):
        assert_close(convpool.global_avg_pool2d(x), expected, x.dtype, label)
        assert_close(convpool.global_avg_pool2d_grad_input(grad_y, x.shape), expected_grad,
                     x.dtype, label)


@pytest.mark.parametrize("side", [1, 2, 3, 4, 5, 7, 8, 13, 14])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_avg_pool_counts_every_pixel_once(side, dtype):
    # Plane p holds 2**(p % 20) at pixel p and ones elsewhere: every sum is exact in
    # either dtype, so the means must equal the oracle's exactly, and a pixel added twice
    # or dropped (the overlapping last vector) would change one by at least 1 / side**2.
    planes_count = side * side
    x = np.ones((1, planes_count, side, side), dtype)
    for p in range(planes_count):
        x[0, p].reshape(-1)[p] = 2.0 ** (p % 20)
    expected = ref.global_avg_pool2d(x)
    for label in each_implementation("global_avg_pool2d"):
        np.testing.assert_array_equal(convpool.global_avg_pool2d(x), expected, label)


def test_global_max_pool_finds_a_nan_in_the_overlapping_last_vector():
    # 49 pixels: with 16 float32 lanes the last vector re-reads pixels 33-47 and adds 48.
    x = np.zeros((1, 4, 7, 7), np.float32)
    x[0, 0, 6, 6] = np.nan      # only in the last vector
    x[0, 1, 4, 5] = np.nan      # in both the whole vectors and the last one
    x[0, 2, 6, 6] = np.inf      # an infinity, no NaN
    x[0, 3] = -np.inf
    grad_y = np.array([[1, 2, 3, 4]], np.float32)
    for label in each_implementation("global_max_pool2d", "global_max_pool2d_grad_input"):
        y = convpool.global_max_pool2d(x)
        np.testing.assert_array_equal(y, ref.global_max_pool2d(x), err_msg=label)
        grad = convpool.global_max_pool2d_grad_input(grad_y, x)
        np.testing.assert_array_equal(grad, ref.global_max_pool2d_grad_input(grad_y, x), label)
        assert grad[0, 0, 6, 6] == 1 and grad[0, 1, 4, 5] == 2 and grad[0, 2, 6, 6] == 3
        assert grad[0, 3, 0, 0] == 4


WINDOWS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=2, stride=2, ceil_mode=True),
]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
@settings(max_examples=10, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.data())
def test_windowed_pooling_on_small_planes_matches_oracle(threads, window, data):
    convpool.set_num_threads(threads)
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = planes(data.draw, dtype, max_side=14, with_specials=False)
    reach = window["kernel_size"] - 2 * window.get("padding", 0)
    if min(x.shape[-2:]) < max(reach, 1):
        x = np.pad(x, ((0, 0), (0, 0), (0, reach), (0, reach)))
    expected, expected_idx = ref.max_pool2d(x, **window, return_indices=True)
    expected_avg = ref.avg_pool2d(x, **window)
    grad_y = np.linspace(-1, 1, expected.size, dtype=dtype).reshape(expected.shape)
    for label in each_implementation("max_pool2d", "max_pool2d_grad_input", "avg_pool2d",
                                     "avg_pool2d_grad_input"):
        np.testing.assert_array_equal(convpool.max_pool2d(x, **window), expected, label)
        y, idx = convpool.max_pool2d(x, **window, return_indices=True)
        np.testing.assert_array_equal(idx, expected_idx, label)
        assert_close(convpool.max_pool2d_grad_input(grad_y, idx, x.shape),
                     ref.max_pool2d_grad_input(grad_y, expected_idx, x.shape), dtype, label)
        assert_close(convpool.avg_pool2d(x, **window), expected_avg, dtype, label)
        assert_close(convpool.avg_pool2d_grad_input(grad_y, x.shape, **window),
                     ref.avg_pool2d_grad_input(grad_y, x.shape, **window), dtype, label)
