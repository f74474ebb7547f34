"""Every validation rule of the convolution functions: TypeError for a wrong type or dtype,
ValueError for a wrong shape or value, with a message naming the argument. The oracle
shares the rules, so each is checked on both (``api``)."""

from __future__ import annotations

import re

import convpool
import numpy as np
import pytest
from conftest import assert_close
from convpool import _core
from convpool import reference as ref

X = np.ones((1, 4, 5, 5))
W = np.ones((2, 4, 3, 3))
GY = np.ones((1, 2, 3, 3))  # the output of X, W with the defaults


@pytest.fixture(params=[convpool, ref], ids=["compiled", "oracle"])
def api(request):
    return request.param


def forward_and_gradients(api, x=X, w=W, **kwargs):
    """Call the forward pass and both shape-checked gradients with the same arguments
    (each must raise); gradients get a grad_output of a plausible shape."""
    yield lambda: api.conv2d(x, w, **kwargs)
    yield lambda: api.conv2d_grad_input(GY, w, np.shape(x), **kwargs)
    yield lambda: api.conv2d_grad_weight(x, GY, np.shape(w), **kwargs)


def assert_all_raise(calls, error, match):
    for call in calls:
        with pytest.raises(error, match=match):
            call()


# --- shapes ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "x_shape, w_shape, match",
    [
        ((1, 1, 4, 5, 5), (2, 4, 3, 3), r"x: expected \(N, C, H, W\).*got shape \(1, 1, 4, 5, 5\)"),
        ((5,), (2, 4, 3, 3), r"x: expected .*got shape \(5,\)"),
        ((1, 4, 5, 5), (2, 4, 3), r"weight: expected \(C_out, C_in // groups, kh, kw\)"),
        # ((C, H, W) with a 2-D kernel filters every channel: tests/test_conv_nhwc.py)
        ((5, 5), (2, 4, 3, 3), r"weight: expected \(kh, kw\) for a 2-D picture"),
    ],
)
def test_wrong_ndim(api, x_shape, w_shape, match):
    # (the gradients check their input_shape / weight_shape argument first: see below)
    with pytest.raises(ValueError, match=match):
        api.conv2d(np.ones(x_shape), np.ones(w_shape))


def test_wrong_ndim_of_shape_arguments(api):
    with pytest.raises(ValueError, match=r"input_shape: expected 2 or 3 or 4 dimensions"):
        api.conv2d_grad_input(GY, W, (1, 1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"weight_shape: expected 2 or 4 dimensions"):
        api.conv2d_grad_weight(X, GY, (2, 4, 3))
    for bad in (np.ones(3), np.ones((1, 1, 1, 1, 1))):
        with pytest.raises(ValueError, match=r"grad_output: expected \(N, C, OH, OW\)"):
            api.conv2d_grad_bias(bad)


def test_shape_arguments_must_be_tuples_of_nonnegative_ints(api):
    with pytest.raises(TypeError, match="input_shape: expected a tuple of ints, got 5"):
        api.conv2d_grad_input(GY, W, 5)
    with pytest.raises(TypeError, match="input_shape: expected a tuple of ints"):
        api.conv2d_grad_input(GY, W, (1, 4, 5.0, 5))
    with pytest.raises(ValueError, match=r"input_shape: sizes must be >= 0, got \(1, 4, -5, 5\)"):
        api.conv2d_grad_input(GY, W, (1, 4, -5, 5))
    with pytest.raises(TypeError, match="weight_shape: expected a tuple of ints"):
        api.conv2d_grad_weight(X, GY, (2, 4, 3, True))


def test_channel_mismatch(api):
    match = r"weight: shape \(2, 3, 3, 3\) needs in_channels = 3 .* x has 4 channels"
    assert_all_raise(forward_and_gradients(api, X, np.ones((2, 3, 3, 3))), ValueError, match)


@pytest.mark.parametrize("c_out, w_in, groups", [(3, 4, 3), (3, 2, 2), (4, 1, 3)])
def test_groups_must_divide_channels(api, c_out, w_in, groups):
    match = rf"groups: {groups} must divide in_channels \(4\) and out_channels \({c_out}\)"
    w = np.ones((c_out, w_in, 3, 3))
    assert_all_raise(forward_and_gradients(api, X, w, groups=groups), ValueError, match)


def test_groups_with_wrong_weight_channels(api):
    # groups 2 divides 4 and 2, but the weight must then have 4 / 2 = 2 input channels
    match = r"weight: shape \(2, 4, 3, 3\) needs in_channels = 4 x groups \(2\) = 8"
    assert_all_raise(forward_and_gradients(api, X, W, groups=2), ValueError, match)


def test_empty_channels_and_kernels(api):
    match = "x, weight: channel and kernel sizes must be >= 1"
    for x, w in [
        (np.ones((1, 0, 5, 5)), np.ones((2, 0, 3, 3))),
        (X, np.ones((2, 4, 0, 3))),
        (X, np.ones((0, 4, 3, 3))),
    ]:
        with pytest.raises(ValueError, match=match):
            api.conv2d(x, w)


@pytest.mark.parametrize(
    "w_shape, kwargs, match",
    [
        ((2, 4, 7, 3), {}, r"output height would be -1: input 5, kernel 7, stride 1, "
                           r"dilation 1, padding \(0, 0\)"),
        ((2, 4, 3, 3), dict(dilation=(1, 3)), r"output width would be -1: input 5, kernel 3, "
                                              r"stride 1, dilation 3, padding \(0, 0\)"),
        ((2, 4, 8, 3), dict(padding=((1, 1), (0, 0)), stride=3),
         r"output height would be 0: input 5, kernel 8, stride 3, dilation 1, padding \(1, 1\)"),
    ],
)
def test_non_positive_output_size(api, w_shape, kwargs, match):
    assert_all_raise(forward_and_gradients(api, X, np.ones(w_shape), **kwargs), ValueError, match)


def test_empty_plane(api):
    x = np.ones((1, 4, 0, 5))
    with pytest.raises(ValueError, match="output height would be 0: input 0"):
        api.conv2d(x, W, padding=1)
    with pytest.raises(ValueError, match="padding_mode='replicate': needs a non-empty input"):
        api.conv2d(x, W, padding=2, padding_mode="replicate")


# --- padding ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "mode, padding, match",
    [
        ("reflect", 5, r"padding_mode='reflect': padding 5 on the height axis needs padding < "
                       r"input size 5"),
        ("reflect", ((0, 0), (0, 5)), "padding 5 on the width axis needs padding < input size 5"),
        ("symmetric", ((6, 0), (0, 0)), r"padding_mode='symmetric': padding 6 on the height axis "
                                        r"needs padding <= input size 5"),
        ("circular", ((0, 0), (6, 0)), r"padding_mode='circular': padding 6 on the width axis "
                                       r"needs padding <= input size 5"),
    ],
)
def test_padding_too_large_for_mode(api, mode, padding, match):
    assert_all_raise(forward_and_gradients(api, X, np.ones((2, 4, 1, 1)), padding=padding,
                                           padding_mode=mode), ValueError, match)


@pytest.mark.parametrize("mode, largest", [("reflect", 4), ("symmetric", 5), ("circular", 5)])
def test_largest_padding_for_mode_is_accepted(api, mode, largest):
    y = api.conv2d(X, np.ones((2, 4, 1, 1)), padding=largest, padding_mode=mode)
    assert y.shape == (1, 2, 5 + 2 * largest, 5 + 2 * largest)


@pytest.mark.parametrize("padding", ["full", "SAME", "", "causal"])
def test_unknown_padding_string(api, padding):
    match = r"padding: expected an int, .*'valid' or 'same', got '" + padding + "'"
    assert_all_raise(forward_and_gradients(api, padding=padding), ValueError, match)


@pytest.mark.parametrize(
    "padding, error, match",
    [
        (-1, ValueError, "padding: value must be >= 0, got -1"),
        ((1, -2), ValueError, "padding: width must be >= 0, got -2"),
        (((0, -1), (0, 0)), ValueError, "padding: height after must be >= 0, got -1"),
        (((0, 0), (-3, 0)), ValueError, "padding: width before must be >= 0, got -3"),
        ((1, 1, 1), ValueError, r"padding: expected .*got \(1, 1, 1\)"),
        (((1, 2, 3), (0, 0)), ValueError, r"padding: the height entry must be an int or "
                                          r"\(before, after\)"),
        (1.0, TypeError, "padding: expected an int.*got 1.0"),
        (None, TypeError, "padding: expected an int.*got None"),
        (True, TypeError, "padding: expected an int.*got True"),
        ((1, 0.5), TypeError, "padding: width must be an int, got 0.5"),
        (((0, 1), (False, 0)), TypeError, "padding: width before must be an int, got False"),
    ],
)
def test_bad_padding_values_and_types(api, padding, error, match):
    assert_all_raise(forward_and_gradients(api, padding=padding), error, match)


@pytest.mark.parametrize("mode", ["constant", "zero", "edge", "wrap", "Reflect"])
def test_unknown_padding_mode(api, mode):
    match = rf"padding_mode: expected one of \('zeros', .*'circular'\), got '{mode}'"
    assert_all_raise(forward_and_gradients(api, padding=1, padding_mode=mode), ValueError, match)


@pytest.mark.parametrize("mode", [None, 0, ("zeros",)])
def test_padding_mode_of_wrong_type(api, mode):
    assert_all_raise(forward_and_gradients(api, padding=1, padding_mode=mode), TypeError,
                     "padding_mode: expected one of")


# --- stride, dilation, groups ---------------------------------------------------------

@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize(
    "value, error, match",
    [
        (0, ValueError, "must be >= 1, got 0"),
        (-1, ValueError, "must be >= 1, got -1"),
        ((1, 0), ValueError, r"must be >= 1, got \(1, 0\)"),
        (True, TypeError, "expected an int or a pair of ints, got True"),
        ((1, False), TypeError, r"expected an int or a pair of ints, got \(1, False\)"),
        (1.5, TypeError, "expected an int or a pair of ints, got 1.5"),
        ((1, 1, 1), ValueError, r"expected an int or a pair of ints, got \(1, 1, 1\)"),
        ("2", TypeError, "expected an int or a pair of ints, got '2'"),
    ],
)
def test_bad_stride_and_dilation(api, name, value, error, match):
    assert_all_raise(forward_and_gradients(api, **{name: value}), error, f"{name}: {match}")


@pytest.mark.parametrize(
    "value, error, match",
    [
        (0, ValueError, "groups: must be >= 1, got 0"),
        (-2, ValueError, "groups: must be >= 1, got -2"),
        (True, TypeError, "groups: expected an int, got True"),
        (2.0, TypeError, "groups: expected an int, got 2.0"),
    ],
)
def test_bad_groups(api, value, error, match):
    assert_all_raise(forward_and_gradients(api, groups=value), error, match)


def test_numpy_integers_are_accepted(api):
    y = api.conv2d(X, W, stride=np.int64(2), padding=(np.int32(1), 1), dilation=np.uint8(1),
                   groups=np.int16(1))
    assert y.shape == (1, 2, 3, 3)


def test_rejection_does_not_depend_on_earlier_valid_calls(api):
    # 1 == True == 1.0 (and they hash alike): a valid call must not make a later call with
    # a bool or a float for the same argument pass, as a cache keyed on values would.
    api.conv2d(X, W, stride=1, padding=1, dilation=1, groups=1)
    for kwargs, error in [
        (dict(stride=True), TypeError),
        (dict(stride=1.0), TypeError),
        (dict(dilation=(1, True)), TypeError),
        (dict(groups=True), TypeError),
        (dict(groups=1.0), TypeError),
        (dict(padding=True), TypeError),
        (dict(padding=1.0), TypeError),
        (dict(padding=(1.0, 1)), TypeError),
    ]:
        full = dict(stride=1, padding=1, dilation=1, groups=1) | kwargs
        with pytest.raises(error):
            api.conv2d(X, W, **full)
            pytest.fail(f"{kwargs} accepted after a valid call")


# --- dtypes ---------------------------------------------------------------------------

BAD_DTYPES = [np.complex128, np.complex64, object, bool, str]


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_bad_dtypes(api, dtype):
    match = r"dtype must be a real number type \(float32, float64 or an integer\), got "
    bad = {"x": X.astype(dtype), "weight": W.astype(dtype), "grad_output": GY.astype(dtype),
           "bias": np.ones(2).astype(dtype)}
    calls = {
        "x": [lambda: api.conv2d(bad["x"], W),
              lambda: api.conv2d_grad_weight(bad["x"], GY, W.shape)],
        "weight": [lambda: api.conv2d(X, bad["weight"]),
                   lambda: api.conv2d_grad_input(GY, bad["weight"], X.shape)],
        "grad_output": [lambda: api.conv2d_grad_input(bad["grad_output"], W, X.shape),
                        lambda: api.conv2d_grad_weight(X, bad["grad_output"], W.shape),
                        lambda: api.conv2d_grad_bias(bad["grad_output"])],
        "bias": [lambda: api.conv2d(X, W, bad["bias"])],
    }
    for name, name_calls in calls.items():
        assert_all_raise(name_calls, TypeError, f"{name}: {match}")


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="longdouble is float64 here")
def test_extended_precision_is_refused(api):
    with pytest.raises(TypeError, match="dtype: convpool computes in float32 or float64.*float128"):
        api.conv2d(X.astype(np.longdouble), W)


def test_unconvertible_inputs(api):
    with pytest.raises(TypeError, match="x: cannot be converted to a numeric array"):
        api.conv2d([[1.0, 2.0], [3.0]], np.ones((1, 1)))
    with pytest.raises(TypeError, match="x: dtype must be a real number type"):
        api.conv2d("picture", np.ones((1, 1)))
    with pytest.raises(TypeError, match="weight: dtype must be a real number type"):
        api.conv2d(X, None)


# --- grad_output and bias shapes ------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 2, 4, 4), (1, 3, 3, 3), (2, 3, 3), (1, 2, 3)])
def test_wrong_grad_output_shape(api, shape):
    match = re.escape(f"grad_output: expected shape (1, 2, 3, 3), got {shape}")
    with pytest.raises(ValueError, match=match):
        api.conv2d_grad_input(np.ones(shape), W, X.shape)
    with pytest.raises(ValueError, match=match):
        api.conv2d_grad_weight(X, np.ones(shape), W.shape)


@pytest.mark.parametrize("shape", [(3,), (2, 1), (), (1,)])
def test_wrong_bias_shape(api, shape):
    match = re.escape(f"bias: expected shape (2,), got {shape}")
    with pytest.raises(ValueError, match=match):
        api.conv2d(X, W, np.ones(shape))


def test_picture_bias_may_be_a_scalar(api):
    picture, kernel = np.ones((4, 4)), np.ones((3, 3))
    for bias in (1.5, np.float32(1.5), [1.5], np.array([1.5])):
        assert_close(api.conv2d(picture, kernel, bias), np.full((2, 2), 10.5), np.float64)
    with pytest.raises(ValueError, match=r"bias: expected shape \(1,\), got \(2,\)"):
        api.conv2d(picture, kernel, [1.0, 2.0])


# --- lists are converted --------------------------------------------------------------

def test_lists_are_accepted(api):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((3, 2, 2, 3))
    kwargs = dict(stride=[1, 2], padding=[[1, 0], [0, 2]], dilation=[2, 1])
    expected = api.conv2d(x, w, [1.0, 2.0, 3.0], **kwargs)
    assert_close(api.conv2d(x.tolist(), w.tolist(), [1, 2, 3], **kwargs), expected, np.float64)
    gy = rng.standard_normal(expected.shape)
    assert_close(api.conv2d_grad_input(gy.tolist(), w.tolist(), list(x.shape), **kwargs),
                 api.conv2d_grad_input(gy, w, x.shape, **kwargs), np.float64)
    assert_close(api.conv2d_grad_weight(x.tolist(), gy.tolist(), list(w.shape), **kwargs),
                 api.conv2d_grad_weight(x, gy, w.shape, **kwargs), np.float64)
    assert_close(api.conv2d_grad_bias(gy.tolist()), gy.sum(axis=(0, 2, 3)), np.float64)


# --- the compiled layer's own checks (a bug in the Python layer must not crash) -------

def test_core_rejects_what_the_python_layer_should_never_pass():
    """The compiled layer trusts the geometry's meaning (convpool.geometry resolves it) but
    checks what protects memory: dtypes, contiguity, that the arrays agree with the
    geometry, aliasing, and that the geometry is safe to index with."""
    x = np.ones((1, 4, 5, 5), dtype=np.float32)
    w = np.ones((2, 4, 3, 3), dtype=np.float32)
    y = np.empty((1, 2, 3, 3), dtype=np.float32)
    axis = _core.WindowAxis(5, 3, 3, 1, 1, 0, 0)
    geometry = _core.Conv2dGeometry(1, 4, 2, 1, axis, axis)
    with pytest.raises(TypeError, match="x: dtype must be float32 or float64, got int64"):
        _core.conv2d_forward(x.astype(np.int64), w, None, y, geometry)
    with pytest.raises(TypeError, match="weight: dtype must be float32, got float64"):
        _core.conv2d_forward(x, w.astype(np.float64), None, y, geometry)
    with pytest.raises(ValueError, match="x: array must be C-contiguous"):
        _core.conv2d_forward(np.asfortranarray(x), w, None, y, geometry)
    with pytest.raises(ValueError, match=r"out: expected shape \(1, 2, 3, 3\), got \(1, 2, 4, 3\)"):
        _core.conv2d_forward(x, w, None, np.empty((1, 2, 4, 3), np.float32), geometry)
    with pytest.raises(ValueError, match=r"weight: expected shape \(2, 4, 3, 3\)"):
        _core.conv2d_forward(x, w[:, :3].copy(), None, y, geometry)
    with pytest.raises(ValueError, match=r"bias: expected shape \(2\)"):
        _core.conv2d_forward(x, w, np.ones(3, np.float32), y, geometry)
    with pytest.raises(ValueError, match="out must not share memory with x"):
        _core.conv2d_forward(x, w, None, x.reshape(-1)[:18].reshape(1, 2, 3, 3), geometry)
    with pytest.raises(ValueError, match="groups"):
        _core.conv2d_forward(x, w, None, y, _core.Conv2dGeometry(1, 4, 2, 3, axis, axis))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        zero_stride = _core.WindowAxis(5, 3, 3, 0, 1, 0, 0)
        _core.conv2d_forward(x, w, None, y, _core.Conv2dGeometry(1, 4, 2, 1, zero_stride, axis))
    with pytest.raises(ValueError, match="height: 4 windows .* do not fit an input of 5"):
        too_many = _core.WindowAxis(5, 4, 3, 1, 1, 0, 0)
        _core.conv2d_forward(x, w, None, np.empty((1, 2, 4, 3), np.float32),
                             _core.Conv2dGeometry(1, 4, 2, 1, too_many, axis))
    with pytest.raises(ValueError, match="height: padding 5 is beyond what the padding mode"):
        reflect_rows = _core.WindowAxis(5, 13, 3, 1, 1, 5, 5)
        _core.conv2d_forward(x, w, None, np.empty((1, 2, 13, 3), np.float32),
                             _core.Conv2dGeometry(1, 4, 2, 1, reflect_rows, axis,
                                                  _core.PaddingMode.reflect))
    with pytest.raises(TypeError):
        _core.Conv2dGeometry(1, 4, 2, 1, axis, axis, "edge")


def test_thread_count_must_be_positive():
    with pytest.raises(ValueError, match="n: .* between 1 and 1024, got 0"):
        convpool.set_num_threads(0)
    with pytest.raises(TypeError, match="n: expected an int, got True"):
        convpool.set_num_threads(True)
