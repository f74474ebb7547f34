"""The 1-D and 3-D layers: they compute what the functions compute, run on the oracle
when asked, report shapes for summaries, and reject bad arguments at construction."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from conftest import assert_close
from convpool import nn
from convpool import reference as ref


def net_1d(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv1d(2, 4, 5, padding="same", padding_mode="circular", seed=rng), nn.ReLU(),
        nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv1d(4, 6, 3, dilation=2, groups=2, seed=rng),
        nn.AvgPool1d(2, count_include_pad=False), nn.GlobalMaxPool1d(),
        nn.Dense(6, 3, seed=rng))


def net_3d(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1, padding_mode="replicate", seed=rng), nn.Tanh(),
        nn.MaxPool3d(2), nn.Conv3d(4, 4, (1, 3, 3), stride=(1, 2, 1), seed=rng),
        nn.AvgPool3d((2, 1, 2), divisor_override=3), nn.GlobalAvgPool3d(keepdims=True),
        nn.Flatten(), nn.Dense(4, 2, seed=rng))


@pytest.mark.parametrize("make, shape", [(net_1d, (3, 2, 40)), (net_3d, (2, 1, 6, 12, 8))])
def test_layers_match_the_oracle_twin(make, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    ours, twin = make().astype(np.float64), make().astype(np.float64)
    for layer in twin:
        layer.use_kernels(ref)
    y, y_ref = ours.forward(x), twin.forward(x)
    assert_close(y, y_ref, np.float64)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    assert_close(ours.backward(gy), twin.backward(gy), np.float64)
    for (name, p), (_, q) in zip(ours.named_parameters(), twin.named_parameters(), strict=True):
        assert_close(p.grad, q.grad, np.float64, name)


def test_conv_layer_is_the_function_with_its_parameters():
    layer = nn.Conv3d(2, 4, (3, 1, 2), stride=2, padding=((1, 0), 0, 1), groups=2, seed=3)
    x = np.random.default_rng(4).standard_normal((2, 7, 5, 6)).astype(np.float32)  # unbatched
    y = layer.forward(x)
    expected = convpool.conv3d(x, layer.weight.data, layer.bias.data, stride=2,
                               padding=((1, 0), 0, 1), groups=2)
    np.testing.assert_array_equal(y, expected)
    assert layer.weight.shape == (4, 1, 3, 1, 2)
    bound = 1 / np.sqrt(1 * 3 * 1 * 2)  # PyTorch's initialisation
    assert np.abs(layer.weight.data).max() <= bound
    gx = layer.backward(np.ones_like(y))
    assert gx.shape == x.shape
    np.testing.assert_allclose(layer.bias.grad, np.full(4, y[0].size), rtol=1e-6)


def test_summary_shapes_of_1d_and_3d_nets():
    rows = net_1d().summary((2, 40)).rows
    assert [r.output_shape for r in rows] == [
        (4, 40), (4, 40), (4, 21), (6, 17), (6, 8), (6,), (3,)]
    rows = net_3d().summary((1, 6, 12, 8)).rows
    assert [r.output_shape for r in rows][:6] == [
        (4, 6, 12, 8), (4, 6, 12, 8), (4, 3, 6, 4), (4, 3, 2, 2), (4, 1, 2, 1), (4, 1, 1, 1)]
    assert net_3d().summary((1, 6, 12, 8)).total_parameters == 112 + 148 + 10


def test_max_pool_layer_in_eval_mode_recomputes_its_indices_for_backward():
    layer = nn.MaxPool3d(2)
    x = np.random.default_rng(5).standard_normal((1, 2, 4, 4, 4))
    layer.eval()
    y = layer.forward(x)
    grad = layer.backward(np.ones_like(y))
    _, indices = convpool.max_pool3d(x, 2, return_indices=True)
    np.testing.assert_array_equal(grad, convpool.max_pool3d_grad_input(np.ones_like(y),
                                                                       indices, x.shape))


@pytest.mark.parametrize("make, words", [
    (lambda: nn.Conv1d(3, 4, 3, groups=2), ["groups", "divide"]),
    (lambda: nn.Conv3d(3, 4, (3, 3)), ["kernel_size", "3 ints"]),
    (lambda: nn.Conv1d(3, 4, 3, padding="full"), ["padding", "'full'"]),
    (lambda: nn.Conv3d(3, 4, 3, padding_mode="wrap"), ["padding_mode"]),
    (lambda: nn.MaxPool3d(3, padding=(0, 2, 0)), ["padding", "height", "kernel_size // 2 = 1"]),
    (lambda: nn.AvgPool1d(2, divisor_override=0), ["divisor_override"]),
    (lambda: nn.Conv2d(3, 4, 3, padding=(1, 1, 1)), ["padding", "(ph, pw)", "(1, 1, 1)"]),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="edge"), ["padding_mode", "'edge'"]),
    (lambda: nn.MaxPool2d(3, padding=2), ["padding", "kernel_size // 2 = 1"]),
    (lambda: nn.MaxPool1d(2, ceil_mode="yes"), ["ceil_mode", "True or False"]),
    (lambda: nn.GlobalMaxPool3d(keepdims=None), ["keepdims", "True or False"]),
])
def test_layer_construction_rejects_bad_arguments(make, words):
    with pytest.raises((TypeError, ValueError)) as caught:
        make()
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("make, input_shape", [
    (lambda: nn.Conv1d(1, 1, 3, padding=5, padding_mode="reflect"), (1, 4)),
    (lambda: nn.Conv3d(1, 1, 3, padding=(0, 0, 6), padding_mode="circular"), (1, 4, 4, 5)),
    (lambda: nn.Conv2d(1, 1, 3, padding=(4, 0), padding_mode="reflect"), (1, 4, 9)),
])
def test_padding_mode_limits_wait_for_an_input_size(make, input_shape):
    # At construction only the form is known: a padding too large for the mode is refused
    # when an input size arrives, naming the axis and the rule.
    layer = make()
    with pytest.raises(ValueError, match="needs padding <=? input size"):
        layer.output_shape(input_shape)


def test_layers_reject_inputs_of_the_wrong_rank_or_channels():
    with pytest.raises(ValueError, match="channels"):
        nn.Conv1d(3, 4, 3).forward(np.zeros((2, 5, 10)))
    with pytest.raises(ValueError, match="dimensions"):
        nn.MaxPool3d(2).forward(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"\(C, D, H, W\)"):
        nn.Conv3d(1, 1, 1).output_shape((1, 4, 4))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.AvgPool1d(2).backward(np.zeros((1, 1, 1)))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_avg_pool_layers_take_the_divisor_override_the_functions_take(rank):
    # One rule for the layer and the function: any nonzero int, of either sign.
    x = np.arange(2.0 * 4**rank).reshape((1, 2) + (4,) * rank)
    layer = getattr(nn, f"AvgPool{rank}d")(2, divisor_override=-3)
    expected = getattr(convpool, f"avg_pool{rank}d")(x, 2, divisor_override=-3)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="divisor_override: must not be 0"):
        getattr(nn, f"AvgPool{rank}d")(2, divisor_override=0)
