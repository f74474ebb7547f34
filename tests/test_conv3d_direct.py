"""The direct 3-D convolution kernels (direct3d: forward, weight gradient, and the
stride-1 input gradient as a forward pass) against the NumPy oracle, at every SIMD
level and with 1 and 2 threads; hypothesis draws the shapes. Each test proves that the
direct kernel ran, not the depth-gathered 2-D path that conv3d falls back on."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, available_simd_levels, simd_level
from convpool import _core, conv3d_direct
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of the compiled direct 3-D kernels."""
    calls = {"conv3d_forward": 0, "conv3d_grad_weight": 0}
    for name in calls:
        kernel = getattr(_core, name)

        def counted(*args, _kernel=kernel, _name=name, **kwargs):
            calls[_name] += 1
            return _kernel(*args, **kwargs)
        monkeypatch.setattr(_core, name, counted)
    return calls


VECTOR_FLOATS = {"baseline": 4, "avx2": 8, "avx512": 16}


def input_grad_is_direct(w_shape, groups=1, stride=1, padding=0, dilation=1, **_) -> bool:
    """Whether the input gradient runs as a direct forward pass: stride 1, padding within
    the kernel's reach, and enough input channels per group for the vector lanes."""
    def triple(v):
        return (v,) * 3 if isinstance(v, int) else tuple(v)

    if isinstance(padding, str) or max(triple(stride)) != 1:
        return padding == "same" and max(triple(stride)) == 1 and 2 * w_shape[1] >= \
            VECTOR_FLOATS[_core.get_simd_level()]
    reach = all(d * (k - 1) >= (p if isinstance(p, int) else max(p))
                for k, d, p in zip(w_shape[2:], triple(dilation), triple(padding), strict=True))
    return reach and 2 * w_shape[1] >= VECTOR_FLOATS[_core.get_simd_level()]


def check_all_passes(rng, x, w, b, kernel_calls, **kwargs):
    """Forward, input, weight and bias gradients in float32 vs the oracle, each on the
    direct kernel (the input gradient where input_grad_is_direct says)."""
    expect_direct_input_grad = input_grad_is_direct(w.shape, **kwargs)
    before = dict(kernel_calls)
    y = convpool.conv3d(x, w, b, **kwargs)
    assert_close(y, ref.conv3d(x, w, b, **kwargs), np.float32, "forward")
    assert kernel_calls["conv3d_forward"] == before["conv3d_forward"] + 1
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = convpool.conv3d_grad_input(gy, w, x.shape, **kwargs)
    assert_close(gx, ref.conv3d_grad_input(gy, w, x.shape, **kwargs), np.float32, "grad_input")
    assert kernel_calls["conv3d_forward"] == before["conv3d_forward"] + 1 + int(
        expect_direct_input_grad)
    gw = convpool.conv3d_grad_weight(x, gy, w.shape, **kwargs)
    assert_close(gw, ref.conv3d_grad_weight(x, gy, w.shape, **kwargs), np.float32,
                 "grad_weight")
    assert kernel_calls["conv3d_grad_weight"] == before["conv3d_grad_weight"] + 1


OPTIONS = [
    dict(padding=1),
    dict(),
    dict(padding="same", dilation=2),
    dict(padding=((2, 0), (1, 1), (0, 2))),
    dict(stride=2, padding=1),
    dict(stride=(1, 2, 3), padding=2, dilation=(2, 1, 1)),
    dict(padding=1, groups=2),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("level", available_simd_levels())
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("c_out", (16, 40))
def test_direct3d_every_pass_matches_oracle(rng, kernel_calls, c_out, options, level, threads):
    x = rng.standard_normal((2, 8, 5, 7, 19)).astype(np.float32)
    groups = options.get("groups", 1)
    w = rng.standard_normal((c_out, 8 // groups, 3, 2, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    convpool.set_num_threads(threads)
    with simd_level(level):
        check_all_passes(rng, x, w, b, kernel_calls, **options)


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("level", available_simd_levels())
@pytest.mark.parametrize("options", [dict(padding=1), dict(stride=(1, 1, 2), padding=(0, 1, 3))],
                         ids=str)
def test_direct3d_long_rows_and_many_input_channels(rng, kernel_calls, options, level, threads):
    """Rows of several segments of tiles (and a tail) and more input channels than one
    L1-sized block of packed weights: the partial sums carried across channel blocks."""
    x = rng.standard_normal((1, 40, 3, 4, 233)).astype(np.float32)
    w = rng.standard_normal((24, 40, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    convpool.set_num_threads(threads)
    with simd_level(level):
        check_all_passes(rng, x, w, b, kernel_calls, **options)


@pytest.mark.parametrize("mode", MODES)
def test_direct3d_reads_every_padding_mode(rng, kernel_calls, mode):
    x = rng.standard_normal((1, 3, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 3, 3)).astype(np.float32)
    y = convpool.conv3d(x, w, padding=(1, 2, 1), padding_mode=mode)
    assert_close(y, ref.conv3d(x, w, padding=(1, 2, 1), padding_mode=mode), np.float32, mode)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gw = convpool.conv3d_grad_weight(x, gy, w.shape, padding=(1, 2, 1), padding_mode=mode)
    assert_close(gw, ref.conv3d_grad_weight(x, gy, w.shape, padding=(1, 2, 1),
                                            padding_mode=mode), np.float32, mode)
    assert kernel_calls == {"conv3d_forward": 1, "conv3d_grad_weight": 1}


def test_direct3d_agrees_with_the_depth_gathered_path(rng, monkeypatch):
    x = rng.standard_normal((2, 8, 6, 9, 11)).astype(np.float32)
    w = rng.standard_normal((24, 8, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 24, 6, 9, 11)).astype(np.float32)

    def passes():
        return (convpool.conv3d(x, w, padding=1),
                convpool.conv3d_grad_input(gy, w, x.shape, padding=1),
                convpool.conv3d_grad_weight(x, gy, w.shape, padding=1))
    direct = passes()
    monkeypatch.setattr(conv3d_direct, "enabled", False)
    gathered = passes()
    for a, b, where in zip(direct, gathered, ("forward", "grad_input", "grad_weight"), strict=True):
        assert_close(a, b, np.float32, where)


def test_direct3d_result_does_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((2, 5, 6, 8, 9)).astype(np.float32)
    w = rng.standard_normal((20, 5, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 20, 6, 8, 9)).astype(np.float32)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        results.append((convpool.conv3d(x, w, padding=1),
                        convpool.conv3d_grad_weight(x, gy, w.shape, padding=1)))
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one, two)


def test_direct3d_serves_float32_with_enough_output_channels():
    def names(c_out, groups=1):
        return _core.conv3d_supporting("conv3d", [1, 8, 4, 4, 4], [c_out, 8 // groups, 3, 3, 3],
                                       [1, c_out, 2, 2, 2], groups=groups, stride=(1, 1, 1),
                                       dilation=(1, 1, 1), pad_before=(0, 0, 0),
                                       pad_after=(0, 0, 0))
    assert names(16) == ["direct3d"]
    assert names(8, groups=8) == []  # depthwise: one output channel per group


def test_direct3d_float64_and_non_finite_weights_stay_exact(rng, kernel_calls):
    x = rng.standard_normal((1, 2, 4, 4, 4))
    w = rng.standard_normal((16, 2, 3, 3, 3))
    assert_close(convpool.conv3d(x, w, padding=1), ref.conv3d(x, w, padding=1), np.float64)
    w32 = w.astype(np.float32)
    w32[3, 1, 0, 0, 0] = np.inf  # meets the zero padding: 0 * inf must not become NaN
    y = convpool.conv3d(x.astype(np.float32), w32, padding=1)
    expected = ref.conv3d(x.astype(np.float32), w32, padding=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert kernel_calls["conv3d_forward"] == 0


def test_direct3d_binding_refuses_disagreeing_shapes():
    x = np.zeros((1, 4, 5, 5, 5), np.float32)
    w = np.zeros((16, 4, 3, 3, 3), np.float32)
    out = np.zeros((1, 16, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="output size"):
        _core.conv3d_forward(x, w, None, out, groups=1, stride=(1, 1, 1), dilation=(1, 1, 1),
                             pad_before=(0, 0, 0), pad_after=(0, 0, 0))
    with pytest.raises(TypeError, match="x: dtype must be float32"):
        _core.conv3d_forward(x.astype(np.float64), w, None, out, groups=1, stride=(1, 1, 1),
                             dilation=(1, 1, 1), pad_before=(0, 0, 0), pad_after=(0, 0, 0))


@st.composite
def volumes(draw):
    groups = draw(st.sampled_from((1, 1, 2)))
    c_in = groups * draw(st.integers(1, 10))
    c_out = groups * draw(st.integers(8, 20))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(3))
    size = tuple(max(draw(st.integers(1, 9)), d * (k - 1) + 1 - 2 * p)
                 for k, d, p in zip(kernel, dilation, padding, strict=True))
    batch = draw(st.integers(1, 2))
    return dict(x_shape=(batch, c_in, *size), w_shape=(c_out, c_in // groups, *kernel),
                groups=groups, stride=stride, dilation=dilation, padding=padding,
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=volumes())
def test_direct3d_hypothesis_shapes(config, kernel_calls):
    rng = np.random.default_rng(config.pop("seed"))
    x = rng.standard_normal(config.pop("x_shape")).astype(np.float32)
    w = rng.standard_normal(config.pop("w_shape")).astype(np.float32)
    b = rng.standard_normal(w.shape[0]).astype(np.float32)
    check_all_passes(rng, x, w, b, kernel_calls, **config)


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("level", available_simd_levels())
@pytest.mark.parametrize("options", [dict(padding=3), dict(padding="same", dilation=2),
                                     dict(padding=(4, 2)), dict(padding=1, groups=2),
                                     dict(padding=3, padding_mode="reflect")], ids=str)
def test_conv1d_input_gradient_on_direct3d_matches_oracle(rng, kernel_calls, options, level,
                                                          threads):
    """conv1d's stride-1 float32 input gradient runs on the direct 3-D kernel."""
    x = rng.standard_normal((3, 12, 41)).astype(np.float32)
    groups = options.get("groups", 1)
    w = rng.standard_normal((32, 12 // groups, 7)).astype(np.float32)
    convpool.set_num_threads(threads)
    with simd_level(level):
        gy = rng.standard_normal(ref.conv1d(x, w, **options).shape).astype(np.float32)
        gx = convpool.conv1d_grad_input(gy, w, x.shape, **options)
        direct = (options.get("padding_mode", "zeros") == "zeros"
                  and 2 * (12 // groups) >= VECTOR_FLOATS[level])
    assert_close(gx, ref.conv1d_grad_input(gy, w, x.shape, **options), np.float32)
    assert kernel_calls["conv3d_forward"] == int(direct)
