"""Whole small nets in float64: the analytic gradients of a loss (input and every
parameter, through every layer kind) against central finite differences, and the
whole net against its NumPy-oracle twin."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import assert_close
from convpool import nn
from convpool import reference as ref

EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3  # torch.autograd.gradcheck's defaults
CHECKED_PER_ARRAY = 64  # entries per array, drawn at random: keeps the test short


def conv_net(seed) -> nn.Sequential:
    g = np.random.default_rng(seed)
    f64 = dict(dtype=np.float64, seed=g)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect", **f64),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2, **f64),
        nn.ReLU(),
        nn.ChannelPool(2),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        nn.Flatten(),
        nn.Dense(3 * 5 * 5, 5, **f64),
        nn.Sigmoid(),
        nn.Dense(5, 3, **f64),
    )


def global_net(seed) -> nn.Sequential:
    g = np.random.default_rng(seed)
    f64 = dict(dtype=np.float64, seed=g)
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, dilation=2, padding=2, **f64),
        nn.ChannelPool(3, mode="avg"),
        nn.Conv2d(2, 6, 1, **f64),
        nn.GlobalMaxPool2d(keepdims=True),
        nn.Conv2d(6, 4, 1, bias=False, **f64),
        nn.GlobalAvgPool2d(),
        nn.Softmax(),
    )


def loss_value(model, loss, x, target) -> float:
    return loss(model.forward(x), target)


def check_gradients(model, loss, x, target, rng) -> None:
    value = loss_value(model, loss, x, target)
    assert np.isfinite(value)
    model.zero_grad()
    grad_x = model.backward(loss.backward())
    arrays = [("input", x, grad_x)] + [
        (name, p.data, p.grad.copy()) for name, p in model.named_parameters()]
    for name, array, analytic in arrays:
        flat = rng.permutation(array.size)[:CHECKED_PER_ARRAY]
        for index in zip(*np.unravel_index(flat, array.shape), strict=True):
            saved = array[index]
            array[index] = saved + EPS
            up = loss_value(model, loss, x, target)
            array[index] = saved - EPS
            down = loss_value(model, loss, x, target)
            array[index] = saved
            numeric = (up - down) / (2 * EPS)
            assert abs(analytic[index] - numeric) <= ATOL + RTOL * abs(numeric), (
                f"gradient of {name} at {tuple(int(i) for i in index)}: analytic "
                f"{analytic[index]:.8g}, finite differences {numeric:.8g}"
            )


def test_conv_net_gradients_match_finite_differences(rng):
    model = conv_net(0)
    x = rng.standard_normal((2, 2, 8, 8))
    check_gradients(model, nn.CrossEntropyLoss(), x, np.array([0, 2]), rng)


def test_global_net_gradients_match_finite_differences(rng):
    model = global_net(1)
    x = rng.standard_normal((2, 2, 6, 5))
    check_gradients(model, nn.MSELoss(), x, rng.random((2, 4)), rng)


@pytest.mark.parametrize("build", [conv_net, global_net])
def test_whole_net_matches_its_oracle_twin(build, rng):
    model = build(2)
    twin = copy.deepcopy(model).use_kernels(ref)
    x = rng.standard_normal((3, 2, 8, 8))
    y = model(x)
    assert_close(y, twin(x), np.float64, "forward")
    g = rng.standard_normal(y.shape)
    assert_close(model.backward(g), twin.backward(g), np.float64, "grad_input")
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters(),
                                 strict=True):
        assert_close(p.grad, q.grad, np.float64, name)


def modern_net(seed) -> nn.Sequential:
    """Every layer beyond LeNet: batch norm (training statistics), a residual block,
    branches concatenated (transposed convolution, up-sampling, unpooling), adaptive
    pooling with uneven windows, ReLU6 and Hardswish."""
    g = np.random.default_rng(seed)
    f64 = dict(dtype=np.float64, seed=g)
    unpooled = nn.MaxPool2d(2)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False, **f64),
        nn.BatchNorm2d(4, dtype=np.float64),
        nn.ReLU6(),
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False, **f64),
                                  nn.BatchNorm2d(4, momentum=None, dtype=np.float64),
                                  nn.Hardswish()), None, nn.ReLU()),
        nn.Concat(nn.Identity(),
                  nn.Sequential(nn.MaxPool2d(2),
                                nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                   output_padding=1, **f64)),
                  nn.Sequential(nn.AvgPool2d(2), nn.Upsample(2)),
                  nn.Sequential(unpooled, nn.MaxUnpool2d(2, indices_from=unpooled))),
        nn.Residual(nn.Conv2d(14, 6, 1, **f64), nn.Conv2d(14, 6, 1, bias=False, **f64)),
        nn.AdaptiveMaxPool2d((3, 3)),
        nn.AdaptiveAvgPool2d((2, 3)),
        nn.Flatten(),
        nn.Dense(6 * 2 * 3, 3, **f64),
    )


def test_modern_net_gradients_match_finite_differences(rng):
    model = modern_net(3)
    x = rng.standard_normal((2, 2, 8, 8))
    check_gradients(model, nn.CrossEntropyLoss(), x, np.array([1, 2]), rng)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_modern_net_matches_its_oracle_twin(mode, rng):
    model = modern_net(4).train(mode == "train")
    twin = copy.deepcopy(model).use_kernels(ref)
    x = rng.standard_normal((3, 2, 8, 8))
    y = model(x)
    assert_close(y, twin(x), np.float64, "forward")
    g = rng.standard_normal(y.shape)
    assert_close(model.backward(g), twin.backward(g), np.float64, "grad_input")
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters(),
                                 strict=True):
        assert_close(p.grad, q.grad, np.float64, name)
