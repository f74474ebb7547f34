"""float16 and bfloat16 storage: every convolution and pooling function computes 16-bit
floats in float32 and returns the float32 result rounded once to the storage type.

Results are compared with the oracle's float64 result rounded to the storage type: equal
where the float32 computation is exact (integer-valued data), within one unit in the last
place of the storage type otherwise (plus float32's own tolerance, for sums that cancel).
"""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import (
    available_simd_levels,
    conv2d_variants,
    forced_implementation,
    implementation_variants,
    simd_level,
)
from convpool import _core
from convpool import reference as ref
from convpool.dtypes import is_half, storage_dtype
from convpool.implementation import _kernel_dtype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

F16 = np.dtype(np.float16)
MANTISSA_BITS = {"float16": 10, "bfloat16": 7}
SMALLEST_SUBNORMAL = {"float16": 2.0**-24, "bfloat16": 2.0**-133}


def bfloat16() -> np.dtype:
    return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)


def ulp(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """One unit in the last place of ``dtype`` at each of ``values`` (float64)."""
    magnitude = np.abs(values.astype(np.float64))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
    return np.maximum(2.0 ** (exponent - MANTISSA_BITS[dtype.name]), SMALLEST_SUBNORMAL[dtype.name])


def assert_rounded_once(actual, exact, dtype, where: str = "", exact_in_float32=False) -> None:
    """``actual`` has ``dtype`` and is the float64 ``exact`` rounded to it: equal when the
    float32 computation is exact, else within one ulp (plus float32's tolerance relative
    to the largest value). NaN and inf where ``exact`` has them."""
    actual = np.asarray(actual)
    exact = np.asarray(exact, dtype=np.float64)
    assert actual.dtype == dtype, f"{where}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == exact.shape, f"{where}: shape {actual.shape}, expected {exact.shape}"
    got = actual.astype(np.float64)
    with np.errstate(over="ignore"):
        rounded = exact.astype(dtype).astype(np.float64)
    same_special = (np.isnan(got) == np.isnan(rounded)) & (np.isinf(got) == np.isinf(rounded))
    assert same_special.all(), f"{where}: NaN/inf at other places than the oracle's"
    finite = np.isfinite(rounded)
    if exact_in_float32:
        assert np.array_equal(got[finite], rounded[finite]), (
            f"{where}: not the exact result rounded once")
        return
    scale = float(np.max(np.abs(exact[finite]), initial=0.0)) or 1.0
    allowed = ulp(exact[finite], dtype) + 1e-5 * scale
    error = np.abs(got[finite] - rounded[finite])
    worst = int(np.argmax(error - allowed)) if error.size else 0
    assert (error <= allowed).all(), (
        f"{where}: error {error[worst]:.3g} > allowed {allowed[worst]:.3g} "
        f"(got {got[finite][worst]}, expected {rounded[finite][worst]})")


def integers(rng, shape, dtype=F16, low=-4, high=5) -> np.ndarray:
    """Small integers: every sum of their products is exact in float32."""
    return rng.integers(low, high, size=shape).astype(dtype)


# --- the dtype rule ---------------------------------------------------------------------


def test_storage_type_follows_numpy_promotion():
    f16 = np.zeros(1, np.float16)
    assert storage_dtype([f16, f16]) == np.float16
    assert storage_dtype([f16, np.zeros(1, np.uint8)]) == np.float16
    assert storage_dtype([f16, np.zeros(1, np.float32)]) == np.float32
    assert storage_dtype([f16, np.zeros(1, np.float64)]) == np.float64
    assert is_half(F16) and not is_half(np.dtype(np.float32))


def test_float16_mixed_with_float32_computes_and_returns_float32(rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float16)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = convpool.conv2d(x, w, padding=1)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, convpool.conv2d(x.astype(np.float32), w, padding=1))


def test_uint8_picture_with_float16_kernel_is_float16(rng):
    picture = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)
    sobel = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float16)
    edges = convpool.conv2d(picture, sobel, padding="same")
    expected = ref.conv2d(picture.astype(np.float64), sobel.astype(np.float64), padding="same")
    assert_rounded_once(edges, expected, F16, "uint8 * float16", exact_in_float32=True)


def test_float16_with_bfloat16_is_a_type_error(rng):
    bf16 = bfloat16()
    x = np.zeros((1, 1, 4, 4), np.float16)
    w = np.zeros((1, 1, 3, 3), bf16)
    with pytest.raises(TypeError, match="float16 and bfloat16 do not mix"):
        convpool.conv2d(x, w)


def test_other_two_byte_types_are_still_refused():
    with pytest.raises(TypeError, match="x: dtype"):
        convpool.max_pool2d(np.zeros((1, 1, 4, 4), np.int16).view("V2"), 2)


# --- the conversions -------------------------------------------------------------------


@pytest.mark.parametrize("level", available_simd_levels())
def test_float16_widening_is_exact_for_every_bit_pattern(level):
    every = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    widened = np.empty(every.shape, np.float32)
    with simd_level(level):
        _core.float16_to_float32(every, widened)
    expected = every.astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(widened), nan)
    np.testing.assert_array_equal(widened[~nan].view(np.uint32), expected[~nan].view(np.uint32))


@pytest.mark.parametrize("level", available_simd_levels())
def test_float32_rounding_to_float16_is_numpys_round_to_nearest_even(rng, level):
    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].astype(np.float32)
    # every float16, the midpoints between neighbours (ties), values beyond the range,
    # subnormals and random float32 bit patterns
    ties = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)
    values = np.concatenate([finite, ties, np.float32([65504, 65519.99, 65520, 1e6, -1e6,
                                                       np.inf, -np.inf, np.nan, 1e-8, 3e-8]),
                             rng.integers(0, 2**32, 5000, dtype=np.uint32).view(np.float32)])
    rounded = np.empty(values.shape, np.float16)
    with simd_level(level):
        _core.float32_to_float16(values, rounded)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = values.astype(np.float16)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(rounded), nan)
    np.testing.assert_array_equal(rounded[~nan].view(np.uint16), expected[~nan].view(np.uint16))


def test_conversion_errors_name_the_argument():
    f16, f32 = np.zeros(4, np.float16), np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="src: dtype must be float16"):
        _core.float16_to_float32(f32, f32.copy())
    with pytest.raises(TypeError, match="dst: dtype must be float16"):
        _core.float32_to_float16(f32, f32.copy())
    with pytest.raises(ValueError, match="dst: expected 4 elements"):
        _core.float16_to_float32(f16, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="src: array must be C-contiguous"):
        _core.float16_to_float32(np.zeros(8, np.float16)[::2], f32)


# --- convolution ------------------------------------------------------------------------

CONV2D_CASES = [
    dict(x=(2, 3, 9, 8), w=(4, 3, 3, 3), padding=1),
    dict(x=(1, 4, 10, 7), w=(4, 2, 3, 2), stride=2, padding="same", groups=2,
         padding_mode="reflect"),
    dict(x=(2, 1, 12, 12), w=(5, 1, 5, 5), dilation=2, padding=2),
    dict(x=(1, 6, 7, 7), w=(6, 1, 3, 3), groups=6, padding=1, padding_mode="circular"),
]


@pytest.mark.parametrize("case", CONV2D_CASES, ids=str)
@pytest.mark.parametrize("pass_", ["forward", "grad_input", "grad_weight"])
def test_conv2d_float16_every_implementation_is_the_float32_result_rounded_once(rng, case,
                                                                                 pass_):
    kwargs = {k: v for k, v in case.items() if k not in ("x", "w")}
    x, w = integers(rng, case["x"]), integers(rng, case["w"])
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    grad_y = integers(rng, ref.conv2d(x64, w64, **kwargs).shape)
    g64 = grad_y.astype(np.float64)
    expected = {"forward": lambda: ref.conv2d(x64, w64, **kwargs),
                "grad_input": lambda: ref.conv2d_grad_input(g64, w64, x.shape, **kwargs),
                "grad_weight": lambda: ref.conv2d_grad_weight(x64, g64, w.shape, **kwargs)}[pass_]()
    call = {"forward": lambda: convpool.conv2d(x, w, **kwargs),
            "grad_input": lambda: convpool.conv2d_grad_input(grad_y, w, x.shape, **kwargs),
            "grad_weight": lambda: convpool.conv2d_grad_weight(x, grad_y, w.shape, **kwargs)}[pass_]
    for variant in conv2d_variants(pass_, x, w, grad_y, **kwargs):
        # float32 FFTs round the exact sum (docs/fft.md): within one ulp, not exact
        exact = not variant.endswith("=fft")
        assert_rounded_once(call(), expected, F16, variant, exact_in_float32=exact)


def test_conv2d_float16_random_values_within_one_ulp(rng):
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float16)
    w = (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float16)
    b = rng.standard_normal(16).astype(np.float16)
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          padding=1)
    assert_rounded_once(convpool.conv2d(x, w, b, padding=1), expected, F16, "conv2d")
    gy = rng.standard_normal(expected.shape).astype(np.float16)
    assert_rounded_once(convpool.conv2d_grad_bias(gy), ref.conv2d_grad_bias(gy.astype(np.float64)),
                        F16, "conv2d_grad_bias")


def test_conv2d_float16_out_is_written_in_float16(rng):
    x, w = integers(rng, (1, 2, 5, 5)), integers(rng, (3, 2, 3, 3))
    out = np.full((1, 3, 3, 3), np.nan, np.float16)
    y = convpool.conv2d(x, w, out=out)
    assert y is out
    np.testing.assert_array_equal(out, convpool.conv2d(x, w))
    with pytest.raises(ValueError, match="out: expected shape"):
        convpool.conv2d(x, w, out=np.empty((1, 3, 3, 3), np.float32))


def test_conv2d_float16_overflow_is_inf_without_a_warning():
    x = np.full((1, 1, 3, 3), 60000, np.float16)
    w = np.ones((1, 1, 3, 3), np.float16)
    y = convpool.conv2d(x, w)  # 540000 is beyond float16's 65504
    assert y.dtype == np.float16 and np.isposinf(y).all()


@pytest.mark.parametrize("rank", [1, 3])
def test_conv1d_conv3d_float16_and_gradients_are_rounded_once(rng, rank):
    spatial = (11,) if rank == 1 else (5, 6, 7)
    kernel = (3,) if rank == 1 else (3, 2, 3)
    kwargs = dict(stride=2, padding="same", padding_mode="replicate")
    x, w, b = integers(rng, (2, 4, *spatial)), integers(rng, (6, 2, *kernel)), integers(rng, (6,))
    conv = getattr(convpool, f"conv{rank}d")
    oracle = getattr(ref, f"conv{rank}d")
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    expected = oracle(x64, w64, b.astype(np.float64), groups=2, **kwargs)
    assert_rounded_once(conv(x, w, b, groups=2, **kwargs), expected, F16, f"conv{rank}d",
                        exact_in_float32=True)
    gy = integers(rng, expected.shape)
    g64 = gy.astype(np.float64)
    for name, args, ref_args in [
        ("grad_input", (gy, w, x.shape), (g64, w64, x.shape)),
        ("grad_weight", (x, gy, w.shape), (x64, g64, w.shape)),
    ]:
        ours = getattr(convpool, f"conv{rank}d_{name}")(*args, groups=2, **kwargs)
        theirs = getattr(ref, f"conv{rank}d_{name}")(*ref_args, groups=2, **kwargs)
        assert_rounded_once(ours, theirs, F16, f"conv{rank}d_{name}", exact_in_float32=True)
    assert_rounded_once(getattr(convpool, f"conv{rank}d_grad_bias")(gy),
                        getattr(ref, f"conv{rank}d_grad_bias")(g64), F16, "grad_bias",
                        exact_in_float32=True)


def test_conv_transpose2d_float16(rng):
    x, w = integers(rng, (1, 4, 5, 6)), integers(rng, (4, 3, 3, 3))
    expected = ref.conv_transpose2d(x.astype(np.float64), w.astype(np.float64), stride=2,
                                    padding=1)
    assert_rounded_once(convpool.conv_transpose2d(x, w, stride=2, padding=1), expected, F16,
                        "conv_transpose2d", exact_in_float32=True)


# --- pooling: the float16 kernels ---------------------------------------------------------

POOL_OPTIONS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=4, stride=4),
    dict(kernel_size=3, stride=3, padding="same"),
]


@pytest.mark.parametrize("options", POOL_OPTIONS, ids=str)
def test_max_pool2d_float16_every_implementation_is_exact(rng, options):
    x = rng.standard_normal((2, 3, 13, 17)).astype(np.float16)
    expected = ref.max_pool2d(x.astype(np.float64), **options)
    for variant in implementation_variants("max_pool2d", x, **options):
        assert_rounded_once(convpool.max_pool2d(x, **options), expected, F16, variant,
                            exact_in_float32=True)


@pytest.mark.parametrize("options", POOL_OPTIONS + [
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, padding=1, divisor_override=5)], ids=str)
def test_avg_pool2d_float16_every_implementation_averages_in_float32(rng, options):
    x = rng.standard_normal((2, 3, 13, 17)).astype(np.float16)
    expected = ref.avg_pool2d(x.astype(np.float64), **options)
    for variant in implementation_variants("avg_pool2d", x, **options):
        assert_rounded_once(convpool.avg_pool2d(x, **options), expected, F16, variant)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_float16_pooling_reports_and_runs_the_registrys_float16_kernels(rng, op):
    """NCHW float16 pooling runs the operation's float16 list on the float16 buffers (no
    float32 copy), and implementation() reports it; max pooling with indices and
    channels-last float16 compute on a float32 copy, and say so."""
    x = rng.standard_normal((1, 2, 6, 8)).astype(np.float16)
    assert convpool.implementation(op, x, 2) == "rows"
    assert convpool.implementations(op, x, 2) == ["rows"]
    assert _kernel_dtype(op, x, 2) == "float16"
    float32_runs = _core.implementation_runs(op, "rows", "float32")
    with forced_implementation(op, "rows", "float16"):
        getattr(convpool, op)(x, 2)
    assert _core.implementation_runs(op, "rows", "float32") == float32_runs
    assert _kernel_dtype(op, x.transpose(0, 2, 3, 1), 2, layout="NHWC") == "float32"
    if op == "max_pool2d":
        assert _kernel_dtype(op, x, 2, return_indices=True) == "float32"
        with forced_implementation(op, "rows", "float32"):
            convpool.max_pool2d(x, 2, return_indices=True)


def test_float16_pooling_out_must_be_float16(rng):
    x = rng.standard_normal((1, 2, 6, 8)).astype(np.float16)
    out = np.full((1, 2, 3, 4), np.nan, np.float16)
    assert convpool.max_pool2d(x, 2, out=out) is out
    np.testing.assert_array_equal(out, ref.max_pool2d(x.astype(np.float64), 2).astype(F16))
    with pytest.raises((TypeError, ValueError), match="out"):
        convpool.avg_pool2d(x, 2, out=np.empty((1, 2, 3, 4), np.float32))


def test_float16_pooling_keeps_nan_and_inf(rng):
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float16)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 4, 5] = np.inf
    x[0, 1, 6, 6] = -np.inf
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        for options in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
            assert_rounded_once(convpool.max_pool2d(x, **options),
                                ref.max_pool2d(x64, **options), F16, "max", exact_in_float32=True)
            assert_rounded_once(convpool.avg_pool2d(x, **options),
                                ref.avg_pool2d(x64, **options), F16, "avg")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 19), w=st.integers(1, 23), kernel=st.integers(1, 4),
       stride=st.integers(1, 3), ceil_mode=st.booleans(), pad=st.booleans(),
       count_include_pad=st.booleans())
def test_float16_pool2d_kernels_on_any_shape(rng, h, w, kernel, stride, ceil_mode, pad,
                                             count_include_pad):
    padding = kernel // 2 if pad else 0
    if h + 2 * padding < kernel or w + 2 * padding < kernel:
        return
    x = rng.standard_normal((1, 2, h, w)).astype(np.float16)
    options = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    x64 = x.astype(np.float64)
    assert_rounded_once(convpool.max_pool2d(x, **options), ref.max_pool2d(x64, **options), F16,
                        "max", exact_in_float32=True)
    assert_rounded_once(convpool.avg_pool2d(x, count_include_pad=count_include_pad, **options),
                        ref.avg_pool2d(x64, count_include_pad=count_include_pad, **options),
                        F16, "avg")


def test_max_pool2d_float16_with_indices_and_gradients(rng):
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float16)
    y, indices = convpool.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    y_ref, indices_ref = ref.max_pool2d(x.astype(np.float64), 3, stride=2, padding=1,
                                        return_indices=True)
    assert_rounded_once(y, y_ref, F16, "max values", exact_in_float32=True)
    np.testing.assert_array_equal(indices, indices_ref)
    gy = integers(rng, y.shape)
    assert_rounded_once(convpool.max_pool2d_grad_input(gy, indices, x.shape),
                        ref.max_pool2d_grad_input(gy.astype(np.float64), indices, x.shape), F16,
                        "max grad", exact_in_float32=True)
    assert_rounded_once(convpool.avg_pool2d_grad_input(gy, x.shape, 3, stride=2, padding=1),
                        ref.avg_pool2d_grad_input(gy.astype(np.float64), x.shape, 3, stride=2,
                                                  padding=1), F16, "avg grad")


def test_every_other_pooling_function_in_float16(rng):
    x = rng.standard_normal((2, 4, 6, 8)).astype(np.float16)
    x64 = x.astype(np.float64)
    for name, args in [("global_avg_pool2d", ()), ("global_max_pool2d", ()),
                       ("channel_pool", (2, "max")), ("channel_pool", (2, "avg")),
                       ("adaptive_avg_pool2d", ((3, 5),)), ("adaptive_max_pool2d", ((3, 5),))]:
        assert_rounded_once(getattr(convpool, name)(x, *args), getattr(ref, name)(x64, *args),
                            F16, name)
    gy = rng.standard_normal((2, 4)).astype(np.float16)
    assert_rounded_once(convpool.global_max_pool2d_grad_input(gy, x),
                        ref.global_max_pool2d_grad_input(gy.astype(np.float64), x64), F16,
                        "global_max_pool2d_grad_input")
    y, indices = convpool.max_pool2d(x, 2, return_indices=True)
    assert_rounded_once(convpool.max_unpool2d(y, indices, 2),
                        ref.max_unpool2d(y.astype(np.float64), indices, 2), F16, "max_unpool2d")


@pytest.mark.parametrize("rank", [1, 3])
def test_pool1d_pool3d_float16(rng, rank):
    shape = (2, 3, 17) if rank == 1 else (1, 3, 6, 7, 8)
    x = rng.standard_normal(shape).astype(np.float16)
    x64 = x.astype(np.float64)
    options = dict(kernel_size=3, stride=2, padding=1)
    for kind in ("max", "avg"):
        name = f"{kind}_pool{rank}d"
        assert_rounded_once(getattr(convpool, name)(x, **options),
                            getattr(ref, name)(x64, **options), F16, name)
    y, indices = getattr(convpool, f"max_pool{rank}d")(x, return_indices=True, **options)
    gy = integers(rng, y.shape)
    assert_rounded_once(getattr(convpool, f"max_pool{rank}d_grad_input")(gy, indices, x.shape),
                        getattr(ref, f"max_pool{rank}d_grad_input")(gy.astype(np.float64),
                                                                   indices, x.shape),
                        F16, "max grad", exact_in_float32=True)
    for kind in ("max", "avg"):
        name = f"global_{kind}_pool{rank}d"
        assert_rounded_once(getattr(convpool, name)(x), getattr(ref, name)(x64), F16, name)


# --- bfloat16 -----------------------------------------------------------------------------


def test_bfloat16_convolution_and_pooling_are_rounded_once(rng):
    bf16 = bfloat16()
    x = rng.integers(-4, 5, size=(2, 3, 8, 9)).astype(bf16)
    w = rng.integers(-4, 5, size=(4, 3, 3, 3)).astype(bf16)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = convpool.conv2d(x, w, padding=1)
    assert_rounded_once(y, ref.conv2d(x64, w64, padding=1), bf16, "conv2d", exact_in_float32=True)
    gy = rng.integers(-4, 5, size=y.shape).astype(bf16)
    assert_rounded_once(convpool.conv2d_grad_weight(x, gy, w.shape, padding=1),
                        ref.conv2d_grad_weight(x64, gy.astype(np.float64), w.shape, padding=1),
                        bf16, "grad_weight", exact_in_float32=True)
    xr = rng.standard_normal((2, 3, 8, 9)).astype(bf16)
    for name in ("max_pool2d", "avg_pool2d"):
        assert_rounded_once(getattr(convpool, name)(xr, 3, stride=2, padding=1),
                            getattr(ref, name)(xr.astype(np.float64), 3, stride=2, padding=1),
                            bf16, name)
    mixed = convpool.conv2d(x, w.astype(np.float32), padding=1)
    assert mixed.dtype == np.float32


# --- layers -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_layers_store_parameters_and_activations_in_16_bits(rng, dtype_name):
    from convpool import nn

    dtype = bfloat16() if dtype_name == "bfloat16" else F16
    x32 = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    nets = {}
    for kind in (np.float32, dtype):
        nets[kind] = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=kind, seed=0), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.AvgPool2d(2))
    half, full = nets[dtype], nets[np.float32]
    assert half[0].weight.data.dtype == dtype
    y = half.forward(x32.astype(dtype))
    assert y.dtype == dtype
    tolerance = 2.0 ** -MANTISSA_BITS[dtype_name] * 8
    np.testing.assert_allclose(y.astype(np.float32), full.forward(x32), atol=tolerance * 4,
                               rtol=tolerance)
    grad = half.backward(np.ones_like(y))
    assert grad.dtype == dtype
    assert half[0].weight.grad.dtype == dtype


def test_strided_float16_views_are_served(rng):
    x = integers(rng, (2, 3, 10, 12))[:, :, ::2, 1::2]  # not contiguous
    w = integers(rng, (4, 3, 3, 3))
    expected = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    assert_rounded_once(convpool.conv2d(x, w, padding=1), expected, F16, "strided conv2d",
                        exact_in_float32=True)
    assert_rounded_once(convpool.max_pool2d(x, 2), ref.max_pool2d(x.astype(np.float64), 2), F16,
                        "strided max_pool2d", exact_in_float32=True)
