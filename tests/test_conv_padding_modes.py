"""Padding modes read by the convolution kernels themselves: every implementation that
supports a case, for every padding mode, in the forward pass and both gradients, against
the NumPy oracle.

The kernels get the mode in the resolved geometry (``Conv2dGeometry.padding_mode``) and
read padded pixels from the input pixel the mode repeats; nothing pads the input first.
The fast forward and weight-gradient paths that copy padded rows take every mode; the
other fast paths, and every fast input gradient, take zero padding only and leave the
other modes to ``direct``.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, conv2d_variants
from convpool import _core
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NON_ZERO_MODES = ("replicate", "reflect", "symmetric", "circular")
MODES = ("zeros", *NON_ZERO_MODES)
PASSES = ("forward", "grad_input", "grad_weight")


def assert_matches_oracle(actual, expected, where: str) -> None:
    """float64 to 1e-12 of the result's scale, float32 through conftest's tolerance."""
    if actual.dtype == np.float64:
        assert actual.shape == expected.shape, where
        scale = float(np.max(np.abs(expected))) or 1.0
        error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
        assert error <= 1e-12 * scale, f"{where}: error {error:.3g} at scale {scale:.3g}"
    else:
        assert_close(actual, expected, actual.dtype, where)


def run_pass(pass_: str, x, w, grad_y, **kwargs) -> np.ndarray:
    if pass_ == "forward":
        return convpool.conv2d(x, w, **kwargs)
    if pass_ == "grad_input":
        return convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    return convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)


def oracle_pass(pass_: str, x, w, grad_y, **kwargs) -> np.ndarray:
    if pass_ == "forward":
        return ref.conv2d(x, w, **kwargs)
    if pass_ == "grad_input":
        return ref.conv2d_grad_input(grad_y, w, x.shape, **kwargs)
    return ref.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)


def check_every_implementation(rng, x_shape, w_shape, dtype, where="", **kwargs) -> set[str]:
    """Every pass under every implementation that supports it (asserting the forced one
    ran) against the oracle; returns the "pass:implementation" pairs that ran."""
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    grad_y = rng.standard_normal(ref.conv2d(x, w, **kwargs).shape).astype(dtype)
    ran = set()
    for pass_ in PASSES:
        expected = oracle_pass(pass_, x, w, grad_y, **kwargs)
        for label in conv2d_variants(pass_, x, w, grad_y, **kwargs):
            got = run_pass(pass_, x, w, grad_y, **kwargs)
            assert_matches_oracle(got, expected.astype(dtype), f"{where} {pass_} {label}")
            ran.add(f"{pass_}:{label.rsplit('=', 1)[1]}")
    return ran


# Cases chosen so that each fast path takes them (name: x shape, weight shape, arguments,
# the "pass:implementation" pairs that must support every mode on that case).
FAST_PATH_CASES = {
    "winograd": ((1, 16, 6, 7), (16, 16, 3, 3), dict(padding=((2, 1), (1, 2))),
                 {"forward:winograd"}),
    "winograd-stride2": ((1, 16, 9, 8), (16, 16, 3, 3), dict(padding=1, stride=2),
                         {"forward:winograd"}),
    "blocked-channel-tiles": ((2, 4, 6, 7), (5, 4, 3, 3),
                              dict(padding=((0, 2), (3, 1)), dilation=(1, 2)),
                              {"forward:blocked"}),
    "blocked-row-tiles": ((2, 3, 7, 16), (2, 3, 3, 3), dict(padding=(2, 1)),
                          {"forward:blocked"}),
    "few-channels": ((2, 3, 7, 9), (8, 3, 3, 3), dict(padding=((1, 2), (2, 0)), stride=3),
                     {"forward:few_channels"}),
    "plane-depthwise": ((2, 3, 6, 9), (3, 1, 3, 3), dict(padding=((2, 0), (1, 2)), groups=3),
                        {"forward:plane", "grad_weight:plane"}),
    "depthwise-strided": ((1, 4, 9, 12), (4, 1, 3, 3), dict(padding=(1, 2), stride=2, groups=4),
                          {"forward:depthwise_strided", "grad_weight:depthwise_strided"}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(FAST_PATH_CASES))
def test_every_implementation_reads_every_padding_mode(rng, case, mode):
    x_shape, w_shape, kwargs, fast = FAST_PATH_CASES[case]
    ran = check_every_implementation(rng, x_shape, w_shape, np.float32, f"{case} {mode}",
                                     padding_mode=mode, **kwargs)
    # The fast paths that read padded rows keep the case under every mode (a predicate
    # that stopped accepting the mode would move the coverage to direct unnoticed).
    assert fast <= ran, f"{case} {mode}: {sorted(fast - ran)} did not run"
    assert {"forward:direct", "grad_input:direct", "grad_weight:direct"} <= ran


@pytest.mark.parametrize("mode", NON_ZERO_MODES)
def test_input_gradient_of_non_zero_modes_runs_the_direct_fold(rng, mode):
    # The fast input gradients take zero padding only; direct folds the padding's gradient
    # onto the pixels it repeats, with no padded buffer.
    x = rng.standard_normal((1, 16, 6, 7)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    assert convpool.implementations("conv2d_grad_input", x, w, x.shape, padding=1,
                                    padding_mode=mode) == ["direct"]
    assert "winograd" in convpool.implementations("conv2d_grad_input", x, w, x.shape,
                                                  padding=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padding_up_to_each_modes_limit(rng, mode, dtype):
    # reflect: padding < size; symmetric and circular: padding <= size; replicate and zeros
    # any padding (here the circular limit, with a stride and a dilation).
    h, w = 3, 4
    extra = 0 if mode == "reflect" else 1
    padding = ((h - 1 + extra, h - 1 + extra), (w - 1 + extra, w - 1 + extra))
    for kwargs in (dict(), dict(stride=(2, 3), dilation=(2, 1))):
        check_every_implementation(rng, (2, 4, h, w), (5, 4, 3, 2), dtype, f"{mode} {kwargs}",
                                   padding=padding, padding_mode=mode, **kwargs)


@pytest.mark.parametrize("mode", NON_ZERO_MODES)
def test_padding_modes_with_groups_stride_and_dilation_float64(rng, mode):
    check_every_implementation(rng, (2, 6, 7, 8), (4, 3, 3, 2), np.float64, mode,
                               padding=((2, 0), (1, 1)), stride=(2, 1), dilation=(1, 3),
                               groups=2, padding_mode=mode)


@pytest.mark.parametrize("mode", NON_ZERO_MODES)
def test_kernel_refuses_padding_beyond_the_modes_reach(mode):
    # The compiled layer reads padded pixels from the input: a geometry whose padding the
    # mode cannot repeat would index outside it, so the binding refuses it whatever the
    # Python layer did.
    x = np.zeros((1, 1, 2, 2), np.float32)
    w = np.zeros((1, 1, 1, 1), np.float32)
    pad = 2 if mode == "reflect" else 3
    rows = _core.WindowAxis(2, 2 + 2 * pad, 1, 1, 1, pad, pad)
    cols = _core.WindowAxis(2, 2, 1, 1, 1, 0, 0)
    geometry = _core.Conv2dGeometry(1, 1, 1, 1, rows, cols, getattr(_core.PaddingMode, mode))
    y = np.empty((1, 1, 2 + 2 * pad, 2), np.float32)
    if mode == "replicate":
        _core.conv2d_forward(x, w, None, y, geometry)  # replicate reaches any distance
        return
    with pytest.raises(ValueError, match="height: padding"):
        _core.conv2d_forward(x, w, None, y, geometry)


def test_the_input_is_never_padded_beforehand():
    assert not hasattr(_core, "pad2d") and not hasattr(_core, "pad2d_backward")


@st.composite
def padded_cases(draw):
    mode = draw(st.sampled_from(MODES))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))

    def side(size):
        limit = {"reflect": size - 1, "symmetric": size, "circular": size}.get(mode, 3)
        return draw(st.integers(0, max(limit, 0)))

    padding = ((side(h), side(h)), (side(w), side(w)))
    fits = all(size + sum(p) >= d * (k - 1) + 1 for size, p, d, k in
               ((h, padding[0], dilation[0], kh), (w, padding[1], dilation[1], kw)))
    if not fits:  # the dilated kernel must fit the padded input
        padding = ((0, 0), (0, 0))
        kh = kw = 1
    return ((draw(st.integers(1, 2)), c_in, h, w), (c_out, c_in // groups, kh, kw),
            dict(padding=padding, stride=stride, dilation=dilation, groups=groups,
                 padding_mode=mode))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=padded_cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_padding_modes_on_any_shape(rng, case, dtype):
    x_shape, w_shape, kwargs = case
    check_every_implementation(rng, x_shape, w_shape, dtype, str(case), **kwargs)
