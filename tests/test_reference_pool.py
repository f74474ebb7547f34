"""The pooling oracle (convpool.reference) against examples worked by hand and against
finite differences, so that the compiled kernels are checked against something trusted."""

from __future__ import annotations

import numpy as np
import pytest
from convpool import reference as ref

# The 4x4 picture of the worked examples, as one (N, C, H, W) = (1, 1, 4, 4) batch.
PICTURE = np.array(
    [
        [1, 5, 2, 0],
        [3, 4, 8, 6],
        [7, 2, 1, 9],
        [0, 6, 3, 5],
    ],
    dtype=np.float64,
)[np.newaxis, np.newaxis]


def plane(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)[np.newaxis, np.newaxis]


# --- hand-worked forward examples -----------------------------------------------------


def test_max_2x2_by_hand():
    # Windows [1 5; 3 4], [2 0; 8 6], [7 2; 0 6], [1 9; 3 5]: maxima 5, 8, 7, 9 at flat
    # positions 0*4+1, 1*4+2, 2*4+0, 2*4+3.
    y, indices = ref.max_pool2d(PICTURE, 2, return_indices=True)
    np.testing.assert_array_equal(y, plane([[5, 8], [7, 9]]))
    np.testing.assert_array_equal(indices, [[[[1, 6], [8, 11]]]])
    assert indices.dtype == np.int64


def test_avg_2x2_by_hand():
    # Window sums 13, 16, 15, 18, each over 4 pixels.
    y = ref.avg_pool2d(PICTURE, 2)
    np.testing.assert_array_equal(y, plane([[3.25, 4.0], [3.75, 4.5]]))


def test_max_3x3_stride_2_padding_1_by_hand():
    # Output 2x2; windows cover rows/cols {-1,0,1} and {1,2,3}; -1 is padding.
    y, indices = ref.max_pool2d(PICTURE, 3, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(y, plane([[5, 8], [7, 9]]))
    np.testing.assert_array_equal(indices, [[[[1, 6], [8, 11]]]])


def test_avg_3x3_stride_2_padding_1_by_hand():
    # Window sums 13, 25, 22, 44; pixels inside the input 4, 6, 6, 9 of 9.
    sums = np.array([[13, 25], [22, 44]], dtype=np.float64)
    np.testing.assert_allclose(ref.avg_pool2d(PICTURE, 3, 2, 1), plane(sums / 9))
    np.testing.assert_allclose(
        ref.avg_pool2d(PICTURE, 3, 2, 1, count_include_pad=False), plane(sums / [[4, 6], [6, 9]])
    )
    y = ref.avg_pool2d(PICTURE, 3, 2, 1, divisor_override=2)
    np.testing.assert_allclose(y, plane(sums / 2))


def test_ceil_mode_by_hand():
    # kernel 3, stride 2 on 4: floor gives 1 window, ceil 2 (the second starts at 2, inside).
    y, indices = ref.max_pool2d(PICTURE, 3, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, plane([[8, 9], [7, 9]]))
    np.testing.assert_array_equal(indices, [[[[6, 11], [8, 11]]]])
    assert ref.max_pool2d(PICTURE, 3, 2).shape == (1, 1, 1, 1)
    # The hanging windows divide by what lies inside (no padding here): 3x2, 2x3, 2x2.
    expected = np.array([[33 / 9, 26 / 6], [19 / 6, 18 / 4]])
    np.testing.assert_allclose(ref.avg_pool2d(PICTURE, 3, 2, ceil_mode=True), plane(expected))


def test_ceil_mode_window_past_the_padding_by_hand():
    # kernel 3, stride 2, padding 1 on 4, ceil: 3 windows per axis, the last starting at
    # input row 3, covering 3 (input), 4 (padding) and 5 (beyond the padding). With
    # count_include_pad it divides by 2 x 2 (PyTorch's rule), without by 1 x 1.
    y = ref.avg_pool2d(PICTURE, 3, 2, 1, ceil_mode=True)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 2, 2] == 5 / 4
    y = ref.avg_pool2d(PICTURE, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    assert y[0, 0, 2, 2] == 5
    assert ref.max_pool2d(PICTURE, 3, 2, 1, ceil_mode=True)[0, 0, 2, 2] == 5


def test_ceil_mode_drops_a_window_starting_in_the_padding_after():
    # in 5, kernel 2, stride 2, padding 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the
    # 4th would start at padded position 6 >= 5 + 1, past the input: 3 remain.
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    assert ref.max_pool2d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)


def test_asymmetric_and_same_padding_by_hand():
    x = plane([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # 'same' with kernel 2, stride 1: total padding 1, all of it after (bottom/right).
    y = ref.max_pool2d(x, 2, 1, "same")
    np.testing.assert_array_equal(y, plane([[5, 6, 6], [8, 9, 9], [8, 9, 9]]))
    # Explicit ((top, bottom), (left, right)) = ((1, 0), (0, 1)).
    y = ref.avg_pool2d(x, 2, 1, ((1, 0), (0, 1)), count_include_pad=False)
    np.testing.assert_array_equal(y, plane([[1.5, 2.5, 3], [3, 4, 4.5], [6, 7, 7.5]]))


def test_nan_wins_and_its_index_is_the_first_nan():
    x = plane([[1, np.nan, 5, 2], [np.nan, 7, 3, np.nan]])
    y, indices = ref.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(indices, [[[[1, 7]]]])
    assert np.isnan(ref.global_max_pool2d(x)).all()
    assert np.isnan(ref.channel_pool(np.concatenate([x, x * 0], axis=1), 2)[0, 0, 0, 1])


def test_ties_pick_the_first_in_row_major_order():
    x = plane([[0, 3, 3, 0], [3, 0, 0, 3]])
    _, indices = ref.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(indices, [[[[1, 2]]]])
    # Row-major, not column-major: (0, 1) comes before (1, 0).
    _, indices = ref.max_pool2d(plane([[0, 3], [3, 0]]), 2, return_indices=True)
    assert indices.item() == 1


def test_padding_never_wins_even_over_minus_infinity():
    x = np.full((1, 1, 2, 2), -np.inf)
    y, indices = ref.max_pool2d(x, 2, 1, 1, return_indices=True)
    assert (y == -np.inf).all()
    # Each window's first input pixel in row-major order.
    np.testing.assert_array_equal(indices, [[[[0, 0, 1], [0, 0, 1], [2, 2, 3]]]])


def test_dilation_by_hand():
    # kernel 2, dilation 2: taps 0 and 2 apart.
    y, indices = ref.max_pool2d(PICTURE, 2, 1, dilation=2, return_indices=True)
    # Windows: rows {0, 2} x cols {0, 2}: 1 2 7 1; x cols {1, 3}: 5 0 2 9;
    # rows {1, 3} x cols {0, 2}: 3 8 0 3; x cols {1, 3}: 4 6 6 5, a tie won by (1, 3).
    np.testing.assert_array_equal(y, plane([[7, 9], [8, 6]]))
    np.testing.assert_array_equal(indices, [[[[8, 11], [6, 7]]]])


def test_global_pools_by_hand():
    assert ref.global_max_pool2d(PICTURE).tolist() == [[9.0]]
    assert ref.global_avg_pool2d(PICTURE).tolist() == [[62 / 16]]
    assert ref.global_avg_pool2d(PICTURE, keepdims=True).shape == (1, 1, 1, 1)
    assert ref.global_max_pool2d(PICTURE[0]).shape == (1,)


def test_channel_pool_by_hand():
    x = np.array([[[[1, 4]], [[3, 2]], [[0, -1]], [[0, -5]]]], dtype=np.float64)  # (1, 4, 1, 2)
    np.testing.assert_array_equal(ref.channel_pool(x, 2), [[[[3, 4]], [[0, -1]]]])
    np.testing.assert_array_equal(ref.channel_pool(x, 2, "avg"), [[[[2, 3]], [[0, -3]]]])
    np.testing.assert_array_equal(ref.channel_pool(x, 4), [[[[3, 4]]]])
    # The gradient goes to the winner; on the tie 0 = 0 the first channel of the group.
    g = np.array([[[[1, 2]], [[3, 4]]]], dtype=np.float64)
    np.testing.assert_array_equal(
        ref.channel_pool_grad_input(g, x, 2), [[[[0, 2]], [[1, 0]], [[3, 4]], [[0, 0]]]]
    )
    np.testing.assert_array_equal(
        ref.channel_pool_grad_input(g, x, 2, "avg"),
        [[[[0.5, 1]], [[0.5, 1]], [[1.5, 2]], [[1.5, 2]]]],
    )


# --- hand-worked gradients ------------------------------------------------------------


def test_max_gradient_by_hand():
    g = plane([[1, 2], [3, 4]])
    _, indices = ref.max_pool2d(PICTURE, 2, return_indices=True)
    expected = np.zeros(16)
    expected[[1, 6, 8, 11]] = [1, 2, 3, 4]
    np.testing.assert_array_equal(ref.max_pool2d_grad_input(g, indices, PICTURE.shape),
                                  expected.reshape(PICTURE.shape))


def test_overlapping_max_windows_accumulate():
    # 3x3 stride 1: the 8 at (1, 2) wins both windows of columns 0-2, the 9 at (2, 3)
    # both of columns 1-3; each receives two gradients.
    _, indices = ref.max_pool2d(PICTURE, 3, 1, return_indices=True)
    np.testing.assert_array_equal(indices, [[[[6, 11], [6, 11]]]])
    grad = ref.max_pool2d_grad_input(plane([[1, 2], [3, 4]]), indices, PICTURE.shape)
    assert grad[0, 0, 1, 2] == 1 + 3 and grad[0, 0, 2, 3] == 2 + 4 and grad.sum() == 10


def test_avg_gradient_by_hand():
    g = plane([[1, 2], [3, 4]])
    expected = np.kron(np.array([[1, 2], [3, 4]]), np.ones((2, 2))) / 4
    np.testing.assert_array_equal(ref.avg_pool2d_grad_input(g, PICTURE.shape, 2), plane(expected))


def test_global_gradients_by_hand():
    g = np.array([[2.0]])
    expected = np.zeros(16)
    expected[11] = 2
    np.testing.assert_array_equal(ref.global_max_pool2d_grad_input(g, PICTURE),
                                  expected.reshape(PICTURE.shape))
    np.testing.assert_array_equal(ref.global_avg_pool2d_grad_input(g, PICTURE.shape),
                                  np.full(PICTURE.shape, 2 / 16))


# --- finite differences ---------------------------------------------------------------


def numerical_gradient(f, x: np.ndarray, grad_output: np.ndarray, eps: float = 1e-6):
    """d/dx of sum(grad_output * f(x)) by central differences, one element at a time."""
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        saved = x[k]
        x[k] = saved + eps
        up = np.sum(grad_output * f(x))
        x[k] = saved - eps
        down = np.sum(grad_output * f(x))
        x[k] = saved
        grad[k] = (up - down) / (2 * eps)
    return grad


def assert_gradcheck(analytic, numeric):
    # gradcheck's tolerances (float64): atol 1e-5, rtol 1e-3.
    np.testing.assert_allclose(analytic, numeric, rtol=1e-3, atol=1e-5)


AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=((1, 0), (0, 1)), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=5),
    dict(kernel_size=2, stride=1, padding="same"),
]


@pytest.mark.parametrize("kwargs", AVG_CASES)
def test_avg_gradient_matches_finite_differences(rng, kwargs):
    x = rng.standard_normal((2, 2, 5, 6))
    y = ref.avg_pool2d(x, **kwargs)
    g = rng.standard_normal(y.shape)
    analytic = ref.avg_pool2d_grad_input(g, x.shape, **kwargs)
    assert_gradcheck(analytic, numerical_gradient(lambda v: ref.avg_pool2d(v, **kwargs), x, g))


MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),  # overlapping windows accumulate
    dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), padding="same"),
]


@pytest.mark.parametrize("kwargs", MAX_CASES)
def test_max_gradient_matches_finite_differences(rng, kwargs):
    # A permutation: every value distinct, so the maximum of each window is unique and
    # moving one value by eps cannot change which one wins.
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6).astype(np.float64)
    y, indices = ref.max_pool2d(x, **kwargs, return_indices=True)
    g = rng.standard_normal(y.shape)
    analytic = ref.max_pool2d_grad_input(g, indices, x.shape)
    assert_gradcheck(analytic, numerical_gradient(lambda v: ref.max_pool2d(v, **kwargs), x, g))


def test_global_gradients_match_finite_differences(rng):
    x = rng.permutation(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).astype(np.float64)
    g = rng.standard_normal((2, 3))
    assert_gradcheck(ref.global_avg_pool2d_grad_input(g, x.shape),
                     numerical_gradient(ref.global_avg_pool2d, x, g))
    assert_gradcheck(ref.global_max_pool2d_grad_input(g, x),
                     numerical_gradient(ref.global_max_pool2d, x, g))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_channel_gradient_matches_finite_differences(rng, mode):
    x = rng.permutation(2 * 6 * 3 * 4).reshape(2, 6, 3, 4).astype(np.float64)
    g = rng.standard_normal((2, 2, 3, 4))
    analytic = ref.channel_pool_grad_input(g, x, 3, mode)
    numeric = numerical_gradient(lambda v: ref.channel_pool(v, 3, mode), x, g)
    assert_gradcheck(analytic, numeric)


# --- shapes and dtypes ----------------------------------------------------------------


def test_unbatched_input_gives_unbatched_output():
    x = PICTURE[0]
    y, indices = ref.max_pool2d(x, 2, return_indices=True)
    assert y.shape == indices.shape == (1, 2, 2)
    assert ref.avg_pool2d_grad_input(np.ones((1, 2, 2)), x.shape, 2).shape == x.shape
    assert ref.channel_pool(np.ones((4, 3, 3)), 2).shape == (2, 3, 3)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.uint8, np.float32), (np.int16, np.float32), (np.float32, np.float32),
     (np.int32, np.float64), (np.float64, np.float64)],
)
def test_result_dtype_is_result_type_with_float32(dtype, expected):
    x = PICTURE.astype(dtype)
    assert ref.max_pool2d(x, 2).dtype == expected
    assert ref.avg_pool2d(x, 2).dtype == expected
    assert ref.global_avg_pool2d(x).dtype == expected
    assert ref.channel_pool(np.concatenate([x, x], axis=1), 2).dtype == expected
