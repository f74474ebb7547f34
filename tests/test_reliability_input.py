"""Hostile and careless input beyond the per-argument rules of test_conv_errors.py and
test_pool_errors.py: empty dimensions, sizes at the limits of 64-bit and 32-bit index
arithmetic, NaN and inf, lists, an ``out=`` that aliases an input, gradients' dtypes.

Each case either works and gives the right answer, or raises TypeError/ValueError (or
NumPy's MemoryError for an array no machine holds) naming the argument; none crashes.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, conv2d_variants
from convpool import _core
from convpool import reference as ref

POOL_FORWARD = {
    "max_pool2d": lambda x: convpool.max_pool2d(x, 2),
    "max_pool2d(indices)": lambda x: convpool.max_pool2d(x, 3, 2, 1, return_indices=True),
    "avg_pool2d": lambda x: convpool.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
    "global_avg_pool2d": convpool.global_avg_pool2d,
    "global_max_pool2d": convpool.global_max_pool2d,
}


def _as_tuple(result) -> tuple[np.ndarray, ...]:
    return result if isinstance(result, tuple) else (result,)


# --- empty batch and channels ---------------------------------------------------------

@pytest.mark.parametrize("n, c", [(0, 3), (2, 0), (0, 0)])
@pytest.mark.parametrize("name", list(POOL_FORWARD))
def test_pooling_an_empty_batch_or_channel_set_gives_an_empty_result(name, n, c):
    full = _as_tuple(POOL_FORWARD[name](np.ones((2, 3, 6, 8), np.float32)))
    empty = _as_tuple(POOL_FORWARD[name](np.ones((n, c, 6, 8), np.float32)))
    for a, b in zip(empty, full, strict=True):
        assert a.shape == (n, c) + b.shape[2:] and a.dtype == b.dtype


@pytest.mark.parametrize("n, c", [(0, 3), (2, 0)])
def test_pooling_gradients_of_an_empty_batch_or_channel_set(n, c):
    x = np.ones((n, c, 6, 8), np.float32)
    y, idx = convpool.max_pool2d(x, 2, return_indices=True)
    gy = np.ones_like(y)
    results = [
        convpool.max_pool2d_grad_input(gy, idx, x.shape),
        convpool.avg_pool2d_grad_input(np.ones((n, c, 4, 5), np.float32), x.shape, 3, 2, 1,
                                       ceil_mode=True),
        convpool.global_avg_pool2d_grad_input(np.ones((n, c), np.float32), x.shape),
        convpool.global_max_pool2d_grad_input(np.ones((n, c), np.float32), x),
    ]
    for result in results:
        assert result.shape == x.shape and result.dtype == np.float32
    x6 = np.ones((n, 2 * c, 3, 4))
    for mode in ("max", "avg"):
        assert convpool.channel_pool(x6, 2, mode).shape == (n, c, 3, 4)
        gx = convpool.channel_pool_grad_input(np.ones((n, c, 3, 4)), x6, 2, mode)
        assert gx.shape == x6.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [dict(padding=1), dict(padding=1, padding_mode="reflect"), dict(stride=2, groups=2),
     dict(padding="same", dilation=2, padding_mode="circular")],
    ids=str,
)
def test_convolution_of_an_empty_batch(kwargs, dtype):
    x = np.ones((0, 4, 7, 6), dtype)
    w = np.ones((6, 4 // kwargs.get("groups", 1), 3, 3), dtype)
    out_hw = ref.conv2d(np.ones((1,) + x.shape[1:]), w, **kwargs).shape[2:]
    gy = np.ones((0, 6) + out_hw, dtype)
    for label in conv2d_variants("forward", x, w, gy, **kwargs):
        y = convpool.conv2d(x, w, np.ones(6, dtype), **kwargs)
        assert y.shape == (0, 6) + out_hw and y.dtype == dtype, label
    for label in conv2d_variants("grad_input", x, w, gy, **kwargs):
        gx = convpool.conv2d_grad_input(gy, w, x.shape, **kwargs)
        assert gx.shape == x.shape and gx.dtype == dtype, label
    for label in conv2d_variants("grad_weight", x, w, gy, **kwargs):
        # a sum over an empty batch is exactly zero
        np.testing.assert_array_equal(convpool.conv2d_grad_weight(x, gy, w.shape, **kwargs),
                                      np.zeros(w.shape, dtype), err_msg=label)
    np.testing.assert_array_equal(convpool.conv2d_grad_bias(gy), np.zeros(6, dtype))


# --- empty planes ---------------------------------------------------------------------

def test_convolution_of_an_empty_plane_with_enough_zero_padding_is_the_bias():
    # H = 0, padding 1, 1x1 kernel: a 2 x 7 output of padding alone, i.e. the bias.
    x, w, b = np.ones((1, 2, 0, 5)), np.ones((3, 2, 1, 1)), np.array([1.0, 2.0, 3.0])
    for dtype in (np.float32, np.float64):
        y = convpool.conv2d(x.astype(dtype), w.astype(dtype), b, padding=1)
        assert_close(y, np.broadcast_to(b[None, :, None, None], (1, 3, 2, 7)), dtype)
    gy = np.ones((1, 3, 2, 7))
    assert convpool.conv2d_grad_input(gy, w, x.shape, padding=1).shape == x.shape
    np.testing.assert_array_equal(convpool.conv2d_grad_weight(x, gy, w.shape, padding=1),
                                  np.zeros(w.shape))
    np.testing.assert_array_equal(convpool.conv2d(np.ones((0, 0)), np.ones((1, 1)), 2.0, padding=1),
                                  np.full((2, 2), 2.0))


def test_empty_output_gradients():
    np.testing.assert_array_equal(convpool.conv2d_grad_bias(np.ones((2, 3, 0, 4))), np.zeros(3))
    assert convpool.conv2d_grad_bias(np.ones((0, 0))).shape == ()
    # no output positions: nothing flows back, and every input pixel gets exactly 0
    grad = convpool.max_pool2d_grad_input(np.ones((1, 2, 0, 3)), np.zeros((1, 2, 0, 3), np.int64),
                                          (1, 2, 4, 4))
    np.testing.assert_array_equal(grad, np.zeros((1, 2, 4, 4)))
    x = np.ones((1, 3, 0, 6))
    np.testing.assert_array_equal(convpool.channel_pool(x, 3), np.ones((1, 1, 0, 6)))
    assert convpool.channel_pool_grad_input(np.ones((1, 1, 0, 6)), x, 3).shape == x.shape


def test_pooling_gradients_refuse_an_empty_plane():
    with pytest.raises(ValueError, match=r"input_shape: H and W must be >= 1, got \(1, 1, 0, 4\)"):
        convpool.max_pool2d_grad_input(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64),
                                       (1, 1, 0, 4))
    with pytest.raises(ValueError, match=r"input_shape: pooling needs H and W >= 1"):
        convpool.avg_pool2d_grad_input(np.ones((1, 1, 2, 2)), (1, 1, 0, 4), 2)
    with pytest.raises(ValueError, match=r"input_shape: global pooling needs H and W >= 1"):
        convpool.global_avg_pool2d_grad_input(np.ones((1, 1)), (1, 1, 4, 0))
    with pytest.raises(ValueError, match=r"x: global pooling needs H and W >= 1"):
        convpool.global_max_pool2d_grad_input(np.ones((1, 1)), np.ones((1, 1, 0, 4)))


# --- the limits of 64-bit index arithmetic --------------------------------------------

X4 = np.ones((1, 2, 5, 5), np.float32)
W4 = np.ones((2, 2, 1, 1), np.float32)

HUGE_ARGUMENTS = [
    ("stride", lambda v: convpool.conv2d(X4, W4, stride=v)),
    ("stride", lambda v: convpool.conv2d_grad_input(np.ones((1, 2, 1, 1)), W4, X4.shape, stride=v)),
    ("dilation", lambda v: convpool.conv2d(X4, W4, dilation=(1, v))),
    ("groups", lambda v: convpool.conv2d(X4, W4, groups=v)),
    ("padding", lambda v: convpool.conv2d(X4, W4, padding=((0, v), (0, 0)))),
    ("kernel_size", lambda v: convpool.max_pool2d(X4, v)),
    ("stride", lambda v: convpool.max_pool2d(X4, 2, stride=(v, 1))),
    ("dilation", lambda v: convpool.max_pool2d(X4, 1, dilation=v)),
    ("stride", lambda v: convpool.avg_pool2d_grad_input(np.ones((1, 2, 1, 1)), X4.shape, 2, v)),
    ("divisor_override", lambda v: convpool.avg_pool2d(X4, 2, divisor_override=v)),
    ("divisor_override", lambda v: convpool.avg_pool2d(X4, 2, divisor_override=-v)),
    ("size", lambda v: convpool.channel_pool(X4, v)),
]


@pytest.mark.parametrize("value", [2**62, 2**63, 2**64 + 1], ids=["2**62", "2**63", "2**64+1"])
@pytest.mark.parametrize("name, call", HUGE_ARGUMENTS, ids=[n for n, _ in HUGE_ARGUMENTS])
def test_integers_beyond_int64_index_arithmetic_are_a_value_error(name, call, value):
    # 2**63 and beyond do not fit the kernels' int64 at all; 2**62 would overflow a sum
    with pytest.raises(ValueError, match=rf"{name}: .*must .*2\*\*62"):
        call(value)


def test_the_largest_accepted_stride_gives_the_right_answer():
    big = 2**62 - 1
    x = np.arange(50.0).reshape(1, 2, 5, 5)
    w = np.ones((2, 2, 1, 1))
    assert_close(convpool.conv2d(x, w, stride=big), ref.conv2d(x, w, stride=(5, 5)), np.float64)
    assert_close(convpool.max_pool2d(x, 2, stride=big), x[:, :, :1, :1] + 6, np.float64)
    assert_close(convpool.avg_pool2d(x, 1, stride=(1, big)), x[..., :1], np.float64)
    assert_close(convpool.conv2d(x, w, dilation=big), ref.conv2d(x, w), np.float64)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: convpool.conv2d_grad_input(np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)),
                                            (1, 1, 1, 2**62)), r"x \(padded\)"),
        (lambda: convpool.conv2d_grad_input(np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)),
                                            (2**31, 1, 2**31, 1)), r"x \(padded\)"),
        (lambda: convpool.conv2d_grad_weight(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)),
                                             (2**62, 1, 1, 1)), "weight"),
        (lambda: convpool.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), padding=2**61),
         r"x \(padded\)"),
        (lambda: convpool.max_pool2d(np.ones((1, 1, 4, 4)), 2**61, padding="same", dilation=3),
         r"x \(padded\)"),
        (lambda: convpool.max_pool2d_grad_input(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), int),
                                                (1, 1, 2**40, 2**40)), "input_shape"),
        (lambda: convpool.max_pool2d_grad_input(np.ones((0, 1, 1, 1)), np.zeros((0, 1, 1, 1), int),
                                                (0, 2**40, 2**40, 1)), "input_shape"),
        (lambda: convpool.avg_pool2d_grad_input(np.ones((1, 1, 2, 2)), (2**31, 2**31, 4, 4), 2),
         "input_shape"),
        (lambda: convpool.global_avg_pool2d_grad_input(np.ones((1, 1)), (1, 1, 2**31, 2**31)),
         "input_shape"),
    ],
)
def test_shapes_beyond_int64_index_arithmetic_are_a_value_error(call, name):
    with pytest.raises(ValueError, match=rf"{name}: shape .* too large for 64-bit index"):
        call()


def _huge_uint8_view() -> np.ndarray:
    """2**62 uint8 elements (as many bytes as NumPy allows a view to span) in one byte."""
    return np.broadcast_to(np.uint8(7), (2**30, 2**29, 2, 4))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: convpool.conv2d(x, np.broadcast_to(np.uint8(1), (1, 2**29, 1, 1))),
        lambda x: convpool.conv2d_grad_bias(x),
        lambda x: convpool.max_pool2d(x, 1),
        lambda x: convpool.avg_pool2d(x, 1),
        lambda x: convpool.global_max_pool2d(x),
        lambda x: convpool.global_avg_pool2d(x),
        lambda x: convpool.channel_pool(x, 1),
    ],
)
def test_zero_stride_views_beyond_int64_index_arithmetic_are_a_value_error(call):
    with pytest.raises(ValueError, match=r"(x|x \(padded\)|grad_output): shape \(1073741824, "
                                         r"536870912, 2, 4\) is too large for 64-bit index"):
        call(_huge_uint8_view())


def test_zero_stride_views_larger_than_memory_are_a_memory_error():
    # 2**60 float32 elements: indexable, but no machine holds the 4 EiB output
    x = np.broadcast_to(np.float32(1), (2**20, 1, 2**20, 2**20))
    with pytest.raises(MemoryError):
        convpool.conv2d(x, np.ones((1, 1, 1, 1), np.float32))
    with pytest.raises(MemoryError):
        convpool.max_pool2d(x, 1)


# --- planes of more than 2**31 pixels: 64-bit offsets and indices ---------------------
# A 2**31 + 2**17 pixel float32 plane from np.zeros is 8 GiB of untouched pages: reading
# them maps the kernel's shared zero page, so these tests cost almost no memory. The
# windows are chosen so that the outputs stay small (a huge stride between rows).

BIG_ROWS, BIG_COLS = 2**15 + 2, 2**16  # the last two rows start at flat offset 2**31


@pytest.fixture(scope="module")
def big_plane():
    try:
        x = np.zeros((1, 1, BIG_ROWS, BIG_COLS), np.float32)
    except MemoryError:
        pytest.skip("cannot reserve 8 GiB of address space here")
    x[0, 0, 0, 5] = 1.0
    x[0, 0, 2**15, 3] = 3.0  # flat index 2**31 + 3
    x[0, 0, 2**15, 7] = 2.0
    x[0, 0, 2**15 + 1, 0] = -4.0
    return x


def test_beyond_32bit_convolution(big_plane):
    w = np.ones((1, 1, 1, 8), np.float32)
    y = convpool.conv2d(big_plane, w, stride=(2**15, 2**16))
    np.testing.assert_array_equal(y.ravel(), [1.0, 5.0])
    gy = np.ones(y.shape, np.float32)
    gw = convpool.conv2d_grad_weight(big_plane, gy, w.shape, stride=(2**15, 2**16))
    np.testing.assert_array_equal(gw.ravel(), [0, 0, 0, 3, 0, 1, 0, 2])


def test_beyond_32bit_max_pool_indices(big_plane):
    for kernel in ((1, 8), (2, 2)):  # (2, 2) has a vectorised row path with 32-bit indices
        y, idx = convpool.max_pool2d(big_plane, kernel, stride=(2**15, kernel[1]),
                                     return_indices=True)
        assert y.shape[2] == 2
        assert idx[0, 0, 1, 1 if kernel == (2, 2) else 0] == 2**31 + 3
        assert y[0, 0, 1].max() == 3.0
        assert idx[0, 0, 1, -1] == 2**31 + BIG_COLS - kernel[1]  # first of a window of zeros


def test_beyond_32bit_average_and_global_pools(big_plane):
    y = convpool.avg_pool2d(big_plane, (1, 8), stride=(2**15, 8))
    np.testing.assert_array_equal(y[0, 0, :, 0], [1 / 8, 5 / 8])
    assert convpool.global_max_pool2d(big_plane)[0, 0] == 3.0
    total = convpool.global_avg_pool2d(big_plane)[0, 0] * (BIG_ROWS * BIG_COLS)
    assert abs(total - 2.0) < 1e-3  # summed in double: 1 + 3 + 2 - 4


# --- NaN and inf -----------------------------------------------------------------------
# Convolution: each output is the IEEE sum of its window's products; taps in the zero
# padding are skipped (not multiplied by zero). So a NaN or inf pixel reaches exactly the
# outputs whose windows hold it, at every SIMD level and in every implementation.

def _sprinkle(rng, array, fraction=0.03):
    array = array.copy()
    r = rng.random(array.shape)
    array[r < fraction] = np.nan
    array[(r >= fraction) & (r < 2 * fraction)] = np.inf
    array[(r >= 2 * fraction) & (r < 3 * fraction)] = -np.inf
    return array


def _same_non_finite(actual, expected, where):
    for what, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        np.testing.assert_array_equal(test(actual), test(expected), err_msg=f"{where}: {what}")
    finite = np.isfinite(expected)
    assert_close(actual[finite], expected[finite], actual.dtype, where)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 8, 12, 14), (8, 8, 3, 3), dict(padding=1)),  # Winograd's shape
        ((2, 3, 11, 9), (16, 3, 3, 3), dict(stride=2, padding=1)),
        ((1, 8, 9, 9), (8, 1, 3, 3), dict(padding=1, groups=8)),
        ((2, 16, 6, 7), (8, 16, 1, 1), {}),
        ((1, 1, 13, 15), (1, 1, 5, 5), dict(padding=2, dilation=2)),
        ((2, 1, 31, 37), (16, 1, 5, 5), dict(stride=3, padding=2)),
        ((1, 8, 13, 14), (8, 1, 5, 5), dict(stride=2, padding=2, groups=8)),
    ],
    ids=["3x3", "stride2", "depthwise", "1x1", "dilated", "few-channels-5x5-stride3",
         "depthwise-5x5-stride2"],
)
def test_nan_and_inf_pixels_reach_exactly_their_windows(rng, x_shape, w_shape, kwargs):
    x = _sprinkle(rng, rng.standard_normal(x_shape)).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    with np.errstate(invalid="ignore"):  # the oracle's inf - inf
        expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), **kwargs)
    assert np.isnan(expected).any() and np.isinf(expected).any()
    for label in conv2d_variants("forward", x, w, None, **kwargs):
        _same_non_finite(convpool.conv2d(x, w, **kwargs), expected, label)


def _reach(call, *indicators) -> np.ndarray:
    """Where a non-finite entry of an input can reach: the oracle run on 0/1 indicators
    (and positive stand-ins for the other arguments) is positive exactly there."""
    return call(*indicators) > 0


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 8, 12, 14), (8, 8, 3, 3), dict(padding=1)),
        ((2, 4, 10, 9), (8, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
        ((2, 16, 6, 7), (8, 16, 1, 1), {}),
        ((2, 3, 13, 15), (16, 3, 7, 7), dict(stride=2, padding=3)),
        ((1, 8, 13, 14), (8, 1, 5, 5), dict(stride=2, padding=2, groups=8)),
    ],
    ids=["3x3", "grouped-stride2", "1x1", "few-channels-7x7-stride2", "depthwise-5x5-stride2"],
)
def test_gradients_never_hide_a_nan(rng, x_shape, w_shape, kwargs):
    """Every gradient entry whose sum holds a NaN term is NaN, in every implementation."""
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    gy = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, 3, replace=False)] = np.nan
    gy.reshape(-1)[rng.choice(gy.size, 3, replace=False)] = np.nan
    nan_x, nan_gy = np.isnan(x) * 1.0, np.isnan(gy) * 1.0
    positive_w = np.abs(w.astype(np.float64)) + 1
    must_gx = _reach(lambda g: ref.conv2d_grad_input(g, positive_w, x.shape, **kwargs), nan_gy)
    must_gw = _reach(lambda a, g: ref.conv2d_grad_weight(a, g, w.shape, **kwargs),
                     nan_x, np.ones(gy.shape)) | _reach(
        lambda a, g: ref.conv2d_grad_weight(a, g, w.shape, **kwargs), np.ones(x.shape), nan_gy)
    for label in conv2d_variants("grad_input", x, w, gy, **kwargs):
        gx = convpool.conv2d_grad_input(gy, w, x.shape, **kwargs)
        assert np.isnan(gx)[must_gx].all(), f"{label}: a NaN gradient entry came out finite"
    for label in conv2d_variants("grad_weight", x, w, gy, **kwargs):
        gw = convpool.conv2d_grad_weight(x, gy, w.shape, **kwargs)
        assert np.isnan(gw)[must_gw].all(), f"{label}: a NaN gradient entry came out finite"
    assert np.isnan(convpool.conv2d_grad_bias(gy)).any()


@pytest.mark.parametrize(
    "pass_, x_shape, w_shape, kwargs",
    [
        pytest.param("grad_weight", (1, 4, 8, 11), (8, 4, 3, 3), dict(padding=1), id="grad_weight"),
        pytest.param("grad_weight", (1, 16, 8, 11), (16, 16, 3, 3), dict(padding=1),
                     id="grad_weight-winograd"),
        pytest.param("grad_weight", (2, 3, 9, 11), (3, 1, 3, 3), dict(padding=1, groups=3),
                     id="grad_weight-plane"),
        pytest.param(
            "grad_input", (1, 8, 12, 9), (4, 4, 5, 5),
            dict(padding=1, stride=2, dilation=2, groups=2), id="grad_input",
        ),
    ],
)
def test_nan_gradients_do_not_depend_on_the_implementation(rng, pass_, x_shape, w_shape, kwargs):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    gy = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    gy[..., -1, :] = np.nan  # the last output row: its lowest taps read the bottom padding
    gy[..., :, -1] = np.nan
    masks = {}
    for label in conv2d_variants(pass_, x, w, gy, **kwargs):
        result = (convpool.conv2d_grad_weight(x, gy, w.shape, **kwargs) if pass_ == "grad_weight"
                  else convpool.conv2d_grad_input(gy, w, x.shape, **kwargs))
        masks[label] = np.isnan(result)
    first, *others = masks
    assert masks[first].any() and not masks[first].all()  # the case tells the rules apart
    for label in others:
        np.testing.assert_array_equal(masks[label], masks[first], err_msg=f"{label} vs {first}")


POOL_NON_FINITE = {
    "max_pool2d": lambda api, x: api.max_pool2d(x, 3, 2, 1, return_indices=True),
    "max_pool2d(dilated, ceil)": lambda api, x: api.max_pool2d(x, 2, 2, 1, 2, True, True),
    "avg_pool2d": lambda api, x: api.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    "avg_pool2d(ceil)": lambda api, x: api.avg_pool2d(x, 2, ceil_mode=True),
    "global_avg_pool2d": lambda api, x: api.global_avg_pool2d(x),
    "global_max_pool2d": lambda api, x: api.global_max_pool2d(x),
    "channel_pool(max)": lambda api, x: api.channel_pool(x, 2, "max"),
    "channel_pool(avg)": lambda api, x: api.channel_pool(x, 2, "avg"),
    "avg_pool2d_grad_input": lambda api, g: api.avg_pool2d_grad_input(g, (2, 4, 12, 12), 3, 1, 1),
    "global_avg_pool2d_grad_input": lambda api, g: api.global_avg_pool2d_grad_input(
        g[:, :, 0, 0], (2, 4, 12, 12)),
    "channel_pool_grad_input(avg)": lambda api, g: api.channel_pool_grad_input(
        g[:, :2], np.zeros((2, 4, 12, 12), g.dtype), 2, "avg"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(POOL_NON_FINITE))
def test_pooling_nan_and_inf_as_the_oracle(rng, name, dtype):
    """Max: a window holding NaN gives NaN (index of its first NaN), else inf wins as any
    number; averages: the IEEE sum (inf + -inf = NaN). Every non-finite value lands where
    the oracle puts it, and the finite ones agree."""
    x = _sprinkle(rng, rng.standard_normal((2, 4, 12, 12))).astype(dtype)
    actual = _as_tuple(POOL_NON_FINITE[name](convpool, x))
    with np.errstate(invalid="ignore"):  # the oracle's inf - inf
        expected = _as_tuple(POOL_NON_FINITE[name](ref, x))
    assert np.isnan(expected[0]).any()
    _same_non_finite(actual[0], expected[0], name)
    for a, e in zip(actual[1:], expected[1:], strict=True):  # indices
        np.testing.assert_array_equal(a, e, err_msg=f"{name}: indices")


def test_max_pool_gradient_sends_nan_only_to_the_winners(rng):
    x = rng.standard_normal((2, 3, 8, 8))
    y, idx = convpool.max_pool2d(x, 2, return_indices=True)
    gy = _sprinkle(rng, np.ones_like(y), 0.1)
    with np.errstate(invalid="ignore"):
        expected = ref.max_pool2d_grad_input(gy, idx, x.shape)
    _same_non_finite(convpool.max_pool2d_grad_input(gy, idx, x.shape), expected, "max grad")


# --- lists ------------------------------------------------------------------------------
# Every array argument may be a (nested) list or any array-like: it is converted as
# numpy.asarray would (test_conv_errors.py checks convolution). The exception is
# max_pool2d_grad_input's `indices`, which must be the integer array max_pool2d returned.

def test_pooling_accepts_lists(rng):
    x = rng.standard_normal((2, 4, 6, 6))
    xl = x.tolist()
    for name, call in POOL_FORWARD.items():
        for a, e in zip(_as_tuple(call(xl)), _as_tuple(call(x)), strict=True):
            np.testing.assert_array_equal(a, e, err_msg=name)
    np.testing.assert_array_equal(convpool.channel_pool(xl, 2), convpool.channel_pool(x, 2))
    gy = rng.standard_normal((2, 4, 3, 3))
    y, idx = convpool.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(convpool.max_pool2d_grad_input(gy.tolist(), idx, list(x.shape)),
                                  convpool.max_pool2d_grad_input(gy, idx, x.shape))
    np.testing.assert_array_equal(convpool.avg_pool2d_grad_input(gy.tolist(), list(x.shape), 2),
                                  convpool.avg_pool2d_grad_input(gy, x.shape, 2))
    g2 = rng.standard_normal((2, 4))
    np.testing.assert_array_equal(convpool.global_avg_pool2d_grad_input(g2.tolist(), x.shape),
                                  convpool.global_avg_pool2d_grad_input(g2, x.shape))
    np.testing.assert_array_equal(convpool.global_max_pool2d_grad_input(g2.tolist(), xl),
                                  convpool.global_max_pool2d_grad_input(g2, x))
    gc = rng.standard_normal((2, 2, 6, 6))
    np.testing.assert_array_equal(convpool.channel_pool_grad_input(gc.tolist(), xl, 2),
                                  convpool.channel_pool_grad_input(gc, x, 2))
    with pytest.raises(TypeError, match="indices: expected an integer array .* got list"):
        convpool.max_pool2d_grad_input(gy, idx.tolist(), x.shape)


def test_ragged_lists_are_a_type_error():
    for call in (lambda v: convpool.max_pool2d(v, 1), convpool.global_avg_pool2d,
                 lambda v: convpool.channel_pool(v, 1)):
        with pytest.raises(TypeError, match="x: cannot be converted to a numeric array"):
            call([[[1.0, 2.0], [3.0]]])


# --- dtypes of the gradient arguments ---------------------------------------------------

BAD_DTYPES = [np.complex64, np.bool_, object, np.str_, "datetime64[s]"]

POOL_GRADIENT_ARGUMENTS = {
    "max_pool2d_grad_input/grad_output": lambda bad: convpool.max_pool2d_grad_input(
        bad((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64), (1, 1, 4, 4)),
    "avg_pool2d_grad_input/grad_output": lambda bad: convpool.avg_pool2d_grad_input(
        bad((1, 1, 2, 2)), (1, 1, 4, 4), 2),
    "global_avg_pool2d_grad_input/grad_output": lambda bad: convpool.global_avg_pool2d_grad_input(
        bad((1, 1)), (1, 1, 4, 4)),
    "global_max_pool2d_grad_input/grad_output": lambda bad: convpool.global_max_pool2d_grad_input(
        bad((1, 1)), np.ones((1, 1, 4, 4))),
    "global_max_pool2d_grad_input/x": lambda bad: convpool.global_max_pool2d_grad_input(
        np.ones((1, 1)), bad((1, 1, 4, 4))),
    "channel_pool_grad_input/grad_output": lambda bad: convpool.channel_pool_grad_input(
        bad((1, 1, 4, 4)), np.ones((1, 2, 4, 4)), 2),
    "channel_pool_grad_input/x": lambda bad: convpool.channel_pool_grad_input(
        np.ones((1, 1, 4, 4)), bad((1, 2, 4, 4)), 2),
}


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("where", list(POOL_GRADIENT_ARGUMENTS))
def test_pooling_gradients_refuse_non_real_dtypes(where, dtype):
    argument = where.split("/")[1]
    with pytest.raises(TypeError, match=rf"{argument}: dtype must be a real number type"):
        POOL_GRADIENT_ARGUMENTS[where](lambda shape: np.zeros(shape, dtype))


# --- out= that aliases an input ---------------------------------------------------------

def test_out_sharing_memory_with_the_bias_is_refused():
    # Found by this suite: the kernel adds bias[q] while writing channel q, so an out=
    # holding the bias read already-written outputs as bias and returned a wrong answer.
    x, w = np.arange(9.0).reshape(1, 1, 3, 3), np.ones((2, 1, 1, 1))
    storage = np.zeros(18)
    storage[:2] = [10.0, 20.0]
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        convpool.conv2d(x, w, storage[:2], out=storage.reshape(1, 2, 3, 3))
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        convpool.conv2d(x, w, storage[16:], out=storage.reshape(1, 2, 3, 3))
    # a bias that had to be converted is a copy: no hazard, and the answer is right
    y = convpool.conv2d(x, w, storage[:2].astype(np.float32), out=storage.reshape(1, 2, 3, 3))
    assert_close(y, ref.conv2d(x, w, np.array([10.0, 20.0])), np.float64)


def test_out_partly_overlapping_an_input_is_refused():
    storage = np.zeros((1, 1, 3, 6))
    w = np.ones((1, 1, 1, 1))
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        convpool.conv2d(storage[..., :3], w, out=storage[..., 2:5])
    # side by side in one buffer, not overlapping: fine
    storage[..., :3] = np.arange(9.0).reshape(3, 3)
    convpool.conv2d(storage[..., :3], 2 * w, out=storage[..., 3:])
    np.testing.assert_array_equal(storage[..., 3:], 2 * storage[..., :3])
    weights = np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match="out: must not share memory with an input"):
        convpool.conv2d(np.ones((1, 1, 3, 3)), weights, out=weights[:, :, :1, :1])


def test_the_compiled_layer_refuses_geometry_beyond_int64_index_arithmetic():
    """A bug in the Python layer must not become signed overflow in the bindings (the
    sanitizer run checks that none happens): huge values given to _core directly."""
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 1, 1), np.float32)
    y = np.empty((1, 1, 3, 3), np.float32)
    big = 2**62

    def axis(kernel=1, stride=1, dilation=1, before=0, after=0):
        return _core.WindowAxis(3, 3, kernel, stride, dilation, before, after)

    def conv(rows):
        return _core.Conv2dGeometry(1, 1, 1, 1, rows, axis())

    def pool(rows):
        return _core.PoolGeometry(1, rows, axis())

    calls = [
        lambda: _core.conv2d_forward(x, w, None, y, conv(axis(before=big - 1, after=big - 1))),
        lambda: _core.conv2d_forward(x, w, None, y, conv(axis(stride=2**63 - 1))),
        lambda: _core.conv2d_grad_input(y, np.ones((1, 1, 3, 1), np.float32), x.copy(),
                                        conv(axis(kernel=3, dilation=big // 2))),
        lambda: _core.max_pool2d_forward(x, y, None, pool(axis(stride=2**63 - 1))),
        lambda: _core.max_pool2d_forward(x, y, None, pool(axis(after=big))),
        lambda: _core.avg_pool2d_grad_input(y, x.copy(), pool(axis(after=big)), True, 0),
        lambda: _core.conv2d_forward(x, w, None, y, _core.Conv2dGeometry(
            1, 1, 1, 1, axis(before=big - 1, after=big - 1), axis(), _core.PaddingMode.circular)),
    ]
    for k, call in enumerate(calls):
        with pytest.raises(ValueError, match=r"2\*\*62"):
            call()
            pytest.fail(f"call {k} accepted")


def test_unpickled_and_byteswapped_arrays_are_accepted(rng):
    """An unpickled or deep-copied array carries an equal dtype that is a new object (as in
    multiprocessing, joblib or dask-distributed workers); a big-endian array holds the same
    numbers in another byte order. Both must compute like the original."""
    import copy
    import pickle

    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    expected = convpool.conv2d(x, w, padding=1)
    for variant in (pickle.loads(pickle.dumps(x)), copy.deepcopy(x), x.astype(">f8")):
        np.testing.assert_array_equal(convpool.conv2d(variant, w, padding=1), expected)
    x32 = pickle.loads(pickle.dumps(x.astype(np.float32)))
    np.testing.assert_array_equal(convpool.max_pool2d(x32, 2),
                                  convpool.max_pool2d(x.astype(np.float32), 2))
    ones = np.ones_like(expected)
    np.testing.assert_array_equal(
        convpool.conv2d_grad_weight(x, pickle.loads(pickle.dumps(ones)), w.shape, padding=1),
        convpool.conv2d_grad_weight(x, ones, w.shape, padding=1),
    )
