"""The channels-last max-pool gradient on images of more than 1 MiB of gradient, which run
by bands of input rows (each band gathered in a buffer, the output rows that reach it read
off the indices), and on indices the bands refuse (scattered or out of the plane), which
take the general path: every SIMD level, one and two threads, against the oracle."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, each_implementation
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def to_nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))


def check_gradient(rng, x, indices, grad_y, where: str) -> None:
    """The NHWC gradient of NCHW ``grad_y`` sent through NCHW ``indices`` onto ``x``'s
    shape, at every SIMD level and at one and two threads (the same bits), against the
    oracle."""
    expected = to_nhwc(ref.max_pool2d_grad_input(grad_y, indices, x.shape))
    shape = to_nhwc(x).shape
    for label in each_implementation("max_pool2d_grad_input", layout="NHWC"):
        results = []
        for threads in (1, 2):
            convpool.set_num_threads(threads)
            results.append(convpool.max_pool2d_grad_input(to_nhwc(grad_y), to_nhwc(indices),
                                                          shape, layout="NHWC"))
        assert_close(results[0], expected, x.dtype, f"{where} {label}")
        np.testing.assert_array_equal(results[0], results[1], err_msg=f"{where} {label} threads")


def pooled(rng, shape, dtype, **kwargs):
    x = rng.standard_normal(shape).astype(dtype)
    y, indices = ref.max_pool2d(x, **kwargs, return_indices=True)
    return x, indices, rng.standard_normal(y.shape).astype(dtype)


@pytest.mark.parametrize(("shape", "kwargs"), [
    ((1, 80, 64, 64), dict(kernel_size=3, stride=2, padding=1)),  # channels not whole vectors
    ((2, 16, 130, 129), dict(kernel_size=2, stride=2)),
    ((1, 3, 300, 301), dict(kernel_size=3, stride=2, ceil_mode=True)),  # fewer than a vector
    ((3, 35, 97, 91), dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    ((1, 64, 72, 72), dict(kernel_size=(5, 2), stride=(1, 3), padding=(2, 1))),
], ids=str)
def test_max_grad_by_bands_matches_the_oracle(rng, shape, kwargs):
    x, indices, grad_y = pooled(rng, shape, np.float32, **kwargs)
    check_gradient(rng, x, indices, grad_y, f"{shape} {kwargs}")


def test_max_grad_by_bands_in_float64(rng):
    x, indices, grad_y = pooled(rng, (2, 20, 90, 90), np.float64, kernel_size=3, stride=2)
    check_gradient(rng, x, indices, grad_y, "float64")


def test_max_grad_takes_any_indices_in_the_plane(rng):
    """Indices that are not a pooling's: scattered over the whole plane (the bands refuse
    them), all on one pixel (every gradient adds up there), and mirrored (late output rows
    reach the first input rows)."""
    x = rng.standard_normal((2, 40, 64, 64)).astype(np.float32)
    grad_y = rng.standard_normal((2, 40, 32, 32)).astype(np.float32)
    _, pooling = ref.max_pool2d(x, 2, return_indices=True)
    cases = {
        "scattered": rng.integers(0, 64 * 64, grad_y.shape),
        "one pixel": np.full(grad_y.shape, 64 * 64 - 1),
        "mirrored": pooling[:, :, ::-1, ::-1].copy(),
    }
    for name, indices in cases.items():
        check_gradient(rng, x, indices.astype(np.int64), grad_y, name)


def test_max_grad_refuses_an_index_outside_a_large_plane(rng):
    x, indices, grad_y = pooled(rng, (1, 64, 64, 64), np.float32, kernel_size=2)
    indices[0, 5, 31, 30] = 64 * 64
    with pytest.raises(ValueError, match="indices"):
        convpool.max_pool2d_grad_input(to_nhwc(grad_y), to_nhwc(indices), to_nhwc(x).shape,
                                       layout="NHWC")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels=st.integers(1, 70), height=st.integers(40, 150), width=st.integers(40, 150),
       kernel=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       ceil_mode=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_max_grad_by_bands_hypothesis(channels, height, width, kernel, stride, dilation,
                                      ceil_mode, seed):
    rng = np.random.default_rng(seed)
    # At least 1 MiB of float32 gradient per image: the bands run.
    channels = max(channels, -(-(1 << 18) // (height * width)) + 1)
    x, indices, grad_y = pooled(rng, (1, channels, height, width), np.float32,
                                kernel_size=kernel, stride=stride, padding=kernel // 2,
                                dilation=dilation, ceil_mode=ceil_mode)
    check_gradient(rng, x, indices, grad_y, f"{x.shape} k{kernel} s{stride} d{dilation}")
