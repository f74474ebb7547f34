"""The FFT path (convpool.conv_fft): forward and both gradients against the oracle, how it
is chosen, forced and refused, and that non-finite operands stay on the direct kernels.

Accuracy is judged element by element against ``S = sum |x| |w|`` over each output's
window (the scale of the direct sum's own rounding), plus the transforms' error, which is
relative to the largest such sum of the call.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import forced_implementation
from convpool import conv_fft
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EPS = {np.dtype(np.float32): 2.0 ** -23, np.dtype(np.float64): 2.0 ** -52}


def assert_within_rounding(actual, expected, scale, dtype, where=""):
    """|actual - expected| <= 8 eps(dtype) (|expected| + S) + 1e-13 max(S), elementwise;
    ``scale`` is S, the oracle applied to |operands|."""
    dtype = np.dtype(dtype)
    assert actual.dtype == dtype, f"{where}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} vs {expected.shape}"
    error = np.abs(actual.astype(np.float64) - expected)
    allowed = 8 * EPS[dtype] * (np.abs(expected) + scale) + 1e-13 * (scale.max(initial=0) or 1)
    worst = np.unravel_index(np.argmax(error - allowed), error.shape) if error.size else None
    assert error.size == 0 or error[worst] <= allowed[worst], (
        f"{where}: error {error[worst]:.3g} at {worst}, allowed {allowed[worst]:.3g}")


def run_forced(op, call):
    with forced_implementation(op, conv_fft.NAME):
        return call()


def check_all_passes(rng, x_shape, w_shape, dtype, where, bias=True, **kwargs):
    """Forward, input gradient and weight gradient through the forced FFT path against the
    oracle (computed in float64 on the same operands)."""
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    y = run_forced("conv2d", lambda: convpool.conv2d(x, w, b, **kwargs))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    expected = ref.conv2d(x64, w64, None if b is None else b.astype(np.float64), **kwargs)
    scale = ref.conv2d(np.abs(x64), np.abs(w64), None if b is None else np.abs(b), **kwargs)
    assert_within_rounding(y, expected, scale, dtype, f"{where} forward")

    gy = rng.standard_normal(y.shape).astype(dtype)
    gy64 = gy.astype(np.float64)
    gx = run_forced("conv2d_grad_input",
                    lambda: convpool.conv2d_grad_input(gy, w, x.shape, **kwargs))
    assert_within_rounding(
        gx, ref.conv2d_grad_input(gy64, w64, x.shape, **kwargs),
        ref.conv2d_grad_input(np.abs(gy64), np.abs(w64), x.shape, **kwargs), dtype,
        f"{where} grad_input")

    gw = run_forced("conv2d_grad_weight",
                    lambda: convpool.conv2d_grad_weight(x, gy, w.shape, **kwargs))
    assert_within_rounding(
        gw, ref.conv2d_grad_weight(x64, gy64, w.shape, **kwargs),
        ref.conv2d_grad_weight(np.abs(x64), np.abs(gy64), w.shape, **kwargs), dtype,
        f"{where} grad_weight")


CASES = {
    "odd-kernel-same": ((2, 3, 23, 31), (4, 3, 7, 7), dict(padding="same")),
    "even-kernel-same": ((1, 2, 20, 17), (3, 2, 8, 6), dict(padding="same")),
    "valid": ((2, 2, 19, 26), (2, 2, 9, 11), dict()),
    "asymmetric-padding": ((1, 3, 16, 21), (2, 3, 5, 7), dict(padding=((4, 1), (0, 6)))),
    "padding-beyond-kernel": ((1, 1, 9, 10), (1, 1, 3, 4), dict(padding=((5, 2), (1, 7)))),
    "depthwise": ((2, 4, 18, 22), (4, 1, 9, 9), dict(groups=4, padding=4)),
    "depthwise-multiplier-2": ((1, 3, 15, 14), (6, 1, 5, 5), dict(groups=3, padding=2)),
    "two-per-group": ((2, 6, 12, 13), (9, 2, 5, 4), dict(groups=3, padding="same")),
    "kernel-wider-than-input": ((1, 2, 6, 5), (2, 2, 9, 8), dict(padding=4)),
    "single-plane": ((1, 1, 40, 37), (1, 1, 15, 15), dict(padding="same")),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_fft_matches_the_oracle_in_every_pass(rng, case, dtype):
    x_shape, w_shape, kwargs = CASES[case]
    check_all_passes(rng, x_shape, w_shape, dtype, case, **kwargs)


@pytest.mark.parametrize("threads", [1, 2])
def test_fft_matches_the_oracle_across_many_tiles(rng, monkeypatch, threads):
    # Tiles of a few KiB: many tiles per plane, partial edge tiles, shared by the threads.
    monkeypatch.setattr(conv_fft, "TILE_BYTES", 20_000)
    convpool.set_num_threads(threads)
    conv_fft._plan_for.cache_clear()
    try:
        plan = conv_fft._plan_for("conv2d", 3, 2, 3, 1, 7, 5, 41, 53)
        assert plan.th < 41 and plan.tw < 53, plan
        check_all_passes(rng, (3, 2, 41, 53), (3, 2, 7, 5), np.float32, "tiled",
                         padding="same")
    finally:
        conv_fft._plan_for.cache_clear()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "symmetric", "circular"])
def test_fft_leaves_non_zero_padding_modes_to_the_compiled_kernels(rng, mode):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    w = rng.standard_normal((1, 1, 63, 63)).astype(np.float32)
    assert convpool.implementation("conv2d", x, w, padding="same") == conv_fft.NAME
    assert convpool.implementation("conv2d", x, w, padding="same",
                                   padding_mode=mode) != conv_fft.NAME
    assert conv_fft.NAME not in convpool.implementations("conv2d", x, w, padding="same",
                                                         padding_mode=mode)
    with pytest.raises(ValueError, match="non-zero padding mode"):
        run_forced("conv2d", lambda: convpool.conv2d(x, w, padding="same", padding_mode=mode))
    # Without padding the mode is moot, and the FFT path serves the call.
    assert convpool.implementation("conv2d", x, w, padding_mode=mode) == conv_fft.NAME


def test_fft_results_agree_across_thread_counts(rng):
    x = rng.standard_normal((2, 2, 70, 90)).astype(np.float32)
    w = rng.standard_normal((3, 2, 21, 21)).astype(np.float32)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        results.append(run_forced("conv2d", lambda: convpool.conv2d(x, w, padding="same")))
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=1e-5 * np.abs(results[0]).max())


def test_fft_writes_into_out(rng):
    x = rng.standard_normal((1, 1, 30, 30))
    w = rng.standard_normal((1, 1, 11, 11))
    out = np.full((1, 1, 30, 30), np.nan)
    result = run_forced("conv2d", lambda: convpool.conv2d(x, w, padding="same", out=out))
    assert result is out
    np.testing.assert_allclose(out, ref.conv2d(x, w, padding="same"), atol=1e-10)


def large_picture_case(rng):
    x = rng.standard_normal((1, 1, 300, 400)).astype(np.float32)
    w = rng.standard_normal((1, 1, 63, 63)).astype(np.float32)
    return x, w


def test_implementation_names_fft_for_a_large_kernel_and_the_call_runs_it(rng):
    x, w = large_picture_case(rng)
    assert convpool.implementation("conv2d", x, w, padding="same") == conv_fft.NAME
    assert convpool.implementations("conv2d", x, w, padding="same")[0] == conv_fft.NAME
    before = conv_fft.run_count("conv2d")
    convpool.conv2d(x, w, padding="same")
    assert conv_fft.run_count("conv2d") == before + 1


def test_small_kernels_stay_on_the_compiled_kernels(rng):
    x = rng.standard_normal((1, 16, 64, 64)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    assert convpool.implementation("conv2d", x, w, padding=1) != conv_fft.NAME
    # supported, listed last: the cost model expects the compiled kernels to be faster
    assert convpool.implementations("conv2d", x, w, padding=1)[-1] == conv_fft.NAME


def test_a_forced_compiled_implementation_wins_over_the_fft_choice(rng):
    x, w = large_picture_case(rng)
    with forced_implementation("conv2d", "direct"):
        assert convpool.implementation("conv2d", x, w) == "direct"
        convpool.conv2d(x, w)


@pytest.mark.parametrize("op", ["conv2d", "conv2d_grad_input", "conv2d_grad_weight"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_operands_take_the_direct_kernels(rng, op, value):
    x, w = large_picture_case(rng)
    x[0, 0, 150, 200] = value
    gy = np.ones_like(x)
    gy[0, 0, 150, 200] = value
    args = {"conv2d": (x, w), "conv2d_grad_input": (gy, w, x.shape),
            "conv2d_grad_weight": (x, gy, w.shape)}[op]
    assert convpool.implementation(op, *args, padding="same") != conv_fft.NAME
    assert conv_fft.NAME not in convpool.implementations(op, *args, padding="same")
    result = getattr(convpool, op)(*args, padding="same")
    if op == "conv2d":  # non-finite exactly inside the 63x63 window around the pixel
        bad = ~np.isfinite(result[0, 0])
        rows, cols = np.nonzero(bad)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (119, 181, 169, 231)
        assert bad.sum() == 63 * 63
    with pytest.raises(ValueError, match=r"forced implementation 'fft' does not support .*NaN"):
        run_forced(op, lambda: getattr(convpool, op)(*args, padding="same"))


@pytest.mark.parametrize("kwargs, rule", [(dict(stride=2), "stride 2"),
                                          (dict(dilation=(1, 3)), "dilation 3 along cols")])
def test_forcing_fft_on_an_unsupported_geometry_raises(rng, kwargs, rule):
    x = rng.standard_normal((1, 2, 20, 20))
    w = rng.standard_normal((2, 2, 5, 5))
    assert conv_fft.NAME not in convpool.implementations("conv2d", x, w, **kwargs)
    with pytest.raises(ValueError, match=rf"conv2d: the forced implementation 'fft' does not "
                                         rf"support this case \({rule}"):
        run_forced("conv2d", lambda: convpool.conv2d(x, w, **kwargs))


def test_forcing_an_unknown_operation_is_refused():
    with pytest.raises(ValueError, match="op: expected one of"):
        conv_fft.force("max_pool2d", True)


def test_the_cost_model_prefers_fft_as_the_kernel_grows():
    def choice(k):
        geometry = convpool.geometry.conv_geometry((1, 1, 1000, 1000), (1, 1, k, k), 1,
                                                   "same", 1, 1, "zeros").kernel_geometry
        return conv_fft.cheaper("conv2d", geometry)
    chosen = [choice(k) for k in (3, 5, 7, 11, 15, 21, 31, 63)]
    assert chosen == sorted(chosen), chosen  # once FFT, FFT for every larger kernel
    assert not chosen[0] and chosen[-1], chosen


@st.composite
def fft_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    padding = ((draw(st.integers(0, 6)), draw(st.integers(0, 6))),
               (draw(st.integers(0, 6)), draw(st.integers(0, 6))))
    if h + sum(padding[0]) < kh or w + sum(padding[1]) < kw:
        padding = "same"
    return ((draw(st.integers(1, 3)), c_in, h, w), (c_out, c_in // groups, kh, kw),
            dict(groups=groups, padding=padding))


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=fft_cases(), dtype=st.sampled_from([np.float32, np.float64]))
def test_fft_matches_the_oracle_on_drawn_shapes(case, dtype):
    x_shape, w_shape, kwargs = case
    try:
        ref.conv2d(np.zeros(x_shape), np.zeros(w_shape), **kwargs)
    except ValueError:
        return  # a geometry the functions refuse (e.g. padding wider than the input)
    check_all_passes(np.random.default_rng(7), x_shape, w_shape, dtype, str(case), **kwargs)


def test_float64_operands_beyond_the_transform_range_take_the_direct_kernels(rng):
    x, w = large_picture_case(rng)
    x = x.astype(np.float64)
    x[0, 0, 0, 0] = 1e200  # a tile's transform could overflow where the direct sum does not
    assert conv_fft.NAME not in convpool.implementations("conv2d", x, w)
    with pytest.raises(ValueError, match="magnitude beyond 1e"):
        run_forced("conv2d", lambda: convpool.conv2d(x, w))
