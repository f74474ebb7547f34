"""The row-tiled depthwise path (``depthwise_rows``: 3x3, 5x5 and 7x7 kernels, stride 1
and 2, vectors along output rows, a tile of output rows in registers) against the NumPy
oracle, forced at every SIMD level: odd widths, heights that leave a partial row tile,
every padding mode, depth multipliers, batch 1, one and two threads; and the cases it
must leave to other paths."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import (
    assert_close,
    available_simd_levels,
    forced_conv2d_implementation,
    simd_level,
)
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATH = "depthwise_rows"


def depthwise_operands(rng, batch, channels, height, width, kernel, multiplier=1):
    x = rng.standard_normal((batch, channels, height, width)).astype(np.float32)
    w = rng.standard_normal((channels * multiplier, 1, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(channels * multiplier).astype(np.float32)
    return x, w, b


def check_forward(x, w, b, where, **kwargs):
    expected = ref.conv2d(x, w, b, **kwargs)
    for level in available_simd_levels():
        with simd_level(level), forced_conv2d_implementation("forward", PATH):
            got = convpool.conv2d(x, w, b, **kwargs)
        assert_close(got, expected, np.float32, f"{where} forward simd={level}")


def check_grad_input(grad_y, w, x_shape, where, **kwargs):
    expected = ref.conv2d_grad_input(grad_y, w, x_shape, **kwargs)
    for level in available_simd_levels():
        with simd_level(level), forced_conv2d_implementation("grad_input", PATH):
            got = convpool.conv2d_grad_input(grad_y, w, x_shape, **kwargs)
        assert_close(got, expected, np.float32, f"{where} grad_input simd={level}")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_depthwise_rows_forward_matches_oracle(rng, kernel, stride, threads):
    convpool.set_num_threads(threads)
    # 37 rows: a partial row tile; 75 columns: whole and partial vectors at every width.
    x, w, b = depthwise_operands(rng, 2, 5, 37, 75, kernel)
    check_forward(x, w, b, f"k{kernel} s{stride}", groups=5, stride=stride,
                  padding=kernel // 2)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_depthwise_rows_grad_input_matches_oracle(rng, kernel, threads):
    convpool.set_num_threads(threads)
    x_shape = (2, 6, 29, 33)
    _, w, _ = depthwise_operands(rng, 1, 6, 1, 1, kernel)
    grad_y = rng.standard_normal(ref.conv2d(np.zeros(x_shape, np.float32), w, groups=6,
                                            padding=kernel // 2).shape).astype(np.float32)
    check_grad_input(grad_y, w, x_shape, f"k{kernel}", groups=6, padding=kernel // 2)


@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect", "symmetric", "circular"])
def test_depthwise_rows_forward_reads_every_padding_mode(rng, mode):
    x, w, b = depthwise_operands(rng, 1, 3, 19, 23, 5)
    check_forward(x, w, b, mode, groups=3, stride=2, padding=2, padding_mode=mode)


@pytest.mark.parametrize(
    "padding", [0, 1, 3, ((0, 2), (1, 0)), ((4, 1), (0, 5))],
    ids=["valid", "less", "more", "uneven", "past-kernel"])
def test_depthwise_rows_handles_uneven_and_large_padding(rng, padding):
    x, w, b = depthwise_operands(rng, 1, 4, 21, 26, 3)
    check_forward(x, w, b, f"padding {padding}", groups=4, padding=padding)
    grad_y = rng.standard_normal(ref.conv2d(x, w, groups=4, padding=padding).shape).astype(
        np.float32)
    check_grad_input(grad_y, w, x.shape, f"padding {padding}", groups=4, padding=padding)


def test_depthwise_rows_forward_serves_depth_multipliers(rng):
    x, w, b = depthwise_operands(rng, 2, 3, 15, 30, 3, multiplier=4)
    check_forward(x, w, b, "multiplier 4", groups=3, stride=2, padding=1)


def test_depthwise_rows_forward_without_bias(rng):
    x, w, _ = depthwise_operands(rng, 1, 4, 16, 16, 7)
    check_forward(x, w, None, "no bias", groups=4, padding=3)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 3), channels=st.integers(2, 6), height=st.integers(1, 40),
       width=st.integers(12, 90), kernel=st.sampled_from([3, 5, 7]), stride=st.sampled_from([1, 2]),
       pad=st.integers(0, 4), threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**31))
def test_depthwise_rows_any_supported_shape_matches_oracle(batch, channels, height, width, kernel,
                                                            stride, pad, threads, seed):
    rng = np.random.default_rng(seed)
    height = max(height, kernel - 2 * pad)
    width = max(width, 12 * stride + kernel)  # at least 13 output columns: supported
    x, w, b = depthwise_operands(rng, batch, channels, height, width, kernel)
    kwargs = dict(groups=channels, stride=stride, padding=pad)
    expected = ref.conv2d(x, w, b, **kwargs)
    convpool.set_num_threads(threads)
    with forced_conv2d_implementation("forward", PATH):
        got = convpool.conv2d(x, w, b, **kwargs)
    assert_close(got, expected, np.float32, f"forward {kwargs} {x.shape}")
    grad_y = rng.standard_normal(expected.shape).astype(np.float32)
    if stride == 1:
        with forced_conv2d_implementation("grad_input", PATH):
            got = convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
        assert_close(got, ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs), np.float32,
                     f"grad_input {kwargs} {x.shape}")


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((1, 8, 56, 56), (8, 1, 3, 3), dict(groups=8, padding=1)),
        ((1, 8, 56, 56), (8, 1, 5, 5), dict(groups=8, stride=2, padding=2)),
        ((2, 8, 28, 28), (8, 1, 7, 7), dict(groups=8, padding=3)),
    ],
    ids=["3x3-s1", "5x5-s2", "7x7-s1"])
def test_depthwise_layers_run_the_row_path(x_shape, w_shape, kwargs):
    x = np.zeros(x_shape, np.float32)
    w = np.ones(w_shape, np.float32)
    assert convpool.implementation("conv2d", x, w, **kwargs) == PATH


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, why",
    [
        ((1, 8, 7, 7), (8, 1, 3, 3), dict(groups=8, padding=1), "rows under 12 outputs"),
        ((1, 8, 30, 30), (8, 1, 3, 3), dict(groups=8, padding=2, dilation=2), "dilation"),
        ((1, 8, 30, 30), (8, 1, 3, 5), dict(groups=8, padding=1), "not square"),
        ((1, 8, 30, 30), (8, 1, 3, 3), dict(groups=8, stride=3), "stride 3"),
        ((1, 8, 30, 30), (8, 1, 3, 3), dict(groups=8, stride=(1, 2)), "unequal strides"),
        ((1, 8, 30, 30), (8, 2, 3, 3), dict(groups=4, padding=1), "two channels per group"),
        ((1, 8, 30, 30), (8, 1, 9, 9), dict(groups=8, padding=4), "9x9"),
    ],
    ids=lambda v: v if isinstance(v, str) else None)
def test_depthwise_rows_leaves_unsupported_cases_to_other_paths(rng, x_shape, w_shape, kwargs,
                                                                 why):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    assert PATH not in convpool.implementations("conv2d", x, w, **kwargs), why
    assert_close(convpool.conv2d(x, w, **kwargs), ref.conv2d(x, w, **kwargs), np.float32, why)


def test_depthwise_rows_grad_input_only_at_stride_1_with_zero_padding(rng):
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    x_shape = (1, 4, 30, 30)
    gy1 = np.zeros((1, 4, 30, 30), np.float32)
    gy2 = np.zeros((1, 4, 15, 15), np.float32)
    assert PATH in convpool.implementations("conv2d_grad_input", gy1, w, x_shape, groups=4,
                                            padding=1)
    assert PATH not in convpool.implementations("conv2d_grad_input", gy2, w, x_shape, groups=4,
                                                padding=1, stride=2)
    assert PATH not in convpool.implementations("conv2d_grad_input", gy1, w, x_shape, groups=4,
                                                padding=1, padding_mode="reflect")
