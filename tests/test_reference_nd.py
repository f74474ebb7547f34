"""The 1-D and 3-D oracle (convpool.reference.nd) against hand-worked examples, finite
differences, and the 2-D oracle: its rank-generic formulas at rank 2 must reproduce
convpool.reference.conv2d and the 2-D pools."""

from __future__ import annotations

import numpy as np
import pytest
from convpool import reference as ref
from convpool.reference import nd

MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


# --- hand-worked examples --------------------------------------------------------------


def test_conv1d_derivative_kernel_by_hand():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    w = np.array([1.0, 0.0, -1.0])
    np.testing.assert_array_equal(ref.conv1d(x, w), [1 - 4, 2 - 7])
    # zeros: 0 1 2 4 7 0
    np.testing.assert_array_equal(ref.conv1d(x, w, padding=1), [0 - 2, 1 - 4, 2 - 7, 4 - 0])
    # reflect: 2 | 1 2 4 7 | 4
    np.testing.assert_array_equal(ref.conv1d(x, w, padding=1, padding_mode="reflect"),
                                  [2 - 2, 1 - 4, 2 - 7, 4 - 4])
    # symmetric: 1 | 1 2 4 7 | 7 ; circular: 7 | 1 2 4 7 | 1 ; replicate as symmetric here
    np.testing.assert_array_equal(ref.conv1d(x, w, padding=1, padding_mode="symmetric"),
                                  [1 - 2, 1 - 4, 2 - 7, 4 - 7])
    np.testing.assert_array_equal(ref.conv1d(x, w, padding=1, padding_mode="circular"),
                                  [7 - 2, 1 - 4, 2 - 7, 4 - 1])
    # per side: two zeros before, none after; stride 2
    np.testing.assert_array_equal(ref.conv1d(x, w, padding=(2, 0), stride=2), [0 - 1, 1 - 4])
    # dilation 2: taps 0 and 2 apart by 2 -> x[i] - x[i + 2]... kernel spans 5 > 4 with no padding
    np.testing.assert_array_equal(ref.conv1d(x, np.array([1.0, -1.0]), dilation=2),
                                  [1 - 4, 2 - 7])


def test_conv1d_channels_and_groups_by_hand():
    x = np.array([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]])  # (1, 2, 3)
    w = np.array([[[1.0]], [[2.0]]])  # two groups, one channel each: (2, 1, 1)
    y = ref.conv1d(x, w, np.array([0.5, -1.0]), groups=2)
    np.testing.assert_array_equal(y, [[[1.5, 2.5, 3.5], [19.0, 39.0, 59.0]]])
    w_all = np.array([[[1.0], [1.0]]])  # one output summing both channels
    np.testing.assert_array_equal(ref.conv1d(x, w_all), [[[11.0, 22.0, 33.0]]])


def test_conv3d_box_filter_counts_the_voxels_inside():
    x = np.ones((3, 3, 3))
    w = np.ones((3, 3, 3))
    assert ref.conv3d(x, w).shape == (1, 1, 1)
    assert ref.conv3d(x, w)[0, 0, 0] == 27
    y = ref.conv3d(x, w, padding=1)
    assert y[1, 1, 1] == 27 and y[0, 1, 1] == 18 and y[0, 0, 1] == 12 and y[0, 0, 0] == 8
    # every non-zero mode repeats ones: the count is always 27
    for mode in MODES[1:]:
        assert (ref.conv3d(x, w, padding=1, padding_mode=mode) == 27).all()


def test_conv3d_reads_depth_with_stride_and_dilation():
    x = np.arange(5.0)[:, None, None] * np.ones((5, 2, 2))  # depth d holds d
    w = np.zeros((2, 1, 1))
    w[0], w[1] = 1.0, 10.0
    y = ref.conv3d(x, w, stride=(2, 1, 1), dilation=(2, 1, 1))  # d + 10 (d + 2), d = 0, 2
    np.testing.assert_array_equal(y[:, 0, 0], [20.0, 42.0])


def test_max_pool1d_by_hand_ties_and_nan():
    x = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0]])
    y, idx = ref.max_pool1d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y[0, :2], [3.0, 3.0])
    assert np.isnan(y[0, 2])
    np.testing.assert_array_equal(idx[0], [1, 2, 4])
    y, idx = ref.max_pool1d(x, 3, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx[0, :2], [1, 1])  # the first 3 of a tie


def test_max_pool3d_flat_index_is_row_major_and_ties_go_first():
    x = np.zeros((1, 2, 2, 2))
    x[0, 1, 0, 1] = 7.0  # flat 1 * 4 + 0 * 2 + 1 = 5
    x[0, 1, 1, 0] = 7.0  # flat 6: a later tie
    y, idx = ref.max_pool3d(x, 2, return_indices=True)
    assert y.shape == (1, 1, 1, 1) and y.item() == 7.0 and idx.item() == 5
    x[0, 1, 1, 1] = np.nan
    x[0, 0, 0, 0] = np.nan  # the first NaN in (d, h, w) order wins
    _, idx = ref.max_pool3d(x, 2, return_indices=True)
    assert idx.item() == 0


def test_avg_pool3d_divisors_by_hand():
    x = np.ones((1, 2, 2, 2))
    assert ref.avg_pool3d(x, 3, stride=1, padding=1).shape == (1, 2, 2, 2)
    np.testing.assert_allclose(ref.avg_pool3d(x, 3, stride=1, padding=1), 8 / 27)
    np.testing.assert_allclose(
        ref.avg_pool3d(x, 3, stride=1, padding=1, count_include_pad=False), 1.0)
    np.testing.assert_allclose(ref.avg_pool3d(x, 3, stride=1, padding=1, divisor_override=4),
                               2.0)
    # ceil_mode: length 5, kernel 2, stride 2 -> windows [0,1] [2,3] [4]: the last counts 1
    y = ref.avg_pool1d(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), 2, ceil_mode=True)
    np.testing.assert_allclose(y, [[1.5, 3.5, 5.0]])


def test_global_pools_by_hand():
    x = np.arange(24.0).reshape(1, 2, 3, 4)[:, :, None]  # (1, 2, 1, 3, 4)
    np.testing.assert_array_equal(ref.global_max_pool3d(x), [[11.0, 23.0]])
    np.testing.assert_array_equal(ref.global_avg_pool3d(x, keepdims=True).ravel(), [5.5, 17.5])
    np.testing.assert_array_equal(ref.global_avg_pool1d(np.array([[1.0, 3.0]])), [2.0])


# --- finite differences ------------------------------------------------------------------


def numeric_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = f(x)
        x[i] = saved - eps
        down = f(x)
        x[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


CONV_CASES = [
    (1, (2, 4, 9), (6, 2, 3), dict(stride=2, padding=(2, 1), dilation=1, groups=2)),
    (1, (1, 2, 7), (3, 2, 2), dict(padding="same", dilation=2)),
    (3, (1, 2, 4, 5, 4), (2, 1, 2, 3, 2),
     dict(stride=(1, 2, 1), padding=((1, 0), 1, (0, 1)), groups=2)),
    (3, (2, 1, 3, 4, 4), (2, 1, 3, 2, 2), dict(padding="same", dilation=(1, 2, 1))),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rank, x_shape, w_shape, kwargs", CONV_CASES)
def test_oracle_conv_gradients_match_finite_differences(rank, x_shape, w_shape, kwargs, mode):
    rng = np.random.default_rng(7)
    conv = ref.conv1d if rank == 1 else ref.conv3d
    grad_input = ref.conv1d_grad_input if rank == 1 else ref.conv3d_grad_input
    grad_weight = ref.conv1d_grad_weight if rank == 1 else ref.conv3d_grad_weight
    kwargs = dict(kwargs, padding_mode=mode)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    gy = rng.standard_normal(conv(x, w, **kwargs).shape)

    def loss_of_x(v):
        return float((conv(v, w, **kwargs) * gy).sum())

    def loss_of_w(v):
        return float((conv(x, v, **kwargs) * gy).sum())

    np.testing.assert_allclose(grad_input(gy, w, x.shape, **kwargs),
                               numeric_gradient(loss_of_x, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad_weight(x, gy, w.shape, **kwargs),
                               numeric_gradient(loss_of_w, w), rtol=1e-6, atol=1e-7)
    bias = rng.standard_normal(w_shape[0])
    bias_grad = (ref.conv1d_grad_bias if rank == 1 else ref.conv3d_grad_bias)(gy)
    np.testing.assert_allclose(
        bias_grad,
        numeric_gradient(lambda b: float((conv(x, w, b, **kwargs) * gy).sum()), bias),
        rtol=1e-6, atol=1e-7)


POOL_CASES = [
    (1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (3, 8), dict(kernel_size=4, stride=1, padding=(2, 1))),
    (3, (1, 2, 5, 4, 6), dict(kernel_size=(2, 3, 2), stride=(2, 1, 2), padding=(1, 1, 0),
                              ceil_mode=True)),
    (3, (2, 4, 4, 5), dict(kernel_size=2, padding="same")),
]


@pytest.mark.parametrize("rank, shape, kwargs", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_oracle_avg_pool_gradient_matches_finite_differences(rank, shape, kwargs,
                                                             count_include_pad):
    rng = np.random.default_rng(3)
    pool = ref.avg_pool1d if rank == 1 else ref.avg_pool3d
    grad = ref.avg_pool1d_grad_input if rank == 1 else ref.avg_pool3d_grad_input
    kwargs = dict(kwargs, count_include_pad=count_include_pad)
    x = rng.standard_normal(shape)
    gy = rng.standard_normal(pool(x, **kwargs).shape)
    np.testing.assert_allclose(
        grad(gy, x.shape, **kwargs),
        numeric_gradient(lambda v: float((pool(v, **kwargs) * gy).sum()), x),
        rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rank, shape, kwargs", POOL_CASES)
def test_oracle_max_pool_gradient_matches_finite_differences(rank, shape, kwargs):
    rng = np.random.default_rng(5)
    pool = ref.max_pool1d if rank == 1 else ref.max_pool3d
    grad = ref.max_pool1d_grad_input if rank == 1 else ref.max_pool3d_grad_input
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)  # no ties
    y, idx = pool(x, return_indices=True, **kwargs)
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(
        grad(gy, idx, x.shape),
        numeric_gradient(lambda v: float((pool(v, **kwargs) * gy).sum()), x, eps=1e-3),
        rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rank", [1, 3])
def test_oracle_global_gradients_match_finite_differences(rank):
    rng = np.random.default_rng(9)
    shape = (2, 3, 5) if rank == 1 else (2, 2, 3, 2, 3)
    x = rng.standard_normal(shape)
    gy = rng.standard_normal(shape[:2])
    avg, avg_grad = ((ref.global_avg_pool1d, ref.global_avg_pool1d_grad_input) if rank == 1
                     else (ref.global_avg_pool3d, ref.global_avg_pool3d_grad_input))
    mx, mx_grad = ((ref.global_max_pool1d, ref.global_max_pool1d_grad_input) if rank == 1
                   else (ref.global_max_pool3d, ref.global_max_pool3d_grad_input))
    np.testing.assert_allclose(avg_grad(gy, shape),
                               numeric_gradient(lambda v: float((avg(v) * gy).sum()), x),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(mx_grad(gy, x),
                               numeric_gradient(lambda v: float((mx(v) * gy).sum()), x),
                               rtol=1e-6, atol=1e-8)


# --- rank 2 of the generic formulas against the 2-D oracle ----------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_generic_conv_at_rank_2_is_the_2d_oracle(mode):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    kwargs = dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2), groups=2,
                  padding_mode=mode)
    y = nd._conv(x, w, b, 2, **kwargs)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, **kwargs), rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(nd._conv_grad_input(gy, w, x.shape, 2, **kwargs),
                               ref.conv2d_grad_input(gy, w, x.shape, **kwargs),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nd._conv_grad_weight(x, gy, w.shape, 2, **kwargs),
                               ref.conv2d_grad_weight(x, gy, w.shape, **kwargs),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_generic_pools_at_rank_2_are_the_2d_oracle(ceil_mode):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 9, 8))
    x[0, 0, 2, 2] = x[0, 0, 2, 3]  # a tie
    x[1, 2, 4, 4] = np.nan
    kwargs = dict(kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), ceil_mode=ceil_mode)
    y, idx = nd._max_pool(x, 2, dilation=(1, 2), return_indices=True, **kwargs)
    y2, idx2 = ref.max_pool2d(x, dilation=(1, 2), return_indices=True, **kwargs)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(idx, idx2)
    for count_include_pad in (True, False):
        np.testing.assert_allclose(
            nd._avg_pool(x, 2, count_include_pad=count_include_pad, divisor_override=None,
                         **kwargs),
            ref.avg_pool2d(x, count_include_pad=count_include_pad, **kwargs), rtol=1e-12)


def test_a_tap_in_zero_padding_is_no_term_of_the_sum():
    # y[0] = (pad) * inf + 1 * 1 + 2 * 0: the padding tap is skipped, not 0 * inf = NaN
    y = ref.conv1d(np.array([1.0, 2.0, 3.0]), np.array([np.inf, 1.0, 0.0]), padding=1)
    np.testing.assert_array_equal(y, [1.0, np.inf, np.inf])
    gx = ref.conv1d_grad_input(np.array([1.0, 0.0, 0.0]), np.array([np.inf, 1.0, 0.0]), (3,),
                               padding=1)
    # gx[p] sums gy[o] * w[t] over o + t - 1 = p: gx[0] and gx[1] hold the real term
    # 0 * inf = NaN; gx[2]'s inf tap would need output 3, which does not exist
    np.testing.assert_array_equal(gx, [np.nan, np.nan, 0.0])
    gw = ref.conv1d_grad_weight(np.array([1.0, 2.0, 3.0]), np.array([np.inf, 0.0, 0.0]), (3,),
                                padding=1)
    np.testing.assert_array_equal(gw, [0.0, np.inf, np.inf])
