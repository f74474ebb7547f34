"""The small-plane dense convolution (``small_planes``) against the NumPy oracle: output
planes up to 28x28 with >= 16 channels each way, any kernel size, stride and dilation,
zero padding, forward, input gradient (every stride through its stride phases) and weight
gradient (output channels in the lanes), forced at every SIMD level, batch 1 split across
threads, NaN and inf where the direct sum puts them."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, forced_implementation, simd_level
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAME = "small_planes"


def _operands(rng, batch, c_in, c_out, size, kernel):
    x = rng.standard_normal((batch, c_in, *size)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    return x, w, b


def _run(pass_, x, w, b, grad_y, **kwargs):
    """The forced kernel's result and the oracle's for one pass."""
    if pass_ == "forward":
        with forced_implementation("conv2d", NAME):
            got = convpool.conv2d(x, w, b, **kwargs)
        return got, ref.conv2d(x, w, b, **kwargs)
    if pass_ == "grad_input":
        with forced_implementation("conv2d_grad_input", NAME):
            got = convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
        return got, ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    with forced_implementation("conv2d_grad_weight", NAME):
        got = convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)
    return got, ref.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)


def _check_all_passes(x, w, b, levels=None, **kwargs) -> None:
    rng = np.random.default_rng(x.shape[1] * 7 + w.shape[0])
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    for level in levels or available_simd_levels():
        with simd_level(level):
            assert NAME in convpool.implementations("conv2d", x, w, b, **kwargs)
            assert NAME in convpool.implementations("conv2d_grad_input", grad_y, w, x.shape,
                                                    **kwargs)
            assert NAME in convpool.implementations("conv2d_grad_weight", x, grad_y, w.shape,
                                                    **kwargs)
            for pass_ in ("forward", "grad_input", "grad_weight"):
                got, expected = _run(pass_, x, w, b, grad_y, **kwargs)
                assert_close(got, expected, np.float32, f"{pass_} simd={level} {kwargs}")


# (input shape, weight shape, keyword arguments): the layers the kernel was built for and
# its corners (channel tails of the 6-channel blocks and of the 32-channel weight-gradient
# blocks, vectors wrapping across output rows, stride phases, crops, 1x1 planes).
CASES = {
    "3x3-7x7-map": ((1, 96, 7, 7), (77, 96, 3, 3), dict(padding=1)),
    "3x3-stride2-14x14": ((2, 48, 14, 14), (40, 48, 3, 3), dict(stride=2, padding=1)),
    "3x3-13x13-odd-channels": ((1, 35, 13, 13), (19, 35, 3, 3), dict(padding=1)),
    "1x1-7x7": ((3, 33, 7, 7), (17, 33, 1, 1), {}),
    "1x1-stride2": ((1, 16, 14, 14), (31, 16, 1, 1), dict(stride=2)),
    "5x5-dilation2": ((1, 16, 12, 12), (20, 16, 5, 5), dict(padding=4, dilation=2)),
    "3x3-28x28": ((1, 16, 28, 28), (16, 16, 3, 3), dict(padding=1)),
    "7x7-stride2-crop": ((1, 17, 19, 17), (18, 17, 7, 7), dict(stride=2, padding=2)),
    "asymmetric-padding": ((1, 16, 9, 9), (16, 16, 3, 3),
                           dict(stride=(2, 3), padding=((0, 2), (1, 0)))),
    "1x1-plane": ((2, 16, 1, 1), (24, 16, 1, 1), {}),
    "3x3-on-1x1-plane": ((1, 16, 1, 1), (16, 16, 3, 3), dict(padding=1)),
    "dilation-multiple-of-stride": ((1, 16, 11, 11), (16, 16, 3, 3),
                                    dict(stride=2, padding=2, dilation=2)),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_small_planes_matches_oracle(rng, case) -> None:
    x_shape, w_shape, kwargs = case
    x, w, b = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:])
    _check_all_passes(x, w, b, **kwargs)


def test_small_planes_forward_without_bias_matches_oracle(rng) -> None:
    x, w, _ = _operands(rng, 2, 32, 24, (7, 7), (3, 3))
    with forced_implementation("conv2d", NAME):
        got = convpool.conv2d(x, w, padding=1)
    assert_close(got, ref.conv2d(x, w, padding=1), np.float32)


def test_small_planes_takes_only_small_planes_dense_zero_padded_layers(rng) -> None:
    x, w, _ = _operands(rng, 1, 32, 32, (7, 7), (3, 3))
    assert NAME in convpool.implementations("conv2d", x, w, padding=1)
    # 29x29 outputs, 15 channels either way, groups, another padding mode: not this kernel.
    big, _, _ = _operands(rng, 1, 32, 32, (29, 29), (3, 3))
    assert NAME not in convpool.implementations("conv2d", big, w, padding=1)
    for c_in, c_out in ((15, 32), (32, 15)):
        xs, ws, _ = _operands(rng, 1, c_in, c_out, (7, 7), (3, 3))
        assert NAME not in convpool.implementations("conv2d", xs, ws, padding=1)
        assert NAME not in convpool.implementations("conv2d_grad_weight", xs,
                                                    np.zeros((1, c_out, 7, 7), np.float32),
                                                    ws.shape, padding=1)
    assert NAME not in convpool.implementations("conv2d", x, w[:, :16], padding=1, groups=2)
    assert NAME not in convpool.implementations("conv2d", x, w, padding=1,
                                                padding_mode="reflect")
    gy = np.zeros((1, 32, 29, 29), np.float32)
    assert NAME not in convpool.implementations("conv2d_grad_input", gy, w, (1, 32, 29, 29),
                                                padding=1)


@pytest.mark.parametrize("pass_", ["forward", "grad_input", "grad_weight"])
def test_small_planes_puts_nan_and_inf_where_the_direct_sum_does(rng, pass_) -> None:
    # Lanes past a row's end and the zero padding multiply values the direct sum skips: an
    # inf there would turn into NaN unless the result is repaired like every fast path's.
    kwargs = dict(stride=2, padding=2, dilation=2)
    x, w, b = _operands(rng, 2, 24, 20, (13, 15), (3, 3))
    x[0, 3, 4, 7] = np.inf
    x[1, 5, 0, 0] = np.nan
    x[1, 6, 12, 14] = -np.inf
    w[2, 1, 1, 1] = np.inf
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    grad_y[1, 4, 2, 3] = np.inf
    got, expected = _run(pass_, x, w, b, grad_y, **kwargs)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert finite.any() and not finite.all()
    assert_close(got[finite], expected[finite], np.float32, pass_)


@pytest.mark.parametrize("batch", [1, 3])
def test_small_planes_is_the_same_at_one_and_two_threads(rng, batch) -> None:
    # Every output and every weight is one work unit's sum in a fixed order: splitting the
    # output-channel blocks (batch 1) or the weights across threads must not change a bit.
    kwargs = dict(stride=2, padding=1)
    x, w, b = _operands(rng, batch, 96, 80, (14, 14), (3, 3))
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        results.append([_run(pass_, x, w, b, grad_y, **kwargs)[0]
                        for pass_ in ("forward", "grad_input", "grad_weight")])
    for one, two in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(one, two)


@st.composite
def small_plane_configs(draw):
    k = draw(st.sampled_from((1, 3, 5)))
    stride = draw(st.sampled_from((1, 2)))
    dilation = draw(st.sampled_from((1, 1, 2)))
    padding = draw(st.integers(0, (k - 1) * dilation // 2 + 1))
    span = dilation * (k - 1) + 1
    # Output planes from 1x1 up to the 28x28 limit.
    lowest = max(1, span - 2 * padding)
    rows, cols = (draw(st.integers(lowest, min(lowest + 27 * stride, 28 * stride)))
                  for _ in range(2))
    return dict(batch=draw(st.sampled_from((1, 3))), c_in=draw(st.integers(16, 41)),
                c_out=draw(st.integers(16, 41)), size=(rows, cols), kernel=(k, k),
                kwargs=dict(stride=stride, padding=padding, dilation=dilation),
                threads=draw(st.sampled_from((1, 2))))


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_plane_configs())
def test_small_planes_matches_oracle_on_any_shape(config) -> None:
    rng = np.random.default_rng(config["c_in"] * 131 + config["c_out"])
    x, w, b = _operands(rng, config["batch"], config["c_in"], config["c_out"], config["size"],
                        config["kernel"])
    kwargs = config["kwargs"]
    out_rows, out_cols = ref.conv2d(x[:, :1], w[:1, :1], **kwargs).shape[2:]
    if out_rows * out_cols > 28 * 28:
        return
    convpool.set_num_threads(config["threads"])
    _check_all_passes(x, w, b, levels=available_simd_levels()[-1:], **kwargs)
