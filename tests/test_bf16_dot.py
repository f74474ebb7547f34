"""bfloat16 convolution forward on AVX512_BF16 dot products (bf16_dot) against the NumPy
oracle: the float32 result rounded once to bfloat16, exactly where the float32 sum is
exact (integer data), within one bfloat16 rounding plus float32 accumulation otherwise;
the kernel runs only at the AVX-512 level of a CPU with AVX512_BF16, and every other
call keeps the float32 path."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import available_simd_levels, simd_level
from convpool import _core, bf16_dot
from convpool import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")


def cpu_has_avx512_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as info:
            return any("avx512_bf16" in line.split() for line in info if line.startswith("flags"))
    except OSError:
        return False


@pytest.fixture(autouse=True)
def dot_kernel_on(monkeypatch):
    """The kernel is off by default (measured slower than the float32 path): on here."""
    monkeypatch.setattr(bf16_dot, "enabled", True)


@pytest.fixture
def dot_calls(monkeypatch):
    """Counts the calls of the compiled bfloat16 dot-product kernel."""
    calls = [0]
    kernel = _core.conv_bf16_forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return kernel(*args, **kwargs)
    monkeypatch.setattr(_core, "conv_bf16_forward", counted)
    return calls


def kernel_expected(level: str) -> bool:
    return level == "avx512" and cpu_has_avx512_bf16()


def assert_rounded_once(actual, expected64, exact: bool, where: str = "") -> None:
    """``actual`` (bfloat16) is ``expected64`` rounded to bfloat16: exactly when the float32
    sum is exact, else within one bfloat16 rounding of it plus float32 accumulation."""
    assert actual.dtype == BF16, where
    assert actual.shape == expected64.shape, where
    rounded = expected64.astype(np.float32).astype(BF16).astype(np.float64)
    got = actual.astype(np.float64)
    if exact:
        np.testing.assert_array_equal(got, rounded, err_msg=where)
        return
    scale = float(np.abs(expected64).max()) or 1.0
    bound = 2.0**-8 * np.abs(expected64) + 1e-5 * scale
    worst = np.abs(got - expected64) - bound
    where_worst = np.unravel_index(worst.argmax(), worst.shape)
    assert (worst <= 0).all(), f"{where}: worst excess {worst.max()} at {where_worst}"


CASES = [
    ((2, 5, 9, 13), (20, 5, 3, 3), dict(padding=1)),
    ((1, 8, 7, 7), (16, 4, 3, 2), dict(groups=2, stride=2, padding="same")),
    ((1, 6, 10, 11), (32, 6, 3, 3), dict(padding=2, dilation=2, padding_mode="reflect")),
    ((2, 1, 12, 12), (8, 1, 5, 5), dict(padding=((2, 0), (1, 3)), padding_mode="circular")),
    ((2, 3, 6, 7, 5), (17, 3, 3, 3, 3), dict(padding=1)),
    ((1, 4, 5, 6, 7), (16, 2, 2, 3, 3), dict(groups=2, stride=(1, 2, 1), padding="same")),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("level", available_simd_levels())
@pytest.mark.parametrize("case", CASES, ids=str)
def test_bf16_dot_is_the_float32_result_rounded_once(rng, dot_calls, case, level, threads):
    x_shape, w_shape, options = case
    conv = convpool.conv3d if len(x_shape) == 5 else convpool.conv2d
    oracle = ref.conv3d if len(x_shape) == 5 else ref.conv2d
    convpool.set_num_threads(threads)
    with simd_level(level):
        # integers: every product and sum exact in float32, the result one rounding
        x = rng.integers(-8, 9, size=x_shape).astype(BF16)
        w = rng.integers(-8, 9, size=w_shape).astype(BF16)
        b = rng.integers(-8, 9, size=w_shape[0]).astype(np.float32)
        expected = oracle(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          **options)
        assert_rounded_once(conv(x, w, b, **options), expected, exact=True, where="integers")
        x = rng.standard_normal(x_shape).astype(BF16)
        w = rng.standard_normal(w_shape).astype(BF16)
        expected = oracle(x.astype(np.float64), w.astype(np.float64), None, **options)
        assert_rounded_once(conv(x, w, **options), expected, exact=False, where="normal")
    assert dot_calls[0] == 2 * int(kernel_expected(level))


def test_bf16_dot_is_off_by_default(rng, monkeypatch):
    monkeypatch.undo()  # the module's own default
    x = rng.standard_normal((1, 4, 6, 6)).astype(BF16)
    w = rng.standard_normal((16, 4, 3, 3)).astype(BF16)
    assert convpool.conv2d(x, w, padding=1).dtype == BF16
    assert bf16_dot.enabled is False


def test_bf16_dot_result_does_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((2, 7, 13, 17)).astype(BF16)
    w = rng.standard_normal((24, 7, 3, 3)).astype(BF16)
    results = []
    for threads in (1, 2):
        convpool.set_num_threads(threads)
        results.append(convpool.conv2d(x, w, padding=1).astype(np.float32))
    np.testing.assert_array_equal(*results)


def test_bf16_dot_agrees_with_the_float32_path(rng, monkeypatch):
    x = rng.standard_normal((2, 16, 12, 12)).astype(BF16)
    w = rng.standard_normal((32, 16, 3, 3)).astype(BF16)
    dot = convpool.conv2d(x, w, padding=1).astype(np.float64)
    monkeypatch.setattr(bf16_dot, "enabled", False)
    widened = convpool.conv2d(x, w, padding=1).astype(np.float64)
    # each is the float32 sum rounded once; the sums differ only in float32 rounding
    assert np.all(np.abs(dot - widened) <= 2.0**-7 * np.abs(widened) + 1e-5)


def test_bf16_dot_keeps_non_finite_weights_exact(rng, dot_calls):
    x = rng.standard_normal((1, 4, 5, 5)).astype(BF16)
    w = rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
    w[2, 1, 0, 0] = np.inf  # meets the zero padding: 0 * inf must not become NaN
    w = w.astype(BF16)
    y = convpool.conv2d(x, w, padding=1)
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    np.testing.assert_array_equal(np.isnan(y.astype(np.float32)), np.isnan(expected))
    assert dot_calls[0] == 0


def test_bf16_dot_leaves_other_calls_to_the_float32_path(rng, dot_calls):
    x = rng.standard_normal((3, 8, 8)).astype(BF16)  # unbatched
    w = rng.standard_normal((16, 3, 3, 3)).astype(BF16)
    assert convpool.conv2d(x, w, padding=1).dtype == BF16
    mixed = convpool.conv2d(x[np.newaxis], w.astype(np.float32), padding=1)
    assert mixed.dtype == np.float32
    assert dot_calls[0] == 0


def test_bf16_dot_binding_refuses_a_wrong_weight_size():
    x = np.zeros((1, 2, 1, 5, 5), np.uint32)
    out = np.zeros((1, 16, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="w_pairs"):
        _core.conv_bf16_forward(x, np.zeros(10, np.uint32), [16, 2, 1, 3, 3], None, out,
                                groups=1, stride=(1, 1, 1), dilation=(1, 1, 1))


@st.composite
def pictures(draw):
    groups = draw(st.sampled_from((1, 1, 2)))
    c_in = groups * draw(st.integers(1, 5))
    c_out = groups * draw(st.integers(1, 20))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
    size = tuple(max(draw(st.integers(1, 12)), d * (k - 1) + 1 - 2 * p, p + 1)
                 for k, d, p in zip(kernel, dilation, padding, strict=True))
    return dict(x_shape=(draw(st.integers(1, 2)), c_in, *size),
                w_shape=(c_out, c_in // groups, *kernel),
                options=dict(groups=groups, stride=stride, dilation=dilation, padding=padding,
                             padding_mode=draw(st.sampled_from(MODES))),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=pictures())
def test_bf16_dot_hypothesis_shapes(config, dot_calls):
    rng = np.random.default_rng(config["seed"])
    x = rng.integers(-8, 9, size=config["x_shape"]).astype(BF16)
    w = rng.integers(-8, 9, size=config["w_shape"]).astype(BF16)
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), **config["options"])
    before = dot_calls[0]
    assert_rounded_once(convpool.conv2d(x, w, **config["options"]), expected, exact=True)
    assert dot_calls[0] == before + int(kernel_expected(_core.get_simd_level()))
