"""Losses against NumPy formulas and finite differences; optimizers against their
update rules written out by hand, and step by step against torch.optim."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close
from convpool import nn


def numeric_gradient(function, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        up = function(x)
        x[index] = saved - eps
        down = function(x)
        x[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_numpy_and_finite_differences(reduction, rng):
    logits = rng.standard_normal((5, 4))
    target = np.array([0, 3, 1, 1, 2])
    loss = nn.CrossEntropyLoss(reduction)
    value = loss(logits, target)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    per_sample = -log_p[np.arange(5), target]
    expected = per_sample.mean() if reduction == "mean" else per_sample.sum()
    assert value == pytest.approx(expected, rel=1e-12)
    grad = loss.backward()
    numeric = numeric_gradient(lambda z: nn.CrossEntropyLoss(reduction)(z, target), logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_cross_entropy_is_stable_for_huge_logits():
    loss = nn.CrossEntropyLoss()
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], np.float32)
    value = loss(logits, np.array([0, 0]))
    assert value == pytest.approx(1e4 / 2, rel=1e-6)  # sample 2 costs 1e4, sample 1 costs 0
    grad = loss.backward()
    assert grad.dtype == np.float32
    assert_close(grad, np.array([[0, 0, 0], [-0.5, 0.5, 0]]), np.float32)


def test_cross_entropy_rejects_bad_targets():
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        loss(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        loss(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss("none")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_matches_numpy(reduction, rng):
    output, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss = nn.MSELoss(reduction)
    total = ((output - target) ** 2).sum()
    assert loss(output, target) == pytest.approx(total / 12 if reduction == "mean" else total)
    numeric = numeric_gradient(lambda z: nn.MSELoss(reduction)(z, target), output.copy())
    np.testing.assert_allclose(loss.backward(), numeric, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="shape"):
        loss(output, target[:2])


def one_parameter(values: np.ndarray) -> nn.Dense:
    layer = nn.Dense(values.shape[1], values.shape[0], bias=False, dtype=np.float64)
    layer.weight.data = values
    return layer


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_follows_its_update_rule(nesterov, rng):
    start = rng.standard_normal((3, 2))
    layer = one_parameter(start)
    optimizer = nn.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01,
                       nesterov=nesterov)
    p, buffer = start.copy(), None
    for _ in range(3):
        grad = rng.standard_normal((3, 2))
        layer.weight.grad = grad.copy()
        optimizer.step()
        g = grad + 0.01 * p
        buffer = g if buffer is None else 0.9 * buffer + g
        p = p - 0.1 * (g + 0.9 * buffer if nesterov else buffer)
        assert_close(layer.weight.data, p, np.float64)


def test_adam_follows_its_update_rule(rng):
    start = rng.standard_normal((2, 2))
    layer = one_parameter(start)
    optimizer = nn.Adam(layer, lr=0.01, betas=(0.8, 0.9), eps=1e-6)  # a model is accepted too
    p, m, v = start.copy(), 0.0, 0.0
    for t in range(1, 4):
        grad = rng.standard_normal((2, 2))
        layer.weight.grad = grad.copy()
        optimizer.step()
        m = 0.8 * m + 0.2 * grad
        v = 0.9 * v + 0.1 * grad**2
        p = p - 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-6)
        assert_close(layer.weight.data, p, np.float64)


def test_optimizers_skip_missing_gradients_and_check_arguments():
    layer = one_parameter(np.ones((1, 1)))
    optimizer = nn.SGD(layer.parameters(), lr=0.5)
    optimizer.step()  # no gradient yet: nothing moves
    assert layer.weight.data[0, 0] == 1.0
    layer.weight.grad = np.ones((1, 1))
    optimizer.zero_grad()
    assert layer.weight.grad is None
    with pytest.raises(ValueError, match="lr"):
        nn.SGD(layer.parameters(), lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD(layer.parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        nn.Adam([])
    with pytest.raises(ValueError, match="betas"):
        nn.Adam(layer.parameters(), betas=(0.9, 1.0))


@pytest.mark.torch
@pytest.mark.parametrize("name", ["sgd", "sgd-nesterov", "adam"])
def test_optimizers_match_torch(name, rng):
    torch = pytest.importorskip("torch")
    start = rng.standard_normal((4, 3))
    layer = one_parameter(start)
    tensor = torch.tensor(start, requires_grad=True)
    if name == "adam":
        ours = nn.Adam(layer.parameters(), lr=0.01, weight_decay=0.1)
        theirs = torch.optim.Adam([tensor], lr=0.01, weight_decay=0.1)
    else:
        nesterov = name == "sgd-nesterov"
        ours = nn.SGD(layer.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1,
                      nesterov=nesterov)
        theirs = torch.optim.SGD([tensor], lr=0.05, momentum=0.9, weight_decay=0.1,
                                 nesterov=nesterov)
    for _ in range(5):
        grad = rng.standard_normal((4, 3))
        layer.weight.grad = grad.copy()
        tensor.grad = torch.tensor(grad)
        ours.step()
        theirs.step()
        assert_close(layer.weight.data, tensor.detach().numpy(), np.float64, name)


@pytest.mark.torch
def test_cross_entropy_matches_torch(rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((6, 5)).astype(np.float32) * 10
    target = rng.integers(0, 5, 6)
    loss = nn.CrossEntropyLoss()
    value = loss(logits, target)
    z = torch.tensor(logits, requires_grad=True)
    reference = torch.nn.functional.cross_entropy(z, torch.tensor(target))
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=1e-5)
    assert_close(loss.backward(), z.grad.numpy(), np.float32)
