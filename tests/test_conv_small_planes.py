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


PASSES = ("forward", "grad_input", "grad_weight")
OPS = {"forward": "conv2d", "grad_input": "conv2d_grad_input", "grad_weight": "conv2d_grad_weight"}


def _takes(pass_, x, w, grad_y, **kwargs) -> bool:
    """Whether the kernel supports the pass's case (it can be forced there; the registry
    chooses it only where it was measured faster: CHOICES below)."""
    args = {"forward": (x, w), "grad_input": (grad_y, w, x.shape),
            "grad_weight": (x, grad_y, w.shape)}[pass_]
    return NAME in convpool.implementations(OPS[pass_], *args, **kwargs)


def _check_passes(x, w, b, passes=PASSES, levels=None, **kwargs) -> None:
    """Each of ``passes`` forced to this kernel at each SIMD level, against the oracle;
    every pass asked for must be one the kernel takes."""
    rng = np.random.default_rng(x.shape[1] * 7 + w.shape[0])
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    for level in levels or available_simd_levels():
        with simd_level(level):
            for pass_ in passes:
                assert _takes(pass_, x, w, grad_y, **kwargs), f"{pass_} {x.shape} {kwargs}"
                got, expected = _run(pass_, x, w, b, grad_y, **kwargs)
                assert_close(got, expected, np.float32, f"{pass_} simd={level} {kwargs}")


# (input shape, weight shape, keyword arguments, passes): the layers the kernel was built
# for and its corners (channel tails of the 6-channel blocks and of the 32-channel
# weight-gradient blocks, vectors wrapping across output rows, stride phases, crops, 1x1
# planes). The forward pass runs at batch 1 on planes up to 14x14 and on planes up to 8x8
# at any batch, the weight gradient at batch 1 on 9x9-14x14 planes.
ALL, FORWARD, GRADIENTS, GRAD_INPUT = PASSES, ("forward", "grad_input"), PASSES[1:], ("grad_input",)
CASES = {
    "3x3-7x7-map": ((1, 96, 7, 7), (77, 96, 3, 3), dict(padding=1), FORWARD),
    "3x3-stride2-14x14": ((2, 48, 14, 14), (40, 48, 3, 3), dict(stride=2, padding=1), FORWARD),
    "3x3-13x13-odd-channels": ((1, 35, 13, 13), (19, 35, 3, 3), dict(padding=1), ALL),
    "3x3-stride2-28x28": ((1, 16, 28, 28), (33, 16, 3, 3), dict(stride=2, padding=1), ALL),
    "1x1-7x7-padded": ((1, 33, 7, 7), (17, 33, 1, 1), dict(padding=1), FORWARD),
    "1x1-stride2": ((1, 16, 14, 14), (31, 16, 1, 1), dict(stride=2), FORWARD),
    "5x5-dilation2": ((1, 16, 12, 12), (20, 16, 5, 5), dict(padding=4, dilation=2), ALL),
    "3x3-28x28": ((2, 16, 28, 28), (16, 16, 3, 3), dict(padding=1), GRAD_INPUT),
    "7x7-stride2-crop": ((1, 17, 19, 17), (18, 17, 7, 7), dict(stride=2, padding=2), FORWARD),
    "asymmetric-padding": ((1, 16, 27, 29), (16, 16, 3, 3),
                           dict(stride=(2, 3), padding=((0, 2), (1, 0))), ALL),
    "1x1-plane": ((2, 16, 1, 1), (24, 16, 1, 1), dict(padding=0, stride=2), FORWARD),
    "3x3-on-1x1-plane": ((1, 16, 1, 1), (16, 16, 3, 3), dict(padding=1), FORWARD),
    "dilation-multiple-of-stride": ((1, 16, 11, 11), (16, 16, 3, 3),
                                    dict(stride=2, padding=2, dilation=2), FORWARD),
    "5x5-batch3-10x10": ((3, 21, 14, 14), (23, 21, 5, 5), dict(padding=0), GRAD_INPUT),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_small_planes_matches_oracle(rng, case) -> None:
    x_shape, w_shape, kwargs, passes = case
    x, w, b = _operands(rng, x_shape[0], x_shape[1], w_shape[0], x_shape[2:], w_shape[2:])
    _check_passes(x, w, b, passes, **kwargs)


def test_small_planes_forward_without_bias_matches_oracle(rng) -> None:
    x, w, _ = _operands(rng, 2, 32, 24, (7, 7), (3, 3))
    with forced_implementation("conv2d", NAME):
        got = convpool.conv2d(x, w, padding=1)
    assert_close(got, ref.conv2d(x, w, padding=1), np.float32)


def test_small_planes_takes_only_small_planes_dense_zero_padded_layers(rng) -> None:
    x, w, _ = _operands(rng, 1, 32, 32, (7, 7), (3, 3))
    gy = np.zeros((1, 32, 7, 7), np.float32)
    for pass_ in PASSES:
        assert _takes(pass_, x, w, gy, padding=1)
    # 15 channels either way, groups, another padding mode: not this kernel.
    for c_in, c_out in ((15, 32), (32, 15)):
        xs, ws, _ = _operands(rng, 1, c_in, c_out, (7, 7), (3, 3))
        for pass_ in PASSES:
            assert not _takes(pass_, xs, ws, np.zeros((1, c_out, 7, 7), np.float32), padding=1)
    assert NAME not in convpool.implementations("conv2d", x, w[:, :16], padding=1, groups=2)
    assert NAME not in convpool.implementations("conv2d", x, w, padding=1,
                                                padding_mode="reflect")
    # Input-gradient phases above 28x28 pixels.
    big = np.zeros((1, 32, 29, 29), np.float32)
    assert not _takes("grad_input", big, w, big, padding=1)
    assert _takes("grad_input", np.zeros((1, 32, 56, 56), np.float32), w,
                  np.zeros((1, 32, 28, 28), np.float32), stride=2, padding=1)


# (input shape, weight shape, keyword arguments, forward chosen, weight gradient chosen):
# where the registry runs this kernel (measured faster) and where it leaves the others.
CHOICES = {
    "3x3-7x7-512-batch1": ((1, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), True, False),
    "3x3-7x7-512-batch8": ((8, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), True, False),
    "3x3-stride2-14x14-512-batch1": ((1, 512, 14, 14), (512, 512, 3, 3),
                                     dict(stride=2, padding=1), True, False),
    "3x3-stride2-14x14-512-batch8": ((8, 512, 14, 14), (512, 512, 3, 3),
                                     dict(stride=2, padding=1), True, False),
    "3x3-13x13-384-256-batch1": ((1, 384, 13, 13), (256, 384, 3, 3), dict(padding=1), True, True),
    "3x3-14x14-256-batch1": ((1, 256, 14, 14), (256, 256, 3, 3), dict(padding=1), True, True),
    "3x3-14x14-256-batch8": ((8, 256, 14, 14), (256, 256, 3, 3), dict(padding=1), False, False),
    "3x3-28x28-128-batch1": ((1, 128, 28, 28), (128, 128, 3, 3), dict(padding=1), False, False),
    "1x1-7x7-2048-512-batch1": ((1, 2048, 7, 7), (512, 2048, 1, 1), {}, False, False),
}


@pytest.mark.parametrize("case", CHOICES.values(), ids=CHOICES.keys())
def test_registry_runs_small_planes_exactly_where_it_was_measured_faster(case) -> None:
    x_shape, w_shape, kwargs, forward, grad_weight = case
    x, w = np.empty(x_shape, np.float32), np.empty(w_shape, np.float32)
    out_size = ref.conv2d(x[:1, :1], w[:1, :1], **kwargs).shape[2:]
    grad_y = np.empty((x_shape[0], w_shape[0], *out_size), np.float32)
    with simd_level(available_simd_levels()[-1]):
        assert (convpool.implementation("conv2d", x, w, **kwargs) == NAME) == forward
        assert (convpool.implementation("conv2d_grad_weight", x, grad_y, w_shape,
                                        **kwargs) == NAME) == grad_weight
        assert convpool.implementation("conv2d_grad_input", grad_y, w, x_shape, **kwargs) != NAME


@pytest.mark.parametrize("pass_", PASSES)
def test_small_planes_puts_nan_and_inf_where_the_direct_sum_does(rng, pass_) -> None:
    # Lanes past a row's end and the zero padding multiply values the direct sum skips: an
    # inf there would turn into NaN unless the result is repaired like every fast path's.
    kwargs = dict(stride=(1, 2), padding=2, dilation=2)
    x, w, b = _operands(rng, 1, 24, 20, (13, 27), (3, 3))
    x[0, 3, 4, 7] = np.inf
    x[0, 5, 0, 0] = np.nan
    x[0, 6, 12, 26] = -np.inf
    w[2, 1, 1, 1] = np.inf
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    grad_y[0, 4, 2, 3] = np.inf
    assert _takes(pass_, x, w, grad_y, **kwargs)
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
    # output-channel blocks or the weights across threads must not change a bit.
    kwargs = dict(padding=1) if batch == 1 else dict(stride=2, padding=1)
    x, w, b = _operands(rng, batch, 96, 80, (14, 14), (3, 3))
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(np.float32)
    passes = [p for p in PASSES if _takes(p, x, w, grad_y, **kwargs)]
    assert len(passes) == 3
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        results.append([_run(pass_, x, w, b, grad_y, **kwargs)[0] for pass_ in passes])
    for one, two in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(one, two)


@st.composite
def small_plane_configs(draw):
    k = draw(st.sampled_from((1, 3, 5)))
    stride = draw(st.sampled_from((1, 2)))
    dilation = draw(st.sampled_from((1, 1, 2)))
    padding = draw(st.integers(0, (k - 1) * dilation // 2 + 1))
    span = dilation * (k - 1) + 1
    lowest = max(1, span - 2 * padding)
    # Output planes from 1x1 to 28x28 (the input gradient takes them all; the other passes
    # the sizes where they run).
    extent = draw(st.sampled_from((13, 27)))
    rows, cols = (draw(st.integers(lowest, lowest + extent * stride)) for _ in range(2))
    return dict(batch=draw(st.sampled_from((1, 1, 3))), c_in=draw(st.integers(16, 41)),
                c_out=draw(st.integers(16, 41)), size=(rows, cols), kernel=(k, k),
                kwargs=dict(stride=stride, padding=padding, dilation=dilation),
                threads=draw(st.sampled_from((1, 2))))


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_plane_configs())
def test_small_planes_matches_oracle_on_any_shape(config) -> None:
    rng = np.random.default_rng(config["c_in"] * 131 + config["c_out"])
    x, w, b = _operands(rng, config["batch"], config["c_in"], config["c_out"], config["size"],
                        config["kernel"])
    kwargs = config["kwargs"]
    grad_y = np.empty(ref.conv2d(x, w, **kwargs).shape, np.float32)
    passes = [p for p in PASSES if _takes(p, x, w, grad_y, **kwargs)]
    convpool.set_num_threads(config["threads"])
    _check_passes(x, w, b, passes, levels=available_simd_levels()[-1:], **kwargs)
