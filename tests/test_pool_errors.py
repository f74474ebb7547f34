"""Bad pooling arguments: a TypeError (wrong type or dtype) or ValueError (wrong shape or
value) naming the argument, the value given and the rule; never a crash or a silently
wrong result."""

from __future__ import annotations

import re

import convpool
import numpy as np
import pytest
from convpool import _core

X = np.zeros((2, 3, 6, 6), dtype=np.float32)


def raises(error, *fragments):
    """pytest.raises whose message must contain every fragment (literally, in order)."""
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


# --- the input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "f",
    [lambda x: convpool.max_pool2d(x, 2), lambda x: convpool.avg_pool2d(x, 2),
     convpool.global_max_pool2d, convpool.global_avg_pool2d, lambda x: convpool.channel_pool(x, 1)],
)
def test_input_rank_and_dtype(f):
    with raises(ValueError, "x", "(N, C, H, W) or (C, H, W)", "(6, 6)"):
        f(np.zeros((6, 6)))
    with raises(TypeError, "x", "complex128"):
        f(np.zeros((1, 1, 4, 4), dtype=complex))
    with raises(TypeError, "x", "bool"):
        f(np.zeros((1, 1, 4, 4), dtype=bool))
    with raises(TypeError, "x"):
        f("not an array")


def test_empty_plane():
    with raises(ValueError, "x", "H and W >= 1", "(1, 1, 0, 4)"):
        convpool.max_pool2d(np.zeros((1, 1, 0, 4)), 1)
    with raises(ValueError, "x", "H and W >= 1"):
        convpool.global_avg_pool2d(np.zeros((1, 1, 4, 0)))


# --- window arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "fragments"),
    [
        (dict(kernel_size=0), ValueError, ("kernel_size", ">= 1", "0")),
        (dict(kernel_size=(2, 2, 2)), ValueError, ("kernel_size", "pair", "(2, 2, 2)")),
        (dict(kernel_size=2.5), TypeError, ("kernel_size", "2.5")),
        (dict(kernel_size=2, stride=0), ValueError, ("stride", ">= 1", "0")),
        (dict(kernel_size=2, stride=(1, "2")), TypeError, ("stride",)),
        (dict(kernel_size=2, padding=-1), ValueError, ("padding", ">= 0", "-1")),
        (dict(kernel_size=2, padding="full"), ValueError, ("padding", "'same'", "'full'")),
        (dict(kernel_size=2, padding=1.5), TypeError, ("padding", "1.5")),
        (dict(kernel_size=2, ceil_mode="yes"), TypeError, ("ceil_mode", "True or False", "'yes'")),
    ],
    ids=str,
)
@pytest.mark.parametrize("f", [convpool.max_pool2d, convpool.avg_pool2d], ids=["max", "avg"])
def test_window_arguments(f, kwargs, error, fragments):
    with raises(error, *fragments):
        f(X, **kwargs)


def test_max_only_arguments():
    with raises(ValueError, "dilation", ">= 1"):
        convpool.max_pool2d(X, 2, dilation=0)
    with raises(TypeError, "return_indices", "True or False"):
        convpool.max_pool2d(X, 2, return_indices=1)


def test_avg_only_arguments():
    with raises(ValueError, "divisor_override", "not be 0"):
        convpool.avg_pool2d(X, 2, divisor_override=0)
    with raises(TypeError, "divisor_override", "1.5"):
        convpool.avg_pool2d(X, 2, divisor_override=1.5)
    with raises(TypeError, "divisor_override", "True"):
        convpool.avg_pool2d(X, 2, divisor_override=True)
    with raises(TypeError, "count_include_pad", "True or False", "None"):
        convpool.avg_pool2d(X, 2, count_include_pad=None)


@pytest.mark.parametrize("f", [convpool.max_pool2d, convpool.avg_pool2d], ids=["max", "avg"])
def test_padding_at_most_half_the_kernel(f):
    with raises(ValueError, "padding", "(2, 2)", "height", "kernel size 3", "kernel_size // 2 = 1"):
        f(X, 3, padding=2)
    with raises(ValueError, "padding", "(0, 3)", "width", "kernel size 4", "= 2"):
        f(X, (2, 4), padding=((1, 1), (0, 3)))
    f(X, 4, padding=2)  # exactly half is allowed, as in PyTorch


def test_same_padding_is_exempt_from_the_half_kernel_rule():
    # kernel 2, dilation 3, stride 1: 'same' pads 3 = 1 before + 2 after (> 2 // 2).
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    assert convpool.max_pool2d(x, 2, 1, "same", dilation=3).shape == (1, 1, 6, 6)
    with raises(ValueError, "padding", "(1, 2)"):
        convpool.max_pool2d(x, 2, 1, ((1, 2), (1, 2)), dilation=3)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_kernel_larger_than_the_padded_input(ceil_mode):
    with raises(ValueError, "kernel_size", "height", "7 pixels", "6 + 0 + 0 = 6"):
        convpool.max_pool2d(X, 7, ceil_mode=ceil_mode)
    with raises(ValueError, "kernel_size", "width", "9 pixels", "kernel 5, dilation 2"):
        convpool.max_pool2d(X, (1, 5), dilation=(1, 2), ceil_mode=ceil_mode)
    with raises(ValueError, "kernel_size", "width", "9 pixels", "6 + 1 + 1 = 8"):
        convpool.avg_pool2d(X, (1, 9), padding=(0, 1), ceil_mode=ceil_mode)


def test_window_entirely_in_the_padding():
    # Input 1, kernel 2, dilation 2, padding 1: the one window's taps are -1 and 1.
    with raises(ValueError, "window of output position 0", "entirely in the padding",
                "input 1", "dilation 2"):
        convpool.max_pool2d(np.ones((1, 1, 1, 3)), (2, 1), padding=(1, 0), dilation=(2, 1))


# --- gradients ------------------------------------------------------------------------


def test_max_grad_indices_type_shape_and_range():
    y, idx = convpool.max_pool2d(X, 2, return_indices=True)
    g = np.ones_like(y)
    with raises(TypeError, "indices", "integer", "float64"):
        convpool.max_pool2d_grad_input(g, idx.astype(np.float64), X.shape)
    with raises(TypeError, "indices", "integer", "list"):
        convpool.max_pool2d_grad_input(g, idx.tolist(), X.shape)
    with raises(ValueError, "indices", str(g.shape), str(idx[:1].shape)):
        convpool.max_pool2d_grad_input(g, idx[:1], X.shape)
    for bad in (-1, 36, 2**40):
        wrong = idx.copy()
        wrong[1, 2, 0, 1] = bad
        with raises(ValueError, "indices", f"value {bad}", "[1, 2, 0, 1]", "[0, 36)", "6, 6"):
            convpool.max_pool2d_grad_input(g, wrong, X.shape)
    # Any integer dtype is accepted.
    np.testing.assert_array_equal(convpool.max_pool2d_grad_input(g, idx.astype(np.int32), X.shape),
                                  convpool.max_pool2d_grad_input(g, idx, X.shape))


def test_max_grad_shapes():
    y, idx = convpool.max_pool2d(X, 2, return_indices=True)
    with raises(ValueError, "grad_output", "input_shape (3, 3, 6, 6)"):
        convpool.max_pool2d_grad_input(y, idx, (3, 3, 6, 6))
    with raises(ValueError, "grad_output", "input_shape (3, 6, 6)"):
        convpool.max_pool2d_grad_input(y, idx, (3, 6, 6))
    with raises(TypeError, "input_shape", "tuple of ints"):
        convpool.max_pool2d_grad_input(y, idx, "2, 3, 6, 6")
    with raises(ValueError, "input_shape", "3 or 4 dimensions"):
        convpool.max_pool2d_grad_input(y, idx, (6, 6))


def test_avg_grad_shape():
    with raises(ValueError, "grad_output", "expected shape (2, 3, 3, 3)", "(2, 3, 2, 2)"):
        convpool.avg_pool2d_grad_input(np.zeros((2, 3, 2, 2)), X.shape, 2)
    with raises(ValueError, "padding", "half"):
        convpool.avg_pool2d_grad_input(np.zeros((2, 3, 3, 3)), X.shape, 2, padding=2)


def test_global_grad_shapes():
    with raises(ValueError, "grad_output", "(2, 3) or (2, 3, 1, 1)", "(3, 2)"):
        convpool.global_avg_pool2d_grad_input(np.zeros((3, 2)), X.shape)
    with raises(ValueError, "grad_output", "(2, 3) or (2, 3, 1, 1)", "(2, 3, 1)"):
        convpool.global_max_pool2d_grad_input(np.zeros((2, 3, 1)), X)
    with raises(TypeError, "keepdims", "True or False"):
        convpool.global_max_pool2d(X, keepdims="no")


# --- channel pooling ------------------------------------------------------------------


def test_channel_pool_arguments():
    with raises(ValueError, "size", "2 must divide", "channels 3"):
        convpool.channel_pool(X, 2)
    with raises(ValueError, "size", ">= 1", "0"):
        convpool.channel_pool(X, 0)
    with raises(TypeError, "size", "1.5"):
        convpool.channel_pool(X, 1.5)
    with raises(ValueError, "mode", "'max'", "'min'"):
        convpool.channel_pool(X, 3, mode="min")
    with raises(ValueError, "grad_output", "(2, 1, 6, 6)", "(2, 3, 6, 6)"):
        convpool.channel_pool_grad_input(X, X, 3)


# --- the compiled layer's own checks (a bug in the Python layer must not crash) --------


def test_bindings_check_what_they_are_given():
    out = np.empty((2, 3, 3, 3), dtype=np.float32)
    axis = _core.WindowAxis(6, 3, 2, 2, 1, 0, 0)
    geometry = dict(geometry=_core.PoolGeometry(6, axis, axis))
    with raises(ValueError, "out: expected shape (2, 3, 3, 3), got (2, 3, 4, 3)"):
        _core.max_pool2d_forward(X, np.empty((2, 3, 4, 3), np.float32), None, **geometry)
    with raises(ValueError, "height: 4 windows", "do not fit an input of 6"):
        beyond = _core.WindowAxis(6, 4, 2, 2, 1, 0, 0)
        _core.max_pool2d_forward(X, np.empty((2, 3, 4, 3), np.float32), None,
                                 _core.PoolGeometry(6, beyond, axis))
    with raises(ValueError, "x: (2, 3, 6, 6) does not hold 5 planes"):
        _core.max_pool2d_forward(X, out, None, _core.PoolGeometry(5, axis, axis))
    with raises(TypeError, "out", "float32", "float64"):
        _core.max_pool2d_forward(X, out.astype(np.float64), None, **geometry)
    with raises(ValueError, "x", "C-contiguous"):
        _core.max_pool2d_forward(np.asfortranarray(X), out, None, **geometry)
    with raises(ValueError, "indices", "expected shape (2, 3, 3, 3)"):
        _core.max_pool2d_forward(X, out, np.empty((2, 3, 3, 2), np.int64), **geometry)
    with raises(ValueError, "out", "must not share memory with x"):
        _core.max_pool2d_forward(X, X.reshape(-1)[:54].reshape(2, 3, 3, 3), None, **geometry)
    with raises(ValueError, "out: expected shape (2, 1, 6, 6)"):  # 3 channels, size 2
        _core.channel_pool_forward(X, out, size=2, mode=_core.ChannelPoolMode.max)
    with pytest.raises(TypeError):  # the mode's name is the Python layer's to check
        _core.channel_pool_forward(X, X.copy(), size=1, mode="sum")
    with raises(ValueError, "global pooling needs a non-empty plane"):
        _core.global_avg_pool2d_forward(np.zeros((1, 1, 0, 3), np.float32),
                                        np.zeros((1, 1), np.float32))
