"""Channels-last pooling (``layout="NHWC"`` and NCHW-shaped views of channels-last memory)
against the NumPy oracle, which computes in NCHW: every NHWC result must be the oracle's
result with its channel axis moved last, run by the NHWC kernels (forced and counted) at
every SIMD level of this machine.

Max pooling is exact (values and indices equal, NaN equal to NaN); sums within tolerance.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, each_implementation, forced_implementation
from convpool import reference as ref
from convpool.layout import stored_channels_last
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_pool import WINDOWS, integer_valued, pool_configs, valid_or_none


def to_nhwc(a: np.ndarray) -> np.ndarray:
    """An NCHW (or CHW) array as a C-contiguous NHWC (HWC) one."""
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))


def to_nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, -1, -3))


def channels_last_view(a: np.ndarray) -> np.ndarray:
    """An NCHW array's values as an NCHW-shaped view of NHWC memory (PyTorch's
    channels_last memory format)."""
    view = to_nhwc(a).transpose(0, 3, 1, 2)
    assert stored_channels_last(view)
    return view


def check_max_nhwc(rng, x, where="", **kwargs):
    """``x`` is NCHW (or CHW): forward with and without indices, and the gradient, in
    NHWC, against the oracle's NCHW results."""
    expected_y, expected_idx = ref.max_pool2d(x, **kwargs, return_indices=True)
    grad_y = rng.standard_normal(expected_y.shape).astype(expected_y.dtype)
    expected_gx = ref.max_pool2d_grad_input(grad_y, expected_idx, np.shape(x))
    x_nhwc, grad_y_nhwc = to_nhwc(x), to_nhwc(grad_y)
    for label in each_implementation("max_pool2d", "max_pool2d_grad_input", layout="NHWC"):
        at = f"{where} {kwargs} {label}"
        y, idx = convpool.max_pool2d(x_nhwc, **kwargs, return_indices=True, layout="NHWC")
        assert y.dtype == expected_y.dtype and idx.dtype == np.int64, at
        np.testing.assert_array_equal(y, to_nhwc(expected_y), err_msg=at)
        np.testing.assert_array_equal(idx, to_nhwc(expected_idx), err_msg=at)
        np.testing.assert_array_equal(convpool.max_pool2d(x_nhwc, **kwargs, layout="NHWC"),
                                      to_nhwc(expected_y), err_msg=at)
        gx = convpool.max_pool2d_grad_input(grad_y_nhwc, idx, x_nhwc.shape, layout="NHWC")
        assert_close(gx, to_nhwc(expected_gx), expected_gx.dtype, f"grad {at}")


def check_avg_nhwc(rng, x, where="", **kwargs):
    expected_y = ref.avg_pool2d(x, **kwargs)
    grad_y = rng.standard_normal(expected_y.shape).astype(expected_y.dtype)
    expected_gx = ref.avg_pool2d_grad_input(grad_y, np.shape(x), **kwargs)
    x_nhwc = to_nhwc(x)
    for label in each_implementation("avg_pool2d", "avg_pool2d_grad_input", layout="NHWC"):
        at = f"{where} {kwargs} {label}"
        assert_close(convpool.avg_pool2d(x_nhwc, **kwargs, layout="NHWC"), to_nhwc(expected_y),
                     expected_y.dtype, at)
        gx = convpool.avg_pool2d_grad_input(to_nhwc(grad_y), x_nhwc.shape, **kwargs,
                                            layout="NHWC")
        assert_close(gx, to_nhwc(expected_gx), expected_gx.dtype, f"grad {at}")


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_nhwc_max_pool_every_window(rng, window, ceil_mode, dtype):
    check_max_nhwc(rng, integer_valued(rng, (2, 5, 11, 13), dtype), **window,
                   ceil_mode=ceil_mode)


@pytest.mark.parametrize("window", [dict(kernel_size=3, dilation=2, padding=1),
                                    dict(kernel_size=(2, 3), dilation=(3, 2), stride=2)], ids=str)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_nhwc_max_pool_dilation(rng, window, ceil_mode):
    check_max_nhwc(rng, integer_valued(rng, (2, 4, 12, 13)), **window, ceil_mode=ceil_mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_nhwc_avg_pool_every_window(rng, window, ceil_mode, count_include_pad, dtype):
    check_avg_nhwc(rng, rng.standard_normal((2, 5, 11, 13)).astype(dtype), **window,
                   ceil_mode=ceil_mode, count_include_pad=count_include_pad)


@pytest.mark.parametrize("divisor_override", [1, 3, -2])
def test_nhwc_avg_pool_divisor_override(rng, divisor_override):
    check_avg_nhwc(rng, rng.standard_normal((2, 3, 9, 10)), kernel_size=3, stride=2, padding=1,
                   ceil_mode=True, divisor_override=divisor_override)


# Channel counts around the vector widths and the kernels' 256-channel slices.
@pytest.mark.parametrize("channels", [1, 3, 8, 17, 64, 300])
def test_nhwc_channel_counts(rng, channels):
    check_max_nhwc(rng, integer_valued(rng, (2, channels, 7, 6)), kernel_size=3, stride=2,
                   padding=1)
    check_avg_nhwc(rng, rng.standard_normal((2, channels, 7, 6)), kernel_size=3, stride=2,
                   padding=1)


def test_nhwc_unbatched_picture(rng):
    """An (H, W, C) picture pools its H and W axes and keeps its rank."""
    picture = integer_valued(rng, (3, 12, 10))  # CHW for the oracle
    check_max_nhwc(rng, picture, kernel_size=2)
    check_avg_nhwc(rng, picture.astype(np.float64), kernel_size=3, padding=1, stride=2)
    assert convpool.max_pool2d(to_nhwc(picture), 2, layout="NHWC").shape == (6, 5, 3)


def test_nhwc_uint8_picture_computes_in_float32_like_nchw(rng):
    picture = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)  # as Pillow returns it
    as_chw = picture.transpose(2, 0, 1)
    for f in (convpool.max_pool2d, convpool.avg_pool2d):
        y = f(picture, 3, stride=2, padding=1, layout="NHWC")
        nchw = f(as_chw, 3, stride=2, padding=1)
        assert y.dtype == nchw.dtype == np.float32
        assert_close(y, to_nhwc(nchw), np.float32, f.__name__)
    assert convpool.global_max_pool2d(picture, layout="NHWC").dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
def test_nhwc_nan_gives_the_first_nan_index(rng, dtype):
    x = integer_valued(rng, (2, 6, 9, 9), dtype)
    x[rng.random(x.shape) < 0.1] = np.nan
    check_max_nhwc(rng, x, kernel_size=3, stride=2, padding=1)
    check_max_nhwc(rng, x, kernel_size=2)


def test_nhwc_indices_are_the_nchw_indices(rng):
    """The same indices name the same pixels in either layout: NHWC indices feed the NCHW
    gradient and the other way round."""
    x = integer_valued(rng, (2, 3, 8, 9))
    _, idx = convpool.max_pool2d(x, 3, stride=2, return_indices=True)
    _, idx_nhwc = convpool.max_pool2d(to_nhwc(x), 3, stride=2, return_indices=True,
                                      layout="NHWC")
    np.testing.assert_array_equal(idx_nhwc, to_nhwc(idx))
    grad_y = rng.standard_normal(idx.shape).astype(np.float32)
    np.testing.assert_array_equal(
        convpool.max_pool2d_grad_input(to_nhwc(grad_y), to_nhwc(idx), to_nhwc(x).shape,
                                       layout="NHWC"),
        to_nhwc(convpool.max_pool2d_grad_input(grad_y, idx, x.shape)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(pool_configs(), st.sampled_from(DTYPES))
def test_nhwc_max_pool_hypothesis(config, dtype):
    shape, kwargs = config
    assume(valid_or_none(ref.max_pool2d, np.zeros(shape), **kwargs) is not None)
    rng = np.random.default_rng(sum(shape))
    x = integer_valued(rng, shape, dtype)
    x[rng.random(shape) < 0.05] = np.nan
    check_max_nhwc(rng, x, **kwargs)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much])
@given(pool_configs(), st.booleans(), st.sampled_from([None, None, 1, 4]),
       st.sampled_from(DTYPES))
def test_nhwc_avg_pool_hypothesis(config, count_include_pad, divisor_override, dtype):
    shape, kwargs = config
    kwargs.pop("dilation")
    kwargs.update(count_include_pad=count_include_pad, divisor_override=divisor_override)
    assume(valid_or_none(ref.avg_pool2d, np.zeros(shape), **kwargs) is not None)
    rng = np.random.default_rng(sum(shape))
    check_avg_nhwc(rng, rng.standard_normal(shape).astype(dtype), **kwargs)


def test_nhwc_rejects_what_nchw_rejects():
    for h in range(1, 5):
        for k in range(1, 4):
            for p in [0, 1, 2, "same"]:
                for ceil_mode in (False, True):
                    kwargs = dict(kernel_size=k, stride=2, padding=p, ceil_mode=ceil_mode)
                    x = np.zeros((1, 2, h, h + 1))
                    nchw = valid_or_none(convpool.max_pool2d, x, **kwargs)
                    nhwc = valid_or_none(convpool.max_pool2d, to_nhwc(x), **kwargs,
                                         layout="NHWC")
                    assert (nchw is None) == (nhwc is None), kwargs


def test_nhwc_results_do_not_depend_on_the_thread_count(rng):
    """Large enough for several threads, with two 256-channel slices per image."""
    x = rng.standard_normal((2, 37, 37, 300)).astype(np.float32)
    g = rng.standard_normal((2, 19, 19, 300)).astype(np.float32)

    def run():
        y, idx = convpool.max_pool2d(x, 3, 2, 1, return_indices=True, layout="NHWC")
        return [
            y, idx, convpool.avg_pool2d(x, 3, 2, 1, layout="NHWC"),
            convpool.max_pool2d_grad_input(g, idx, x.shape, layout="NHWC"),
            convpool.avg_pool2d_grad_input(g, x.shape, 3, 2, 1, layout="NHWC"),
            convpool.global_avg_pool2d(x, layout="NHWC"),
            convpool.global_max_pool2d_grad_input(g[:, 0, 0], x, layout="NHWC"),
            convpool.channel_pool_grad_input(convpool.channel_pool(x, 3, layout="NHWC"), x, 3,
                                             layout="NHWC"),
        ]

    convpool.set_num_threads(1)
    one = run()
    for threads in (2, 3, 8):
        convpool.set_num_threads(threads)
        for a, b in zip(one, run(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{threads} threads")


# --- global pooling and pooling across channels ---------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (3, 6, 5), (1, 300, 3, 4), (2, 1, 1, 1)],
                         ids=str)
def test_nhwc_global_pools(rng, shape, dtype):
    x = integer_valued(rng, shape, dtype)
    x[rng.random(shape) < 0.02] = np.nan
    x_nhwc = to_nhwc(x)
    for keepdims in (False, True):
        for label in each_implementation("global_max_pool2d", "global_avg_pool2d", layout="NHWC"):
            at = f"{shape} keepdims={keepdims} {label}"
            expected_max = ref.global_max_pool2d(x, keepdims=keepdims)
            expected_avg = ref.global_avg_pool2d(np.nan_to_num(x), keepdims=keepdims)
            if keepdims:
                expected_max, expected_avg = to_nhwc(expected_max), to_nhwc(expected_avg)
            np.testing.assert_array_equal(
                convpool.global_max_pool2d(x_nhwc, keepdims=keepdims, layout="NHWC"),
                expected_max, err_msg=at)
            assert_close(convpool.global_avg_pool2d(np.nan_to_num(x_nhwc), keepdims=keepdims,
                                                    layout="NHWC"),
                         expected_avg, dtype, at)
    grad_y = rng.standard_normal(shape[:-2]).astype(dtype)
    for label in each_implementation("global_max_pool2d_grad_input",
                                     "global_avg_pool2d_grad_input", layout="NHWC"):
        assert_close(convpool.global_max_pool2d_grad_input(grad_y, x_nhwc, layout="NHWC"),
                     to_nhwc(ref.global_max_pool2d_grad_input(grad_y, x)), dtype, label)
        assert_close(convpool.global_avg_pool2d_grad_input(grad_y, x_nhwc.shape, layout="NHWC"),
                     to_nhwc(ref.global_avg_pool2d_grad_input(grad_y, shape)), dtype, label)


def test_nhwc_global_avg_of_a_large_float32_plane_is_accurate():
    x = np.full((1, 1000, 1000, 3), 0.1, dtype=np.float32)
    np.testing.assert_allclose(convpool.global_avg_pool2d(x, layout="NHWC"),
                               np.full((1, 3), np.float32(0.1)), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(("shape", "size"), [((2, 6, 5, 7), 2), ((12, 4, 3), 3),
                                             ((1, 8, 3, 3), 8), ((2, 5, 4, 4), 1)], ids=str)
def test_nhwc_channel_pool(rng, shape, size, mode, dtype):
    x = integer_valued(rng, shape, dtype)
    if mode == "max":
        x[rng.random(shape) < 0.05] = np.nan
    expected = ref.channel_pool(x, size, mode)
    grad_y = rng.standard_normal(expected.shape).astype(dtype)
    expected_gx = ref.channel_pool_grad_input(grad_y, x, size, mode)
    for label in each_implementation("channel_pool", "channel_pool_grad_input", layout="NHWC"):
        y = convpool.channel_pool(to_nhwc(x), size, mode, layout="NHWC")
        if mode == "max":
            np.testing.assert_array_equal(y, to_nhwc(expected), err_msg=label)
        else:
            assert_close(y, to_nhwc(expected), dtype, label)
        gx = convpool.channel_pool_grad_input(to_nhwc(grad_y), to_nhwc(x), size, mode,
                                              layout="NHWC")
        assert_close(gx, to_nhwc(expected_gx), dtype, label)


# --- NCHW-shaped views of channels-last memory ------------------------------------------


def served_channels_last(result: np.ndarray) -> bool:
    """Whether a result is an NCHW-shaped view of a new NHWC-contiguous array."""
    return stored_channels_last(result) and result.base is not None


def test_channels_last_views_are_pooled_by_the_nhwc_kernels_without_a_copy(rng):
    x = integer_valued(rng, (2, 6, 10, 9))
    view = channels_last_view(x)
    kwargs = dict(kernel_size=3, stride=2, padding=1)
    expected_y, expected_idx = ref.max_pool2d(x, **kwargs, return_indices=True)
    grad_y = rng.standard_normal(expected_y.shape).astype(np.float32)
    assert convpool.implementation("max_pool2d", view, **kwargs) == "nhwc"
    assert convpool.implementation("max_pool2d", x, **kwargs) == "rows"
    # Forced: had the view been copied to NCHW, the NCHW kernel would have to run.
    with forced_implementation("max_pool2d", "nhwc"):
        y, idx = convpool.max_pool2d(view, **kwargs, return_indices=True)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(idx, expected_idx)
    assert served_channels_last(y) and served_channels_last(idx)
    with forced_implementation("max_pool2d_grad_input", "nhwc"):
        gx = convpool.max_pool2d_grad_input(channels_last_view(grad_y), idx, x.shape)
    assert served_channels_last(gx)
    assert_close(gx, ref.max_pool2d_grad_input(grad_y, expected_idx, x.shape), np.float32)
    with forced_implementation("avg_pool2d", "nhwc"):
        y = convpool.avg_pool2d(view, **kwargs)
    assert served_channels_last(y)
    assert_close(y, ref.avg_pool2d(x, **kwargs), np.float32)
    with forced_implementation("avg_pool2d_grad_input", "nhwc"):
        gx = convpool.avg_pool2d_grad_input(channels_last_view(grad_y), x.shape, **kwargs)
    assert served_channels_last(gx)
    assert_close(gx, ref.avg_pool2d_grad_input(grad_y, x.shape, **kwargs), np.float32)


def test_channels_last_views_in_global_and_channel_pooling(rng):
    x = integer_valued(rng, (2, 6, 5, 7))
    view = channels_last_view(x)
    with forced_implementation("global_max_pool2d", "nhwc"):
        np.testing.assert_array_equal(convpool.global_max_pool2d(view), ref.global_max_pool2d(x))
    with forced_implementation("global_avg_pool2d", "nhwc"):
        assert_close(convpool.global_avg_pool2d(view, keepdims=True),
                     ref.global_avg_pool2d(x, keepdims=True), np.float32)
    grad_y = rng.standard_normal((2, 6)).astype(np.float32)
    with forced_implementation("global_max_pool2d_grad_input", "nhwc"):
        gx = convpool.global_max_pool2d_grad_input(grad_y, view)
    assert served_channels_last(gx)
    assert_close(gx, ref.global_max_pool2d_grad_input(grad_y, x), np.float32)
    with forced_implementation("channel_pool", "nhwc"):
        y = convpool.channel_pool(view, 3)
    assert served_channels_last(y)
    np.testing.assert_array_equal(y, ref.channel_pool(x, 3))
    grad_c = rng.standard_normal(y.shape).astype(np.float32)
    with forced_implementation("channel_pool_grad_input", "nhwc"):
        gx = convpool.channel_pool_grad_input(grad_c, view, 3)
    assert served_channels_last(gx)
    assert_close(gx, ref.channel_pool_grad_input(grad_c, x, 3), np.float32)


def test_contiguous_nchw_inputs_stay_nchw(rng):
    x = integer_valued(rng, (2, 3, 8, 8))
    y = convpool.max_pool2d(x, 2)
    assert y.flags.c_contiguous and y.shape == (2, 3, 4, 4)


# --- which implementation, and errors ----------------------------------------------------


def test_implementation_reports_the_layout_kernels(rng):
    x = np.zeros((2, 8, 8, 3), dtype=np.float32)
    assert convpool.implementation("max_pool2d", x, 2, layout="NHWC") == "nhwc"
    assert convpool.implementation("avg_pool2d_grad_input", np.zeros((2, 4, 4, 3)), x.shape, 2,
                                   layout="NHWC") == "nhwc"
    assert convpool.implementation("global_avg_pool2d", x, layout="NHWC") == "nhwc"
    assert convpool.implementation("channel_pool", x, 3, layout="NHWC") == "nhwc"
    assert convpool.implementations("max_pool2d", x, 2, layout="NHWC") == ["nhwc"]
    assert convpool.implementations("max_pool2d", x, 2) == ["rows"]


def test_forcing_an_nchw_kernel_on_nhwc_arrays_is_refused():
    x = np.zeros((1, 4, 4, 3), dtype=np.float32)
    convpool._core.force_implementation("max_pool2d", "rows")
    with pytest.raises(ValueError, match="rows.*does not support.*NHWC"):
        convpool.max_pool2d(x, 2, layout="NHWC")


CALLS = {
    "max_pool2d": lambda x, layout: convpool.max_pool2d(x, 2, layout=layout),
    "max_pool2d_grad_input": lambda x, layout: convpool.max_pool2d_grad_input(
        x, np.zeros(x.shape, dtype=np.int64), (1, 2, 2, 2), layout=layout),
    "avg_pool2d": lambda x, layout: convpool.avg_pool2d(x, 2, layout=layout),
    "avg_pool2d_grad_input": lambda x, layout: convpool.avg_pool2d_grad_input(
        x, (1, 4, 4, 2), 2, layout=layout),
    "global_avg_pool2d": lambda x, layout: convpool.global_avg_pool2d(x, layout=layout),
    "global_avg_pool2d_grad_input": lambda x, layout: convpool.global_avg_pool2d_grad_input(
        np.zeros((1, 2)), (1, 4, 4, 2), layout=layout),
    "global_max_pool2d": lambda x, layout: convpool.global_max_pool2d(x, layout=layout),
    "global_max_pool2d_grad_input": lambda x, layout: convpool.global_max_pool2d_grad_input(
        np.zeros((1, 2)), x, layout=layout),
    "channel_pool": lambda x, layout: convpool.channel_pool(x, 2, layout=layout),
    "channel_pool_grad_input": lambda x, layout: convpool.channel_pool_grad_input(
        x, x, 1, layout=layout),
}


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("layout", ["nhwc", "NHCW", "", None, 4])
def test_every_pooling_function_rejects_unknown_layouts(name, layout):
    with pytest.raises(ValueError, match=r"layout: expected 'NCHW' or 'NHWC'"):
        CALLS[name](np.zeros((1, 4, 4, 2)), layout)


def test_every_pooling_function_accepts_nhwc():
    for name, call in CALLS.items():
        call(np.zeros((1, 4, 4, 2)) if "grad_input" not in name or "global" in name
             else np.zeros((1, 2, 2, 2)), "NHWC")


def test_nhwc_rank_errors_name_the_layout():
    with pytest.raises(ValueError, match=r"x: expected \(N, H, W, C\) or \(H, W, C\)"):
        convpool.max_pool2d(np.zeros((4, 4)), 2, layout="NHWC")
    with pytest.raises(ValueError, match=r"input_shape: expected 3 or 4 dimensions"):
        convpool.avg_pool2d_grad_input(np.zeros((2, 2)), (4, 4), 2, layout="NHWC")


def test_nhwc_gradient_shape_errors(rng):
    with pytest.raises(ValueError, match="grad_output"):  # an NCHW-shaped gradient
        convpool.avg_pool2d_grad_input(np.zeros((1, 2, 2, 2)), (1, 4, 4, 3), 2, layout="NHWC")
    with pytest.raises(ValueError, match="grad_output"):  # 3 channels for an input of 2
        convpool.max_pool2d_grad_input(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3), np.int64),
                                       (1, 4, 4, 2), layout="NHWC")
    with pytest.raises(ValueError, match="grad_output"):
        convpool.global_max_pool2d_grad_input(np.zeros((1, 4)), np.zeros((1, 4, 4, 2)),
                                              layout="NHWC")
    with pytest.raises(ValueError, match="size"):
        convpool.channel_pool(np.zeros((1, 4, 4, 3)), 2, layout="NHWC")


def test_nhwc_out_of_range_indices_are_named(rng):
    idx = np.zeros((1, 2, 2, 3), dtype=np.int64)
    idx[0, 1, 0, 2] = 16
    with pytest.raises(ValueError, match=r"indices: value 16 at \[0, 1, 0, 2\]"):
        convpool.max_pool2d_grad_input(np.ones((1, 2, 2, 3)), idx, (1, 4, 4, 3), layout="NHWC")


# --- adaptive pooling (NumPy-level, on the compiled pools where the sizes divide) ----------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "size"), [((2, 4, 8, 12), (2, 3)),   # divides: compiled
                                             ((2, 4, 7, 10), (3, 4)),   # overlapping windows
                                             ((5, 9, 6), 4)], ids=str)
def test_nhwc_adaptive_pooling_matches_the_oracle(rng, shape, size, dtype):
    x = integer_valued(rng, shape, dtype)
    x_nhwc = to_nhwc(x)
    y = convpool.adaptive_avg_pool2d(x_nhwc, size, layout="NHWC")
    expected = ref.adaptive_avg_pool2d(x, size)
    assert_close(y, to_nhwc(expected), dtype, "avg")
    g = rng.standard_normal(expected.shape).astype(dtype)
    assert_close(convpool.adaptive_avg_pool2d_grad_input(to_nhwc(g), x_nhwc.shape, layout="NHWC"),
                 to_nhwc(ref.adaptive_avg_pool2d_grad_input(g, shape)), dtype, "avg grad")
    y, indices = convpool.adaptive_max_pool2d(x_nhwc, size, return_indices=True, layout="NHWC")
    expected, expected_indices = ref.adaptive_max_pool2d(x, size, return_indices=True)
    np.testing.assert_array_equal(y, to_nhwc(expected))
    np.testing.assert_array_equal(indices, to_nhwc(expected_indices))
    assert y.flags.c_contiguous and indices.flags.c_contiguous
    assert_close(convpool.adaptive_max_pool2d_grad_input(to_nhwc(g), indices, x_nhwc.shape,
                                                         layout="NHWC"),
                 to_nhwc(ref.adaptive_max_pool2d_grad_input(g, expected_indices, shape)), dtype,
                 "max grad")


def test_nhwc_adaptive_pooling_runs_the_nhwc_kernels_where_sizes_divide(rng):
    x = integer_valued(rng, (2, 8, 8, 6))
    with forced_implementation("avg_pool2d", "nhwc"):
        convpool.adaptive_avg_pool2d(x, 2, layout="NHWC")
    with forced_implementation("max_pool2d", "nhwc"):
        convpool.adaptive_max_pool2d(x, 4, layout="NHWC")


def test_adaptive_pooling_rejects_unknown_layouts():
    for call in (lambda: convpool.adaptive_avg_pool2d(np.zeros((1, 4, 4, 2)), 2, layout="HWC"),
                 lambda: convpool.adaptive_max_pool2d(np.zeros((1, 4, 4, 2)), 2, layout="HWC"),
                 lambda: convpool.adaptive_avg_pool2d_grad_input(np.zeros((1, 2, 2, 2)),
                                                                 (1, 4, 4, 2), layout="HWC")):
        with pytest.raises(ValueError, match="layout"):
            call()


# --- unpooling ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "kwargs"), [((2, 3, 8, 9), dict(kernel_size=2)),
                                               ((4, 9, 9), dict(kernel_size=3, stride=2,
                                                                padding=1))], ids=str)
def test_nhwc_max_unpool_matches_the_oracle(rng, shape, kwargs, dtype):
    x = integer_valued(rng, shape, dtype)
    y, indices = ref.max_pool2d(x, **kwargs, return_indices=True)
    expected = ref.max_unpool2d(y, indices, **kwargs, output_size=shape[-2:])
    with forced_implementation("max_pool2d_grad_input", "nhwc"):
        got = convpool.max_unpool2d(to_nhwc(y), to_nhwc(indices), **kwargs,
                                    output_size=to_nhwc(x).shape, layout="NHWC")
    assert_close(got, to_nhwc(expected), dtype, "unpool")
    g = rng.standard_normal(expected.shape).astype(dtype)
    assert_close(convpool.max_unpool2d_grad_input(to_nhwc(g), to_nhwc(indices), layout="NHWC"),
                 to_nhwc(ref.max_unpool2d_grad_input(g, indices)), dtype, "unpool grad")


def test_max_unpool_rejects_unknown_layouts():
    y, indices = convpool.max_pool2d(np.zeros((1, 4, 4, 2)), 2, return_indices=True,
                                     layout="NHWC")
    with pytest.raises(ValueError, match="layout"):
        convpool.max_unpool2d(y, indices, 2, layout="CHW")
    with pytest.raises(ValueError, match="layout"):
        convpool.max_unpool2d_grad_input(np.zeros((1, 4, 4, 2)), indices, layout="CHW")


# --- out= with layout: shapes in the call's layout --------------------------------------


def test_nhwc_out_is_written_in_the_calls_layout(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    x_nhwc = to_nhwc(x)
    expected_y, expected_idx = ref.max_pool2d(x, 3, 2, 1, return_indices=True)
    values = np.empty(to_nhwc(expected_y).shape)
    indices = np.empty(values.shape, dtype=np.int64)
    y, idx = convpool.max_pool2d(x_nhwc, 3, 2, 1, return_indices=True, out=(values, indices),
                                 layout="NHWC")
    assert y is values and idx is indices
    np.testing.assert_array_equal(values, to_nhwc(expected_y))
    np.testing.assert_array_equal(indices, to_nhwc(expected_idx))
    grad_y = rng.standard_normal(expected_y.shape)
    grad = np.empty(x_nhwc.shape)
    got = convpool.avg_pool2d_grad_input(to_nhwc(grad_y), x_nhwc.shape, 3, 2, 1, out=grad,
                                         layout="NHWC")
    assert got is grad
    assert_close(grad, to_nhwc(ref.avg_pool2d_grad_input(grad_y, x.shape, 3, 2, 1)),
                 np.dtype(np.float64), "avg grad out=")
    pooled = np.empty((2, 1, 1, 3))
    assert convpool.global_max_pool2d(x_nhwc, keepdims=True, out=pooled, layout="NHWC") is pooled
    np.testing.assert_array_equal(pooled, to_nhwc(ref.global_max_pool2d(x, keepdims=True)))
    with pytest.raises(ValueError, match="out"):
        convpool.avg_pool2d(x_nhwc, 2, out=np.empty((2, 3, 4, 4)), layout="NHWC")


@pytest.mark.parametrize("out_format", ["contiguous", "channels_last", "strided"])
def test_out_of_a_channels_last_view_call_has_the_nchw_shape(rng, out_format):
    x = rng.standard_normal((2, 4, 8, 6))
    view = channels_last_view(x)
    expected = ref.avg_pool2d(x, 2)
    if out_format == "contiguous":
        out = np.empty(expected.shape)
    elif out_format == "channels_last":
        out = np.empty(to_nhwc(expected).shape).transpose(0, 3, 1, 2)
    else:
        out = np.empty(expected.shape + (2,))[..., 0]
    with forced_implementation("avg_pool2d", "nhwc"):
        got = convpool.avg_pool2d(view, 2, out=out)
    assert got is out
    assert_close(out, expected, np.dtype(np.float64), out_format)
    gx_expected = ref.global_max_pool2d_grad_input(np.ones((2, 4)), x)
    gx = np.empty(x.shape)
    assert convpool.global_max_pool2d_grad_input(np.ones((2, 4)), view, out=gx) is gx
    np.testing.assert_array_equal(gx, gx_expected)


def test_nhwc_float16_pools_in_float32_and_rounds_once(rng):
    x = rng.standard_normal((2, 5, 7, 3)).astype(np.float16)
    for name, kwargs in [("max_pool2d", {}), ("avg_pool2d", {"padding": 1})]:
        got = getattr(convpool, name)(x, 3, **kwargs, layout="NHWC")
        expected = getattr(ref, name)(to_nchw(x).astype(np.float32), 3, **kwargs)
        assert got.dtype == np.float16, name
        np.testing.assert_array_equal(got, to_nhwc(expected).astype(np.float16), err_msg=name)
        out = np.empty(got.shape, np.float16)
        assert getattr(convpool, name)(x, 3, **kwargs, out=out, layout="NHWC") is out
        np.testing.assert_array_equal(out, got, err_msg=name)
