"""The compiled pooling kernels (convpool.max_pool2d, ...) against the NumPy oracle, for
every option and every SIMD build of the kernels on this machine.

Max pooling is exact: values and indices are compared for equality (NaN equal to NaN).
Averages and gradients that add several terms are compared within the dtype's tolerance.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, each_implementation
from convpool import reference as ref
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st


def integer_valued(rng, shape, dtype=np.float32, low=-4, high=5):
    """Small integers: many ties, so that the first-occurrence rule is exercised."""
    return rng.integers(low, high, size=shape).astype(dtype)


def check_max(rng, x, where="", **kwargs):
    """Forward (with and without indices) and gradient, compiled vs oracle."""
    expected_y, expected_idx = ref.max_pool2d(x, **kwargs, return_indices=True)
    grad_y = rng.standard_normal(expected_y.shape).astype(expected_y.dtype)
    expected_gx = ref.max_pool2d_grad_input(grad_y, expected_idx, np.shape(x))
    for label in each_implementation("max_pool2d", "max_pool2d_grad_input"):
        at = f"{where} {kwargs} {label}"
        y, idx = convpool.max_pool2d(x, **kwargs, return_indices=True)
        assert y.dtype == expected_y.dtype and idx.dtype == np.int64, at
        np.testing.assert_array_equal(y, expected_y, err_msg=at)
        np.testing.assert_array_equal(idx, expected_idx, err_msg=at)
        np.testing.assert_array_equal(convpool.max_pool2d(x, **kwargs), expected_y, err_msg=at)
        gx = convpool.max_pool2d_grad_input(grad_y, idx, np.shape(x))
        assert_close(gx, expected_gx, expected_gx.dtype, f"grad {at}")


def check_avg(rng, x, where="", **kwargs):
    expected_y = ref.avg_pool2d(x, **kwargs)
    grad_y = rng.standard_normal(expected_y.shape).astype(expected_y.dtype)
    expected_gx = ref.avg_pool2d_grad_input(grad_y, np.shape(x), **kwargs)
    for label in each_implementation("avg_pool2d", "avg_pool2d_grad_input"):
        at = f"{where} {kwargs} {label}"
        assert_close(convpool.avg_pool2d(x, **kwargs), expected_y, expected_y.dtype, at)
        gx = convpool.avg_pool2d_grad_input(grad_y, np.shape(x), **kwargs)
        assert_close(gx, expected_gx, expected_gx.dtype, f"grad {at}")


# Window shapes: every vectorised row kernel (kernel width, column stride) = (2, 2),
# (3, 2), (3, 1), (2, 1), (3, 3), (4, 4), and shapes that take the per-window path.
WINDOWS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=2, stride=1),
    dict(kernel_size=3),
    dict(kernel_size=4, padding=2),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=(3, 5), stride=(2, 1), padding=(0, 2)),
    dict(kernel_size=1),
    dict(kernel_size=5, stride=3, padding=2),
    dict(kernel_size=(4, 3), stride=(3, 2), padding=((2, 0), (1, 1))),
    dict(kernel_size=2, stride=1, padding="same"),
    dict(kernel_size=3, stride=2, padding="same"),
    dict(kernel_size=(4, 3), stride=(3, 1), padding="same"),
    dict(kernel_size=3, stride=2, padding="valid"),
]


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_max_pool_windows(rng, window, ceil_mode):
    x = integer_valued(rng, (2, 3, 11, 13))
    check_max(rng, x, ceil_mode=ceil_mode, **window)


@pytest.mark.parametrize(
    "window",
    [
        dict(kernel_size=2, stride=1, dilation=2),
        dict(kernel_size=3, stride=2, padding=1, dilation=(2, 1)),
        dict(kernel_size=(2, 3), stride=1, padding=1, dilation=(1, 3)),
        dict(kernel_size=3, stride=1, padding="same", dilation=2),
    ],
    ids=str,
)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_dilation(rng, window, ceil_mode):
    check_max(rng, integer_valued(rng, (2, 2, 10, 12)), ceil_mode=ceil_mode, **window)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_avg_pool_windows(rng, window, count_include_pad, ceil_mode):
    x = rng.standard_normal((2, 3, 11, 13))
    check_avg(rng, x, ceil_mode=ceil_mode, count_include_pad=count_include_pad, **window)


@pytest.mark.parametrize("divisor_override", [1, 3, -2])
def test_avg_pool_divisor_override(rng, divisor_override):
    x = rng.standard_normal((2, 2, 9, 8)).astype(np.float32)
    check_avg(rng, x, kernel_size=3, stride=2, padding=1, ceil_mode=True,
              divisor_override=divisor_override)


# --- shapes, dtypes, strides ----------------------------------------------------------

SHAPES = [
    ((1, 1, 1, 1), dict(kernel_size=1)),
    ((2, 3, 4, 4), dict(kernel_size=4)),  # kernel = input
    ((2, 3, 5, 7), dict(kernel_size=(5, 7), ceil_mode=True)),
    ((0, 3, 6, 6), dict(kernel_size=2)),  # empty batch
    ((2, 0, 6, 6), dict(kernel_size=2)),  # no channels
    ((3, 6, 6), dict(kernel_size=3, stride=2, padding=1)),  # unbatched
    ((1, 1, 67, 45), dict(kernel_size=3, stride=2, padding=1)),  # one plane, cut into rows
    ((1, 2, 33, 130), dict(kernel_size=2)),
    ((2, 40, 5, 6), dict(kernel_size=2, stride=1)),  # many small planes
    ((1, 1, 1, 9), dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))),
    ((1, 1, 9, 1), dict(kernel_size=(3, 1), stride=(2, 1), padding=(1, 0))),
]


@pytest.mark.parametrize(("shape", "kwargs"), SHAPES, ids=str)
def test_shapes(rng, shape, kwargs):
    check_max(rng, integer_valued(rng, shape), **kwargs)
    check_avg(rng, rng.standard_normal(shape), **kwargs)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.uint8, np.float32),
     (np.int16, np.float32), (np.int64, np.float64)],
)
def test_dtypes(rng, dtype, expected):
    x = rng.integers(0, 200, size=(2, 3, 7, 8)).astype(dtype)
    assert convpool.max_pool2d(x, 2).dtype == expected
    assert convpool.avg_pool2d(x, 2).dtype == expected
    assert convpool.global_max_pool2d(x).dtype == expected
    assert convpool.global_avg_pool2d(x).dtype == expected
    assert convpool.channel_pool(x, 3).dtype == expected
    check_max(rng, x, kernel_size=3, stride=2, padding=1)
    check_avg(rng, x, kernel_size=3, stride=2, padding=1)


def strided_views(rng):
    """The same values as C-contiguous, sliced, negatively strided and Fortran arrays."""
    base = integer_valued(rng, (3, 4, 14, 18))
    yield "sliced", base[::2, 1:, ::2, 1::2]
    yield "negative strides", base[:, ::-1, ::-1, :]
    yield "fortran", np.asfortranarray(base)
    yield "transposed", base.transpose(1, 0, 3, 2)


def test_any_input_strides(rng):
    for name, x in strided_views(rng):
        contiguous = np.ascontiguousarray(x)
        for f, kwargs in [
            (convpool.max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
            (convpool.avg_pool2d, dict(kernel_size=2, ceil_mode=True)),
            (convpool.global_max_pool2d, {}),
            (convpool.global_avg_pool2d, {}),
        ]:
            y = f(x, **kwargs)
            assert y.flags.c_contiguous, name
            np.testing.assert_array_equal(y, f(contiguous, **kwargs), err_msg=name)
        y = convpool.channel_pool(x[:, :2], 2)
        np.testing.assert_array_equal(y, convpool.channel_pool(contiguous[:, :2], 2), err_msg=name)
        g = rng.standard_normal(convpool.max_pool2d(x, 2).shape)[..., ::-1]
        _, idx = convpool.max_pool2d(x, 2, return_indices=True)
        np.testing.assert_array_equal(
            convpool.max_pool2d_grad_input(g, idx[..., ::-1].copy()[..., ::-1], x.shape),
            convpool.max_pool2d_grad_input(np.ascontiguousarray(g), idx, x.shape), err_msg=name,
        )


def test_results_do_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((2, 3, 37, 29)).astype(np.float32)
    g = rng.standard_normal((2, 3, 19, 15)).astype(np.float32)

    def run():
        y, idx = convpool.max_pool2d(x, 3, 2, 1, return_indices=True)
        return [
            y, idx, convpool.avg_pool2d(x, 3, 2, 1),
            convpool.max_pool2d_grad_input(g, idx, x.shape),
            convpool.avg_pool2d_grad_input(g, x.shape, 3, 2, 1),
            convpool.global_avg_pool2d(x),
            convpool.channel_pool_grad_input(convpool.channel_pool(x, 3), x, 3),
        ]

    convpool.set_num_threads(1)
    one = run()
    for threads in (2, 3, 8):
        convpool.set_num_threads(threads)
        for a, b in zip(one, run(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{threads} threads")


# --- NaN and infinities ---------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1),
     dict(kernel_size=(2, 3), stride=(2, 1)), dict(kernel_size=2, stride=1, dilation=2)],
    ids=str,
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates_with_the_first_nan_index(rng, window, dtype):
    x = integer_valued(rng, (2, 2, 9, 10), dtype)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    expected_y, expected_idx = ref.max_pool2d(x, **window, return_indices=True)
    assert np.isnan(expected_y).any()
    for label in each_implementation("max_pool2d"):
        y, idx = convpool.max_pool2d(x, **window, return_indices=True)
        np.testing.assert_array_equal(y, expected_y, err_msg=label)
        np.testing.assert_array_equal(idx, expected_idx, err_msg=label)
        np.testing.assert_array_equal(convpool.max_pool2d(x, **window), expected_y, err_msg=label)


def test_a_single_nan_among_many_planes_and_row_chunks(rng):
    """Rows without NaN take a cheaper path than rows with one: both must agree with the
    oracle, whichever plane or chunk of rows the NaN falls in."""
    x = integer_valued(rng, (2, 3, 40, 37))
    x[0, 0] = np.inf
    x[1, 2] = -np.inf
    for plane, row, col in [(0, 1, 0), (1, 1, 36), (3, 39, 17), (5, 20, 0)]:
        y = x.copy()
        y.reshape(6, 40, 37)[plane, row, col] = np.nan
        check_max(rng, y, kernel_size=3, stride=2, padding=1)
        check_max(rng, y[:1, :1], kernel_size=2)  # one plane: cut into row chunks


def test_all_minus_infinity_windows_pick_an_input_pixel(rng):
    x = np.full((1, 2, 5, 6), -np.inf, dtype=np.float32)
    check_max(rng, x, kernel_size=3, stride=2, padding=1)


# --- global pooling -------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(2, 3, 5, 7), (3, 1, 1), (1, 2, 64, 65), (0, 2, 3, 3), (2, 3, 1, 300)], ids=str
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_pools(rng, shape, dtype):
    x = integer_valued(rng, shape, dtype, -50, 50)
    grad_y = rng.standard_normal(shape[:-2]).astype(dtype)
    for keepdims in (False, True):
        for label in each_implementation("global_max_pool2d", "global_avg_pool2d"):
            y = convpool.global_max_pool2d(x, keepdims=keepdims)
            np.testing.assert_array_equal(y, ref.global_max_pool2d(x, keepdims), err_msg=label)
            assert_close(convpool.global_avg_pool2d(x, keepdims=keepdims),
                         ref.global_avg_pool2d(x, keepdims), dtype, label)
    g_keep = grad_y.reshape(grad_y.shape + (1, 1))
    for label in each_implementation("global_max_pool2d_grad_input",
                                     "global_avg_pool2d_grad_input"):
        for g in (grad_y, g_keep):  # either output form is accepted
            np.testing.assert_array_equal(convpool.global_max_pool2d_grad_input(g, x),
                                          ref.global_max_pool2d_grad_input(grad_y, x), label)
            assert_close(convpool.global_avg_pool2d_grad_input(g, shape),
                         ref.global_avg_pool2d_grad_input(grad_y, shape), dtype, label)


def test_global_max_ties_and_nan(rng):
    x = np.zeros((2, 3, 40, 41), dtype=np.float32)
    x[0, 0, 30, 2] = x[0, 0, 31, 0] = 5  # tie: the first in row-major order
    x[0, 1, 7, 7] = x[0, 1, 35, 1] = np.nan  # the first NaN
    x[0, 2] = -np.inf
    x[1, 0, 39, 40] = 1  # the very last pixel
    x[1, 1, 5, 5] = x[1, 1, 9, 9] = np.inf  # infinities, no NaN
    x[1, 2, 3, 3] = -np.inf
    g = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    for label in each_implementation("global_max_pool2d", "global_max_pool2d_grad_input"):
        y = convpool.global_max_pool2d(x)
        np.testing.assert_array_equal(y, ref.global_max_pool2d(x), err_msg=label)
        grad = convpool.global_max_pool2d_grad_input(g, x)
        np.testing.assert_array_equal(grad, ref.global_max_pool2d_grad_input(g, x), label)
        assert grad[0, 0, 30, 2] == 1 and grad[0, 1, 7, 7] == 2 and grad[0, 2, 0, 0] == 3
        assert grad[1, 1, 5, 5] == 5 and grad[1, 2, 0, 0] == 6


def test_global_avg_of_a_large_float32_plane_is_accurate():
    x = np.full((1, 1, 1000, 1000), 0.1, dtype=np.float32)
    x[0, 0, ::2] = 1e4
    expected = np.mean(x, dtype=np.float64)
    assert abs(convpool.global_avg_pool2d(x).item() - expected) <= 1e-6 * expected


# --- pooling across channels ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(
    ("shape", "size"),
    [((2, 6, 5, 7), 2), ((2, 6, 5, 7), 3), ((2, 6, 5, 7), 6), ((2, 6, 5, 7), 1),
     ((4, 3, 3), 2), ((1, 4, 70, 70), 4), ((0, 4, 2, 2), 2)],
    ids=str,
)
def test_channel_pool(rng, shape, size, mode):
    x = integer_valued(rng, shape, np.float64)
    if shape[-3] % size:
        x = x[..., : size * (shape[-3] // size), :, :]
    out_shape = x.shape[:-3] + (x.shape[-3] // size,) + x.shape[-2:]
    grad_y = rng.standard_normal(out_shape)
    for dtype in (np.float32, np.float64):
        xd, gd = x.astype(dtype), grad_y.astype(dtype)
        for label in each_implementation("channel_pool", "channel_pool_grad_input"):
            at = f"{dtype.__name__} {label}"
            assert_close(convpool.channel_pool(xd, size, mode), ref.channel_pool(xd, size, mode),
                         dtype, at)
            assert_close(convpool.channel_pool_grad_input(gd, xd, size, mode),
                         ref.channel_pool_grad_input(gd, xd, size, mode), dtype, at)


def test_channel_max_nan_and_ties(rng):
    x = integer_valued(rng, (2, 6, 9, 11), np.float32, 0, 2)  # ties everywhere
    x[rng.random(x.shape) < 0.1] = np.nan
    g = rng.standard_normal((2, 2, 9, 11)).astype(np.float32)
    for label in each_implementation("channel_pool", "channel_pool_grad_input"):
        np.testing.assert_array_equal(convpool.channel_pool(x, 3), ref.channel_pool(x, 3), label)
        np.testing.assert_array_equal(convpool.channel_pool_grad_input(g, x, 3),
                                      ref.channel_pool_grad_input(g, x, 3), label)


# --- hypothesis: random geometry ------------------------------------------------------


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    form = draw(st.sampled_from(["int", "pair", "sides", "same", "valid"]))
    if form == "int":
        padding = draw(st.integers(0, min(kh, kw) // 2))
    elif form == "pair":
        padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    elif form == "sides":
        padding = tuple(
            (draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in (kh, kw)
        )
    else:
        padding = form
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    if draw(st.booleans()):
        shape = shape[1:]
    return shape, dict(kernel_size=(kh, kw), stride=stride, padding=padding,
                       dilation=(dh, dw), ceil_mode=draw(st.booleans()))


def valid_or_none(f, *args, **kwargs):
    """The oracle's result, or None where the configuration is rejected."""
    try:
        return f(*args, **kwargs)
    except ValueError:
        return None


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(pool_configs(), st.sampled_from([np.float32, np.float64]))
def test_max_pool_hypothesis(config, dtype):
    shape, kwargs = config
    assume(valid_or_none(ref.max_pool2d, np.zeros(shape), **kwargs) is not None)
    rng = np.random.default_rng(sum(shape))
    x = integer_valued(rng, shape, dtype)
    x[rng.random(shape) < 0.05] = np.nan
    check_max(rng, x, **kwargs)


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(pool_configs(), st.booleans(), st.sampled_from([None, None, 1, 4]),
       st.sampled_from([np.float32, np.float64]))
def test_avg_pool_hypothesis(config, count_include_pad, divisor_override, dtype):
    shape, kwargs = config
    kwargs.pop("dilation")
    kwargs.update(count_include_pad=count_include_pad, divisor_override=divisor_override)
    assume(valid_or_none(ref.avg_pool2d, np.zeros(shape), **kwargs) is not None)
    rng = np.random.default_rng(sum(shape))
    check_avg(rng, rng.standard_normal(shape).astype(dtype), **kwargs)


def test_compiled_and_oracle_reject_the_same_configurations():
    """Every configuration the hypothesis tests skip is one the compiled layer rejects."""
    rejected = 0
    for h in range(1, 6):
        for k in range(1, 5):
            for s in range(1, 4):
                for d in (1, 2):
                    for p in [0, 1, 2, "same"]:
                        for ceil_mode in (False, True):
                            kwargs = dict(kernel_size=k, stride=s, padding=p, dilation=d,
                                          ceil_mode=ceil_mode)
                            x = np.zeros((1, 1, h, h + 1))
                            expected = valid_or_none(ref.max_pool2d, x, **kwargs)
                            got = valid_or_none(convpool.max_pool2d, x, **kwargs)
                            assert (expected is None) == (got is None), kwargs
                            rejected += expected is None
    assert rejected > 0


def test_concurrent_calls_from_python_threads(rng):
    """The kernels release the GIL and share no state between calls."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [rng.standard_normal((2, 4, 30, 31)).astype(np.float32) for _ in range(8)]
    expected = [convpool.max_pool2d(x, 3, 2, 1, return_indices=True) for x in inputs]

    def work(k):
        y, idx = convpool.max_pool2d(inputs[k], 3, 2, 1, return_indices=True)
        return k, y, idx

    with ThreadPoolExecutor(4) as pool:
        for k, y, idx in pool.map(work, list(range(8)) * 4):
            np.testing.assert_array_equal(y, expected[k][0])
            np.testing.assert_array_equal(idx, expected[k][1])
