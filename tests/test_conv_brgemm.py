"""The channel-blocked batch-reduce convolution (``brgemm``) against the NumPy oracle: any
kernel size, stride, dilation and padding with >= 16 channels each way, forced at every
SIMD level, batch 1 split across threads, and the registry choosing it where it was
measured to win."""

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


GRAD_INPUT_CASES = {
    "3x3": ((1, 16, 14, 14), (32, 16, 3, 3), dict(padding=1)),
    "1x1-small-map": ((1, 40, 7, 7), (48, 40, 1, 1), {}),
    "dilation4": ((1, 17, 28, 28), (19, 17, 3, 3), dict(padding=4, dilation=4)),
    "valid-crop-free": ((2, 16, 9, 11), (16, 16, 3, 5), {}),
    "padding-beyond-kernel": ((1, 16, 6, 6), (16, 16, 3, 3), dict(padding=3)),
    "groups": ((1, 64, 8, 8), (34, 32, 3, 3), dict(padding=1, groups=2)),
}


@pytest.mark.parametrize("case", GRAD_INPUT_CASES.values(), ids=GRAD_INPUT_CASES.keys())
def test_brgemm_grad_input_matches_oracle(rng, case) -> None:
    x_shape, w_shape, kwargs = case
    groups = kwargs.get("groups", 1)
    x, w, _ = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:], groups)
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    _check_grad_input(x, w, grad_y, **kwargs)


def test_brgemm_needs_16_channels_each_way(rng) -> None:
    for c_in, c_out in ((15, 32), (32, 15)):
        x, w, _ = _operands(rng, 1, c_in, c_out, (8, 8), (3, 3))
        assert "brgemm" not in convpool.implementations("conv2d", x, w, padding=1)
    x, w, _ = _operands(rng, 1, 16, 16, (8, 8), (3, 3))
    assert "brgemm" not in convpool.implementations(
        "conv2d_grad_input", np.zeros((1, 16, 4, 4), np.float32), w, x.shape, stride=2, padding=1)


@st.composite
def brgemm_configs(draw):
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if max(dilation) < 3 and stride[1] <= 2:
        # The registry runs this kernel on dilated layers, column strides above 2 and few
        # output pixels: keep every drawn case one it takes (stride 1 is covered above).
        dilation = (3, dilation[1])
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
    if kwargs["stride"] == (1, 1):
        grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
        _check_grad_input(x, w, grad_y, levels=available_simd_levels()[-1:], **kwargs)


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


# Layers of real networks where the registry was measured to run this kernel faster than
# `blocked` and `winograd` (docs/direct-conv.md), and ones where it must leave them.
DEFAULT_CHOICES = {
    # (1x1 layers without padding run `pointwise`, faster still: test_conv_pointwise.py)
    "1x1-7x7-960-320-batch1": ((1, 960, 7, 7), (320, 960, 1, 1), {}, False),
    "3x3-stride2-14x14-512-batch1": ((1, 512, 14, 14), (512, 512, 3, 3),
                                     dict(stride=2, padding=1), True),
    "3x3-stride2-14x14-512-batch8": ((8, 512, 14, 14), (512, 512, 3, 3),
                                     dict(stride=2, padding=1), True),
    "3x3-dilation4-28x28-512": ((1, 512, 28, 28), (512, 512, 3, 3), dict(padding=4, dilation=4),
                                True),
    "3x3-dilation2-28x28-512": ((1, 512, 28, 28), (512, 512, 3, 3), dict(padding=2, dilation=2),
                                False),
    "3x3-56x56-64-batch1": ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), False),
    "1x1-14x14-512-batch1": ((1, 512, 14, 14), (512, 512, 1, 1), {}, False),
    "1x1-7x7-960-320-batch8": ((8, 960, 7, 7), (320, 960, 1, 1), {}, False),
}


@pytest.mark.parametrize("case", DEFAULT_CHOICES.values(), ids=DEFAULT_CHOICES.keys())
def test_registry_runs_brgemm_exactly_where_it_was_measured_faster(case) -> None:
    x_shape, w_shape, kwargs, chosen = case
    x, w = np.empty(x_shape, np.float32), np.empty(w_shape, np.float32)
    with simd_level(available_simd_levels()[-1]):
        assert (convpool.implementation("conv2d", x, w, **kwargs) == "brgemm") == chosen
