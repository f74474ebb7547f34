"""The FFT path (convpool.conv_fft): forward and both gradients against the oracle, how it
is chosen, forced and refused, and that non-finite operands stay on the direct kernels.

Accuracy is judged against ``S = sum |x| |w|`` over each output's window (the scale of
the direct sum's own rounding): norm-wise, ``||y - y_exact|| <= 4 eps ||S||``, for every
call; element by element (``8 eps (|y| + S)`` plus the transforms' error relative to the
largest such sum) where the transforms are float64 (float64 operands, and float32 ones
with ``conv_fft.FLOAT64_TRANSFORMS``).
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


def assert_within_rounding_normwise(actual, expected, scale, dtype, where=""):
    """||actual - expected||_2 <= 4 eps(dtype) ||S||_2, ``scale`` being S."""
    dtype = np.dtype(dtype)
    assert actual.dtype == dtype, f"{where}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} vs {expected.shape}"
    error = np.linalg.norm(actual.astype(np.float64) - expected)
    allowed = 4 * EPS[dtype] * np.linalg.norm(scale)
    assert error <= allowed, f"{where}: norm-wise error {error:.3g}, allowed {allowed:.3g}"


def assert_accurate(actual, expected, scale, dtype, where=""):
    """The bound the path promises for this dtype (the module's docstring)."""
    assert_within_rounding_normwise(actual, expected, scale, dtype, where)
    if np.dtype(dtype) == np.float64 or conv_fft.FLOAT64_TRANSFORMS:
        assert_within_rounding(actual, expected, scale, dtype, where)


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
    assert_accurate(y, expected, scale, dtype, f"{where} forward")

    gy = rng.standard_normal(y.shape).astype(dtype)
    gy64 = gy.astype(np.float64)
    gx = run_forced("conv2d_grad_input",
                    lambda: convpool.conv2d_grad_input(gy, w, x.shape, **kwargs))
    assert_accurate(
        gx, ref.conv2d_grad_input(gy64, w64, x.shape, **kwargs),
        ref.conv2d_grad_input(np.abs(gy64), np.abs(w64), x.shape, **kwargs), dtype,
        f"{where} grad_input")

    gw = run_forced("conv2d_grad_weight",
                    lambda: convpool.conv2d_grad_weight(x, gy, w.shape, **kwargs))
    assert_accurate(
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


@pytest.mark.parametrize("case", ["odd-kernel-same", "two-per-group", "padding-beyond-kernel"])
def test_float64_transforms_of_float32_operands_hold_element_by_element(rng, case, monkeypatch):
    monkeypatch.setattr(conv_fft, "FLOAT64_TRANSFORMS", True)
    x_shape, w_shape, kwargs = CASES[case]
    check_all_passes(rng, x_shape, w_shape, np.float32, case, **kwargs)


@pytest.mark.parametrize("float64_transforms", [False, True])
def test_a_dark_region_beside_a_bright_one_stays_within_rounding(rng, monkeypatch,
                                                                 float64_transforms):
    # float32 transforms spread the bright half's rounding over the tile: still within the
    # norm-wise bound; float64 transforms keep the dark half exact to its own scale.
    monkeypatch.setattr(conv_fft, "FLOAT64_TRANSFORMS", float64_transforms)
    x = rng.random((1, 1, 60, 80)).astype(np.float32)
    x[..., 40:] *= 1e-4
    w = rng.random((1, 1, 15, 15)).astype(np.float32)
    y = run_forced("conv2d", lambda: convpool.conv2d(x, w, padding="same"))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    expected = ref.conv2d(x64, w64, padding="same")
    assert_accurate(y, expected, expected, np.float32, "dark beside bright")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fft_matches_the_oracle_on_one_and_two_threads(rng, threads, dtype):
    convpool.set_num_threads(threads)
    check_all_passes(rng, (3, 4, 37, 45), (6, 2, 13, 11), dtype, f"{threads} threads",
                     groups=2, padding="same")


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


def test_the_compiled_correlation_reads_and_writes_strided_arrays(rng):
    # a channels-last picture read as NCHW, into a channels-last result: no copies
    x = rng.standard_normal((2, 23, 29, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    w = rng.standard_normal((3, 1, 9, 7)).astype(np.float32)
    out = np.empty((2, 23, 29, 3), np.float32).transpose(0, 3, 1, 2)
    convpool._core.fft_correlate(x, w, None, out, 3, 4, 3, (32, 24, 24, 18), True)
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), groups=3, padding=(4, 3))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_the_compiled_correlation_refuses_bad_arguments(rng):
    x = np.zeros((1, 2, 10, 10), np.float32)
    w = np.zeros((2, 2, 3, 3), np.float32)
    out = np.zeros((1, 2, 10, 10), np.float32)
    correlate = convpool._core.fft_correlate
    with pytest.raises(ValueError, match=r"transform \(8 x 8\) must hold a tile plus the "
                                         r"kernel's halo \(10 x 10\)"):
        correlate(x, w, None, out, 1, 1, 1, (8, 8, 8, 8), False)
    with pytest.raises(ValueError, match="tiles must be at least 1 x 1"):
        correlate(x, w, None, out, 1, 1, 1, (8, 8, 0, 6), False)
    with pytest.raises(TypeError, match="weight: dtype must be float32, got float64"):
        correlate(x, w.astype(np.float64), None, out, 1, 1, 1, (16, 16, 8, 8), False)
    with pytest.raises(ValueError, match=r"weight: expected shape \(2, 1, 3, 3\)"):
        correlate(x, w, None, out, 2, 1, 1, (16, 16, 8, 8), False)
    with pytest.raises(ValueError, match="out must not share memory with x"):
        correlate(x, w, None, x, 1, 1, 1, (16, 16, 8, 8), False)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: array is read-only"):
        correlate(x, w, None, out, 1, 1, 1, (16, 16, 8, 8), False)
    with pytest.raises(ValueError, match="groups: must be >= 1 and divide"):
        convpool._core.fft_correlate_weight(x, np.zeros((1, 2, 10, 10), np.float32), w, 3, 1, 1,
                                            (16, 16, 8, 8), False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_kernel_on_a_channels_last_picture_runs_the_fft_path(rng, dtype):
    # (H, W, C) pictures run as one (H, W * C) plane with the kernel dilated by C along
    # the columns: the FFT path reads it as C interleaved planes, without a copy.
    picture = rng.random((200, 240, 3)).astype(dtype)
    kernel = rng.standard_normal((31, 31)).astype(dtype)
    assert convpool.implementation("conv2d", picture, kernel, padding="same",
                                   layout="NHWC") == conv_fft.NAME
    before = conv_fft.run_count("conv2d")
    y = convpool.conv2d(picture, kernel, padding="same", layout="NHWC")
    assert conv_fft.run_count("conv2d") == before + 1
    planes = picture.astype(np.float64).transpose(2, 0, 1)[:, None]
    k64 = kernel.astype(np.float64)[None, None]
    expected = ref.conv2d(planes, k64, padding="same")[:, 0].transpose(1, 2, 0)
    scale = ref.conv2d(np.abs(planes), np.abs(k64), padding="same")[:, 0].transpose(1, 2, 0)
    assert_accurate(y, expected, scale, dtype, "channels-last picture")


@pytest.mark.parametrize("padding", [((4, 2), (6, 9)), "same"])
def test_interleaved_planes_match_the_oracle_in_every_pass(rng, padding):
    # the geometry of a picture's interleaved row: one channel, columns dilated by 3
    check_all_passes(rng, (2, 1, 17, 3 * 13), (1, 1, 5, 5), np.float64, "interleaved",
                     padding=padding, dilation=(1, 3))


def test_a_dilation_that_does_not_interleave_is_refused():
    g = convpool.geometry.conv_geometry((1, 1, 20, 31), (1, 1, 5, 5), 1, 0, (1, 3), 1,
                                        "zeros").kernel_geometry
    assert conv_fft.unsupported("conv2d", g, False) == (
        "dilation 3 along cols: the FFT path serves dilation 1")


def test_float32_operands_beyond_the_float32_transform_range_take_the_direct_kernels(rng):
    x, w = large_picture_case(rng)
    x[0, 0, 0, 0] = 1e20  # finite in float32; a float32 tile transform could overflow
    assert conv_fft.NAME not in convpool.implementations("conv2d", x, w)
    with pytest.raises(ValueError, match=r"magnitude beyond 1e\+10"):
        run_forced("conv2d", lambda: convpool.conv2d(x, w))
