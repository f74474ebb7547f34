"""NaN, inf and float32 overflow through every compiled convolution path.

The direct sum is the definition: an output (or weight-gradient tap) is the sum of the
products its window reads, taps in the zero padding skipped. Every fast path must put
NaN and inf exactly where the direct sum puts them, and be finite where it is finite:
Winograd's transforms (which mix a whole patch into every transformed point, and can
overflow float32 on finite input) and the zero-padded vectors of the plane and blocked
weight gradients must not spread a non-finite value to taps that never read it.
(The rule, and how the kernels keep it, is docs/winograd-numerics.md.)
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import conv2d_variants, forced_conv2d_implementation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _same_non_finite(actual: np.ndarray, expected: np.ndarray, where: str) -> None:
    """NaN, +inf and -inf at exactly the same places, finite values close."""
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        got, want = test(actual), test(expected)
        assert (got == want).all(), (
            f"{where}: {name} at {int(got.sum())} places, the direct sum has it at "
            f"{int(want.sum())}; first difference at "
            f"{np.unravel_index(int(np.argmax(got != want)), got.shape)}"
        )
    finite = np.isfinite(expected)
    scale = float(np.max(np.abs(expected[finite]), initial=1.0))
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-4, atol=1e-4 * scale,
                               err_msg=where)


def _direct(pass_: str, call):
    with forced_conv2d_implementation(pass_, "direct"):
        return call()


# --- the cases that were wrong ------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_plane_weight_gradient_keeps_a_nan_to_the_taps_that_read_it(value):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 3, 3] = value
    gy = np.ones((1, 1, 2, 2), np.float32)
    expected = np.zeros((3, 3))
    expected[2, 2] = value  # only the last tap of the last output reads pixel (3, 3)
    for label in conv2d_variants("grad_weight", x, np.zeros((1, 1, 3, 3), np.float32), gy):
        gw = convpool.conv2d_grad_weight(x, gy, (1, 1, 3, 3))
        _same_non_finite(gw[0, 0], expected, label)
    _same_non_finite(convpool.conv2d_grad_weight(x.astype(np.float64), gy, (1, 1, 3, 3))[0, 0],
                     expected, "float64")


def test_winograd_weight_gradient_spreads_a_nan_pixel_only_to_the_taps_that_read_it():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    gy = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    x[0, 3, 0, 0] = np.nan  # a corner: with padding 1 only taps (1..2, 1..2) read it
    expected = convpool.conv2d_grad_weight(x.astype(np.float64), gy, (16, 16, 3, 3), padding=1)
    assert np.isnan(expected).sum() == 16 * 4
    with forced_conv2d_implementation("grad_weight", "winograd"):
        gw = convpool.conv2d_grad_weight(x, gy, (16, 16, 3, 3), padding=1)
    _same_non_finite(gw, expected, "winograd")


@pytest.mark.parametrize("magnitude", [2e38, 1e38])
def test_winograd_forward_stays_finite_where_the_direct_sum_is_finite(magnitude):
    x = np.full((1, 16, 16, 16), magnitude, np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    w[:, 0, 1, 0] = 1
    w[:, 0, 1, 1] = -1
    expected = np.zeros((1, 16, 16, 16), np.float32)
    expected[..., 0] = -np.float32(magnitude)  # tap (1, 0) of the first column is padding
    assert "winograd" in convpool.implementations("conv2d", x, w, padding=1)
    for label in conv2d_variants("forward", x, w, None, padding=1):
        y = convpool.conv2d(x, w, padding=1)
        if label.endswith("=fft"):  # exact up to the transforms' ~1e-16 of sum |x| |w|
            assert np.isfinite(y).all(), label
            np.testing.assert_allclose(y, expected, rtol=0, atol=1e-13 * 2 * magnitude)
        else:
            np.testing.assert_array_equal(y, expected, err_msg=label)


# --- every implementation agrees with the direct sum ----------------------------------

# (x shape, weight shape, keyword arguments): cases each fast path supports.
CASES = {
    "winograd": ((2, 16, 9, 10), (16, 16, 3, 3), dict(padding=1)),
    "winograd-stride2": ((1, 16, 11, 9), (16, 16, 3, 3), dict(stride=2, padding=1)),
    "winograd-pad2": ((1, 16, 6, 7), (17, 16, 3, 3), dict(padding=2)),
    "blocked": ((2, 4, 9, 11), (8, 4, 3, 3), dict(padding=1)),
    "blocked-rows": ((1, 3, 7, 40), (4, 3, 5, 5), dict(padding=2)),
    "plane": ((2, 3, 8, 21), (3, 1, 3, 3), dict(padding=1, groups=3)),
    "plane-dilated": ((1, 1, 9, 9), (1, 1, 3, 3), dict(padding=(2, 1), dilation=2)),
}


def _spoil(rng, a: np.ndarray, count: int) -> np.ndarray:
    a = a.copy()
    picks = rng.choice(a.size, min(count, a.size), replace=False)
    a.reshape(-1)[picks] = rng.choice([np.nan, np.inf, -np.inf], len(picks))
    return a


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(sorted(CASES)), seed=st.integers(0, 2**32 - 1),
       spoil_x=st.integers(0, 4), spoil_gy=st.integers(0, 4), spoil_w=st.integers(0, 2),
       spoil_bias=st.integers(0, 1))
def test_non_finite_values_land_where_the_direct_sum_puts_them(case, seed, spoil_x, spoil_gy,
                                                               spoil_w, spoil_bias):
    rng = np.random.default_rng(seed)
    x_shape, w_shape, kwargs = CASES[case]
    x = _spoil(rng, rng.standard_normal(x_shape).astype(np.float32), spoil_x)
    w = _spoil(rng, rng.standard_normal(w_shape).astype(np.float32), spoil_w)
    bias = _spoil(rng, rng.standard_normal(w_shape[0]).astype(np.float32), spoil_bias)
    y_shape = convpool.conv2d(np.zeros(x_shape, np.float32), w, **kwargs).shape
    gy = _spoil(rng, rng.standard_normal(y_shape).astype(np.float32), spoil_gy)
    passes = {
        "forward": lambda: convpool.conv2d(x, w, bias, **kwargs),
        "grad_input": lambda: convpool.conv2d_grad_input(gy, w, x_shape, **kwargs),
        "grad_weight": lambda: convpool.conv2d_grad_weight(x, gy, w_shape, **kwargs),
    }
    for pass_, call in passes.items():
        expected = _direct(pass_, call)
        for label in conv2d_variants(pass_, x, w, gy, **kwargs):
            _same_non_finite(call(), expected, f"{case} {label}")


@pytest.mark.parametrize("pass_", ["forward", "grad_input"])
@pytest.mark.parametrize("x_shape, w_shape, groups", [
    ((1, 4, 9, 40), (4, 4, 3, 3), 1),     # blocked (row tiles and channel tiles)
    ((1, 16, 8, 8), (16, 16, 3, 3), 1),   # winograd
    ((1, 3, 8, 20), (3, 1, 3, 3), 3),     # plane
], ids=["blocked", "winograd", "plane"])
def test_an_inf_weight_does_not_reach_outputs_through_the_padding(pass_, x_shape, w_shape,
                                                                   groups):
    """The corner tap of a 3x3 kernel is inf: outputs whose corner tap falls in the zero
    padding skip it (finite), the others are inf or NaN, in every implementation."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    w[:, :, 0, 0] = np.inf
    gy = rng.standard_normal(x_shape[:1] + w_shape[:1] + x_shape[2:]).astype(np.float32)
    call = {
        "forward": lambda: convpool.conv2d(x, w, padding=1, groups=groups),
        "grad_input": lambda: convpool.conv2d_grad_input(gy, w, x_shape, padding=1, groups=groups),
    }[pass_]
    expected = _direct(pass_, call)
    assert np.isfinite(expected).any() and not np.isfinite(expected).all()
    for label in conv2d_variants(pass_, np.zeros(x_shape, np.float32), w, gy, padding=1,
                                 groups=groups):
        _same_non_finite(call(), expected, label)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), stride=st.sampled_from([1, 2]),
       padding=st.integers(0, 2), exponent=st.floats(36.0, 38.5))
def test_winograd_forward_on_huge_finite_input_matches_the_direct_sum(seed, stride, padding,
                                                                       exponent):
    """Sparse +-1 kernels over inputs near float32's limit: the direct sum is finite or
    not depending on which taps meet; Winograd's transforms must not add overflows."""
    rng = np.random.default_rng(seed)
    shape = (1, 16, 8, 9)
    x = rng.choice([-1.0, 1.0], shape) * 10.0**exponent * rng.uniform(0.5, 1, shape)
    x = x.astype(np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)
    for q in range(16):
        taps = rng.choice(16 * 9, 2, replace=False)
        w[q].reshape(-1)[taps] = rng.choice([-1.0, 1.0], 2)
    expected = _direct("forward", lambda: convpool.conv2d(x, w, stride=stride, padding=padding))
    with forced_conv2d_implementation("forward", "winograd"):
        y = convpool.conv2d(x, w, stride=stride, padding=padding)
    _same_non_finite(y, expected, "winograd")


def test_winograd_weight_gradient_does_not_overflow_where_the_direct_sum_does_not():
    """Pixels near float32's limit times a small output gradient: every product and sum
    is finite, but the input transform adds up to four such pixels."""
    rng = np.random.default_rng(3)
    x = (rng.uniform(0.9, 1.0, (1, 16, 8, 8)) * 3e38).astype(np.float32)
    gy = rng.uniform(0.0, 1e-3, (1, 16, 8, 8)).astype(np.float32)
    expected = _direct("grad_weight", lambda: convpool.conv2d_grad_weight(x, gy, (16, 16, 3, 3),
                                                                          padding=1))
    assert np.isfinite(expected).all()
    with forced_conv2d_implementation("grad_weight", "winograd"):
        gw = convpool.conv2d_grad_weight(x, gy, (16, 16, 3, 3), padding=1)
    _same_non_finite(gw, expected, "winograd")
