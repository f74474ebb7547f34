"""convpool.nn layers one by one: each against its NumPy-oracle twin (the same layer
computing with convpool.reference) or a NumPy formula, forward and backward."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import assert_close
from convpool import nn
from convpool import reference as ref


def oracle_twin(layer: nn.Layer) -> nn.Layer:
    """The same layer, same parameters, computing with the NumPy oracle."""
    return copy.deepcopy(layer).use_kernels(ref)


def check_against_twin(layer, x, rng, where: str) -> None:
    """Forward, input gradient and parameter gradients of ``layer`` and its oracle twin."""
    twin = oracle_twin(layer)
    y = layer(x)
    expected = twin(x)
    dtype = expected.dtype
    assert_close(y, expected, dtype, f"{where} forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(layer.backward(g), twin.backward(g), dtype, f"{where} grad_input")
    for (name, p), (_, q) in zip(layer.named_parameters(), twin.named_parameters(), strict=True):
        assert_close(p.grad, q.grad, p.dtype, f"{where} grad of {name}")


CONV_CASES = {
    "plain": dict(in_channels=3, out_channels=4, kernel_size=3),
    "same-stride2": dict(in_channels=2, out_channels=5, kernel_size=4, stride=2, padding="same"),
    "asymmetric-dilated": dict(in_channels=2, out_channels=3, kernel_size=(3, 2), dilation=2,
                               padding=((1, 2), (0, 1))),
    "grouped-nobias": dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, bias=False,
                           padding=1),
    "depthwise-reflect": dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, padding=1,
                              padding_mode="reflect"),
    "circular": dict(in_channels=1, out_channels=2, kernel_size=5, padding=2,
                     padding_mode="circular"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_oracle(case, dtype, rng):
    arguments = CONV_CASES[case]
    layer = nn.Conv2d(**arguments, dtype=dtype, seed=1)
    x = rng.standard_normal((2, arguments["in_channels"], 9, 8)).astype(dtype)
    check_against_twin(layer, x, rng, case)


def test_conv2d_unbatched_input(rng):
    layer = nn.Conv2d(2, 3, 3, padding=1, seed=0)
    x = rng.standard_normal((2, 5, 5)).astype(np.float32)
    check_against_twin(layer, x, rng, "unbatched")
    assert layer(x).shape == (3, 5, 5)


def test_conv2d_initialisation_follows_pytorch():
    layer = nn.Conv2d(4, 8, 3, groups=2, seed=0)
    bound = 1 / np.sqrt(2 * 3 * 3)  # fan_in = in_channels / groups * kh * kw
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.8 * bound  # uniform over the whole range
    assert layer.weight.shape == (8, 2, 3, 3)


def test_seed_makes_initialisation_reproducible():
    a, b = nn.Conv2d(3, 4, 3, seed=7), nn.Conv2d(3, 4, 3, seed=7)
    c = nn.Conv2d(3, 4, 3, seed=8)
    assert np.array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    # A shared generator: the values do not depend on which layer is used first.
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    first = [nn.Dense(5, 4, seed=g1), nn.Dense(4, 3, seed=g1)]
    second = [nn.Dense(5, 4, seed=g2), nn.Dense(4, 3, seed=g2)]
    assert np.array_equal(second[1].weight.data, first[1].weight.data)
    assert np.array_equal(second[0].weight.data, first[0].weight.data)


def test_parameters_are_allocated_on_first_use():
    layer = nn.Dense(240000, 10000, bias=False)  # 9.6 GB if it were allocated
    assert layer.num_parameters() == 2_400_000_000
    assert not layer.weight.materialized


def test_conv2d_rejects_wrong_channels_and_arguments(rng):
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="in_channels=3"):
        layer(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding"):
        nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(3, 4, 2.5)
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Conv2d(1, 1, 1).backward(np.zeros((1, 1, 1, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_matches_numpy(dtype, rng):
    layer = nn.Dense(7, 5, dtype=dtype, seed=0)
    x = rng.standard_normal((4, 7)).astype(dtype)
    w, b = layer.weight.data, layer.bias.data
    y = layer(x)
    assert_close(y, x @ w.T + b, dtype, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(layer.backward(g), g @ w, dtype, "grad_input")
    assert_close(layer.weight.grad, g.T @ x, dtype, "grad_weight")
    assert_close(layer.bias.grad, g.sum(axis=0), dtype, "grad_bias")
    assert np.abs(w).max() <= 1 / np.sqrt(7)


def test_dense_leading_axes_and_linear_alias(rng):
    assert nn.Linear is nn.Dense
    layer = nn.Linear(3, 2, bias=False, seed=0)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    y = layer(x)
    assert y.shape == (2, 4, 2)
    g = np.ones_like(y)
    assert layer.backward(g).shape == x.shape
    assert_close(layer.weight.grad, g.reshape(-1, 2).T @ x.reshape(-1, 3), np.float32)
    with pytest.raises(ValueError, match="in_features=3"):
        layer(np.zeros((2, 4)))


def test_gradients_accumulate_until_zero_grad(rng):
    layer = nn.Dense(3, 2, seed=0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    g = rng.standard_normal((4, 2)).astype(np.float32)
    layer(x)
    layer.backward(g)
    once = layer.weight.grad.copy()
    layer.backward(g)
    assert_close(layer.weight.grad, 2 * once, np.float32)
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_needs_input_grad_false_skips_the_input_gradient(rng):
    layer = nn.Conv2d(1, 2, 3, seed=0)
    y = layer(rng.standard_normal((1, 1, 5, 5)).astype(np.float32))
    assert layer.backward(np.ones_like(y), needs_input_grad=False) is None
    assert layer.weight.grad is not None


ACTIVATIONS = {
    "ReLU": (nn.ReLU, lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(x.dtype)),
    "Sigmoid": (nn.Sigmoid, lambda x: 1 / (1 + np.exp(-x)),
                lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    "Tanh": (nn.Tanh, np.tanh, lambda x: 1 / np.cosh(x) ** 2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_numpy(name, dtype, rng):
    layer_class, function, derivative = ACTIVATIONS[name]
    x = (3 * rng.standard_normal((3, 4, 5))).astype(dtype)
    layer = layer_class()
    assert_close(layer(x), function(x.astype(np.float64)), dtype, f"{name} forward")
    g = rng.standard_normal(x.shape).astype(dtype)
    assert_close(layer.backward(g), g * derivative(x.astype(np.float64)), dtype,
                 f"{name} backward")


def test_sigmoid_does_not_overflow():
    y = nn.Sigmoid()(np.array([-1000.0, 0.0, 1000.0], np.float32))  # warnings are errors
    assert_close(y, np.array([0.0, 0.5, 1.0]), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_matches_numpy_and_its_jacobian(dtype, rng):
    x = rng.standard_normal((3, 5)).astype(dtype)
    layer = nn.Softmax()
    y = layer(x)
    e = np.exp(x.astype(np.float64))
    s = e / e.sum(axis=1, keepdims=True)
    assert_close(y, s, dtype, "forward")
    g = rng.standard_normal(x.shape).astype(dtype)
    jacobians = np.stack([np.diag(row) - np.outer(row, row) for row in s])
    assert_close(layer.backward(g), np.einsum("nij,ni->nj", jacobians, g), dtype, "backward")


def test_softmax_is_stable_and_takes_dim():
    y = nn.Softmax()(np.array([[1000.0, 0.0], [-1000.0, -1000.0]], np.float32))
    assert_close(y, np.array([[1.0, 0.0], [0.5, 0.5]]), np.float32)
    y = nn.Softmax(dim=0)(np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert_close(y, np.full((2, 2), 0.5), np.float64)
    with pytest.raises(ValueError, match="dim=2"):
        nn.Softmax(dim=2)(np.zeros((2, 2)))


def test_dropout_scales_kept_values_and_is_off_in_eval(rng):
    x = np.ones((200, 50), np.float32)
    layer = nn.Dropout(0.3, seed=0)
    y = layer(x)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    assert_close(y[kept], np.full(kept.sum(), 1 / 0.7), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    assert_close(layer.backward(g), g * y, np.float32)  # the same mask and scale
    assert np.array_equal(nn.Dropout(0.3, seed=0)(x), y)  # seeded masks repeat
    layer.eval()
    assert np.array_equal(layer(x), x)
    assert np.array_equal(layer.backward(g), g)
    assert not nn.Dropout(1.0, seed=0)(x).any()
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_flatten_reshapes_and_restores(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = nn.Flatten()
    y = layer(x)
    assert y.shape == (2, 60) and np.shares_memory(x, y)
    assert layer.backward(y).shape == x.shape
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    assert layer.output_shape((3, 4, 5)) == (60,)


def test_sequential_chains_names_and_modes(rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.ReLU(), nn.Flatten(),
                          nn.Dropout(0.5, seed=0), nn.Dense(18, 3, seed=0))
    assert [name for name, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "4.weight", "4.bias"]
    assert model.num_parameters() == 2 * 9 + 2 + 18 * 3 + 3
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    model.eval()
    assert not model[3].training
    y = model(x)
    manual = x
    for layer in model:
        manual = layer(manual)
    assert np.array_equal(y, manual)
    assert model.backward(np.ones_like(y)).shape == x.shape
    assert isinstance(model[:2], nn.Sequential) and model[:2][0] is model[0]
    assert "(0): Conv2d(1, 2, kernel_size=(3, 3))" in repr(model)
    with pytest.raises(TypeError, match="layer .1. is not a Layer"):
        nn.Sequential(nn.ReLU(), np.tanh)


def test_astype_converts_parameters(rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.Flatten(), nn.Dense(2, 1, seed=0))
    model.astype(np.float64)
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    y = model(rng.standard_normal((1, 1, 3, 3)))
    assert y.dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        model.astype(np.int32)


def test_convpool_exposes_nn_models_and_datasets_lazily():
    import subprocess
    import sys

    import convpool

    assert convpool.nn is nn and callable(convpool.models.lenet5)
    code = "import convpool, sys; print('convpool.nn' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert fresh.stdout.strip().splitlines()[-1] == "False"
    with pytest.raises(AttributeError, match="no attribute 'layers'"):
        convpool.layers  # noqa: B018
