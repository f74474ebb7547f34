"""Pooling against PyTorch (torch.nn.functional and autograd), where PyTorch has the same
operation: values, int64 indices (exactly) and gradients. Skipped without torch."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close
from convpool import reference as ref

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

# PyTorch takes symmetric padding, at most half the kernel, and no padding='same'.
MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=(3, 5), stride=(2, 3), padding=(1, 2)),
    dict(kernel_size=3, stride=2, padding=1, dilation=2),
    dict(kernel_size=(2, 3), stride=1, padding=(1, 1), dilation=(3, 2)),
    dict(kernel_size=4, stride=3, padding=2),
]


def from_torch(t) -> np.ndarray:
    return t.detach().numpy()


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("case", MAX_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_against_torch(rng, case, ceil_mode, dtype):
    # Small integers: ties, where both pick the first maximum in row-major order.
    x = rng.integers(-5, 6, size=(2, 3, 13, 12)).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_()
    yt, it = F.max_pool2d(xt, **case, ceil_mode=ceil_mode, return_indices=True)
    y, idx = convpool.max_pool2d(x, **case, ceil_mode=ceil_mode, return_indices=True)
    np.testing.assert_array_equal(y, from_torch(yt))
    np.testing.assert_array_equal(idx, from_torch(it))
    assert idx.dtype == np.int64
    g = rng.standard_normal(y.shape).astype(dtype)
    yt.backward(torch.from_numpy(g))
    assert_close(convpool.max_pool2d_grad_input(g, idx, x.shape), from_torch(xt.grad), dtype)
    # The oracle agrees too.
    np.testing.assert_array_equal(ref.max_pool2d(x, **case, ceil_mode=ceil_mode), y)


def test_max_pool_nan_values_against_torch(rng):
    x = rng.standard_normal((2, 2, 9, 9)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    for case in MAX_CASES[:3]:
        expected = from_torch(F.max_pool2d(torch.from_numpy(x), **case))
        np.testing.assert_array_equal(convpool.max_pool2d(x, **case), expected)
    # With one NaN per window the index is that NaN's in both libraries (with several,
    # PyTorch reports the last and convpool the first).
    x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
    x[0, 0, ::2, ::2] = np.nan
    _, it = F.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    np.testing.assert_array_equal(convpool.max_pool2d(x, 2, return_indices=True)[1], from_torch(it))


def test_same_padding_against_torch_with_explicit_minus_infinity_padding(rng):
    x = rng.standard_normal((2, 3, 10, 11))
    y = convpool.max_pool2d(x, (4, 3), stride=(3, 2), padding="same")
    sides = convpool.resolve_padding("same", (10, 11), (4, 3), (3, 2), (1, 1))
    (top, bottom), (left, right) = sides
    padded = F.pad(torch.from_numpy(x), (left, right, top, bottom), value=-np.inf)
    np.testing.assert_array_equal(y, from_torch(F.max_pool2d(padded, (4, 3), (3, 2))))


AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=(3, 5), stride=(2, 3), padding=(1, 2)),
    dict(kernel_size=4, stride=3, padding=2),
    dict(kernel_size=5, stride=2, padding=2),
]


@pytest.mark.parametrize("divisor_override", [None, 3])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_pool_against_torch(rng, case, ceil_mode, count_include_pad, divisor_override):
    x = rng.standard_normal((2, 3, 13, 12))
    options = dict(case, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                   divisor_override=divisor_override)
    xt = torch.from_numpy(x).requires_grad_()
    yt = F.avg_pool2d(xt, **options)
    y = convpool.avg_pool2d(x, **options)
    assert_close(y, from_torch(yt), np.float64)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(g))
    assert_close(convpool.avg_pool2d_grad_input(g, x.shape, **options), from_torch(xt.grad),
                 np.float64)
    assert_close(ref.avg_pool2d(x, **options), y, np.float64)


def test_avg_pool_float32_against_torch(rng):
    x = rng.standard_normal((4, 8, 32, 30)).astype(np.float32)
    for case in AVG_CASES:
        expected = from_torch(F.avg_pool2d(torch.from_numpy(x), **case, ceil_mode=True))
        assert_close(convpool.avg_pool2d(x, **case, ceil_mode=True), expected, np.float32)


def test_global_pools_against_torch(rng):
    # A permutation: every value distinct, so the gradient of the maximum is unambiguous.
    x = rng.permutation(2 * 3 * 7 * 9).reshape(2, 3, 7, 9).astype(np.float64)
    g = rng.standard_normal((2, 3))
    xt = torch.from_numpy(x).requires_grad_()
    yt = F.adaptive_max_pool2d(xt, 1)
    np.testing.assert_array_equal(convpool.global_max_pool2d(x, keepdims=True), from_torch(yt))
    yt.backward(torch.from_numpy(g).reshape(2, 3, 1, 1))
    assert_close(convpool.global_max_pool2d_grad_input(g, x), from_torch(xt.grad), np.float64)
    xt = torch.from_numpy(x).requires_grad_()
    yt = F.adaptive_avg_pool2d(xt, 1)
    assert_close(convpool.global_avg_pool2d(x, keepdims=True), from_torch(yt), np.float64)
    yt.backward(torch.from_numpy(g).reshape(2, 3, 1, 1))
    assert_close(convpool.global_avg_pool2d_grad_input(g, x.shape), from_torch(xt.grad),
                 np.float64)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_channel_pool_against_torch(rng, mode):
    x = rng.permutation(2 * 6 * 4 * 5).reshape(2, 6, 4, 5).astype(np.float64)
    g = rng.standard_normal((2, 2, 4, 5))
    xt = torch.from_numpy(x).requires_grad_()
    groups = xt.reshape(2, 2, 3, 4, 5)
    yt = groups.amax(2) if mode == "max" else groups.mean(2)
    assert_close(convpool.channel_pool(x, 3, mode), from_torch(yt), np.float64)
    yt.backward(torch.from_numpy(g))
    assert_close(convpool.channel_pool_grad_input(g, x, 3, mode), from_torch(xt.grad), np.float64)


def test_unbatched_against_torch(rng):
    x = rng.standard_normal((3, 9, 8)).astype(np.float32)
    y, idx = convpool.max_pool2d(x, 3, 2, 1, return_indices=True)
    yt, it = F.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, from_torch(yt))
    np.testing.assert_array_equal(idx, from_torch(it))
    assert_close(convpool.avg_pool2d(x, 3, 2, 1),
                 from_torch(F.avg_pool2d(torch.from_numpy(x), 3, 2, 1)), np.float32)
