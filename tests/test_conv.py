"""The compiled convolution (convpool.conv2d and its gradients) against the NumPy oracle,
for every class of case, under every implementation and SIMD level the build offers.

``conv2d_variants(pass_, x, w, grad_y, **kwargs)`` (conftest) forces each implementation of
a pass that supports the case, at each SIMD level up to the detected one ("direct" once),
and checks that the forced one ran: a fast path added to the registry is covered here
without a change to this file. The tests that mean to cover a fast path also assert that
it supports their cases.
"""

from __future__ import annotations

import zlib

import convpool
import numpy as np
import pytest
from conftest import assert_close, conv2d_variants
from convpool import reference as ref
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


def random_array(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        low = 0 if dtype.kind == "u" else -100
        return rng.integers(low, 100, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check_against_oracle(rng, x, w, b=None, where: str = "", grad_y=None, **kwargs) -> None:
    """Forward and the three gradients, compiled vs oracle, under every implementation
    and SIMD level. ``grad_y`` defaults to random values in the forward result's dtype."""
    expected = ref.conv2d(x, w, b, **kwargs)
    dtype = expected.dtype
    assert dtype == np.result_type(x, w, np.float32)
    if grad_y is None:
        grad_y = random_array(rng, expected.shape, dtype)
    for label in conv2d_variants("forward", x, w, grad_y, **kwargs):
        y = convpool.conv2d(x, w, b, **kwargs)
        assert y.flags.c_contiguous
        assert_close(y, expected, dtype, f"{where} forward {label}")
    expected_gx = ref.conv2d_grad_input(grad_y, w, np.shape(x), **kwargs)
    for label in conv2d_variants("grad_input", x, w, grad_y, **kwargs):
        got = convpool.conv2d_grad_input(grad_y, w, np.shape(x), **kwargs)
        assert_close(got, expected_gx, expected_gx.dtype, f"{where} grad_input {label}")
    expected_gw = ref.conv2d_grad_weight(x, grad_y, np.shape(w), **kwargs)
    for label in conv2d_variants("grad_weight", x, w, grad_y, **kwargs):
        got = convpool.conv2d_grad_weight(x, grad_y, np.shape(w), **kwargs)
        assert_close(got, expected_gw, expected_gw.dtype, f"{where} grad_weight {label}")
    expected_gb = ref.conv2d_grad_bias(grad_y)
    assert_close(convpool.conv2d_grad_bias(grad_y), expected_gb, expected_gb.dtype,
                 f"{where} grad_bias")


def check_case(rng, x_shape, w_shape, dtype, bias=True, **kwargs) -> None:
    x = random_array(rng, x_shape, dtype)
    w = random_array(rng, w_shape, dtype)
    b = random_array(rng, (w_shape[0],) if len(w_shape) == 4 else (), dtype) if bias else None
    check_against_oracle(rng, x, w, b, **kwargs)


# --- dtypes and ranks -----------------------------------------------------------------

RANK_SHAPES = {
    4: ((2, 3, 6, 7), (4, 3, 3, 2)),
    3: ((3, 6, 7), (4, 3, 3, 2)),
    2: ((6, 7), (3, 2)),
}


@pytest.mark.parametrize("rank", [4, 3, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_ranks(rng, rank, dtype):
    x_shape, w_shape = RANK_SHAPES[rank]
    check_case(rng, x_shape, w_shape, dtype, padding=1, stride=(1, 2))


@pytest.mark.parametrize(
    "x_dtype, w_dtype",
    [
        (np.uint8, np.float32),  # a picture: computes in float32
        (np.uint8, np.float64),
        (np.uint8, np.uint8),  # float32
        (np.int16, np.float32),  # float32
        (np.int32, np.float32),  # float64
        (np.int64, np.int64),  # float64
        (np.float32, np.float64),  # mixed floats: float64
    ],
)
def test_integer_and_mixed_inputs_compute_in_result_type(rng, x_dtype, w_dtype):
    x = random_array(rng, (2, 2, 5, 6), x_dtype)
    w = random_array(rng, (3, 2, 3, 3), w_dtype)
    check_against_oracle(rng, x, w, random_array(rng, (3,), w_dtype), padding=1)
    # a uint8 picture filtered by a 2-D kernel, as in image processing
    check_against_oracle(rng, x[0, 0], w[0, 0], padding="same")


# --- geometry: padding forms and modes, stride, dilation, groups, odd sizes -----------

# Most cases have at least 4 channels per group, so that the fast float32 paths (which
# need a few channels to fill a vector) take them too; some keep fewer for the fallback.
GEOMETRY_CASES = {
    # name: (x shape, weight shape, keyword arguments)
    "pad-int": ((2, 4, 6, 7), (5, 4, 3, 3), dict(padding=2)),
    "pad-pair": ((2, 5, 6, 7), (4, 5, 3, 3), dict(padding=(1, 2))),
    "pad-sides": ((2, 4, 6, 7), (6, 4, 3, 2), dict(padding=((0, 2), (3, 1)))),
    "pad-large": ((1, 4, 3, 3), (4, 4, 2, 2), dict(padding=4)),
    "pad-small-channels": ((2, 3, 6, 7), (3, 3, 3, 3), dict(padding=((2, 0), (1, 3)))),
    "valid": ((2, 4, 6, 7), (5, 4, 3, 3), dict(padding="valid")),
    "same-odd": ((2, 5, 6, 7), (4, 5, 3, 3), dict(padding="same")),
    "same-odd-stride2": ((2, 4, 7, 8), (4, 4, 5, 5), dict(padding="same", stride=2)),
    "same-even": ((2, 4, 6, 7), (5, 4, 4, 2), dict(padding="same")),
    "same-even-stride3": ((1, 4, 8, 10), (4, 4, 2, 4), dict(padding="same", stride=3)),
    "same-dilation": ((1, 4, 7, 8), (4, 4, 3, 2), dict(padding="same", dilation=(2, 3))),
    "same-kernel-larger": ((1, 4, 3, 4), (4, 4, 5, 6), dict(padding="same")),
    "stride-1-2": ((2, 4, 7, 9), (5, 4, 3, 3), dict(stride=(1, 2), padding=1)),
    "stride-2-2": ((2, 5, 9, 10), (4, 5, 3, 3), dict(stride=2, padding=(0, 1))),
    "stride-3-1": ((2, 4, 10, 6), (5, 4, 2, 3), dict(stride=(3, 1))),
    "stride-1-3": ((2, 4, 6, 10), (5, 4, 3, 2), dict(stride=(1, 3), padding=1)),
    "stride-larger-than-kernel": ((1, 4, 9, 9), (4, 4, 2, 2), dict(stride=4, padding=1)),
    "dilation-2-1": ((2, 4, 8, 7), (5, 4, 3, 3), dict(dilation=(2, 1), padding=(2, 1))),
    "dilation-1-3": ((1, 4, 6, 11), (4, 4, 2, 3), dict(dilation=(1, 3))),
    "stride-dilation": ((1, 4, 11, 12), (5, 4, 3, 3), dict(stride=(2, 2), dilation=(2, 3),
                                                           padding=((1, 0), (2, 3)))),
    "groups-2": ((2, 8, 5, 6), (10, 4, 3, 3), dict(groups=2, padding=1)),
    "groups-3": ((1, 12, 5, 7), (12, 4, 2, 3), dict(groups=3, padding=((1, 0), (0, 1)))),
    "groups-small": ((1, 6, 5, 5), (3, 2, 2, 3), dict(groups=3, padding=1)),
    "groups-stride2": ((2, 8, 7, 9), (8, 4, 3, 3), dict(groups=2, stride=2, padding=1)),
    "depthwise": ((2, 4, 6, 7), (4, 1, 3, 3), dict(groups=4, padding=1)),
    "depthwise-multiplier-4": ((1, 3, 6, 5), (12, 1, 3, 3), dict(groups=3, stride=2, padding=1)),
    "kernel-equals-input": ((2, 4, 5, 4), (4, 4, 5, 4), dict()),
    "kernel-equals-input-same": ((1, 4, 5, 4), (5, 4, 5, 4), dict(padding="same")),
    "1x1": ((2, 5, 4, 6), (4, 5, 1, 1), dict()),
    "1x1-stride2": ((2, 5, 7, 6), (6, 5, 1, 1), dict(stride=2)),
    "1x1-padded": ((1, 4, 3, 5), (4, 4, 1, 1), dict(padding=1)),
    "odd-11x28": ((2, 4, 11, 28), (5, 4, 3, 3), dict(padding=1)),
    "odd-11x28-5x5-same-stride2": ((1, 4, 11, 28), (4, 4, 5, 5), dict(padding="same", stride=2)),
    "odd-kernel-3x5": ((1, 4, 9, 13), (4, 4, 3, 5), dict(padding=(1, 2))),
    "batch-1-one-channel": ((1, 1, 6, 5), (1, 1, 3, 3), dict(padding=1)),
    "one-channel-in": ((3, 1, 6, 5), (4, 1, 3, 3), dict()),
    "one-channel-out": ((2, 4, 6, 5), (1, 4, 3, 3), dict()),
    "one-pixel": ((2, 4, 1, 1), (4, 4, 1, 1), dict()),
    "one-pixel-padded": ((1, 4, 1, 1), (4, 4, 3, 3), dict(padding=1)),
    "single-row": ((1, 4, 1, 9), (4, 4, 1, 3), dict(padding=(0, 1))),
    "single-column": ((1, 4, 9, 1), (4, 4, 3, 1), dict(padding=(1, 0), stride=2)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(GEOMETRY_CASES))
def test_geometry(rng, case, dtype):
    x_shape, w_shape, kwargs = GEOMETRY_CASES[case]
    check_case(rng, x_shape, w_shape, dtype, where=case, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_padding_mostly_after_the_input(rng, dtype):
    # a 1x1 kernel with two zero pixels after a row of 5: output 7 (the last two are 0)
    check_case(rng, (1, 4, 3, 5), (4, 4, 1, 1), dtype, padding=((0, 2), (0, 2)))


MODE_PADDINGS = {
    "asymmetric": (((0, 2), (3, 1)), dict(stride=(1, 2))),
    "same-stride2": ("same", dict(stride=2)),
    "dilated": (((2, 1), (1, 2)), dict(dilation=2)),
    # the largest padding each mode allows on a 4 x 5 input
    "largest": (None, dict()),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_name", list(MODE_PADDINGS))
@pytest.mark.parametrize("mode", MODES)
def test_padding_modes(rng, mode, padding_name, dtype):
    padding, kwargs = MODE_PADDINGS[padding_name]
    if padding is None:
        extra = 0 if mode == "reflect" else 1  # reflect: pad < size; the others: pad <= size
        padding = ((3 + extra, 3 + extra), (4 + extra, 4 + extra))
    check_case(rng, (2, 4, 4, 5), (5, 4, 3, 2), dtype, padding=padding, padding_mode=mode,
               where=f"{mode} {padding_name}", **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_padding_modes_with_groups_and_ranks(rng, mode):
    check_case(rng, (8, 5, 6), (8, 4, 3, 3), np.float32, groups=2, padding=(2, 1),
               padding_mode=mode)
    check_case(rng, (5, 6), (3, 4), np.float64, padding=((2, 0), (1, 3)), padding_mode=mode)


# --- every microkernel tail of the fast float32 paths ---------------------------------

# Channel counts that are and are not multiples of the 8- and 16-wide vectors, widths
# that are not multiples of the 14- or 16-pixel register tiles.
TAIL_CHANNELS = [(1, 16), (3, 17), (16, 16), (17, 3), (16, 48), (32, 32), (48, 17), (8, 1)]
TAIL_WIDTHS = [9, 13, 17, 23, 30, 33, 15, 20]


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("channels", TAIL_CHANNELS, ids=lambda c: f"{c[0]}to{c[1]}")
def test_float32_tails(rng, channels, kernel, stride):
    c_in, c_out = channels
    index = TAIL_CHANNELS.index(channels)
    width = TAIL_WIDTHS[(index + kernel + stride) % len(TAIL_WIDTHS)]
    padding = kernel // 2 if (index + stride) % 2 else 0
    check_case(rng, (2, c_in, 5, width), (c_out, c_in, kernel, kernel), np.float32,
               stride=stride, padding=padding)


@pytest.mark.parametrize("channels", [3, 16, 17, 32])
@pytest.mark.parametrize("stride", [1, 2])
def test_float32_depthwise_tails(rng, channels, stride):
    x, w = np.zeros((2, channels, 6, 19), np.float32), np.zeros((channels, 1, 3, 3), np.float32)
    kwargs = dict(groups=channels, stride=stride, padding=1)
    if stride == 1:  # the plane filter's case (at column stride 2 only "direct" runs)
        assert "plane" in convpool.implementations("conv2d", x, w, **kwargs)
    check_case(rng, (2, channels, 6, 19), (channels, 1, 3, 3), np.float32, groups=channels,
               stride=stride, padding=1)


@pytest.mark.parametrize("groups", [2, 3])
@pytest.mark.parametrize("per_group", [(4, 4), (8, 17), (16, 16), (5, 32)], ids=str)
def test_float32_grouped_tails(rng, groups, per_group):
    cin_g, cout_g = per_group
    check_case(rng, (2, groups * cin_g, 5, 18), (groups * cout_g, cin_g, 3, 3), np.float32,
               groups=groups, padding=1, stride=(1, 2) if cin_g % 2 else 1)


# 3x3, stride 1 or 2, many channels (the Winograd paths' case): every padding up to 2 per
# side, planes smaller than, equal to and not a multiple of its output tiles, and rows of
# more tiles than a vector holds (70 columns: 35 or 18 tiles, transformed 16, 8 or 4 at a
# time).
MANY_CHANNEL_3X3 = [
    (x_shape, c_out, padding, stride)
    for x_shape, c_out in [((1, 16, 1, 2), 16), ((2, 16, 3, 4), 24), ((1, 17, 7, 9), 16),
                           ((2, 16, 12, 13), 33), ((2, 16, 5, 70), 20)]
    for padding in [0, 1, 2, ((2, 0), (0, 1)), ((0, 2), (2, 1))]
    for stride in (1, 2)
    if padding != 0 or min(x_shape[2:]) >= 3  # the kernel must fit
] + [(x_shape, 20, "same", 1) for x_shape in [(1, 16, 1, 2), (2, 16, 12, 13), (2, 16, 5, 70)]]


@pytest.mark.parametrize("x_shape, c_out, padding, stride", MANY_CHANNEL_3X3, ids=str)
def test_float32_3x3_many_channels(rng, x_shape, c_out, padding, stride):
    x, w = np.zeros(x_shape, np.float32), np.zeros((c_out, x_shape[1], 3, 3), np.float32)
    y = convpool.conv2d(x, w, padding=padding, stride=stride)
    passes = {"conv2d": (x, w), "conv2d_grad_input": (y, w, x.shape),
              "conv2d_grad_weight": (x, y, w.shape)}
    for op in passes if stride == 1 else ["conv2d"]:  # the cases Winograd is meant to cover
        assert "winograd" in convpool.implementations(op, *passes[op], padding=padding,
                                                      stride=stride), op
    check_case(rng, x_shape, (c_out, x_shape[1], 3, 3), np.float32, padding=padding,
               stride=stride)


# One input channel per group (picture filters, LeNet's first layer, depthwise).
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 1, 9, 21), (6, 1, 5, 3), dict(padding=((2, 1), (0, 2)))),
        ((1, 1, 9, 21), (3, 1, 3, 3), dict(dilation=(2, 1), stride=(2, 1), padding=1)),
        ((2, 5, 8, 17), (5, 1, 3, 5), dict(groups=5, dilation=(1, 2), padding="same")),
        ((1, 4, 7, 30), (8, 1, 2, 4), dict(groups=4, padding=((0, 1), (3, 0)))),
        ((1, 3, 6, 19), (3, 1, 3, 3), dict(groups=3, padding=2, padding_mode="reflect")),
        ((2, 1, 1, 40), (4, 1, 1, 7), dict(padding=(0, 3))),
    ],
    ids=["5x3-sides", "dilated-rows", "depthwise-dilated-same", "multiplier-2x4",
         "depthwise-reflect", "single-row"],
)
def test_float32_one_input_channel_per_group(rng, x_shape, w_shape, kwargs):
    check_case(rng, x_shape, w_shape, np.float32, **kwargs)


# Few input channels per group (the first layer of most networks): 1-4 channels, kernels
# 3-11, strides 1-4, odd sizes, asymmetric padding, dilation, groups; output widths that
# are and are not whole vectors of pixels, output channels that are and are not whole
# vectors of channels.
FEW_INPUT_CHANNEL_CASES = {
    "alexnet-like-11x11-s4": ((1, 3, 35, 39), (16, 3, 11, 11), dict(stride=4, padding=2)),
    "resnet-stem-7x7-s2": ((2, 3, 21, 19), (20, 3, 7, 7), dict(stride=2, padding=3)),
    "mobilenet-stem-3x3-s2": ((3, 3, 17, 33), (32, 3, 3, 3), dict(stride=2, padding=1)),
    "vgg-like-3x3-s1": ((1, 3, 6, 37), (17, 3, 3, 3), dict(padding=1)),
    "one-channel-5x5-s3-asymmetric": ((2, 1, 16, 23), (8, 1, 5, 5),
                                      dict(stride=3, padding=((2, 0), (1, 3)))),
    "two-channels-dilated-s2x4": ((1, 2, 13, 29), (9, 2, 3, 3),
                                  dict(stride=(2, 4), dilation=2, padding=2)),
    "four-channels-4x5-s1x3": ((2, 4, 12, 14), (33, 4, 4, 5),
                               dict(stride=(1, 3), padding=((0, 2), (3, 1)))),
    "three-channels-9x9-s4-valid": ((1, 3, 20, 47), (12, 3, 9, 9), dict(stride=4)),
    "rows-stride-only-dilated": ((2, 3, 15, 9), (8, 3, 3, 3), dict(stride=(3, 1), dilation=(2, 1))),
    "grouped-2-per-group": ((1, 6, 11, 12), (24, 2, 3, 3), dict(groups=3, stride=2, padding=1)),
    "kernel-wider-than-input": ((1, 3, 5, 6), (8, 3, 7, 7), dict(padding=3, stride=2)),
    "dilation-multiple-of-stride": ((1, 2, 11, 13), (8, 2, 3, 3), dict(stride=2, dilation=2)),
}


def supporting_implementations(x_shape, w_shape, kwargs) -> dict[str, list[str]]:
    """The implementations of each convolution operation that support a float32 case."""
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    y = convpool.conv2d(x, w, **kwargs)
    return {"conv2d": convpool.implementations("conv2d", x, w, **kwargs),
            "conv2d_grad_input": convpool.implementations("conv2d_grad_input", y, w, x_shape,
                                                          **kwargs),
            "conv2d_grad_weight": convpool.implementations("conv2d_grad_weight", x, y, w_shape,
                                                           **kwargs)}


@pytest.mark.parametrize("case", list(FEW_INPUT_CHANNEL_CASES))
def test_float32_few_input_channels(rng, case):
    x_shape, w_shape, kwargs = FEW_INPUT_CHANNEL_CASES[case]
    supported = supporting_implementations(x_shape, w_shape, kwargs)
    for op in ("conv2d", "conv2d_grad_input"):  # the passes few_channels implements
        assert "few_channels" in supported[op], (case, op)
    check_case(rng, x_shape, w_shape, np.float32, where=case, **kwargs)


# Depthwise layers (MobileNet's): 3x3, 5x5 and 7x7, stride 1 and 2 (and 3), rows wider
# than several vectors, odd sizes, asymmetric padding, dilation, channel multipliers.
DEPTHWISE_CASES = {
    "3x3-s2-wide": ((2, 5, 9, 141), (5, 1, 3, 3), dict(groups=5, stride=2, padding=1)),
    "3x3-s2-odd": ((1, 3, 13, 17), (3, 1, 3, 3), dict(groups=3, stride=2, padding=(0, 1))),
    "5x5-s2": ((2, 4, 15, 23), (4, 1, 5, 5), dict(groups=4, stride=2, padding=2)),
    "5x5-s1": ((1, 4, 11, 70), (4, 1, 5, 5), dict(groups=4, padding=2)),
    "7x7-s2-asymmetric": ((1, 3, 16, 35), (3, 1, 7, 7),
                          dict(groups=3, stride=2, padding=((3, 1), (2, 4)))),
    "7x7-s1": ((2, 2, 9, 12), (2, 1, 7, 7), dict(groups=2, padding=3)),
    "3x3-s3-dilated": ((1, 4, 14, 40), (4, 1, 3, 3),
                       dict(groups=4, stride=3, dilation=2, padding=2)),
    "3x3-s1x2-multiplier-3": ((2, 2, 7, 19), (6, 1, 3, 3),
                              dict(groups=2, stride=(1, 2), padding=1)),
    "5x5-s2-tiny-plane": ((2, 6, 3, 4), (6, 1, 5, 5), dict(groups=6, stride=2, padding=2)),
    "32-channels-5x5-s2": ((2, 32, 9, 13), (32, 1, 5, 5), dict(groups=32, stride=2, padding=2)),
    "48-channels-7x7": ((1, 48, 7, 7), (48, 1, 7, 7), dict(groups=48, padding=3)),
    "16-channels-3x3-s2": ((1, 16, 14, 14), (16, 1, 3, 3), dict(groups=16, stride=2, padding=1)),
    "16-channels-5x5-s2-wide": ((1, 16, 9, 30), (16, 1, 5, 5),
                                dict(groups=16, stride=2, padding=2)),
    "24-channels-3x3-dilated-s2x1": ((2, 24, 10, 11), (24, 1, 3, 3),
                                     dict(groups=24, stride=(2, 1), dilation=(1, 2), padding=2)),
}


# The depthwise fast paths and the passes each implements.
DEPTHWISE_PATHS = {"depthwise_rows": ("conv2d", "conv2d_grad_input"),
                   "depthwise_lanes": ("conv2d", "conv2d_grad_input", "conv2d_grad_weight"),
                   "depthwise_strided": ("conv2d", "conv2d_grad_weight"),
                   "plane": ("conv2d", "conv2d_grad_input", "conv2d_grad_weight")}


@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
def test_float32_depthwise_layers(rng, case):
    x_shape, w_shape, kwargs = DEPTHWISE_CASES[case]
    supported = supporting_implementations(x_shape, w_shape, kwargs)
    assert set(DEPTHWISE_PATHS) & set(supported["conv2d"]), (case, supported["conv2d"])
    check_case(rng, x_shape, w_shape, np.float32, where=case, **kwargs)


def test_depthwise_cases_reach_every_pass_of_every_depthwise_path():
    supported = [supporting_implementations(*case) for case in DEPTHWISE_CASES.values()]
    for name, ops in DEPTHWISE_PATHS.items():
        for op in ops:
            assert any(name in case[op] for case in supported), (name, op)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((2, 32, 14, 30), (48, 32, 3, 3), dict(padding=1)),
        ((1, 64, 10, 18), (64, 64, 3, 3), dict(padding=1, stride=2)),
        ((2, 64, 9, 17), (32, 64, 1, 1), dict()),
        ((2, 3, 16, 33), (16, 3, 3, 3), dict(padding=1)),  # few input channels (vgg-c1-like)
        ((3, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),  # lenet-c1
        ((3, 6, 14, 14), (16, 6, 5, 5), dict()),  # lenet-c2
    ],
    ids=["32to48-k3", "64to64-k3s2", "64to32-k1", "3to16-k3", "lenet-c1", "lenet-c2"],
)
def test_float32_network_layers(rng, x_shape, w_shape, kwargs):
    check_case(rng, x_shape, w_shape, np.float32, **kwargs)


# --- empty and degenerate batches -----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_batch_zero_gives_empty_results(rng, dtype, mode):
    x = np.zeros((0, 3, 5, 6), dtype=dtype)
    w = random_array(rng, (4, 3, 3, 3), dtype)
    grad_y = np.zeros((0, 4, 5, 6), dtype=dtype)
    kwargs = dict(padding=1, padding_mode=mode)
    for label in conv2d_variants("forward", x, w, grad_y, **kwargs):
        y = convpool.conv2d(x, w, random_array(rng, (4,), dtype), padding=1, padding_mode=mode)
        assert y.shape == (0, 4, 5, 6) and y.dtype == dtype, label
    for label in conv2d_variants("grad_input", x, w, grad_y, **kwargs):
        gx = convpool.conv2d_grad_input(grad_y, w, x.shape, padding=1, padding_mode=mode)
        assert gx.shape == x.shape and gx.dtype == dtype, label
    for label in conv2d_variants("grad_weight", x, w, grad_y, **kwargs):
        gw = convpool.conv2d_grad_weight(x, grad_y, w.shape, padding=1, padding_mode=mode)
        assert_close(gw, np.zeros(w.shape), dtype, label)  # an empty sum
    assert_close(convpool.conv2d_grad_bias(grad_y), np.zeros(4), dtype)


# --- memory layouts -------------------------------------------------------------------

def test_non_contiguous_inputs(rng):
    x = rng.standard_normal((2, 8, 12, 14))[:, ::2, 1::2, ::-1]  # strided, offset, reversed
    w = rng.standard_normal((4, 3, 3, 3)).transpose(1, 0, 3, 2)  # a (3, 4, 3, 3) view
    b = rng.standard_normal(6)[::2]
    grad_y = rng.standard_normal((2, 3, 8, 28))[:, :, ::-2, ::2]  # (2, 3, 4, 14)
    assert not (x.flags.c_contiguous or w.flags.c_contiguous or grad_y.flags.c_contiguous)
    check_against_oracle(rng, x, w, b, grad_y=grad_y, padding=(0, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fortran_order_inputs(rng, dtype):
    x = np.asfortranarray(random_array(rng, (2, 3, 7, 6), dtype))
    w = np.asfortranarray(random_array(rng, (4, 3, 3, 2), dtype))
    grad_y = np.asfortranarray(random_array(rng, (2, 4, 7, 6), dtype))
    check_against_oracle(rng, x, w, grad_y=grad_y, padding="same", padding_mode="reflect")


def test_negative_stride_picture(rng):
    picture = rng.integers(0, 256, size=(9, 11)).astype(np.uint8)[::-1, ::-1]
    sobel = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float32)
    check_against_oracle(rng, picture, sobel.T[::-1], padding="same", padding_mode="replicate")


def test_nested_lists_are_accepted(rng):
    x = rng.integers(-3, 4, size=(1, 2, 4, 4)).tolist()
    w = rng.integers(-3, 4, size=(2, 2, 2, 2)).tolist()
    y = convpool.conv2d(x, w, [1, 2], padding=1)
    assert_close(y, ref.conv2d(x, w, [1, 2], padding=1), np.float64)


# --- out= -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_is_written_and_returned(rng, dtype):
    x = random_array(rng, (2, 3, 6, 5), dtype)
    w = random_array(rng, (4, 3, 3, 3), dtype)
    expected = ref.conv2d(x, w, padding=1)
    out = np.full((2, 4, 6, 5), np.nan, dtype=dtype)
    assert convpool.conv2d(x, w, padding=1, out=out) is out
    assert_close(out, expected, dtype)
    # a non-contiguous out is filled through its view
    storage = np.full((2, 4, 6, 10), np.nan, dtype=dtype)
    view = storage[..., ::2]
    assert convpool.conv2d(x, w, padding=1, out=view) is view
    assert_close(view, expected, dtype)
    assert np.all(np.isnan(storage[..., 1::2]))


def test_out_rejects_wrong_shape_dtype_and_aliasing(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((2, 2, 3, 3))
    with pytest.raises(ValueError, match="out: expected shape"):
        convpool.conv2d(x, w, padding=1, out=np.empty((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="out: expected shape .* dtype"):
        convpool.conv2d(x, w, padding=1, out=np.empty((1, 2, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="out: must not share memory"):
        convpool.conv2d(x, w, padding=1, out=x)
    with pytest.raises(ValueError, match="out: must not share memory"):
        convpool.conv2d(x, w, padding=1, out=x[:, ::-1])
    read_only = np.empty((1, 2, 5, 5))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out: array is read-only"):
        convpool.conv2d(x, w, padding=1, out=read_only)
    with pytest.raises(TypeError, match="out: expected a numpy.ndarray"):
        convpool.conv2d(x, w, padding=1, out=[[0.0]])


# --- random configurations ------------------------------------------------------------

@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 6))
    c_out = groups * draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(
        st.integers(0, 2),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                  st.tuples(st.integers(0, 3), st.integers(0, 3))),
        st.sampled_from(["valid", "same"]),
    ))
    mode = draw(st.sampled_from(MODES))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rank = draw(st.sampled_from([4, 3, 2] if c_in == c_out == 1 else [4, 3]))
    n = draw(st.integers(1, 2)) if rank == 4 else None
    x_shape = {4: (n, c_in, h, w), 3: (c_in, h, w), 2: (h, w)}[rank]
    w_shape = (kh, kw) if rank == 2 else (c_out, c_in // groups, kh, kw)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=mode)
    return x_shape, w_shape, dtype, kwargs


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(conv_configs())
def test_random_configurations(config):
    x_shape, w_shape, dtype, kwargs = config
    rng = np.random.default_rng(zlib.crc32(repr(config).encode()))
    x, w = random_array(rng, x_shape, dtype), random_array(rng, w_shape, dtype)
    try:
        ref.conv2d(x, w, **kwargs)
    except ValueError:
        # an impossible combination (output size < 1, padding too large for the mode):
        # the compiled path must refuse it too
        with pytest.raises(ValueError):
            convpool.conv2d(x, w, **kwargs)
        assume(False)
    b = random_array(rng, (w_shape[0],) if len(w_shape) == 4 else (), dtype)
    check_against_oracle(rng, x, w, b, where=str(config), **kwargs)


@st.composite
def winograd_configs(draw):
    """3x3 layers with 16+ channels each way, stride 1 or 2: the Winograd paths' cases,
    in sizes that cut rows of tiles and blocks of tiles at random places."""
    n = draw(st.integers(1, 3))
    c_in, c_out = draw(st.integers(16, 20)), draw(st.integers(16, 40))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 40))
    stride = draw(st.sampled_from([1, 2]))
    padding = draw(st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))
    assume(h + sum(padding[0]) >= 3 and w + sum(padding[1]) >= 3)
    return (n, c_in, h, w), (c_out, c_in, 3, 3), dict(stride=stride, padding=padding)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(winograd_configs())
def test_random_winograd_configurations(config):
    x_shape, w_shape, kwargs = config
    rng = np.random.default_rng(zlib.crc32(repr(config).encode()))
    check_case(rng, x_shape, w_shape, np.float32, **kwargs)


# --- determinism and threads ----------------------------------------------------------

PASSES = {
    "forward": lambda x, w, grad_y, kw: convpool.conv2d(x, w, **kw),
    "grad_input": lambda x, w, grad_y, kw: convpool.conv2d_grad_input(grad_y, w, x.shape, **kw),
    "grad_weight": lambda x, w, grad_y, kw: convpool.conv2d_grad_weight(x, grad_y, w.shape, **kw),
}


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((3, 3, 21, 23), (24, 3, 7, 7), dict(stride=2, padding=3)),  # few input channels
        ((3, 24, 9, 10), (24, 1, 5, 5), dict(stride=2, padding=2, groups=24)),  # depthwise
        ((3, 40, 7, 7), (40, 1, 3, 3), dict(padding=1, groups=40)),  # depthwise, small plane
    ],
    ids=["few-channels", "depthwise-stride2", "depthwise-small-plane"],
)
def test_first_layer_and_depthwise_results_do_not_depend_on_threads(rng, x_shape, w_shape, kwargs):
    # Batch 3 and channel counts that split unevenly over 2 threads.
    x = random_array(rng, x_shape, np.float32)
    w = random_array(rng, w_shape, np.float32)
    grad_y = random_array(rng, ref.conv2d(x, w, **kwargs).shape, np.float32)
    for pass_, run in PASSES.items():
        for label in conv2d_variants(pass_, x, w, grad_y, **kwargs):
            convpool.set_num_threads(2)
            first = run(x, w, grad_y, kwargs)
            again = run(x, w, grad_y, kwargs)
            convpool.set_num_threads(1)
            single = run(x, w, grad_y, kwargs)
            assert np.array_equal(first, again), f"{label}: two runs differ"
            assert_close(single, first, np.float32, f"{label}: 1 vs 2 threads")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_repeat_exactly_and_do_not_depend_on_threads(rng, dtype):
    # Batch 5 and 24 output channels: neither splits evenly over 2 threads.
    x = random_array(rng, (5, 16, 12, 20), dtype)
    w = random_array(rng, (24, 16, 3, 3), dtype)
    grad_y = random_array(rng, (5, 24, 12, 20), dtype)
    kwargs = dict(padding=1, padding_mode="reflect")
    for pass_, run in PASSES.items():
        for label in conv2d_variants(pass_, x, w, grad_y, **kwargs):
            convpool.set_num_threads(2)
            first = run(x, w, grad_y, kwargs)
            again = run(x, w, grad_y, kwargs)
            convpool.set_num_threads(1)
            single = run(x, w, grad_y, kwargs)
            assert np.array_equal(first, again), f"{label}: two runs differ"
            assert_close(single, first, dtype, f"{label}: 1 vs 2 threads")
    convpool.set_num_threads(2)
    first = convpool.conv2d_grad_bias(grad_y)
    assert np.array_equal(first, convpool.conv2d_grad_bias(grad_y)), "grad_bias: two runs differ"
    convpool.set_num_threads(1)
    assert_close(convpool.conv2d_grad_bias(grad_y), first, dtype, "grad_bias: 1 vs 2 threads")
