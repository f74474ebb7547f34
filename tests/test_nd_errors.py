"""Bad arguments to the 1-D and 3-D functions raise TypeError/ValueError naming the
argument, the value and the rule, in the caller's terms (length; depth, height, width),
never an error about the 2-D problem they run as."""

from __future__ import annotations

import re

import convpool
import numpy as np
import pytest

X1 = np.zeros((2, 3, 10))
W1 = np.zeros((4, 3, 3))
X3 = np.zeros((1, 2, 5, 6, 7))
W3 = np.zeros((4, 2, 3, 3, 3))


@pytest.mark.parametrize("call, error, words", [
    (lambda: convpool.conv1d(np.zeros((2, 3, 4, 5)), W1), ValueError, ["x", "(N, C, L)"]),
    (lambda: convpool.conv1d(X1, np.zeros((4, 3))), ValueError, ["weight", "(C_out"]),
    (lambda: convpool.conv1d(X1, np.zeros((4, 2, 3))), ValueError, ["weight", "channels"]),
    (lambda: convpool.conv1d(X1, W1, groups=2), ValueError, ["groups", "divide"]),
    (lambda: convpool.conv1d(X1, W1, stride=0), ValueError, ["stride", ">= 1"]),
    (lambda: convpool.conv1d(X1, W1, stride=(1, 1)), ValueError, ["stride", "1 ints"]),
    (lambda: convpool.conv1d(X1, W1, dilation=1.5), TypeError, ["dilation"]),
    (lambda: convpool.conv1d(X1, W1, padding=-1), ValueError, ["padding", ">= 0"]),
    (lambda: convpool.conv1d(X1, W1, padding=(1, 2, 3)), ValueError, ["padding", "(p,)"]),
    (lambda: convpool.conv1d(X1, W1, padding="full"), ValueError, ["padding", "'full'"]),
    (lambda: convpool.conv1d(X1, W1, padding=None), TypeError, ["padding", "None"]),
    (lambda: convpool.conv1d(X1, W1, padding=10, padding_mode="reflect"), ValueError,
     ["padding_mode='reflect'", "length", "10"]),
    (lambda: convpool.conv1d(X1, W1, padding_mode="mirror"), ValueError, ["padding_mode"]),
    (lambda: convpool.conv1d(X1, np.zeros((4, 3, 11))), ValueError,
     ["output length", "kernel 11"]),
    (lambda: convpool.conv1d(X1, W1, np.zeros(3)), ValueError, ["bias", "(4,)"]),
    (lambda: convpool.conv1d(X1.astype(complex), W1), TypeError, ["x", "complex"]),
    (lambda: convpool.conv3d(np.zeros((2, 5, 6)), W3), ValueError, ["weight", "(kd, kh, kw)"]),
    (lambda: convpool.conv3d(X3, W3, padding=((1, 1), (1, 1))), ValueError,
     ["padding", "(pd, ph, pw)"]),
    (lambda: convpool.conv3d(X3, W3, padding=(0, (1, 2, 3), 0)), ValueError,
     ["padding", "height", "(before, after)"]),
    (lambda: convpool.conv3d(X3, W3, padding=(5, 0, 0), padding_mode="reflect"), ValueError,
     ["depth", "5"]),
    (lambda: convpool.conv3d(X3, np.zeros((4, 2, 6, 3, 3))), ValueError,
     ["output depth", "kernel 6"]),
    (lambda: convpool.conv3d(X3, W3, stride=(1, 1)), ValueError, ["stride", "3 ints"]),
    (lambda: convpool.conv3d_grad_input(np.zeros((1, 4, 3, 4, 5)), W3, (1, 2, 5, 6)),
     ValueError, ["weight"]),
    (lambda: convpool.conv3d_grad_input(np.zeros((1, 4, 3, 4, 4)), W3, (1, 2, 5, 6, 7)),
     ValueError, ["grad_output", "(1, 4, 3, 4, 5)"]),
    (lambda: convpool.conv3d_grad_weight(X3, np.zeros((1, 4, 3, 4, 5)), "W"), TypeError,
     ["weight_shape"]),
    (lambda: convpool.conv1d_grad_bias(np.zeros((1, 2, 3, 4))), ValueError, ["grad_output"]),
])
def test_conv_errors_name_the_argument(call, error, words):
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"


P1 = np.zeros((2, 3, 10))
P3 = np.zeros((2, 3, 4, 5, 6))


@pytest.mark.parametrize("call, error, words", [
    (lambda: convpool.max_pool1d(np.zeros(10), 2), ValueError, ["x", "(N, C, L)"]),
    (lambda: convpool.max_pool1d(P1, 0), ValueError, ["kernel_size"]),
    (lambda: convpool.max_pool1d(P1, 3, padding=2), ValueError,
     ["padding", "length", "kernel_size // 2 = 1"]),
    (lambda: convpool.max_pool1d(P1, 11), ValueError, ["kernel_size", "length"]),
    (lambda: convpool.max_pool1d(P1, 2, ceil_mode=1), TypeError, ["ceil_mode"]),
    (lambda: convpool.max_pool1d(P1, 2, return_indices="yes"), TypeError, ["return_indices"]),
    (lambda: convpool.max_pool1d(np.zeros((1, 1, 1)), 2, padding=1, dilation=2), ValueError,
     ["window", "padding"]),
    (lambda: convpool.avg_pool1d(P1, 2, divisor_override=0), ValueError, ["divisor_override"]),
    (lambda: convpool.avg_pool1d(P1, 2, count_include_pad=None), TypeError,
     ["count_include_pad"]),
    (lambda: convpool.max_pool3d(P3, (2, 2)), ValueError, ["kernel_size", "3 ints"]),
    (lambda: convpool.max_pool3d(P3, 2, padding=(0, 2, 0)), ValueError,
     ["height", "kernel_size // 2 = 1"]),
    (lambda: convpool.max_pool3d(P3, (5, 2, 2)), ValueError, ["depth", "window spans 5"]),
    (lambda: convpool.max_pool3d(np.zeros((2, 3, 0, 5, 6)), 1), ValueError, ["x", ">= 1"]),
    (lambda: convpool.avg_pool3d(P3, 2, divisor_override=2.0), TypeError,
     ["divisor_override"]),
    (lambda: convpool.avg_pool3d_grad_input(np.zeros((2, 3, 2, 2, 2)), P3.shape, 2),
     ValueError, ["grad_output", "(2, 3, 2, 2, 3)"]),
    (lambda: convpool.max_pool3d_grad_input(np.zeros((2, 3, 2, 2, 3)),
                                            np.zeros((2, 3, 2, 2, 3)), P3.shape),
     TypeError, ["indices", "integer"]),
    (lambda: convpool.max_pool3d_grad_input(np.zeros((2, 3, 2, 2, 3)),
                                            np.full((2, 3, 2, 2, 3), 120), P3.shape),
     ValueError, ["indices", "D * H * W", "120"]),
    (lambda: convpool.max_pool1d_grad_input(np.zeros((2, 3, 5)), np.zeros((2, 3, 4), int),
                                            P1.shape),
     ValueError, ["indices", "shape"]),
    (lambda: convpool.global_avg_pool3d(np.zeros((2, 3, 4))), ValueError, ["x"]),
    (lambda: convpool.global_max_pool1d(P1, keepdims=2), TypeError, ["keepdims"]),
    (lambda: convpool.global_avg_pool1d_grad_input(np.zeros((2, 4)), P1.shape), ValueError,
     ["grad_output", "(2, 3)"]),
])
def test_pool_errors_name_the_argument(call, error, words):
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"


def test_errors_never_speak_of_the_2d_problem():
    """The 1-D functions check their arguments before the 2-D ones could: no 'height'."""
    calls = [
        lambda: convpool.conv1d(X1, np.zeros((4, 3, 20))),
        lambda: convpool.conv1d(X1, W1, padding=12, padding_mode="circular"),
        lambda: convpool.max_pool1d(P1, 4, padding=3),
        lambda: convpool.avg_pool1d(P1, 12),
    ]
    for call in calls:
        with pytest.raises(ValueError) as caught:
            call()
        assert not re.search(r"height|width|\(H, W\)", str(caught.value)), str(caught.value)
