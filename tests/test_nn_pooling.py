"""Pooling layers against their NumPy-oracle twins (the same layer computing with
convpool.reference), forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close
from convpool import nn
from test_nn_layers import check_against_twin

POOLS = {
    "max-2x2": lambda: nn.MaxPool2d(2),
    "max-3x3-s2-p1": lambda: nn.MaxPool2d(3, stride=2, padding=1),
    "max-dilated-ceil": lambda: nn.MaxPool2d((2, 3), stride=2, dilation=2, ceil_mode=True),
    "max-same": lambda: nn.MaxPool2d(3, stride=2, padding="same"),
    "avg-2x2": lambda: nn.AvgPool2d(2),
    "avg-3x3-p1-exclude-pad": lambda: nn.AvgPool2d(3, stride=2, padding=1,
                                                    count_include_pad=False),
    "avg-divisor-ceil": lambda: nn.AvgPool2d(2, stride=2, ceil_mode=True, divisor_override=3),
    "global-avg": lambda: nn.GlobalAvgPool2d(),
    "global-avg-keepdims": lambda: nn.GlobalAvgPool2d(keepdims=True),
    "global-max": lambda: nn.GlobalMaxPool2d(),
    "channel-max": lambda: nn.ChannelPool(2),
    "channel-avg": lambda: nn.ChannelPool(3, mode="avg"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOLS)
def test_pooling_layer_matches_oracle(case, dtype, rng):
    layer = POOLS[case]()
    x = rng.standard_normal((2, 6, 9, 7)).astype(dtype)
    check_against_twin(layer, x, rng, case)
    assert layer.output_shape(x.shape[1:]) == layer(x).shape[1:]


def test_max_pool_backward_after_eval_forward(rng):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    training, inference = nn.MaxPool2d(2), nn.MaxPool2d(2).eval()
    y = training(x)
    assert np.array_equal(inference(x), y)
    g = rng.standard_normal(y.shape).astype(np.float32)
    assert np.array_equal(inference.backward(g), training.backward(g))


def test_max_pool_routes_the_gradient_to_the_maximum():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]]]], np.float32)
    layer = nn.MaxPool2d(2)
    assert layer(x).item() == 5.0
    assert_close(layer.backward(np.array([[[[2.0]]]], np.float32)),
                 np.array([[[[0.0, 2.0], [0.0, 0.0]]]]), np.float32)


def test_pooling_layers_check_their_arguments():
    with pytest.raises(ValueError, match="mode"):
        nn.ChannelPool(2, mode="min")
    with pytest.raises(ValueError, match="divide"):
        nn.ChannelPool(4).output_shape((6, 3, 3))
    with pytest.raises(ValueError, match="kernel_size"):
        nn.MaxPool2d(0)
    with pytest.raises(ValueError, match="output height"):
        nn.AvgPool2d(5).output_shape((1, 3, 8))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.GlobalMaxPool2d().backward(np.zeros((1, 1)))
