"""The compiled 1-D and 3-D convolution and pooling (convpool.conv1d ... global_max_pool3d,
built on the 2-D kernels) against their own NumPy oracle (convpool.reference.nd), in
float32 and float64, over every option; hypothesis draws the shapes."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close, conv2d_variants
from convpool import reference as ref
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

MODES = ("zeros", "replicate", "reflect", "symmetric", "circular")
DTYPES = (np.float32, np.float64)


def functions(name: str, rank: int):
    """``name`` with ``Nd`` for the rank, from convpool and from the oracle."""
    full = name.replace("Nd", f"{rank}d")
    return getattr(convpool, full), getattr(ref, full)


def check_conv(rng, rank, x, w, b=None, where="", **kwargs):
    """Forward and the three gradients, compiled vs oracle."""
    conv, conv_ref = functions("convNd", rank)
    expected = conv_ref(x, w, b, **kwargs)
    dtype = expected.dtype
    y = conv(x, w, b, **kwargs)
    assert y.flags.c_contiguous
    assert_close(y, expected, dtype, f"{where} forward")
    gy = rng.standard_normal(expected.shape).astype(dtype)
    grad_input, grad_input_ref = functions("convNd_grad_input", rank)
    assert_close(grad_input(gy, w, np.shape(x), **kwargs),
                 grad_input_ref(gy, w, np.shape(x), **kwargs), dtype, f"{where} grad_input")
    grad_weight, grad_weight_ref = functions("convNd_grad_weight", rank)
    assert_close(grad_weight(x, gy, np.shape(w), **kwargs),
                 grad_weight_ref(x, gy, np.shape(w), **kwargs), dtype, f"{where} grad_weight")
    grad_bias, grad_bias_ref = functions("convNd_grad_bias", rank)
    assert_close(grad_bias(gy), grad_bias_ref(gy), dtype, f"{where} grad_bias")


CONV_OPTIONS = [
    dict(),
    dict(padding=1),
    dict(padding="same"),
    dict(padding="valid", stride=2),
    dict(stride=2, padding=2, dilation=2),
    dict(padding="same", dilation=2, groups=2),
    dict(stride=3, padding=1, groups=4),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", CONV_OPTIONS, ids=str)
def test_conv1d_matches_oracle(rng, options, mode, dtype):
    x = rng.standard_normal((2, 4, 13)).astype(dtype)
    w = rng.standard_normal((8, 4 // options.get("groups", 1), 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    check_conv(rng, 1, x, w, b, padding_mode=mode, **options)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", CONV_OPTIONS, ids=str)
def test_conv3d_matches_oracle(rng, options, mode, dtype):
    x = rng.standard_normal((2, 4, 6, 7, 5)).astype(dtype)
    w = rng.standard_normal((4, 4 // options.get("groups", 1), 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    check_conv(rng, 3, x, w, b, padding_mode=mode, **options)


@pytest.mark.parametrize("mode", MODES)
def test_conv_padding_per_axis_and_per_side(rng, mode):
    x1 = rng.standard_normal((1, 2, 9))
    w1 = rng.standard_normal((3, 2, 4))
    for padding in ((2,), (2, 1), ((0, 3),), [1, 0]):
        check_conv(rng, 1, x1, w1, padding=padding, padding_mode=mode, where=str(padding))
    x3 = rng.standard_normal((1, 2, 5, 6, 4))
    w3 = rng.standard_normal((3, 2, 2, 3, 3))
    for padding in ((1, 0, 2), ((2, 0), 1, (0, 2)), ((0, 1), (1, 2), (2, 1))):
        check_conv(rng, 3, x3, w3, padding=padding, padding_mode=mode, where=str(padding))
    check_conv(rng, 3, x3, w3, stride=(2, 1, 3), dilation=(2, 1, 1), padding=(1, 2, 0),
               padding_mode=mode)


def test_conv3d_depth_padding_reads_one_depth_twice(rng):
    # replicate and reflect on a thin volume: a depth tap reads one input depth for
    # several outputs, which the input gradient must add up
    x = rng.standard_normal((1, 2, 2, 3, 3))
    w = rng.standard_normal((2, 2, 5, 1, 1))
    for mode in ("replicate", "symmetric", "circular"):
        check_conv(rng, 3, x, w, padding=(2, 0, 0), padding_mode=mode, where=mode)
    check_conv(rng, 3, x, w[:, :, :3], padding=(1, 0, 0), padding_mode="reflect")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rank", [1, 3])
def test_infinite_factors_put_inf_and_nan_where_the_direct_sum_does(rng, rank, mode):
    """A tap in the zero padding is no term of the sum: an infinite weight (or output
    gradient) there must not become 0 * inf = NaN. float64 runs the 2-D kernels' direct
    loops, which follow that rule on height and width; depth is this layer's own."""
    conv, conv_ref = functions("convNd", rank)
    shape, w_shape = ((2, 2, 9), (2, 2, 3)) if rank == 1 else ((2, 2, 5, 4, 4), (2, 2, 3, 3, 3))
    x = rng.standard_normal(shape)
    x.flat[7] = np.nan
    w = rng.standard_normal(w_shape)
    w[0, 1].flat[0] = np.inf  # the first tap: it reads padding at the first outputs
    w[1, 0].flat[-1] = -np.inf
    kwargs = dict(padding=1, padding_mode=mode,
                  stride=2 if rank == 1 else (2, 1, 1))
    y = conv(x, w, **kwargs)
    np.testing.assert_allclose(y, conv_ref(x, w, **kwargs), rtol=1e-12, atol=1e-12)
    assert np.isinf(y).any() and np.isnan(y).any()
    gy = rng.standard_normal(y.shape)
    grad_input, grad_input_ref = functions("convNd_grad_input", rank)
    np.testing.assert_allclose(grad_input(gy, w, x.shape, **kwargs),
                               grad_input_ref(gy, w, x.shape, **kwargs), rtol=1e-12, atol=1e-12)
    gy.flat[0] = np.inf  # the first output reads padding at its first tap
    x = np.nan_to_num(x)
    grad_weight, grad_weight_ref = functions("convNd_grad_weight", rank)
    gw = grad_weight(x, gy, w.shape, **kwargs)
    np.testing.assert_allclose(gw, grad_weight_ref(x, gy, w.shape, **kwargs), rtol=1e-12,
                               atol=1e-12)
    assert np.isinf(gw).any()


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_conv3d_in_chunks_of_depths_is_the_same_sum(rng, monkeypatch, mode):
    """With no scratch allowance beyond the operand's size, the depth taps are gathered
    a few depths at a time (several 2-D calls per pass): the same results."""
    from convpool import conv_nd

    monkeypatch.setattr(conv_nd, "SCRATCH_FLOOR", 0)
    x = rng.standard_normal((2, 4, 9, 7, 5))
    w = rng.standard_normal((4, 2, 3, 3, 2))
    check_conv(rng, 3, x, w, rng.standard_normal(4), padding=(2, 1, 1), stride=(1, 2, 1),
               groups=2, padding_mode=mode)
    w[0, 0, 0, 0, 0] = np.inf  # the grouped path, in chunks too
    kwargs = dict(padding=1, groups=2, padding_mode=mode)
    np.testing.assert_allclose(convpool.conv3d(x, w, **kwargs), ref.conv3d(x, w, **kwargs),
                               rtol=1e-12, atol=1e-12)


def test_conv_unbatched_and_bare_forms(rng):
    check_conv(rng, 1, rng.standard_normal((3, 10)), rng.standard_normal((2, 3, 3)),
               rng.standard_normal(2), padding=1)
    check_conv(rng, 1, rng.standard_normal(10), rng.standard_normal(4), np.float64(0.5),
               padding="same", padding_mode="reflect")
    check_conv(rng, 3, rng.standard_normal((3, 4, 5, 6)), rng.standard_normal((2, 3, 3, 3, 3)),
               rng.standard_normal(2), padding=1)
    check_conv(rng, 3, rng.standard_normal((4, 5, 6)), rng.standard_normal((3, 3, 3)), None,
               padding="same", padding_mode="circular")
    assert convpool.conv1d(np.ones(5), np.ones(2)).shape == (4,)
    assert convpool.conv3d(np.ones((3, 4, 5)), np.ones((2, 2, 2))).shape == (2, 3, 4)
    assert convpool.conv1d_grad_bias(np.ones(4)).shape == ()
    assert convpool.conv3d_grad_bias(np.ones((2, 2, 2))).shape == ()


def test_conv_strided_views_and_integer_inputs(rng):
    base = rng.standard_normal((4, 6, 20)).astype(np.float32)
    x = base[::2, ::2, 1::2]  # strided in every axis
    w = rng.standard_normal((8, 6, 5)).astype(np.float32)[::2, ::2]
    check_conv(rng, 1, x, w, padding=2, padding_mode="reflect")
    volume = rng.integers(0, 255, size=(2, 3, 7, 8, 9)).astype(np.uint8)
    w3 = rng.standard_normal((2, 3, 3, 3, 3)).astype(np.float32)
    y = convpool.conv3d(volume, w3, padding=1)
    assert y.dtype == np.float32
    assert_close(y, ref.conv3d(volume, w3, padding=1), np.float32)
    transposed = np.asarray(volume, dtype=np.float64).transpose(0, 1, 4, 3, 2)
    check_conv(rng, 3, transposed, w3.astype(np.float64), padding="same")


def test_conv3d_every_compiled_2d_path(rng, monkeypatch):
    """The 3x3x3 fast case through every 2-D implementation and SIMD level the build has.

    Without the direct 3-D kernels (tests/test_conv3d_direct.py), conv3d makes one 2-D
    convolution of its depth slices with the depth taps gathered into the channels: the
    variants are those of that 2-D problem, and each must have run."""
    monkeypatch.setattr(convpool.conv3d_direct, "enabled", False)
    x = rng.standard_normal((2, 8, 5, 9, 10)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3, 3)).astype(np.float32)
    expected = ref.conv3d(x, w, padding=1)
    gy = rng.standard_normal(expected.shape).astype(np.float32)
    x2 = np.zeros((2 * 5, 8 * 3, 9, 10), np.float32)  # (N * OD, C_in * kd, H, W)
    w2 = np.zeros((8, 8 * 3, 3, 3), np.float32)
    gy2 = np.zeros((2 * 5, 8, 9, 10), np.float32)
    for label in conv2d_variants("forward", x2, w2, gy2, padding=1):
        assert_close(convpool.conv3d(x, w, padding=1), expected, np.float32, label)
    expected_gx = ref.conv3d_grad_input(gy, w, x.shape, padding=1)
    for label in conv2d_variants("grad_input", x2, w2, gy2, padding=1):
        assert_close(convpool.conv3d_grad_input(gy, w, x.shape, padding=1), expected_gx,
                     np.float32, label)
    expected_gw = ref.conv3d_grad_weight(x, gy, w.shape, padding=1)
    for label in conv2d_variants("grad_weight", x2, w2, gy2, padding=1):
        assert_close(convpool.conv3d_grad_weight(x, gy, w.shape, padding=1), expected_gw,
                     np.float32, label)


# --- pooling ------------------------------------------------------------------------------


def check_max(rng, rank, x, where="", **kwargs):
    pool, pool_ref = functions("max_poolNd", rank)
    y_ref, idx_ref = pool_ref(x, return_indices=True, **kwargs)
    y, idx = pool(x, return_indices=True, **kwargs)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref, err_msg=f"{where} values")
    np.testing.assert_array_equal(idx, idx_ref, err_msg=f"{where} indices")
    np.testing.assert_array_equal(pool(x, **kwargs), y_ref, err_msg=f"{where} without indices")
    grad, grad_ref = functions("max_poolNd_grad_input", rank)
    gy = rng.standard_normal(y.shape).astype(y.dtype)
    assert_close(grad(gy, idx, np.shape(x)), grad_ref(gy, idx, np.shape(x)), y.dtype,
                 f"{where} grad")


def check_avg(rng, rank, x, where="", **kwargs):
    pool, pool_ref = functions("avg_poolNd", rank)
    expected = pool_ref(x, **kwargs)
    assert_close(pool(x, **kwargs), expected, expected.dtype, f"{where} forward")
    grad, grad_ref = functions("avg_poolNd_grad_input", rank)
    gy = rng.standard_normal(expected.shape).astype(expected.dtype)
    assert_close(grad(gy, np.shape(x), **kwargs), grad_ref(gy, np.shape(x), **kwargs),
                 expected.dtype, f"{where} grad")


def integer_valued(rng, shape, dtype):
    """Small integers: many ties, which must go to the first maximum."""
    return rng.integers(-3, 4, size=shape).astype(dtype)


POOL_OPTIONS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
    dict(kernel_size=2, stride=1, padding="same"),
    dict(kernel_size=3, stride=2, padding="valid", ceil_mode=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", POOL_OPTIONS, ids=str)
def test_pool1d_matches_oracle(rng, options, dtype):
    x = integer_valued(rng, (2, 3, 17), dtype)
    check_max(rng, 1, x, **options)
    check_max(rng, 1, x, dilation=2, **options)
    for count_include_pad in (True, False):
        check_avg(rng, 1, rng.standard_normal(x.shape).astype(dtype),
                  count_include_pad=count_include_pad, **options)
    check_avg(rng, 1, x, divisor_override=3, **options)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", POOL_OPTIONS, ids=str)
def test_pool3d_matches_oracle(rng, options, dtype):
    x = integer_valued(rng, (2, 2, 7, 6, 9), dtype)
    check_max(rng, 3, x, **options)
    check_max(rng, 3, x, dilation=(2, 1, 2), **options)
    for count_include_pad in (True, False):
        check_avg(rng, 3, rng.standard_normal(x.shape).astype(dtype),
                  count_include_pad=count_include_pad, **options)
    check_avg(rng, 3, x, divisor_override=-5, **options)


def test_pool_padding_forms_on_each_axis(rng):
    x1 = integer_valued(rng, (2, 12), np.float64)
    for padding in ((1,), (0, 1), ((1, 0),)):
        check_max(rng, 1, x1, kernel_size=3, stride=2, padding=padding, where=str(padding))
        check_avg(rng, 1, x1, kernel_size=3, stride=2, padding=padding, where=str(padding))
    x3 = integer_valued(rng, (1, 3, 6, 7, 8), np.float32)
    options = dict(kernel_size=(2, 3, 4), stride=(1, 2, 3))
    for padding in ((1, 0, 2), ((0, 1), (1, 1), (2, 0)), "same"):
        check_max(rng, 3, x3, padding=padding, where=str(padding), **options)
        check_avg(rng, 3, x3, padding=padding, where=str(padding), ceil_mode=True, **options)


def test_pool_same_padding_beyond_half_the_kernel_is_allowed(rng):
    # 'same' with dilation pads 1 + 2 around a 2-tap window: more than kernel // 2,
    # which explicit padding may not be, on the pooled axis only
    x = rng.standard_normal((2, 10))
    check_max(rng, 1, x, kernel_size=2, stride=1, padding="same", dilation=3)
    x3 = rng.standard_normal((1, 1, 6, 5, 4))
    check_max(rng, 3, x3, kernel_size=2, stride=1, padding="same", dilation=(3, 1, 2))


def test_max_pool3d_ties_across_depth_and_nan(rng):
    x = np.zeros((1, 1, 4, 4, 4))
    x[0, 0, 1, 0, 1] = 5.0  # flat 16 + 1
    x[0, 0, 0, 1, 1] = 5.0  # flat 5: earlier in (d, h, w) order
    x[0, 0, 2, 3, 3] = np.nan
    x[0, 0, 3, 2, 2] = np.nan
    check_max(rng, 3, x, kernel_size=2)
    y, idx = convpool.max_pool3d(x, 2, return_indices=True)
    assert y[0, 0, 0, 0, 0] == 5.0 and idx[0, 0, 0, 0, 0] == 5
    assert np.isnan(y[0, 0, 1, 1, 1]) and idx[0, 0, 1, 1, 1] == 2 * 16 + 3 * 4 + 3
    x = np.full((1, 1, 3, 2, 2), -np.inf)
    check_max(rng, 3, x, kernel_size=(3, 2, 2), padding=(1, 0, 0), stride=1)


@pytest.mark.parametrize("rank", [1, 3])
def test_pools_with_infinities_and_nan_match_the_oracle(rng, rank):
    shape = (2, 3, 13) if rank == 1 else (2, 2, 5, 6, 7)
    x = rng.standard_normal(shape)
    x.flat[::7] = np.inf
    x.flat[3::11] = -np.inf
    x.flat[5::17] = np.nan
    for options in (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                    dict(kernel_size=2, count_include_pad=False, padding=1)):
        pool, pool_ref = functions("avg_poolNd", rank)
        np.testing.assert_allclose(pool(x, **options), pool_ref(x, **options), rtol=1e-12)
        gy = rng.standard_normal(pool_ref(x, **options).shape)
        gy.flat[::5] = np.inf
        gy.flat[1::5] = -np.inf
        grad, grad_ref = functions("avg_poolNd_grad_input", rank)
        np.testing.assert_allclose(grad(gy, x.shape, **options),
                                   grad_ref(gy, x.shape, **options), rtol=1e-12)
        options.pop("count_include_pad", None)
        pool, pool_ref = functions("max_poolNd", rank)
        (y, idx), (y_ref, idx_ref) = (pool(x, return_indices=True, **options),
                                      pool_ref(x, return_indices=True, **options))
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(idx, idx_ref)


def test_pools_unbatched_and_strided(rng):
    x = integer_valued(rng, (3, 4, 5, 6), np.float64)  # unbatched 3-D
    check_max(rng, 3, x, kernel_size=2, padding=1, stride=1)
    check_avg(rng, 3, x, kernel_size=3, padding=1, count_include_pad=False)
    base = integer_valued(rng, (4, 6, 20, 8, 8), np.float32)
    check_max(rng, 3, base[::2, 1::2, ::3, :, 1::2].transpose(0, 1, 2, 4, 3), kernel_size=2)
    check_avg(rng, 1, base[0, :, 0, 0, :], kernel_size=2)
    check_max(rng, 1, base[:, 0, :, 0, :].transpose(0, 2, 1), kernel_size=3, stride=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_pools_match_oracle(rng, dtype):
    for rank, shape in ((1, (2, 3, 7)), (1, (3, 7)), (3, (2, 3, 4, 5, 6)), (3, (3, 2, 2, 2))):
        x = integer_valued(rng, shape, dtype)
        x.flat[3] = np.nan
        for kind in ("avg", "max"):
            pool, pool_ref = functions(f"global_{kind}_poolNd", rank)
            grad, grad_ref = functions(f"global_{kind}_poolNd_grad_input", rank)
            for keepdims in (False, True):
                y_ref = pool_ref(x, keepdims=keepdims)
                y = pool(x, keepdims=keepdims)
                assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
                np.testing.assert_allclose(y, y_ref, rtol=1e-6, err_msg=f"{kind} {shape}")
                gy = rng.standard_normal(y.shape).astype(dtype)
                other = x if kind == "max" else shape
                assert_close(grad(gy, other), grad_ref(gy, other), dtype, f"{kind} grad")


# --- hypothesis: random geometry ----------------------------------------------------------


@st.composite
def conv_configs(draw, rank):
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    size = tuple(draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 6))
                 for k, d in zip(kernel, dilation, strict=True))
    mode = draw(st.sampled_from(MODES))
    padding = draw(st.one_of(
        st.just("same"), st.just("valid"),
        st.tuples(*[st.tuples(st.integers(0, min(2, s - 1)), st.integers(0, min(2, s - 1)))
                    for s in size])))
    batch = draw(st.integers(1, 2))
    return dict(x_shape=(batch, c_in, *size), w_shape=(c_out, c_in // groups, *kernel),
                kwargs=dict(stride=stride, dilation=dilation, groups=groups,
                            padding=padding, padding_mode=mode))


def accepted(conv, config) -> bool:
    """False for the drawn 'same' paddings a padding mode cannot produce (reflect needs
    padding < size): the compiled layer rejects them, as test_nd_errors checks."""
    try:
        conv(np.zeros(config["x_shape"]), np.zeros(config["w_shape"]), **config["kwargs"])
    except ValueError as error:
        assert "padding_mode" in str(error)
        return False
    return True


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=conv_configs(1), dtype=st.sampled_from(DTYPES))
def test_conv1d_hypothesis(config, dtype):
    assume(accepted(convpool.conv1d, config))
    rng = np.random.default_rng(1)
    check_conv(rng, 1, rng.standard_normal(config["x_shape"]).astype(dtype),
               rng.standard_normal(config["w_shape"]).astype(dtype), None, **config["kwargs"])


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=conv_configs(3), dtype=st.sampled_from(DTYPES))
def test_conv3d_hypothesis(config, dtype):
    assume(accepted(convpool.conv3d, config))
    rng = np.random.default_rng(3)
    check_conv(rng, 3, rng.standard_normal(config["x_shape"]).astype(dtype),
               rng.standard_normal(config["w_shape"]).astype(dtype), None, **config["kwargs"])


@st.composite
def pool_configs(draw, rank):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    size = tuple(draw(st.integers(k, k + 5)) for k in kernel)
    padding = draw(st.one_of(
        st.just("same"), st.just("valid"),
        st.tuples(*[st.integers(0, k // 2) for k in kernel])))
    ceil_mode = draw(st.booleans())
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return shape, dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=pool_configs(3), dtype=st.sampled_from(DTYPES), count_include_pad=st.booleans())
def test_pool3d_hypothesis(config, dtype, count_include_pad):
    shape, kwargs = config
    rng = np.random.default_rng(5)
    check_max(rng, 3, integer_valued(rng, shape, dtype), **kwargs)
    check_avg(rng, 3, rng.standard_normal(shape).astype(dtype),
              count_include_pad=count_include_pad, **kwargs)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(config=pool_configs(1), dtype=st.sampled_from(DTYPES), count_include_pad=st.booleans())
def test_pool1d_hypothesis(config, dtype, count_include_pad):
    shape, kwargs = config
    rng = np.random.default_rng(7)
    check_max(rng, 1, integer_valued(rng, shape, dtype), **kwargs)
    check_avg(rng, 1, rng.standard_normal(shape).astype(dtype),
              count_include_pad=count_include_pad, **kwargs)
