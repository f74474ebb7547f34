"""The blocked weight gradient (``blocked``: input and output gradient packed once, the
gradient cut into L2-sized regions, each summed over fixed slices of the pixels) against
the NumPy oracle: first layers (1-4 input channels, kernels 3-11, strides 1-4), 1x1 layers
on many pixels with any stride, 3x3/5x5 layers with many channels, regions and slices of
every kind, groups and dilation, at every SIMD level, and the same bits at 1 and 2 threads."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _operands(rng, batch, c_in, c_out, size, kernel, groups=1, **kwargs):
    x = rng.standard_normal((batch, c_in, *size)).astype(np.float32)
    w_shape = (c_out, c_in // groups, *kernel)
    y_shape = ref.conv2d(x[:, :c_in], np.zeros(w_shape, np.float32), groups=groups,
                         **kwargs).shape
    grad_y = rng.standard_normal(y_shape).astype(np.float32)
    return x, grad_y, w_shape


def _check_blocked(x, grad_y, w_shape, levels=None, **kwargs) -> None:
    expected = ref.conv2d_grad_weight(x.astype(np.float64), grad_y.astype(np.float64),
                                      w_shape, **kwargs)
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert "blocked" in convpool.implementations("conv2d_grad_weight", x, grad_y,
                                                         w_shape, **kwargs)
            with forced_implementation("conv2d_grad_weight", "blocked", "float32"):
                got = convpool.conv2d_grad_weight(x, grad_y, w_shape, **kwargs)
        assert_close(got, expected.astype(np.float32), np.float32, f"simd={level}")


# First layers: few input channels, large kernels and strides (one region, many slices;
# the taps of a kernel row merged into one run of broadcasts).
FIRST_LAYERS = {
    "7x7-s2-3-to-64": ((2, 3, 45, 41), 64, (7, 7), dict(stride=2, padding=3)),
    "11x11-s4-3-to-64": ((2, 3, 63, 59), 64, (11, 11), dict(stride=4, padding=2)),
    "3x3-s2-3-to-32": ((2, 3, 33, 30), 32, (3, 3), dict(stride=2, padding=1)),
    "5x5-s3-1-to-20": ((3, 1, 31, 28), 20, (5, 5), dict(stride=3, padding=2)),
    "9x7-s1-4-to-8": ((1, 4, 20, 23), 8, (9, 7), dict(stride=1, padding=(4, 3))),
    "7x7-s2-dilated-2-3-to-64": ((2, 3, 40, 37), 64, (7, 7), dict(stride=2, padding=3,
                                                                  dilation=(1, 2))),
}


@pytest.mark.parametrize("case", FIRST_LAYERS)
def test_blocked_weight_gradient_of_first_layers_matches_oracle(rng, case) -> None:
    x_shape, c_out, kernel, kwargs = FIRST_LAYERS[case]
    x, grad_y, w_shape = _operands(rng, x_shape[0], x_shape[1], c_out, x_shape[2:], kernel,
                                   **kwargs)
    _check_blocked(x, grad_y, w_shape, **kwargs)


# 1x1 layers with any stride (only the pixels read are packed), and layers whose gradient
# needs several regions (many channels x taps: runs of output blocks, runs of input
# channels).
MANY_CHANNELS = {
    "1x1-s2-odd-channels": ((2, 37, 29, 30), 70, (1, 1), dict(stride=2)),
    "1x1-s3x1-padded": ((2, 24, 20, 19), 40, (1, 1), dict(stride=(3, 1), padding=1)),
    "1x1-output-runs": ((1, 300, 9, 9), 900, (1, 1), {}),
    "3x3-channel-runs": ((1, 1000, 6, 5), 20, (3, 3), dict(padding=1)),
    "5x5-output-runs": ((1, 96, 10, 9), 200, (5, 5), dict(padding=2)),
    "3x3-dilated-strided": ((2, 20, 19, 21), 24, (3, 3), dict(stride=2, padding=2,
                                                              dilation=2)),
    "3x3-groups": ((2, 12, 15, 14), 18, (3, 3), dict(padding=1, groups=3)),
    "2x3-no-padding-8-outputs": ((3, 5, 12, 40), 8, (2, 3), {}),
}


@pytest.mark.parametrize("case", MANY_CHANNELS)
def test_blocked_weight_gradient_of_many_channel_layers_matches_oracle(rng, case) -> None:
    x_shape, c_out, kernel, kwargs = MANY_CHANNELS[case]
    x, grad_y, w_shape = _operands(rng, x_shape[0], x_shape[1], c_out, x_shape[2:], kernel,
                                   **kwargs)
    _check_blocked(x, grad_y, w_shape, **kwargs)


@pytest.mark.parametrize("case", ["7x7-s2-3-to-64", "1x1-output-runs", "3x3-channel-runs"])
def test_blocked_weight_gradient_is_the_same_at_one_and_two_threads(rng, case) -> None:
    # The pixels are split into slices by the shapes alone and the slices added in order.
    x_shape, c_out, kernel, kwargs = {**FIRST_LAYERS, **MANY_CHANNELS}[case]
    x, grad_y, w_shape = _operands(rng, x_shape[0], x_shape[1], c_out, x_shape[2:], kernel,
                                   **kwargs)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        with forced_implementation("conv2d_grad_weight", "blocked", "float32"):
            results.append(convpool.conv2d_grad_weight(x, grad_y, w_shape, **kwargs))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("layer", [
    ((8, 3, 224, 224), 64, (7, 7), dict(stride=2, padding=3)),
    ((8, 3, 224, 224), 64, (11, 11), dict(stride=4, padding=2)),
    ((8, 512, 28, 28), 1024, (1, 1), dict(stride=2)),
    ((8, 256, 56, 56), 128, (1, 1), {}),
    ((8, 512, 28, 28), 512, (3, 3), dict(padding=1)),
    ((8, 64, 27, 27), 192, (5, 5), dict(padding=2)),
])
def test_registry_runs_blocked_weight_gradient_on_real_network_layers(layer) -> None:
    x_shape, c_out, kernel, kwargs = layer
    x = np.empty(x_shape, np.float32)
    y = ref.conv2d(np.zeros((1, x_shape[1], *x_shape[2:]), np.float32),
                   np.zeros((1, x_shape[1], *kernel), np.float32), **kwargs)
    grad_y = np.empty((x_shape[0], c_out, *y.shape[2:]), np.float32)
    assert convpool.implementation("conv2d_grad_weight", x, grad_y,
                                   (c_out, x_shape[1], *kernel), **kwargs) == "blocked"


@st.composite
def blocked_configs(draw):
    kernel = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    groups = draw(st.sampled_from((1, 1, 2)))
    c_in = groups * draw(st.integers(1, 24))
    c_out = groups * draw(st.integers(4, 40))
    extent = [(k - 1) * d + 1 - 2 * p for k, d, p in zip(kernel, dilation, padding, strict=True)]
    size = tuple(max(1, e) + draw(st.integers(0, 20)) for e in extent)
    return dict(batch=draw(st.integers(1, 3)), c_in=c_in, c_out=c_out, size=size,
                kernel=kernel, threads=draw(st.sampled_from((1, 2))),
                kwargs=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(blocked_configs())
def test_blocked_weight_gradient_matches_oracle_on_any_shape(config) -> None:
    rng = np.random.default_rng(config["c_in"] * 131 + config["c_out"])
    x, grad_y, w_shape = _operands(rng, config["batch"], config["c_in"], config["c_out"],
                                   config["size"], config["kernel"], **config["kwargs"])
    convpool.set_num_threads(config["threads"])
    _check_blocked(x, grad_y, w_shape, levels=available_simd_levels()[-1:], **config["kwargs"])
