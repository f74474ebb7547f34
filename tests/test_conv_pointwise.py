"""The pointwise (1x1) matrix-product convolution (``pointwise``) against the NumPy oracle:
forward, input gradient and weight gradient forced at every SIMD level, odd channel counts,
batch 1 split across threads, strides, tiny and large maps, and the registry choosing it for
the 1x1 layers of real networks."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PASSES = {"forward": "conv2d", "grad_input": "conv2d_grad_input",
          "grad_weight": "conv2d_grad_weight"}


def _operands(rng, batch, c_in, c_out, size):
    x = rng.standard_normal((batch, c_in, *size)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, 1, 1)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    return x, w, b


def _call(pass_, x, w, b, grad_y, **kwargs):
    if pass_ == "forward":
        return convpool.conv2d(x, w, b, **kwargs)
    if pass_ == "grad_input":
        return convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    return convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)


def _expected(pass_, x, w, b, grad_y, **kwargs):
    if pass_ == "forward":
        return ref.conv2d(x, w, b, **kwargs)
    if pass_ == "grad_input":
        return ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    return ref.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)


def _args(pass_, x, w, b, grad_y):
    return {"forward": (x, w, b), "grad_input": (grad_y, w, x.shape),
            "grad_weight": (x, grad_y, w.shape)}[pass_]


def _weight_gradient_pixels(x, w, **kwargs) -> int:
    """The pixels the weight gradient reduces over (batch x output plane)."""
    y_shape = ref.conv2d(x[:1, :1], w[:1, :1], **kwargs).shape
    return x.shape[0] * y_shape[2] * y_shape[3]


# The weight gradient runs here up to this many pixels (or below 4 output channels), where
# it was measured faster than `blocked`.
GRAD_WEIGHT_MOST_PIXELS = 1024


def _check(pass_, x, w, b, levels=None, **kwargs) -> None:
    grad_y = np.random.default_rng(x.shape[1]).standard_normal(
        ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    expected = _expected(pass_, x, w, b, grad_y, **kwargs)
    op = PASSES[pass_]
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert "pointwise" in convpool.implementations(op, *_args(pass_, x, w, b, grad_y),
                                                           **kwargs)
            with forced_implementation(op, "pointwise", "float32"):
                got = _call(pass_, x, w, b, grad_y, **kwargs)
        assert_close(got, expected, np.float32, f"{pass_} simd={level} {kwargs}")


# (input shape, output channels, keyword arguments): the 1x1 layers of ResNet-50 and
# MobileNetV2 at batch 1, and the corners of the tiles (row tails of the 6-row blocks,
# masked pixel vectors, a single pixel, several pictures in one weight-gradient slice).
CASES = {
    "7x7-960-320-batch1": ((1, 960, 7, 7), 320, {}),
    "14x14-odd-channels": ((1, 37, 14, 14), 23, {}),
    "single-pixel": ((1, 64, 1, 1), 17, {}),
    "tiny-map-few-channels": ((2, 8, 3, 5), 9, {}),
    "56x56-batch2": ((2, 64, 56, 56), 24, {}),
    "stride2": ((1, 33, 15, 15), 40, dict(stride=2)),
    "stride-2x3-odd": ((3, 19, 9, 11), 21, dict(stride=(2, 3))),
    "dilated": ((1, 16, 6, 6), 16, dict(dilation=3)),
    "slices-across-pictures": ((5, 12, 25, 17), 10, {}),
}


@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_pointwise_matches_oracle(rng, case, pass_) -> None:
    x_shape, c_out, kwargs = case
    x, w, b = _operands(rng, x_shape[0], x_shape[1], c_out, x_shape[2:])
    if pass_ == "grad_weight" and _weight_gradient_pixels(x, w, **kwargs) > GRAD_WEIGHT_MOST_PIXELS:
        c_out = 3  # where `blocked` cannot run, the weight gradient takes any number of pixels
        x, w, b = _operands(rng, x_shape[0], x_shape[1], c_out, x_shape[2:])
    _check(pass_, x, w, b, **kwargs)


def test_pointwise_weight_gradient_leaves_many_pixels_to_blocked(rng) -> None:
    x = np.empty((8, 64, 28, 28), np.float32)
    grad_y = np.empty((8, 64, 28, 28), np.float32)
    assert convpool.implementation("conv2d_grad_weight", x, grad_y, (64, 64, 1, 1)) == "blocked"
    assert convpool.implementation("conv2d_grad_weight", x[:1, :, :16, :16],
                                   grad_y[:1, :, :16, :16], (64, 64, 1, 1)) == "pointwise"


def test_pointwise_forward_without_bias_matches_oracle(rng) -> None:
    x, w, _ = _operands(rng, 1, 24, 13, (5, 7))
    _check("forward", x, w, None)


def test_pointwise_leaves_padded_grouped_and_larger_kernels_to_others(rng) -> None:
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    w1 = rng.standard_normal((16, 16, 1, 1)).astype(np.float32)
    assert "pointwise" not in convpool.implementations("conv2d", x, w1, padding=1)
    assert "pointwise" not in convpool.implementations("conv2d", x, w1[:, :8], groups=2)
    w3 = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    assert "pointwise" not in convpool.implementations("conv2d", x, w3, padding=1)
    with pytest.raises(ValueError, match="pointwise"):
        with forced_implementation("conv2d", "pointwise"):
            convpool.conv2d(x, w1, padding=1)
    assert_close(convpool.conv2d(x, w1, padding=1), ref.conv2d(x, w1, padding=1), np.float32)


@pytest.mark.parametrize("pass_", PASSES)
def test_pointwise_is_the_same_at_one_and_two_threads(rng, pass_) -> None:
    # Each output is one tile's sum in a fixed order (the weight gradient: fixed slices
    # added in order): splitting a picture, or the pixels, across threads changes no bit.
    x, w, b = _operands(rng, 1, 96, 80, (23, 29))
    grad_y = rng.standard_normal((1, 80, 23, 29)).astype(np.float32)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        with forced_implementation(PASSES[pass_], "pointwise"):
            results.append(_call(pass_, x, w, b, grad_y))
    np.testing.assert_array_equal(results[0], results[1])


@st.composite
def pointwise_configs(draw):
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    return dict(batch=draw(st.integers(1, 3)), c_in=draw(st.integers(8, 70)),
                c_out=draw(st.integers(8, 70)), size=size, stride=stride,
                threads=draw(st.sampled_from((1, 2))), bias=draw(st.booleans()))


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(pointwise_configs())
def test_pointwise_matches_oracle_on_any_shape(config) -> None:
    rng = np.random.default_rng(config["c_in"] * 131 + config["c_out"])
    x, w, b = _operands(rng, config["batch"], config["c_in"], config["c_out"], config["size"])
    convpool.set_num_threads(config["threads"])
    for pass_ in PASSES:
        pixels = _weight_gradient_pixels(x, w, stride=config["stride"])
        if pass_ == "grad_weight" and config["c_out"] >= 4 and pixels > GRAD_WEIGHT_MOST_PIXELS:
            continue  # `blocked` runs it (tested above on more pixels with 3 output channels)
        _check(pass_, x, w, b if config["bias"] else None, levels=available_simd_levels()[-1:],
               stride=config["stride"])


# 1x1 layers of ResNet-50, MobileNetV2 and the benchmark suite's pw-256-64: the registry
# runs this kernel for the forward pass and the input gradient, and for the weight gradient
# on up to GRAD_WEIGHT_MOST_PIXELS pixels.
NETWORK_LAYERS = {
    "mobilenet-7x7-960-320-batch1": ((1, 960, 7, 7), 320),
    "mobilenet-14x14-96-576-batch1": ((1, 96, 14, 14), 576),
    "resnet50-14x14-1024-256-batch1": ((1, 1024, 14, 14), 256),
    "resnet50-56x56-64-256-batch8": ((8, 64, 56, 56), 256),
    "pw-256-64-batch8": ((8, 256, 56, 56), 64),
}


@pytest.mark.parametrize("case", NETWORK_LAYERS.values(), ids=NETWORK_LAYERS.keys())
def test_registry_runs_pointwise_on_1x1_layers_of_real_networks(case) -> None:
    x_shape, c_out = case
    x = np.empty(x_shape, np.float32)
    w = np.empty((c_out, x_shape[1], 1, 1), np.float32)
    grad_y = np.empty((x_shape[0], c_out, *x_shape[2:]), np.float32)
    few_pixels = x_shape[0] * x_shape[2] * x_shape[3] <= GRAD_WEIGHT_MOST_PIXELS
    with simd_level(available_simd_levels()[-1]):
        for pass_, op in PASSES.items():
            expected = "pointwise" if pass_ != "grad_weight" or few_pixels else "blocked"
            assert convpool.implementation(op, *_args(pass_, x, w, None, grad_y)) == expected


def test_input_gradient_of_large_1x1_layers_at_batch_8_runs_blocked() -> None:
    """With 512K weights or more and several pictures, blocked (weights packed once per
    call) is faster than reading W^T in place per picture; at batch 1 pointwise stays."""
    w = np.empty((512, 2048, 1, 1), np.float32)
    for batch, expected in ((8, "blocked"), (1, "pointwise")):
        grad_y = np.empty((batch, 512, 7, 7), np.float32)
        assert convpool.implementation("conv2d_grad_input", grad_y, w,
                                       (batch, 2048, 7, 7)) == expected
