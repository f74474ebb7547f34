"""The channel-blocked batch-reduce convolution (``brgemm``) against the NumPy oracle: any
kernel size, stride, dilation and padding with >= 16 channels each way, forward, input
gradient (every stride through its stride phases) and weight gradient, forced at every
SIMD level, batch 1 split across threads, NaN and inf where the direct sum puts them, and
the registry choosing it where it was measured to win."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _operands(rng, batch, c_in, c_out, size, kernel, groups=1):
    x = rng.standard_normal((batch, c_in, *size)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    return x, w, b


def _check_forward(x, w, b, levels=None, **kwargs) -> None:
    expected = ref.conv2d(x, w, b, **kwargs)
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert "brgemm" in convpool.implementations("conv2d", x, w, b, **kwargs)
            with forced_implementation("conv2d", "brgemm"):
                got = convpool.conv2d(x, w, b, **kwargs)
        assert_close(got, expected, np.float32, f"forward simd={level} {kwargs}")


def _check_grad_input(x, w, grad_y, levels=None, **kwargs) -> None:
    expected = ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert "brgemm" in convpool.implementations("conv2d_grad_input", grad_y, w, x.shape,
                                                        **kwargs)
            with forced_implementation("conv2d_grad_input", "brgemm"):
                got = convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
        assert_close(got, expected, np.float32, f"grad_input simd={level} {kwargs}")


def _check_grad_weight(x, w, grad_y, levels=None, **kwargs) -> None:
    expected = ref.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert "brgemm" in convpool.implementations("conv2d_grad_weight", x, grad_y, w.shape,
                                                        **kwargs)
            with forced_implementation("conv2d_grad_weight", "brgemm"):
                got = convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)
        assert_close(got, expected, np.float32, f"grad_weight simd={level} {kwargs}")


# (input shape, weight shape, keyword arguments): the layer classes the kernel was built
# for, and its corners (channel tails of the 6-channel blocks, vector tails of the pixel
# tiles, vectors wrapping across output rows, crops in the input gradient).
FORWARD_CASES = {
    "1x1-small-map": ((1, 272, 7, 7), (256, 272, 1, 1), {}),
    "3x3-stride2": ((1, 96, 14, 14), (80, 96, 3, 3), dict(stride=2, padding=1)),
    "3x3-dilation2-stride-1x3": ((1, 16, 20, 20), (24, 16, 3, 3),
                                 dict(stride=(1, 3), padding=2, dilation=2)),
    "3x3-dilation3": ((1, 16, 20, 20), (24, 16, 3, 3), dict(padding=3, dilation=3)),
    "3x3-dilation4": ((1, 17, 28, 28), (19, 17, 3, 3), dict(padding=4, dilation=4)),
    "7x7-strides-2x3-odd": ((2, 21, 23, 19), (23, 21, 7, 7), dict(stride=(2, 3), padding=3)),
    "5x3-strides-3x1": ((1, 16, 17, 33), (16, 16, 5, 3),
                        dict(stride=(3, 1), padding=(3, 1), dilation=(3, 1))),
    "1x1-stride4": ((2, 16, 9, 9), (31, 16, 1, 1), dict(stride=4)),
    "3x3-7x7-map": ((1, 96, 7, 7), (77, 96, 3, 3), dict(padding=1)),
    "groups": ((1, 64, 10, 10), (34, 32, 3, 3), dict(padding=3, dilation=3, groups=2)),
    "wide-rows": ((1, 16, 5, 70), (16, 16, 3, 3), dict(dilation=(1, 3))),
    "column-stride3": ((2, 16, 9, 40), (20, 16, 3, 3), dict(stride=(1, 3), padding=1)),
    "asymmetric-padding": ((1, 16, 9, 9), (16, 16, 3, 3),
                           dict(stride=(2, 3), padding=((0, 2), (1, 0)))),
    "same-dilated": ((1, 16, 12, 12), (18, 16, 3, 3), dict(padding="same", dilation=3)),
}


@pytest.mark.parametrize("case", FORWARD_CASES.values(), ids=FORWARD_CASES.keys())
def test_brgemm_forward_matches_oracle(rng, case) -> None:
    x_shape, w_shape, kwargs = case
    groups = kwargs.get("groups", 1)
    x, w, b = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:], groups)
    _check_forward(x, w, b, **kwargs)


def test_brgemm_forward_without_bias_matches_oracle(rng) -> None:
    x, w, _ = _operands(rng, 1, 16, 16, (8, 8), (3, 3))
    _check_forward(x, w, None, padding=3, dilation=3)


def test_brgemm_leaves_other_padding_modes_to_kernels_that_read_them(rng) -> None:
    # Its input copy pads with zeros; the padding modes are read by other kernels.
    x, w, b = _operands(rng, 1, 16, 17, (11, 9), (3, 3))
    for mode in ("reflect", "circular"):
        kwargs = dict(padding=3, dilation=3, padding_mode=mode)
        assert "brgemm" not in convpool.implementations("conv2d", x, w, b, **kwargs)
        with pytest.raises(ValueError, match="brgemm"):
            with forced_implementation("conv2d", "brgemm"):
                convpool.conv2d(x, w, b, **kwargs)
        assert_close(convpool.conv2d(x, w, b, **kwargs), ref.conv2d(x, w, b, **kwargs),
                     np.float32, f"forward {kwargs}")


# The registry takes it for dilated layers and for strided layers with >= 512K weights and
# > 400 output pixels; the cases stay within that, and cover crops, padding beyond the
# kernel, phases no tap reaches (dilation a multiple of the stride) and channel tails.
GRAD_INPUT_CASES = {
    "3x3-dilation2": ((1, 16, 14, 14), (32, 16, 3, 3), dict(padding=2, dilation=2)),
    "1x1-small-map": ((1, 40, 7, 7), (48, 40, 1, 1), dict(dilation=2)),
    "dilation4": ((1, 17, 28, 28), (19, 17, 3, 3), dict(padding=4, dilation=4)),
    "valid-crop-free": ((2, 16, 9, 11), (16, 16, 3, 5), dict(dilation=(2, 1))),
    "padding-beyond-kernel": ((1, 16, 6, 6), (16, 16, 3, 3), dict(padding=5, dilation=2)),
    "groups": ((1, 64, 8, 8), (34, 32, 3, 3), dict(padding=2, dilation=2, groups=2)),
    "stride2-dilation2-no-tap-phases": ((1, 16, 11, 12), (16, 16, 3, 3),
                                        dict(stride=2, dilation=2, padding=2)),
    "stride3x2-dilation3": ((2, 21, 17, 16), (18, 21, 3, 5), dict(stride=(3, 2), dilation=(3, 2),
                                                                   padding=(2, 3))),
    "stride2-7x7-asymmetric-padding": ((1, 16, 20, 21), (16, 16, 7, 7),
                                       dict(stride=2, dilation=2, padding=((3, 2), (1, 3)))),
    "stride4-1x1": ((1, 32, 9, 10), (40, 32, 1, 1), dict(stride=4, dilation=3)),
    "stride2-groups": ((1, 64, 10, 10), (34, 32, 3, 3), dict(stride=2, dilation=2, padding=1,
                                                             groups=2)),
    "stride2-many-weights-batch2": ((2, 256, 30, 29), (260, 256, 3, 3), dict(stride=2, padding=1)),
}

@pytest.mark.parametrize("case", GRAD_INPUT_CASES.values(), ids=GRAD_INPUT_CASES.keys())
def test_brgemm_grad_input_matches_oracle(rng, case) -> None:
    x_shape, w_shape, kwargs = case
    groups = kwargs.get("groups", 1)
    x, w, _ = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:], groups)
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    _check_grad_input(x, w, grad_y, **kwargs)


WEIGHT_GRADIENT_CASES = {
    "3x3-dilation2-batch3": ((3, 17, 13, 11), (19, 17, 3, 3), dict(padding=2, dilation=2)),
    "3x3-stride2": ((2, 32, 14, 14), (40, 32, 3, 3), dict(stride=2, padding=1)),
    "2x5-strides-3x2-dilated": ((2, 20, 9, 10), (18, 20, 2, 5),
                                dict(stride=(3, 2), dilation=(1, 2), padding=(1, 3))),
    "groups-stride2": ((2, 64, 9, 10), (36, 32, 3, 3), dict(stride=2, groups=2, padding=1)),
    "1x1-7x7-map": ((1, 40, 7, 7), (48, 40, 1, 1), {}),
    "5x5-wide-rows-asymmetric": ((1, 16, 6, 70), (23, 16, 5, 5),
                                 dict(padding=((2, 0), (1, 4)), dilation=(1, 3))),
    "stride4-larger-than-kernel": ((2, 16, 17, 18), (16, 16, 3, 2), dict(stride=4, padding=1)),
}


@pytest.mark.parametrize("case", WEIGHT_GRADIENT_CASES.values(), ids=WEIGHT_GRADIENT_CASES.keys())
def test_brgemm_grad_weight_matches_oracle(rng, case) -> None:
    x_shape, w_shape, kwargs = case
    groups = kwargs.get("groups", 1)
    x, w, _ = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:], groups)
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    _check_grad_weight(x, w, grad_y, **kwargs)


def test_brgemm_weight_gradient_comes_after_blocked(rng) -> None:
    # Measured slower than `blocked` on every layer timed (docs/direct-conv.md).
    x, w, _ = _operands(rng, 1, 64, 64, (28, 28), (3, 3))
    grad_y = np.zeros((1, 64, 14, 14), np.float32)
    names = convpool.implementations("conv2d_grad_weight", x, grad_y, w.shape, stride=2, padding=1)
    assert names.index("blocked") < names.index("brgemm")


@pytest.mark.parametrize("pass_", ["forward", "grad_input", "grad_weight"])
def test_brgemm_puts_nan_and_inf_where_the_direct_sum_does(rng, pass_) -> None:
    # Lanes past a row's end and tail channels multiply zeros that the direct sum skips: an
    # inf there would turn into NaN unless the result is repaired like every fast path's.
    kwargs = dict(stride=2, padding=2, dilation=2)
    x, w, b = _operands(rng, 2, 24, 20, (13, 15), (3, 3))
    x[0, 3, 4, 7] = np.inf
    x[1, 5, 0, 0] = np.nan
    x[1, 6, 12, 14] = -np.inf
    w[2, 1, 1, 1] = np.inf
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    grad_y[1, 4, 2, 3] = np.inf
    if pass_ == "forward":
        expected = convpool.reference.conv2d(x, w, b, **kwargs)
        with forced_implementation("conv2d", "brgemm"):
            got = convpool.conv2d(x, w, b, **kwargs)
    elif pass_ == "grad_input":
        expected = ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
        with forced_implementation("conv2d_grad_input", "brgemm"):
            got = convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    else:
        expected = ref.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)
        with forced_implementation("conv2d_grad_weight", "brgemm"):
            got = convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert finite.any() and not finite.all()
    assert_close(got[finite], expected[finite], np.float32, pass_)


def test_brgemm_gradients_are_the_same_at_one_and_two_threads(rng) -> None:
    # Every weight is one unit's sum over all pictures, every input-gradient pixel one
    # tile's: the thread count must not change a bit.
    kwargs = dict(stride=2, padding=2, dilation=2)
    x, w, _ = _operands(rng, 2, 48, 40, (20, 20), (3, 3))
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        with forced_implementation("conv2d_grad_weight", "brgemm"):
            gw = convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)
        with forced_implementation("conv2d_grad_input", "brgemm"):
            gx = convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
        results.append((gw, gx))
    for one, two in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(one, two)


def test_brgemm_needs_16_channels_each_way(rng) -> None:
    for c_in, c_out in ((15, 32), (32, 15)):
        x, w, _ = _operands(rng, 1, c_in, c_out, (8, 8), (3, 3))
        assert "brgemm" not in convpool.implementations("conv2d", x, w, padding=1)
    x, w, _ = _operands(rng, 1, 16, 15, (8, 8), (3, 3))
    for op in ("conv2d_grad_input", "conv2d_grad_weight"):
        args = ((np.zeros((1, 15, 3, 3), np.float32), w, x.shape) if op == "conv2d_grad_input"
                else (x, np.zeros((1, 15, 3, 3), np.float32), w.shape))
        assert "brgemm" not in convpool.implementations(op, *args, stride=2, padding=1, dilation=2)


@st.composite
def brgemm_configs(draw):
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if max(dilation) < 2:
        # The registry runs this kernel on every dilated layer (and on a few undilated ones,
        # covered above): keep every drawn case one it takes in all three passes.
        dilation = (2, dilation[1])
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    size = tuple(draw(st.integers(max(1, s - 2 * p), max(1, s - 2 * p) + 12))
                 for s, p in zip(span, padding, strict=True))
    return dict(batch=draw(st.integers(1, 2)), c_in=draw(st.integers(16, 37)),
                c_out=draw(st.integers(16, 37)), size=size, kernel=kernel,
                kwargs=dict(stride=stride, padding=padding, dilation=dilation),
                threads=draw(st.sampled_from((1, 2))))


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(brgemm_configs())
def test_brgemm_matches_oracle_on_any_shape(config) -> None:
    rng = np.random.default_rng(config["c_in"] * 131 + config["c_out"])
    x, w, b = _operands(rng, config["batch"], config["c_in"], config["c_out"], config["size"],
                        config["kernel"])
    kwargs = config["kwargs"]
    convpool.set_num_threads(config["threads"])
    _check_forward(x, w, b, levels=available_simd_levels()[-1:], **kwargs)
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    _check_grad_input(x, w, grad_y, levels=available_simd_levels()[-1:], **kwargs)
    _check_grad_weight(x, w, grad_y, levels=available_simd_levels()[-1:], **kwargs)


def test_brgemm_batch1_is_the_same_at_one_and_two_threads(rng) -> None:
    # Each output is one tile's sum in a fixed order: splitting a picture across threads
    # must not change a bit.
    x, w, b = _operands(rng, 1, 64, 64, (14, 14), (3, 3))
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        with forced_implementation("conv2d", "brgemm"):
            results.append(convpool.conv2d(x, w, b, padding=3, dilation=3))
    np.testing.assert_array_equal(results[0], results[1])


# Dilated layers (the registry's brgemm cases) whose input channels take several L1 chunks
# (16 KB of one pixel tile's input: 7 channels for 3x3, 64 for 1x1), so that partial sums
# are parked and resumed between chunks, with a channel tail in the last chunk; forward and
# input gradient (its stride phases have 1-4 taps each, hence chunks of different sizes).
CHUNKED_CASES = {
    "3x3-dilation2-80-channels-28x28": ((1, 80, 28, 28), (20, 80, 3, 3),
                                        dict(padding=2, dilation=2)),
    "3x3-stride2-dilation2-150-channels-batch2": ((2, 150, 28, 28), (22, 150, 3, 3),
                                                  dict(stride=2, padding=2, dilation=2)),
    "5x5-dilation2-70-channels-27x27": ((1, 70, 27, 27), (17, 70, 5, 5),
                                        dict(padding=4, dilation=2)),
    "1x1-200-channels-flat-7x7": ((2, 200, 7, 7), (19, 200, 1, 1), dict(dilation=2)),
}


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", CHUNKED_CASES.values(), ids=CHUNKED_CASES.keys())
def test_brgemm_sums_over_several_input_channel_chunks(rng, case, threads) -> None:
    x_shape, w_shape, kwargs = case
    x, w, b = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:])
    convpool.set_num_threads(threads)
    levels = available_simd_levels()[-1:]
    _check_forward(x, w, b, levels=levels, **kwargs)
    # The input gradient reduces over the output channels: swap the roles.
    xt, wt, _ = _operands(rng, x_shape[0], w_shape[0], x_shape[1], x_shape[2:], w_shape[2:])
    grad_y = rng.standard_normal(ref.conv2d(xt, wt, **kwargs).shape).astype(np.float32)
    _check_grad_input(xt, wt, grad_y, levels=levels, **kwargs)


# With a picture for every thread (batch x groups a multiple of the threads, or at least
# four per thread) each thread runs whole pictures on a phased copy of its own; otherwise
# every picture is split across the threads. Both give each output the same sum in the
# same order: the thread count must not change a bit, and both must match the oracle.
@pytest.mark.parametrize("batch, groups", [(2, 1), (3, 1), (9, 1), (1, 2), (3, 2)],
                         ids=["whole-pictures", "split-pictures", "whole-uneven",
                              "whole-groups", "whole-groups-batch3"])
def test_brgemm_whole_pictures_per_thread_match_split_pictures(rng, batch, groups) -> None:
    kwargs = dict(stride=2, padding=2, dilation=2, groups=groups)
    x, w, b = _operands(rng, batch, 16 * groups, 17 * groups, (13, 12), (3, 3), groups)
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        with forced_implementation("conv2d", "brgemm"):
            y = convpool.conv2d(x, w, b, **kwargs)
        with forced_implementation("conv2d_grad_input", "brgemm"):
            gx = convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
        results.append((y, gx))
    for one, two in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(one, two)
    assert_close(results[1][0], ref.conv2d(x, w, b, **kwargs), np.float32, "forward")
    assert_close(results[1][1], ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs), np.float32,
                 "grad_input")


# Layers of real networks where the registry was measured to run this kernel faster than
# `blocked` and `winograd` (docs/direct-conv.md), and ones where it must leave them.
DEFAULT_CHOICES = {
    # (1x1 layers without padding run `pointwise`, faster still: test_conv_pointwise.py)
    "1x1-7x7-960-320-batch1": ((1, 960, 7, 7), (320, 960, 1, 1), {}, False),
    # (7x7 outputs run `small_planes`, faster still: test_conv_small_planes.py)
    "3x3-stride2-14x14-512-batch1": ((1, 512, 14, 14), (512, 512, 3, 3),
                                     dict(stride=2, padding=1), False),
    "3x3-stride2-14x14-512-batch8": ((8, 512, 14, 14), (512, 512, 3, 3),
                                     dict(stride=2, padding=1), False),
    "3x3-dilation4-28x28-512": ((1, 512, 28, 28), (512, 512, 3, 3), dict(padding=4, dilation=4),
                                True),
    "3x3-dilation2-28x28-512": ((1, 512, 28, 28), (512, 512, 3, 3), dict(padding=2, dilation=2),
                                True),
    "3x3-stride2-28x28-256-512-batch8": ((8, 256, 28, 28), (512, 256, 3, 3),
                                         dict(stride=2, padding=1), True),
    "3x3-stride2-56x56-128-batch8": ((8, 128, 56, 56), (128, 128, 3, 3), dict(stride=2, padding=1),
                                     False),
    "3x3-56x56-64-batch1": ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), False),
    "1x1-14x14-512-batch1": ((1, 512, 14, 14), (512, 512, 1, 1), {}, False),
    "1x1-7x7-960-320-batch8": ((8, 960, 7, 7), (320, 960, 1, 1), {}, False),
}

# The input gradient: dilated layers, and strided ones with many weights at batch 8.
# (input shape, weight shape, output size, keyword arguments, chosen)
GRAD_INPUT_CHOICES = {
    "3x3-dilation2-28x28-512": ((1, 512, 28, 28), (512, 512, 3, 3), 28,
                                dict(padding=2, dilation=2), True),
    "3x3-stride2-28x28-256-512-batch8": ((8, 256, 28, 28), (512, 256, 3, 3), 14,
                                         dict(stride=2, padding=1), True),
    "3x3-stride2-28x28-256-512-batch1": ((1, 256, 28, 28), (512, 256, 3, 3), 14,
                                         dict(stride=2, padding=1), False),
    "3x3-56x56-64-batch1": ((1, 64, 56, 56), (64, 64, 3, 3), 56, dict(padding=1), False),
}


@pytest.mark.parametrize("case", GRAD_INPUT_CHOICES.values(), ids=GRAD_INPUT_CHOICES.keys())
def test_registry_runs_brgemm_grad_input_exactly_where_it_was_measured_faster(case) -> None:
    x_shape, w_shape, out_size, kwargs, chosen = case
    w = np.empty(w_shape, np.float32)
    grad_y = np.empty((x_shape[0], w_shape[0], out_size, out_size), np.float32)
    with simd_level(available_simd_levels()[-1]):
        choice = convpool.implementation("conv2d_grad_input", grad_y, w, x_shape, **kwargs)
    assert (choice == "brgemm") == chosen


@pytest.mark.parametrize("case", DEFAULT_CHOICES.values(), ids=DEFAULT_CHOICES.keys())
def test_registry_runs_brgemm_exactly_where_it_was_measured_faster(case) -> None:
    x_shape, w_shape, kwargs, chosen = case
    x, w = np.empty(x_shape, np.float32), np.empty(w_shape, np.float32)
    with simd_level(available_simd_levels()[-1]):
        assert (convpool.implementation("conv2d", x, w, **kwargs) == "brgemm") == chosen
