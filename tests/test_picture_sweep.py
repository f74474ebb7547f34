"""A 2-D kernel on colour pictures (``conv2d(img, k, padding="same", layout="NHWC")``)
through the fused separable sweep (``csrc/kernels/conv2d_separable.cpp``) and through the
direct plane kernel, against the oracle: uint8 and float pictures, odd sizes, 1, 3 and 4
channels, rank-1 and rank-2 kernels, units of work down to one column, 1 and 2 threads.

Accuracy is judged element by element against ``S = sum |x| |w|`` over each output's
window (the scale of the direct sum's own rounding), as for the FFT path.
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import available_simd_levels, forced_implementation, simd_level
from convpool import conv_separable
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv_fft import assert_within_rounding

NAME = conv_separable.NAME


def gaussian(size: int, sigma: float | None = None) -> np.ndarray:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8 if sigma is None else sigma
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return np.outer(g, g) / g.sum() ** 2


def difference_of_gaussians(size: int) -> np.ndarray:
    """Rank 2."""
    return gaussian(size, size / 6) - gaussian(size, size / 3)


def oracle(picture: np.ndarray, kernel: np.ndarray, dtype, **kwargs):
    """The per-channel correlation of an (H, W, C) picture in float64, and the scale of
    its rounding, both (H', W', C)."""
    planes = picture.astype(np.float64).transpose(2, 0, 1)[:, None]
    k = kernel.astype(dtype).astype(np.float64)[None, None]
    expected = ref.conv2d(planes, k, **kwargs)[:, 0].transpose(1, 2, 0)
    scale = ref.conv2d(np.abs(planes), np.abs(k), **kwargs)[:, 0].transpose(1, 2, 0)
    return expected, scale


def filtered(picture, kernel, name, **kwargs):
    with forced_implementation("conv2d", name):
        return convpool.conv2d(picture, kernel, layout="NHWC", **kwargs)


def check_picture(picture, kernel, name=NAME, where="", **kwargs):
    y = filtered(picture, kernel, name, **kwargs)
    dtype = y.dtype
    expected, scale = oracle(picture, kernel, dtype, **kwargs)
    assert_within_rounding(y, expected, scale, dtype, where)
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("size", [3, 5, 11, 31])
def test_gaussian_blur_of_a_picture_matches_the_oracle(rng, dtype, channels, size):
    picture = rng.standard_normal((37, 53, channels)).astype(dtype)
    check_picture(picture, gaussian(size).astype(dtype), where=f"{size}x{size}",
                  padding="same")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_two_kernels_are_summed_in_one_sweep(rng, dtype):
    picture = rng.standard_normal((41, 29, 3)).astype(dtype)
    kernel = difference_of_gaussians(9).astype(dtype)
    assert conv_separable.factors(kernel, dtype == np.float64).rank == 2
    check_picture(picture, kernel, where="dog", padding="same")


def test_a_uint8_picture_computes_in_float32(rng):
    picture = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)
    kernel = gaussian(7).astype(np.float32)
    y = check_picture(picture, kernel, where="uint8", padding="same")
    assert y.dtype == np.float32 and y.shape == picture.shape


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk", [None, 1, 5, 64])
def test_units_of_work_and_threads_do_not_change_the_result(rng, monkeypatch, threads, chunk):
    """Chunks of output columns down to one (each with its own zero margins), bands of
    rows shared by 1 or 2 threads: the same values as the oracle, and the same bits
    whatever the split (each output is summed in one fixed order)."""
    monkeypatch.setattr(conv_separable, "CHUNK_COLUMNS", chunk)
    picture = rng.standard_normal((67, 45, 3)).astype(np.float32)
    kernel = difference_of_gaussians(7).astype(np.float32)
    convpool.set_num_threads(threads)
    y = check_picture(picture, kernel, where=f"chunk {chunk}, threads {threads}",
                      padding="same")
    monkeypatch.setattr(conv_separable, "CHUNK_COLUMNS", None)
    convpool.set_num_threads(1)
    np.testing.assert_array_equal(y, filtered(picture, kernel, NAME, padding="same"))


@pytest.mark.parametrize("kwargs", [
    dict(padding="same"), dict(padding=0), dict(padding=((3, 0), (0, 5))),
    dict(padding="same", dilation=2), dict(padding=((9, 9), (9, 9))),
])
def test_picture_padding_and_dilation(rng, kwargs):
    picture = rng.standard_normal((23, 31, 4)).astype(np.float32)
    check_picture(picture, gaussian(5).astype(np.float32), where=str(kwargs), **kwargs)


@pytest.mark.parametrize("name", ["plane_rows", "plane"])
@pytest.mark.parametrize("size", [3, 5, 7, 11])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_the_plane_kernels_filter_full_rank_kernels_on_pictures(rng, name, size, channels):
    picture = rng.standard_normal((33, 263, channels)).astype(np.float32)
    kernel = rng.standard_normal((size, size)).astype(np.float32)
    check_picture(picture, kernel, name=name, where=f"{size}x{size}", padding="same")


@pytest.mark.parametrize("kwargs", [
    dict(padding=((1, 2), (0, 3)), dilation=(2, 1)), dict(padding=0),
    dict(padding=((6, 6), (40, 40))), dict(padding="same", dilation=(1, 7)),
])
def test_plane_rows_on_depthwise_planes_with_bias_and_a_channel_multiplier(rng, kwargs):
    """Rows of several output planes read the same input plane; bias per output plane;
    padding rows and columns wider than the kernel (rows and ends clipped)."""
    x = rng.standard_normal((2, 2, 11, 300)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 5)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    with forced_implementation("conv2d", "plane_rows"):
        y = convpool.conv2d(x, w, b, groups=2, **kwargs)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    expected = ref.conv2d(x64, w64, b64, groups=2, **kwargs)
    scale = ref.conv2d(np.abs(x64), np.abs(w64), np.abs(b64), groups=2, **kwargs)
    assert_within_rounding(y, expected, scale, np.float32, str(kwargs))


def test_plane_rows_leaves_small_maps_to_plane(rng):
    x = rng.standard_normal((1, 8, 30, 30)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    assert "plane_rows" not in convpool.implementations("conv2d", x, w, padding=1, groups=8)


def test_a_large_gaussian_on_an_rgb_picture_runs_the_sweep(rng):
    picture = rng.random((300, 400, 3), dtype=np.float32)
    kernel = gaussian(15).astype(np.float32)
    assert convpool.implementation("conv2d", picture, kernel, padding="same",
                                   layout="NHWC") == NAME
    before = conv_separable.run_count("conv2d")
    y = convpool.conv2d(picture, kernel, padding="same", layout="NHWC")
    assert conv_separable.run_count("conv2d") == before + 1
    expected, scale = oracle(picture, kernel, np.float32, padding="same")
    assert_within_rounding(y, expected, scale, np.float32, "15x15")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_plane_rows_places_non_finite_values_as_the_direct_loops(rng, value):
    """Zero padding is no data: taps on it are skipped, so an inf near the edge makes inf
    (not NaN) in every window that holds it, as in the direct loops."""
    picture = rng.standard_normal((20, 100, 3)).astype(np.float32)
    picture[0, 0, 1] = value
    picture[10, 50, 2] = value
    kernel = rng.standard_normal((5, 5)).astype(np.float32)
    ours = filtered(picture, kernel, "plane_rows", padding="same")
    theirs = filtered(picture, kernel, "direct", padding="same")
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    assert (~np.isfinite(ours)).sum() == 2 * 25 - 16  # the corner's window is clipped
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("level", available_simd_levels())
def test_every_instruction_set_build_matches_the_oracle(rng, level):
    """The AVX-512, AVX2 and SSE2 builds: 16, 8 and 4 floats per vector (2 to 8 doubles),
    8 or 4 independent sums, a row's last partial vector."""
    picture = rng.standard_normal((19, 101, 3))
    with simd_level(level):
        for dtype in (np.float32, np.float64):
            check_picture(picture.astype(dtype), difference_of_gaussians(7).astype(dtype),
                          where=f"{level} sweep {dtype}", padding="same")
        check_picture(picture.astype(np.float32),
                      rng.standard_normal((5, 5)).astype(np.float32), name="plane_rows",
                      where=f"{level} plane_rows", padding="same")


@st.composite
def pictures(draw):
    kh, kw = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    if kh + kw >= kh * kw:
        kh, kw = kh + 2, kw + 2
    rank = 2 if 2 * (kh + kw) < kh * kw and draw(st.booleans()) else 1
    h = draw(st.integers(1, 40))
    w = draw(st.integers(1, 40))
    return dict(shape=(h, w, draw(st.sampled_from([1, 2, 3, 4]))), kernel=(kh, kw), rank=rank,
                dtype=draw(st.sampled_from([np.uint8, np.float32, np.float64])),
                dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                seed=draw(st.integers(0, 2 ** 16)), chunk=draw(st.sampled_from([None, 1, 3])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pictures())
def test_any_picture_and_low_rank_kernel_match_the_oracle(case):
    rng = np.random.default_rng(case["seed"])
    kh, kw = case["kernel"]
    kernel = sum(np.outer(rng.standard_normal(kh), rng.standard_normal(kw))
                 for _ in range(case["rank"]))
    dtype = case["dtype"]
    if dtype == np.uint8:
        picture = rng.integers(0, 256, case["shape"], dtype=np.uint8)
        kernel = kernel.astype(np.float32)
    else:
        picture = rng.standard_normal(case["shape"]).astype(dtype)
        kernel = kernel.astype(dtype)
    previous, conv_separable.CHUNK_COLUMNS = conv_separable.CHUNK_COLUMNS, case["chunk"]
    try:
        check_picture(picture, kernel, where=str(case), padding="same",
                      dilation=case["dilation"])
    finally:
        conv_separable.CHUNK_COLUMNS = previous
