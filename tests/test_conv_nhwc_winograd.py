"""The channels-last Winograd kernel (``nhwc_winograd``): forward (stride 1 and 2) and
stride-1 input gradient of 3x3 layers, forced at every SIMD level and compared with the NCHW oracle
(transposed); which layers it takes; NaN/inf placement and float32 overflow (the direct
sum's, as in the NCHW Winograd); independence from the thread count."""

from __future__ import annotations

import zlib

import convpool
import convpool.reference as ref
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAME = "nhwc_winograd"


def to_nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def to_nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def forced_forward(x_nhwc, w, b=None, **kwargs) -> np.ndarray:
    with forced_implementation("conv2d", NAME, "float32"):
        return convpool.conv2d(x_nhwc, w, b, layout="NHWC", **kwargs)


def forced_grad_input(grad_y_nhwc, w, input_shape, **kwargs) -> np.ndarray:
    with forced_implementation("conv2d_grad_input", NAME, "float32"):
        return convpool.conv2d_grad_input(grad_y_nhwc, w, input_shape, layout="NHWC", **kwargs)


def check_both_passes(rng, x_shape, c_out, levels=None, bias=True, **kwargs) -> None:
    """Forward and input gradient of an NCHW shape ``x_shape`` with ``c_out`` 3x3 filters,
    forced onto the kernel at each SIMD level, against the oracle."""
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((c_out, x_shape[1], 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    expected = ref.conv2d(x, w, b, **kwargs)
    grad_y = rng.standard_normal(expected.shape).astype(np.float32)
    expected_gx = ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    where = f"{x_shape} -> {c_out} {kwargs}"
    for level in levels or available_simd_levels():
        with simd_level(level):
            y = forced_forward(to_nhwc(x), w, b, **kwargs)
            assert_close(y, to_nhwc(expected), np.float32, f"{where} forward simd={level}")
            gx = forced_grad_input(to_nhwc(grad_y), w, to_nhwc(x).shape, **kwargs)
            assert_close(gx, to_nhwc(expected_gx), np.float32, f"{where} grad_input simd={level}")


# Odd and even sizes (partial 2x2 tiles on either edge), channel counts with vector tails
# at every width, one-pixel pictures, padding 0, 1, 2 and per side, bigger batches.
LAYERS = [
    ((1, 16, 8, 8), 16, dict(padding=1)),
    ((2, 20, 9, 11), 37, dict(padding=1)),
    ((1, 33, 5, 6), 70, {}),
    ((3, 17, 7, 5), 19, dict(padding=2)),
    ((1, 24, 6, 9), 130, dict(padding=((2, 0), (1, 2)))),
    ((1, 40, 1, 1), 16, dict(padding=1)),
    ((2, 16, 3, 13), 24, dict(padding="same")),
    ((1, 18, 10, 4), 48, dict(padding=((0, 3), (2, 1)))),
    # few tiles: the threads share the output-channel blocks; many tiles: they share
    # batches of tiles (several per image), each running every output-channel block
    ((1, 64, 30, 23), 96, dict(padding=1)),
    ((2, 64, 21, 30), 40, dict(padding=1)),
    ((1, 16, 41, 40), 70, dict(padding=1)),
]


@pytest.mark.parametrize("x_shape, c_out, kwargs", LAYERS)
def test_nhwc_winograd_forward_and_input_gradient_match_the_oracle(rng, x_shape, c_out, kwargs):
    check_both_passes(rng, x_shape, c_out, **kwargs)


def test_nhwc_winograd_without_bias_matches_the_oracle(rng):
    check_both_passes(rng, (2, 16, 7, 7), 32, bias=False, padding=1)


# Stride 2: 5x5 patches 4 inputs apart; odd and even sizes, padding 0-2 and per side.
STRIDE_2_LAYERS = [
    ((1, 16, 8, 8), 16, dict(stride=2, padding=1)),
    ((2, 20, 9, 11), 37, dict(stride=2, padding=1)),
    ((1, 33, 5, 6), 70, dict(stride=2)),
    ((3, 17, 7, 5), 19, dict(stride=2, padding=2)),
    ((1, 24, 12, 9), 130, dict(stride=2, padding=((2, 0), (1, 2)))),
    ((1, 40, 1, 1), 16, dict(stride=2, padding=1)),
    ((1, 64, 29, 30), 40, dict(stride=2, padding="same")),
    ((2, 32, 50, 46), 40, dict(stride=2, padding=1)),
]


def check_forward(rng, x_shape, c_out, levels=None, **kwargs) -> None:
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((c_out, x_shape[1], 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    expected = to_nhwc(ref.conv2d(x, w, b, **kwargs))
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert_close(forced_forward(to_nhwc(x), w, b, **kwargs), expected, np.float32,
                         f"{x_shape} -> {c_out} {kwargs} forward simd={level}")


@pytest.mark.parametrize("x_shape, c_out, kwargs", STRIDE_2_LAYERS)
def test_nhwc_winograd_stride_2_forward_matches_the_oracle(rng, x_shape, c_out, kwargs):
    check_forward(rng, x_shape, c_out, **kwargs)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_other_padding_modes_go_to_the_kernels_that_read_them(rng, mode):
    """nhwc_winograd takes zero padding only; a 3x3 layer with another mode runs a
    channels-last kernel that reads the mode itself, and matches the oracle."""
    x = rng.standard_normal((1, 7, 9, 16)).astype(np.float32)
    w = rng.standard_normal((20, 16, 3, 3)).astype(np.float32)
    kwargs = dict(padding=1, padding_mode=mode, layout="NHWC")
    assert convpool.implementation("conv2d", x, w, **kwargs) != "nhwc_winograd"
    assert convpool.implementation("conv2d", x, w, padding=1, layout="NHWC") == "nhwc_winograd"
    expected = ref.conv2d(to_nchw(x), w, padding=1, padding_mode=mode)
    assert_close(to_nchw(convpool.conv2d(x, w, **kwargs)), expected, np.float32)


@st.composite
def winograd_layers(draw):
    c_in, c_out = draw(st.integers(16, 40)), draw(st.integers(16, 72))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    padding = draw(st.one_of(
        st.integers(0, 2),
        st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 3)),
                  st.tuples(st.integers(0, 2), st.integers(0, 3))),
    ))
    batch = draw(st.integers(1, 3))
    threads = draw(st.sampled_from([1, 2]))
    level = draw(st.sampled_from(available_simd_levels()))
    return (batch, c_in, h, w), c_out, padding, threads, level


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(winograd_layers())
def test_random_layers_match_the_oracle(config):
    x_shape, c_out, padding, threads, level = config
    pads = padding if isinstance(padding, tuple) else ((padding, padding), (padding, padding))
    if x_shape[2] + sum(pads[0]) < 3 or x_shape[3] + sum(pads[1]) < 3:
        with pytest.raises(ValueError):
            convpool.conv2d(np.zeros(x_shape, np.float32), np.zeros((c_out, x_shape[1], 3, 3),
                            np.float32), padding=padding)
        return
    convpool.set_num_threads(threads)
    rng = np.random.default_rng(zlib.crc32(repr(config).encode()))
    check_both_passes(rng, x_shape, c_out, levels=(level,), padding=padding)


@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(winograd_layers())
def test_random_stride_2_layers_match_the_oracle(config):
    x_shape, c_out, padding, threads, level = config
    pads = padding if isinstance(padding, tuple) else ((padding, padding), (padding, padding))
    if x_shape[2] + sum(pads[0]) < 3 or x_shape[3] + sum(pads[1]) < 3:
        return
    convpool.set_num_threads(threads)
    rng = np.random.default_rng(zlib.crc32(repr(config).encode()))
    check_forward(rng, x_shape, c_out, levels=(level,), stride=2, padding=padding)


def dense(x_shape=(1, 16, 8, 8), c_out=32):
    x = np.zeros(x_shape[:1] + x_shape[2:] + x_shape[1:2], np.float32)
    return x, np.zeros((c_out, x_shape[1], 3, 3), np.float32)


def test_dense_3x3_stride_1_layers_run_the_winograd_kernel():
    x, w = dense()
    y = convpool.conv2d(x, w, padding=1, layout="NHWC")
    assert convpool.implementation("conv2d", x, w, padding=1, layout="NHWC") == NAME
    assert convpool.implementation("conv2d_grad_input", y, w, x.shape, padding=1,
                                   layout="NHWC") == NAME
    # NCHW-shaped arrays stored channels-last run it through their NHWC view
    assert convpool.implementation("conv2d", x.transpose(0, 3, 1, 2), w, padding=1) == NAME
    assert convpool.implementation("conv2d", x, w, stride=2, padding=1, layout="NHWC") == NAME


@pytest.mark.parametrize("x_shape, c_out, kwargs", [
    ((1, 16, 8, 8), 32, dict(stride=(2, 1), padding=1)),
    ((1, 16, 8, 8), 32, dict(stride=3, padding=1)),
    ((1, 16, 8, 8), 32, dict(dilation=2, padding=2)),
    ((1, 16, 8, 8), 32, dict(padding=3)),
    ((1, 8, 8, 8), 32, dict(padding=1)),
    ((1, 16, 8, 8), 8, dict(padding=1)),
])
def test_layers_outside_its_cases_run_other_kernels(x_shape, c_out, kwargs):
    x, w = dense(x_shape, c_out)
    assert NAME not in convpool.implementations("conv2d", x, w, layout="NHWC", **kwargs)
    with pytest.raises(ValueError, match="does not support this case"):
        forced_forward(x, w, **kwargs)


def test_the_strided_input_gradient_runs_other_kernels():
    x, w = dense()
    y = convpool.conv2d(x, w, stride=2, padding=1, layout="NHWC")
    assert NAME not in convpool.implementations("conv2d_grad_input", y, w, x.shape, stride=2,
                                                padding=1, layout="NHWC")


def test_scratch_stays_within_twice_the_operands():
    """Many tiles: the transformed kernels of every output block (25/9 of the weights at
    stride 2) are built once, and where they would outgrow the operands (the project's
    scratch rule) the case goes to the next kernel. Few tiles: each block's kernels are
    transformed just before use, which needs little scratch, so a small map with as many
    channels is served."""
    w = np.zeros((512, 512, 3, 3), np.float32)
    many_tiles = np.zeros((1, 20, 20, 512), np.float32)
    assert NAME not in convpool.implementations("conv2d", many_tiles, w, stride=2, padding=1,
                                                layout="NHWC")
    few_tiles = np.zeros((1, 14, 14, 512), np.float32)
    assert convpool.implementation("conv2d", few_tiles, w, stride=2, padding=1,
                                   layout="NHWC") == NAME


def test_grouped_float64_and_5x5_layers_run_other_kernels():
    x, w = dense((1, 32, 8, 8), 32)
    grouped = np.zeros((32, 16, 3, 3), np.float32)
    assert NAME not in convpool.implementations("conv2d", x, grouped, padding=1, groups=2,
                                                layout="NHWC")
    assert NAME not in convpool.implementations("conv2d", x.astype(np.float64), w, padding=1,
                                                layout="NHWC")
    assert NAME not in convpool.implementations("conv2d", x, np.zeros((32, 32, 5, 5), np.float32),
                                                padding=2, layout="NHWC")


# --- non-finite values: the direct sum's placement (docs/winograd-numerics.md) ----------

def assert_same_non_finite(got, expected, where):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), f"{where}: NaN placement")
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected), f"{where}: +inf")
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected), f"{where}: -inf")
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], np.float32, where)


@pytest.mark.parametrize("pixel", [(0, 0), (0, 6), (3, 3), (4, 5), (7, 6), (2, 0)])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_pixel_reaches_only_the_outputs_that_read_it(rng, pixel, value):
    """A patch mixes 16 pixels into every transformed point, so the kernel alone would
    spread a NaN or inf to whole tiles; the recomputed outputs put it where the direct sum
    does (corners, edges and the middle of tiles, next to the padding)."""
    x = rng.standard_normal((1, 16, 8, 7)).astype(np.float32)
    w = rng.standard_normal((20, 16, 3, 3)).astype(np.float32)
    x[0, 3, pixel[0], pixel[1]] = value
    expected = ref.conv2d(x, w, padding=1)
    grad_y = rng.standard_normal(expected.shape).astype(np.float32)
    grad_y[0, 5, pixel[0], pixel[1]] = value
    expected_gx = ref.conv2d_grad_input(grad_y, w, x.shape, padding=1)
    for level in available_simd_levels():
        with simd_level(level):
            assert_same_non_finite(forced_forward(to_nhwc(x), w, padding=1), to_nhwc(expected),
                                   f"forward simd={level}")
            got_gx = forced_grad_input(to_nhwc(grad_y), w, to_nhwc(x).shape, padding=1)
            assert_same_non_finite(got_gx, to_nhwc(expected_gx), f"grad_input simd={level}")


@pytest.mark.parametrize("pixel", [(0, 0), (1, 4), (4, 4), (8, 7), (5, 0)])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_pixel_reaches_only_the_stride_2_outputs_that_read_it(rng, pixel, value):
    x = rng.standard_normal((1, 16, 9, 8)).astype(np.float32)
    w = rng.standard_normal((20, 16, 3, 3)).astype(np.float32)
    x[0, 3, pixel[0], pixel[1]] = value
    expected = to_nhwc(ref.conv2d(x, w, stride=2, padding=1))
    for level in available_simd_levels():
        with simd_level(level):
            assert_same_non_finite(forced_forward(to_nhwc(x), w, stride=2, padding=1), expected,
                                   f"stride 2 simd={level}")


def test_a_non_finite_weight_or_bias_meets_no_padding_zero(rng):
    """An inf tap multiplies only pixels inside the picture (taps in the padding are no
    terms), so the border outputs whose window leaves that tap in the padding stay finite."""
    x = rng.standard_normal((1, 16, 6, 6)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    w[2, 4, 0, 0] = np.inf
    w[7, 1, 1, 2] = np.nan
    b[9] = -np.inf
    expected = ref.conv2d(x, w, b, padding=1)
    grad_y = rng.standard_normal(expected.shape).astype(np.float32)
    expected_gx = ref.conv2d_grad_input(grad_y, w, x.shape, padding=1)
    assert_same_non_finite(forced_forward(to_nhwc(x), w, b, padding=1), to_nhwc(expected),
                           "forward")
    assert_same_non_finite(forced_grad_input(to_nhwc(grad_y), w, to_nhwc(x).shape, padding=1),
                           to_nhwc(expected_gx), "grad_input")


def test_finite_inputs_near_the_float32_limit_do_not_overflow_in_the_transforms():
    """x = 2e38 everywhere and a kernel [[0, 1, -1]]: the direct sum is 0 inside and -2e38
    or 2e38 on the edges, while the transforms add pixels first (inf - inf = NaN)."""
    x = np.full((1, 16, 6, 7), 2e38, np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    w[:, 0, 1, 1], w[:, 0, 1, 2] = 1.0, -1.0
    expected = ref.conv2d(x, w, padding=1)
    got = forced_forward(to_nhwc(x), w, padding=1)
    assert np.isfinite(got).all()
    assert_same_non_finite(got, to_nhwc(expected), "forward")
    expected_gx = ref.conv2d_grad_input(x, w, x.shape, padding=1)
    got_gx = forced_grad_input(to_nhwc(x), w, to_nhwc(x).shape, padding=1)
    assert_same_non_finite(got_gx, to_nhwc(expected_gx), "grad_input")


@pytest.mark.parametrize("x_shape", [(2, 24, 15, 17), (2, 16, 30, 31)])
def test_nhwc_winograd_does_not_depend_on_the_thread_count(rng, x_shape):
    """Threads share output-channel blocks (few tiles) or batches of tiles (many)."""
    n, c, h, w_ = x_shape
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((40, c, 3, 3)).astype(np.float32)
    grad_y = rng.standard_normal((n, h, w_, 40)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        convpool.set_num_threads(threads)
        results.append((forced_forward(to_nhwc(x), w, padding=1),
                        forced_grad_input(grad_y, w, (n, h, w_, c), padding=1)))
    for y, gx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(gx, results[0][1])


def test_nhwc_winograd_agrees_with_the_nchw_winograd(rng):
    """Same transforms, same accuracy: both layouts' Winograd results are within float32
    rounding of each other."""
    x = rng.standard_normal((2, 32, 12, 11)).astype(np.float32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    with forced_implementation("conv2d", "winograd"):
        nchw = convpool.conv2d(x, w, padding=1)
    assert_close(to_nchw(forced_forward(to_nhwc(x), w, padding=1)), nchw, np.float32)
