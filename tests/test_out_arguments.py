"""``out=`` on every 2-D function that returns an array: the result lands in the given array
(returned as it is), equals the call without ``out`` bit for bit and the oracle, also through
non-contiguous arrays; a wrong ``out`` (type, shape, dtype, read-only, overlapping an input)
is refused before anything is written."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from convpool import reference

RNG = np.random.default_rng(20261201)
X = RNG.standard_normal((2, 4, 9, 8)).astype(np.float32)
W = RNG.standard_normal((6, 4, 3, 3)).astype(np.float32)
B = RNG.standard_normal(6).astype(np.float32)
GY_CONV = RNG.standard_normal((2, 6, 9, 8)).astype(np.float32)
GY_POOL = RNG.standard_normal((2, 4, 4, 4)).astype(np.float32)
GY_GLOBAL = RNG.standard_normal((2, 4)).astype(np.float32)
GY_CHANNEL = RNG.standard_normal((2, 2, 9, 8)).astype(np.float32)
_, INDICES = convpool.max_pool2d(X, 2, return_indices=True)

# name: (convpool call taking out=, the same call in the oracle)
CALLS = {
    "conv2d": (lambda **o: convpool.conv2d(X, W, B, padding=1, **o),
               lambda: reference.conv2d(X, W, B, padding=1)),
    "conv2d_grad_input": (
        lambda **o: convpool.conv2d_grad_input(GY_CONV, W, X.shape, padding=1, **o),
        lambda: reference.conv2d_grad_input(GY_CONV, W, X.shape, padding=1)),
    "conv2d_grad_input(reflect)": (
        lambda **o: convpool.conv2d_grad_input(GY_CONV, W, X.shape, padding=1,
                                               padding_mode="reflect", **o),
        lambda: reference.conv2d_grad_input(GY_CONV, W, X.shape, padding=1,
                                            padding_mode="reflect")),
    "conv2d_grad_weight": (
        lambda **o: convpool.conv2d_grad_weight(X, GY_CONV, W.shape, padding=1, **o),
        lambda: reference.conv2d_grad_weight(X, GY_CONV, W.shape, padding=1)),
    "conv2d_grad_bias": (lambda **o: convpool.conv2d_grad_bias(GY_CONV, **o),
                         lambda: reference.conv2d_grad_bias(GY_CONV)),
    "max_pool2d": (lambda **o: convpool.max_pool2d(X, 2, **o),
                   lambda: reference.max_pool2d(X, 2)),
    "max_pool2d_grad_input": (
        lambda **o: convpool.max_pool2d_grad_input(GY_POOL, INDICES, X.shape, **o),
        lambda: reference.max_pool2d_grad_input(GY_POOL, INDICES, X.shape)),
    "avg_pool2d": (lambda **o: convpool.avg_pool2d(X, 3, 2, 1, **o),
                   lambda: reference.avg_pool2d(X, 3, 2, 1)),
    "avg_pool2d_grad_input": (
        lambda **o: convpool.avg_pool2d_grad_input(GY_POOL, X.shape, 2, **o),
        lambda: reference.avg_pool2d_grad_input(GY_POOL, X.shape, 2)),
    "global_avg_pool2d": (lambda **o: convpool.global_avg_pool2d(X, **o),
                          lambda: reference.global_avg_pool2d(X)),
    "global_avg_pool2d(keepdims)": (lambda **o: convpool.global_avg_pool2d(X, True, **o),
                                    lambda: reference.global_avg_pool2d(X, True)),
    "global_avg_pool2d_grad_input": (
        lambda **o: convpool.global_avg_pool2d_grad_input(GY_GLOBAL, X.shape, **o),
        lambda: reference.global_avg_pool2d_grad_input(GY_GLOBAL, X.shape)),
    "global_max_pool2d": (lambda **o: convpool.global_max_pool2d(X, **o),
                          lambda: reference.global_max_pool2d(X)),
    "global_max_pool2d_grad_input": (
        lambda **o: convpool.global_max_pool2d_grad_input(GY_GLOBAL, X, **o),
        lambda: reference.global_max_pool2d_grad_input(GY_GLOBAL, X)),
    "channel_pool": (lambda **o: convpool.channel_pool(X, 2, **o),
                     lambda: reference.channel_pool(X, 2)),
    "channel_pool_grad_input": (
        lambda **o: convpool.channel_pool_grad_input(GY_CHANNEL, X, 2, **o),
        lambda: reference.channel_pool_grad_input(GY_CHANNEL, X, 2)),
}
INPUTS = {"X": X, "W": W, "GY_CONV": GY_CONV, "GY_POOL": GY_POOL}


@pytest.mark.parametrize("name", CALLS)
def test_out_receives_the_result(name):
    call, oracle = CALLS[name]
    expected = call()
    out = np.full(expected.shape, np.nan, expected.dtype)
    assert call(out=out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out, oracle(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CALLS)
def test_non_contiguous_out_receives_the_result(name):
    call, _ = CALLS[name]
    expected = call()
    if expected.ndim == 0:
        pytest.skip("a 0-d array is always contiguous")
    storage = np.full(expected.shape + (2,), np.nan, expected.dtype)
    out = storage[..., 1]
    assert not out.flags.c_contiguous
    assert call(out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert np.isnan(storage[..., 0]).all(), "wrote outside out"


@pytest.mark.parametrize("name", CALLS)
def test_wrong_out_is_refused_untouched(name):
    call, _ = CALLS[name]
    expected = call()
    with pytest.raises(TypeError, match="out: expected a numpy.ndarray, got list"):
        call(out=expected.tolist() if expected.ndim else [0.0])
    wrong_shape = np.zeros(expected.shape + (1,), expected.dtype)
    with pytest.raises(ValueError, match=r"out: expected shape .* got"):
        call(out=wrong_shape)
    wrong_dtype = np.zeros(expected.shape, np.float64)
    with pytest.raises(ValueError, match=r"out: expected shape .* and dtype float32"):
        call(out=wrong_dtype)
    read_only = np.zeros(expected.shape, expected.dtype)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out: array is read-only"):
        call(out=read_only)
    assert not wrong_shape.any() and not wrong_dtype.any() and not read_only.any()


# name: (the input array to copy, a call whose out= is a view of that copy)
OVERLAPPING = {
    "conv2d": (X, lambda x: convpool.conv2d(x[:, :2], W[:2, :2, :1, :1], out=x[:, 1:3])),
    "conv2d_grad_input": (GY_CONV, lambda gy: convpool.conv2d_grad_input(
        gy, W, X.shape, padding=1, out=gy[:, :4])),
    "conv2d_grad_weight": (X, lambda x: convpool.conv2d_grad_weight(
        x, GY_CONV, (6, 4, 1, 1), out=x[0, :, :6, 0].T[:, :, None, None])),
    "conv2d_grad_bias": (GY_CONV, lambda gy: convpool.conv2d_grad_bias(gy, out=gy[0, :, 0, 0])),
    "avg_pool2d_grad_input": (X, lambda x: convpool.avg_pool2d_grad_input(
        x[:, :, :4, :4], X.shape, 2, out=x)),
    "max_pool2d": (X, lambda x: convpool.max_pool2d(x, 2, out=x[:, :, :4, :4])),
    "channel_pool_grad_input": (X, lambda x: convpool.channel_pool_grad_input(
        GY_CHANNEL, x, 2, out=x)),
}


@pytest.mark.parametrize("name", OVERLAPPING)
def test_out_sharing_memory_with_an_input_is_refused(name):
    source, make_call = OVERLAPPING[name]
    array = source.copy()
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        make_call(array)
    np.testing.assert_array_equal(array, source)


def test_max_pool2d_with_indices_fills_both_outs():
    values, indices = convpool.max_pool2d(X, 3, 2, 1, return_indices=True)
    out = (np.empty_like(values), np.empty((2, 4, 5, 4, 2), np.int64)[..., 0])
    result = convpool.max_pool2d(X, 3, 2, 1, return_indices=True, out=out)
    assert result[0] is out[0] and result[1] is out[1]
    np.testing.assert_array_equal(out[0], values)
    np.testing.assert_array_equal(out[1], indices)
    oracle_values, oracle_indices = reference.max_pool2d(X, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(out[0], oracle_values)
    np.testing.assert_array_equal(out[1], oracle_indices)


def test_max_pool2d_with_indices_refuses_a_wrong_out():
    values, _ = convpool.max_pool2d(X, 2, return_indices=True)
    with pytest.raises(TypeError, match=r"out: with return_indices=True expected a pair"):
        convpool.max_pool2d(X, 2, return_indices=True, out=np.empty_like(values))
    with pytest.raises(ValueError, match="out: expected shape .* and dtype int64"):
        convpool.max_pool2d(X, 2, return_indices=True,
                            out=(np.empty_like(values), np.empty(values.shape, np.int32)))
    storage = np.empty(values.size, np.int64)
    indices_out = storage.reshape(values.shape)
    values_out = storage.view(np.float32)[:values.size].reshape(values.shape)
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        convpool.max_pool2d(X, 2, return_indices=True, out=(values_out, indices_out))
