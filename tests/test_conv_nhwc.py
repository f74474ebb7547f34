"""Channels-last convolution: ``layout="NHWC"`` on conv2d and its gradients, the NHWC
kernels (every implementation forced in turn, each asserted to have run), NCHW-shaped
arrays stored channels-last (served without a copy), and a 2-D kernel on colour pictures.
Every result is compared with the NCHW oracle, transposed."""

from __future__ import annotations

import tracemalloc
import zlib

import convpool
import convpool.reference as ref
import numpy as np
import pytest
from conftest import assert_close, conv2d_variants
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


def to_nhwc(a: np.ndarray) -> np.ndarray:
    """An NCHW (or unbatched CHW) array as a C-contiguous channels-last copy."""
    axes = (0, 2, 3, 1) if a.ndim == 4 else (1, 2, 0)
    return np.ascontiguousarray(a.transpose(axes))


def to_nchw(a: np.ndarray) -> np.ndarray:
    axes = (0, 3, 1, 2) if a.ndim == 4 else (2, 0, 1)
    return np.ascontiguousarray(a.transpose(axes))


def random_array(rng, shape, dtype) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def check_nhwc_against_oracle(rng, x, w, b=None, where="", **kwargs) -> list[str]:
    """Forward and the three gradients in NHWC, each implementation forced at each SIMD
    level, vs the oracle's NCHW results transposed. ``x`` is NCHW (or CHW). Returns the
    implementations that ran."""
    expected = ref.conv2d(x, w, b, **kwargs)
    dtype = expected.dtype
    x_nhwc = to_nhwc(x)
    grad_y = random_array(rng, to_nhwc(expected).shape, dtype)
    ran = []
    for label in conv2d_variants("forward", x_nhwc, w, grad_y, layout="NHWC", **kwargs):
        assert "=nhwc_" in label, label
        ran.append(label.split("=")[-1])
        y = convpool.conv2d(x_nhwc, w, b, layout="NHWC", **kwargs)
        assert y.flags.c_contiguous
        assert_close(y, to_nhwc(expected), dtype, f"{where} forward {label}")
    grad_y_nchw = to_nchw(grad_y)
    expected_gx = to_nhwc(ref.conv2d_grad_input(grad_y_nchw, w, x.shape, **kwargs))
    for label in conv2d_variants("grad_input", x_nhwc, w, grad_y, layout="NHWC", **kwargs):
        assert "=nhwc_" in label, label
        got = convpool.conv2d_grad_input(grad_y, w, x_nhwc.shape, layout="NHWC", **kwargs)
        assert_close(got, expected_gx, dtype, f"{where} grad_input {label}")
    expected_gw = ref.conv2d_grad_weight(x, grad_y_nchw, w.shape, **kwargs)
    for label in conv2d_variants("grad_weight", x_nhwc, w, grad_y, layout="NHWC", **kwargs):
        assert "=nhwc_" in label, label
        got = convpool.conv2d_grad_weight(x_nhwc, grad_y, w.shape, layout="NHWC", **kwargs)
        assert_close(got, expected_gw, dtype, f"{where} grad_weight {label}")
    assert_close(convpool.conv2d_grad_bias(grad_y, layout="NHWC"),
                 ref.conv2d_grad_bias(grad_y_nchw), dtype, f"{where} grad_bias")
    return ran


# (x NCHW shape, weight shape, keyword arguments): dense layers with output channels that
# fill whole vectors or leave tails, the edges of every tile, strides, dilations, groups,
# depthwise layers, asymmetric padding and every padding mode.
LAYERS = [
    ((2, 8, 9, 11), (24, 8, 3, 3), dict(padding=1)),
    ((1, 16, 7, 13), (64, 16, 3, 3), dict(padding=1)),
    ((1, 6, 8, 8), (33, 6, 1, 1), {}),
    ((2, 7, 12, 10), (20, 7, 3, 3), dict(stride=2, padding=1)),
    ((1, 5, 11, 14), (16, 5, 5, 5), dict(padding=((2, 0), (3, 1)), dilation=(1, 2))),
    ((1, 12, 9, 9), (18, 4, 3, 3), dict(padding=1, groups=3)),
    ((2, 16, 10, 9), (16, 1, 3, 3), dict(padding=1, groups=16)),
    ((1, 4, 9, 8), (8, 1, 3, 3), dict(padding=1, groups=4)),
    ((1, 24, 12, 12), (24, 1, 5, 5), dict(stride=2, padding=2, groups=24)),
    ((1, 3, 15, 17), (16, 3, 7, 7), dict(stride=2, padding=3)),
    ((1, 8, 6, 7), (16, 8, 3, 3), dict(padding=2, padding_mode="reflect")),
    ((1, 4, 6, 7), (8, 4, 3, 2), dict(padding=(1, 2), padding_mode="circular")),
    ((1, 4, 5, 6), (8, 2, 3, 3), dict(padding=1, groups=2, padding_mode="replicate")),
    ((1, 8, 4, 4), (16, 8, 3, 3), dict(padding=4)),  # windows wider than the picture
    # input channels in several chunks (partial sums added to the output), a 7x7 plane
    ((1, 160, 7, 7), (40, 160, 3, 3), dict(padding=1)),
    ((2, 130, 5, 9), (20, 130, 1, 1), {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", LAYERS)
def test_nhwc_passes_match_the_oracle(rng, x_shape, w_shape, kwargs, dtype):
    x, w = random_array(rng, x_shape, dtype), random_array(rng, w_shape, dtype)
    b = random_array(rng, (w_shape[0],), dtype)
    check_nhwc_against_oracle(rng, x, w, b, where=f"{x_shape} {w_shape} {kwargs}", **kwargs)


def test_unbatched_nhwc_picture_matches_the_oracle(rng):
    x = random_array(rng, (5, 9, 8), np.float32)
    w = random_array(rng, (16, 5, 3, 3), np.float32)
    y = convpool.conv2d(to_nhwc(x), w, padding=1, layout="NHWC")
    assert y.shape == (9, 8, 16)
    assert_close(y, to_nhwc(ref.conv2d(x, w, padding=1)), np.float32)
    check_nhwc_against_oracle(rng, x, w, padding=1)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((1, 16, 8, 8), (32, 16, 3, 3), dict(padding=1)),
    ((2, 64, 7, 7), (64, 64, 1, 1), {}),
    ((1, 32, 9, 9), (48, 32, 3, 3), dict(stride=2, padding=1)),
    ((1, 32, 9, 9), (48, 32, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((1, 32, 10, 9), (48, 32, 1, 1), dict(stride=2)),
])
def test_register_tiles_support_the_dense_layers(x_shape, w_shape, kwargs):
    """The blocked channels-last kernels take the dense layers of real networks (a predicate
    that stopped accepting them would move these cases to the loop nests; 3x3 stride-1
    layers run nhwc_winograd ahead of it)."""
    x = np.zeros(x_shape[:1] + x_shape[2:] + x_shape[1:2], np.float32)
    w = np.zeros(w_shape, np.float32)
    y = convpool.conv2d(x, w, layout="NHWC", **kwargs)
    assert "nhwc_blocked" in convpool.implementations("conv2d", x, w, layout="NHWC", **kwargs)
    assert convpool.implementation("conv2d_grad_weight", x, y, w.shape, layout="NHWC",
                                   **kwargs) == "nhwc_blocked"
    assert "nhwc_blocked" in convpool.implementations("conv2d_grad_input", y, w, x.shape,
                                                      layout="NHWC", **kwargs)


def test_layouts_keep_to_their_own_kernels(rng):
    """An NCHW call never runs a channels-last kernel and an NHWC call never an NCHW one:
    forcing one across layouts is refused, not run on the wrong memory order."""
    x = random_array(rng, (1, 4, 6, 6), np.float32)
    w = random_array(rng, (8, 4, 3, 3), np.float32)
    assert all(not name.startswith("nhwc_")
               for name in convpool.implementations("conv2d", x, w, padding=1))
    assert all(name.startswith("nhwc_") for name in
               convpool.implementations("conv2d", to_nhwc(x), w, padding=1, layout="NHWC"))
    convpool._core.force_implementation("conv2d", "nhwc_loops")
    try:
        with pytest.raises(ValueError, match="does not support this case"):
            convpool.conv2d(x, w, padding=1)
    finally:
        convpool._core.force_implementation("conv2d", "")
    convpool._core.force_implementation("conv2d", "direct")
    try:
        with pytest.raises(ValueError, match="channels-last"):
            convpool.conv2d(to_nhwc(x), w, padding=1, layout="NHWC")
    finally:
        convpool._core.force_implementation("conv2d", "")


@st.composite
def nhwc_configs(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 6))
    c_out = groups * draw(st.integers(1, 12))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 12))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(
        st.integers(0, 2),
        st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                  st.tuples(st.integers(0, 3), st.integers(0, 3))),
        st.sampled_from(["valid", "same"]),
    ))
    mode = draw(st.sampled_from(MODES))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    batched = draw(st.booleans())
    x_shape = ((draw(st.integers(1, 2)),) if batched else ()) + (c_in, h, w)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=mode)
    return x_shape, (c_out, c_in // groups, kh, kw), dtype, kwargs


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(nhwc_configs())
def test_random_nhwc_configurations(config):
    x_shape, w_shape, dtype, kwargs = config
    rng = np.random.default_rng(zlib.crc32(repr(config).encode()))
    x, w = random_array(rng, x_shape, dtype), random_array(rng, w_shape, dtype)
    try:
        ref.conv2d(x, w, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            convpool.conv2d(to_nhwc(x), w, layout="NHWC", **kwargs)
        assume(False)
    b = random_array(rng, (w_shape[0],), dtype)
    check_nhwc_against_oracle(rng, x, w, b, where=str(config), **kwargs)


# --- NCHW-shaped arrays stored channels-last --------------------------------------------

def peak_bytes_of(call) -> tuple[object, int]:
    """``call()``'s result and the most memory NumPy (and the kernels' scratch, which is
    not traced: a lower bound) held at once during it beyond what was held before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


def test_channels_last_views_run_the_nhwc_kernels_without_a_copy(rng):
    x_nhwc = random_array(rng, (2, 64, 64, 32), np.float32)  # 1 MiB
    x = x_nhwc.transpose(0, 3, 1, 2)  # NCHW-shaped, channels-last storage
    w = random_array(rng, (4, 32, 3, 3), np.float32)
    assert convpool.implementation("conv2d", x, w, stride=2, padding=1).startswith("nhwc_")
    y, peak = peak_bytes_of(lambda: convpool.conv2d(x, w, stride=2, padding=1))
    assert peak < x.nbytes // 4, f"{peak} bytes allocated for a {x.nbytes}-byte input"
    assert y.shape == (2, 4, 32, 32)
    assert not y.flags.c_contiguous and y.transpose(0, 2, 3, 1).flags.c_contiguous
    assert_close(y, ref.conv2d(x, w, stride=2, padding=1), np.float32)

    grad_y = random_array(rng, (2, 32, 32, 4), np.float32).transpose(0, 3, 1, 2)
    gx = convpool.conv2d_grad_input(grad_y, w, x.shape, stride=2, padding=1)
    assert gx.transpose(0, 2, 3, 1).flags.c_contiguous
    assert_close(gx, ref.conv2d_grad_input(grad_y, w, x.shape, stride=2, padding=1),
                 np.float32)
    gw, peak = peak_bytes_of(
        lambda: convpool.conv2d_grad_weight(x, grad_y, w.shape, stride=2, padding=1))
    assert peak < x.nbytes // 4
    assert_close(gw, ref.conv2d_grad_weight(x, grad_y, w.shape, stride=2, padding=1),
                 np.float32)


def test_out_of_an_nhwc_call_is_written_in_place(rng):
    x = random_array(rng, (1, 6, 7, 4), np.float64)
    w = random_array(rng, (8, 4, 3, 3), np.float64)
    out = np.full((1, 6, 7, 8), np.nan)
    assert convpool.conv2d(x, w, padding=1, layout="NHWC", out=out) is out
    assert_close(out, to_nhwc(ref.conv2d(to_nchw(x), w, padding=1)), np.float64)
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 6, 7, 8\)"):
        convpool.conv2d(x, w, padding=1, layout="NHWC", out=np.empty((1, 8, 6, 7)))


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_out_of_nhwc_gradients_is_written_in_the_calls_layout(rng, padding_mode):
    x = random_array(rng, (2, 6, 7, 4), np.float64)
    w = random_array(rng, (8, 4, 3, 3), np.float64)
    kwargs = dict(padding=1, padding_mode=padding_mode)
    gy = random_array(rng, (2, 6, 7, 8), np.float64)
    grad_x = np.full(x.shape, np.nan)
    got = convpool.conv2d_grad_input(gy, w, x.shape, **kwargs, out=grad_x, layout="NHWC")
    assert got is grad_x
    assert_close(grad_x, to_nhwc(ref.conv2d_grad_input(to_nchw(gy), w, to_nchw(x).shape,
                                                       **kwargs)), np.float64)
    grad_w = np.full(w.shape, np.nan)
    assert convpool.conv2d_grad_weight(x, gy, w.shape, **kwargs, out=grad_w,
                                       layout="NHWC") is grad_w
    assert_close(grad_w, ref.conv2d_grad_weight(to_nchw(x), to_nchw(gy), w.shape, **kwargs),
                 np.float64)
    grad_b = np.full(8, np.nan)
    assert convpool.conv2d_grad_bias(gy, out=grad_b, layout="NHWC") is grad_b
    assert_close(grad_b, ref.conv2d_grad_bias(to_nchw(gy)), np.float64)
    with pytest.raises(ValueError, match="out"):
        convpool.conv2d_grad_input(gy, w, x.shape, **kwargs, out=np.empty((2, 4, 6, 7)),
                                   layout="NHWC")


def test_out_of_a_channels_last_view_gradient_has_the_nchw_shape(rng):
    x = to_nhwc(random_array(rng, (1, 4, 6, 7), np.float64)).transpose(0, 3, 1, 2)
    w = random_array(rng, (8, 4, 3, 3), np.float64)
    gy = to_nhwc(random_array(rng, (1, 8, 6, 7), np.float64)).transpose(0, 3, 1, 2)
    out = np.full(x.shape, np.nan)
    assert convpool.conv2d_grad_input(gy, w, x.shape, padding=1, out=out) is out
    assert_close(out, ref.conv2d_grad_input(np.ascontiguousarray(gy), w, x.shape, padding=1),
                 np.float64)


def test_nhwc_float16_computes_in_float32_and_rounds_once(rng):
    x = random_array(rng, (1, 5, 6, 4), np.float16)
    w = random_array(rng, (8, 4, 3, 3), np.float16)
    got = convpool.conv2d(x, w, padding=1, layout="NHWC")
    assert got.dtype == np.float16
    expected = convpool.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1,
                               layout="NHWC").astype(np.float16)
    np.testing.assert_array_equal(got, expected)
    assert_close(got, to_nhwc(ref.conv2d(to_nchw(x.astype(np.float64)), w.astype(np.float64),
                                         padding=1)).astype(np.float16), np.float16)


@pytest.mark.parametrize("mode", MODES[1:])
def test_channels_last_kernels_read_the_padding_mode_without_a_padded_copy(rng, mode):
    """Every channels-last implementation takes a padding mode itself: the registry offers
    them the mode's geometry (no zero-padded geometry of a padded copy), and a dense layer
    with a mode runs the register tiles, forward and both gradients."""
    from convpool import _core
    axis = _core.WindowAxis(6, 6, 3, 1, 1, 1, 1)
    geometry = _core.Conv2dGeometry(1, 16, 32, 1, axis, axis, getattr(_core.PaddingMode, mode),
                                    channels_last=True)
    for op in ("conv2d", "conv2d_grad_input", "conv2d_grad_weight"):
        assert "nhwc_direct" in _core.supporting_implementations(op, "float64", geometry), op
        assert {"nhwc_blocked", "nhwc_loops"} <= set(
            _core.supporting_implementations(op, "float32", geometry)), op
    x = random_array(rng, (1, 16, 6, 6), np.float32)
    w = random_array(rng, (32, 16, 3, 3), np.float32)
    ran = check_nhwc_against_oracle(rng, x, w, padding=1, padding_mode=mode, stride=(1, 2))
    assert "nhwc_blocked" in ran


# Register-tile edge cases: input gradients at every stride (phases no tap reaches, taps
# whose phases differ per axis, dilation across phases), channel tails, and the weight
# gradient's pixel slices (several slices, a slice ending mid-image).
BLOCKED_LAYERS = [
    ((2, 24, 11, 13), (40, 24, 3, 3), dict(stride=2, padding=1)),
    ((1, 16, 12, 12), (24, 16, 1, 1), dict(stride=2)),  # phases no tap reaches: zero
    ((1, 16, 13, 10), (20, 16, 4, 3), dict(stride=(3, 2), padding=((2, 1), (0, 1)),
                                           dilation=(2, 1))),
    ((1, 18, 9, 9), (33, 18, 5, 5), dict(stride=2, dilation=2, padding=4)),
    ((3, 20, 15, 14), (36, 10, 3, 3), dict(stride=2, padding=1, groups=2,
                                           padding_mode="circular")),
    ((5, 16, 13, 11), (32, 16, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((1, 16, 7, 9), (24, 16, 3, 5), dict(stride=(2, 1), padding=((1, 2), (2, 2)),
                                         padding_mode="symmetric")),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", BLOCKED_LAYERS)
def test_register_tiles_at_every_stride_and_padding_mode(rng, x_shape, w_shape, kwargs,
                                                         threads):
    convpool.set_num_threads(threads)
    x, w = random_array(rng, x_shape, np.float32), random_array(rng, w_shape, np.float32)
    ran = check_nhwc_against_oracle(rng, x, w, where=f"{x_shape} {w_shape} {kwargs}", **kwargs)
    assert "nhwc_blocked" in ran


# Stems: fewer input channels than half a vector, each summing many output channels.
STEM_LAYERS = [
    ((2, 3, 23, 22), (32, 3, 7, 7), dict(stride=2, padding=3)),
    ((1, 1, 9, 10), (20, 1, 3, 3), dict(padding=1, padding_mode="reflect")),
    ((1, 6, 11, 9), (40, 3, 5, 5), dict(stride=(2, 3), padding=2, groups=2)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", STEM_LAYERS)
def test_stem_input_gradients_run_the_register_tiles(rng, x_shape, w_shape, kwargs, threads):
    convpool.set_num_threads(threads)
    x, w = random_array(rng, x_shape, np.float32), random_array(rng, w_shape, np.float32)
    n, c, h, width = x_shape
    out = ref.conv2d(x, w, **kwargs).shape
    grad_y = np.zeros((out[0], out[2], out[3], out[1]), np.float32)
    assert convpool.implementation("conv2d_grad_input", grad_y, w, (n, h, width, c),
                                   layout="NHWC", **kwargs) == "nhwc_blocked"
    # Every supporting implementation of each pass, forced in turn at every SIMD level.
    check_nhwc_against_oracle(rng, x, w, where=f"{x_shape} {w_shape} {kwargs}", **kwargs)


@st.composite
def blocked_configs(draw):
    groups = draw(st.integers(1, 2))
    c_in = groups * draw(st.integers(8, 20))
    c_out = groups * draw(st.integers(8, 40))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    h, w = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.integers(0, 2), st.sampled_from(["valid", "same"])))
    mode = draw(st.sampled_from(MODES))
    batch = draw(st.integers(1, 3))
    threads = draw(st.sampled_from([1, 2]))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=mode)
    return (batch, c_in, h, w), (c_out, c_in // groups, kh, kw), threads, kwargs


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(blocked_configs())
def test_random_register_tile_configurations(config):
    """Channel counts the register tiles take at every SIMD level, with every stride,
    dilation, padding form and mode, at one and two threads."""
    x_shape, w_shape, threads, kwargs = config
    rng = np.random.default_rng(zlib.crc32(repr(config).encode()))
    x = random_array(rng, x_shape, np.float32)
    w = random_array(rng, w_shape, np.float32)
    try:
        ref.conv2d(x, w, **kwargs)
    except ValueError:
        assume(False)
    convpool.set_num_threads(threads)
    check_nhwc_against_oracle(rng, x, w, where=str(config), **kwargs)


# --- a 2-D kernel on a picture with channels ----------------------------------------------

def each_channel(picture_hwc: np.ndarray, kernel: np.ndarray, **kwargs) -> np.ndarray:
    """The oracle applied to every channel of an (H, W, C) picture on its own."""
    planes = [ref.conv2d(picture_hwc[..., c], kernel, **kwargs)
              for c in range(picture_hwc.shape[-1])]
    return np.stack(planes, axis=-1)


@pytest.mark.parametrize("kwargs", [
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(padding=((0, 2), (1, 3))),
    dict(padding="same", padding_mode="reflect"),
    dict(stride=2, padding=1),
    dict(stride=(1, 3), padding="same", padding_mode="replicate"),
])
def test_a_2d_kernel_filters_every_channel_of_an_rgb_picture(rng, kwargs):
    picture = rng.integers(0, 256, size=(23, 31, 3)).astype(np.uint8)
    kernel = random_array(rng, (5, 3), np.float32)
    y = convpool.conv2d(picture, kernel, layout="NHWC", **kwargs)
    assert y.dtype == np.float32
    assert_close(y, each_channel(picture.astype(np.float32), kernel, **kwargs), np.float32)
    # float64 kernels compute in float64; batches of pictures and CHW pictures alike
    kernel64 = kernel.astype(np.float64)
    batch = np.stack([picture, picture[::-1]])
    y64 = convpool.conv2d(batch, kernel64, layout="NHWC", **kwargs)
    assert_close(y64[1], each_channel(picture[::-1].astype(np.float64), kernel64, **kwargs),
                 np.float64)
    chw = convpool.conv2d(picture.transpose(2, 0, 1), kernel, **kwargs)
    assert_close(chw, y.transpose(2, 0, 1), np.float32)


def test_stride_one_picture_filter_runs_the_plane_kernel_on_interleaved_rows(rng):
    picture = rng.random((120, 160, 3), dtype=np.float32)
    kernel = random_array(rng, (5, 5), np.float32)
    assert convpool.implementation("conv2d", picture, kernel, padding="same",
                                   layout="NHWC") in ("plane_rows", "plane")
    y, peak = peak_bytes_of(lambda: convpool.conv2d(picture, kernel, padding="same",
                                                    layout="NHWC"))
    # the result, and no copy of the picture
    assert peak < y.nbytes + picture.nbytes // 2
    assert_close(y, each_channel(picture, kernel, padding="same"), np.float32)


def test_picture_filter_bias_is_one_value_or_one_per_channel(rng):
    picture = random_array(rng, (6, 7, 3), np.float64)
    kernel = random_array(rng, (3, 3), np.float64)
    plain = convpool.conv2d(picture, kernel, padding=1, layout="NHWC")
    assert_close(convpool.conv2d(picture, kernel, 2.5, padding=1, layout="NHWC"), plain + 2.5,
                 np.float64)
    per_channel = np.array([1.0, -2.0, 3.0])
    assert_close(convpool.conv2d(picture, kernel, per_channel, stride=2, padding=1,
                                 layout="NHWC"),
                 convpool.conv2d(picture, kernel, stride=2, padding=1, layout="NHWC")
                 + per_channel, np.float64)
    with pytest.raises(ValueError, match="bias: a 2-D kernel on 3 channels"):
        convpool.conv2d(picture, kernel, np.ones(4), padding=1, layout="NHWC")
    with pytest.raises(ValueError, match="groups: a 2-D kernel filters each of the 3"):
        convpool.conv2d(picture, kernel, padding=1, layout="NHWC", groups=2)


def test_picture_filter_matches_opencv_filter2d(rng):
    cv2 = pytest.importorskip("cv2")
    picture = rng.integers(0, 256, size=(40, 50, 3)).astype(np.uint8)
    kernel = random_array(rng, (5, 5), np.float32)
    expected = cv2.filter2D(picture.astype(np.float32), -1, kernel,
                            borderType=cv2.BORDER_CONSTANT)
    got = convpool.conv2d(picture, kernel, padding="same", layout="NHWC")
    assert_close(got, expected, np.float32)


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["nhwc", "NCWH", None, 4])
def test_bad_layout_is_named(layout):
    x = np.zeros((1, 4, 4, 2), np.float32)
    w = np.zeros((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="layout: expected 'NCHW' or 'NHWC'"):
        convpool.conv2d(x, w, layout=layout)
    with pytest.raises(ValueError, match="layout"):
        convpool.conv2d_grad_input(x, w, (1, 4, 4, 2), layout=layout)
    with pytest.raises(ValueError, match="layout"):
        convpool.conv2d_grad_weight(x, x, w.shape, layout=layout)
    with pytest.raises(ValueError, match="layout"):
        convpool.conv2d_grad_bias(x, layout=layout)
    with pytest.raises(ValueError, match="layout"):
        convpool.implementation("conv2d", x, w, layout=layout)


def test_nhwc_shapes_are_checked_in_the_calls_layout():
    x = np.zeros((1, 5, 6, 3), np.float32)  # NHWC: 3 channels
    with pytest.raises(ValueError, match="x has 3 channels"):
        convpool.conv2d(x, np.zeros((4, 6, 3, 3), np.float32), layout="NHWC")
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(1, 5, 6, 4\)"):
        convpool.conv2d_grad_input(np.zeros((1, 4, 5, 6), np.float32), w, x.shape, padding=1,
                                   layout="NHWC")
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(1, 5, 6, 4\)"):
        convpool.conv2d_grad_weight(x, np.zeros((1, 4, 5, 6), np.float32), w.shape, padding=1,
                                    layout="NHWC")


def test_the_oracle_refuses_a_2d_kernel_on_channels_that_conv2d_filters_per_channel(rng):
    picture = random_array(rng, (4, 5, 5), np.float64)
    kernel = random_array(rng, (3, 3), np.float64)
    with pytest.raises(ValueError, match=r"weight: expected \(C_out, C_in // groups, kh, kw\)"):
        ref.conv2d(picture, kernel)
    expected = np.stack([ref.conv2d(plane, kernel) for plane in picture])
    assert_close(convpool.conv2d(picture, kernel), expected, np.float64)


@pytest.mark.parametrize("x_shape, w_shape", [((1, 8, 6, 7), (16, 8, 3, 3)),
                                              ((1, 8, 6, 7), (8, 1, 3, 3))])
def test_non_finite_values_reach_exactly_the_sums_that_hold_them(rng, x_shape, w_shape):
    """A NaN or inf input pixel or weight spreads where the direct sum puts it, and a tap in
    the zero padding is no term (an inf weight meets no padding zero): the oracle's rule."""
    groups = x_shape[1] // w_shape[1]
    x = random_array(rng, x_shape, np.float32)
    w = random_array(rng, w_shape, np.float32)
    x[0, 1, 2, 3] = np.nan
    w[0, 0, 0, 0] = np.inf
    expected = to_nhwc(ref.conv2d(x, w, padding=1, groups=groups))
    for label in conv2d_variants("forward", to_nhwc(x), w, None, padding=1, groups=groups,
                                 layout="NHWC"):
        got = convpool.conv2d(to_nhwc(x), w, padding=1, groups=groups, layout="NHWC")
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), label)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected), label)
        finite = np.isfinite(expected)
        assert_close(got[finite], expected[finite], np.float32, label)


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(padding=1, stride=2),
                                    dict(padding=1, padding_mode="reflect")])
def test_channels_last_gradients_do_not_depend_on_the_thread_count(rng, kwargs):
    x = random_array(rng, (2, 16, 16, 16), np.float32)
    w = random_array(rng, (32, 16, 3, 3), np.float32)
    gy = convpool.conv2d(x, w, layout="NHWC", **kwargs)
    gy = random_array(rng, gy.shape, np.float32)
    results = []
    for threads in (1, 2, 3):
        convpool.set_num_threads(threads)
        results.append((convpool.conv2d_grad_weight(x, gy, w.shape, layout="NHWC", **kwargs),
                        convpool.conv2d_grad_input(gy, w, x.shape, layout="NHWC", **kwargs),
                        convpool.conv2d_grad_bias(gy, layout="NHWC")))
    for result in results[1:]:
        for got, first in zip(result, results[0], strict=True):
            np.testing.assert_array_equal(got, first)


@pytest.mark.parametrize("stride", [1, 2])
def test_picture_filter_on_channels_last_storage_keeps_that_storage(rng, stride):
    pictures = random_array(rng, (2, 12, 14, 3), np.float32)
    kernel = random_array(rng, (3, 3), np.float32)
    nchw_view = pictures.transpose(0, 3, 1, 2)
    y = convpool.conv2d(nchw_view, kernel, stride=stride, padding=1)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    expected = np.stack([each_channel(p, kernel, stride=stride, padding=1) for p in pictures])
    assert_close(y, expected.transpose(0, 3, 1, 2), np.float32)
