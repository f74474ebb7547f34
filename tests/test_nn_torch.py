"""A whole LeNet-5, forward and backward, against the same net in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close
from convpool import nn
from convpool.models import lenet5, lenet5_torch

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size, activation, pooling", [(28, "tanh", "max"), (8, "relu", "avg"),
                                                      (28, "sigmoid", "avg")])
def test_lenet5_matches_torch(size, activation, pooling, dtype, rng):
    torch.manual_seed(0)
    theirs = lenet5_torch(size, activation=activation, pooling=pooling)
    theirs = theirs.double() if dtype == np.float64 else theirs
    ours = lenet5(size, activation=activation, pooling=pooling, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    x = rng.random((5, 1, size, size)).astype(dtype)
    target = np.array([3, 1, 4, 1, 5])

    loss = nn.CrossEntropyLoss()
    logits = ours[:-1](x)
    value = loss(logits, target)
    grad_x = ours[:-1].backward(loss.backward())

    tx = torch.tensor(x, requires_grad=True)
    t_logits = theirs[:-1](tx)
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(target))
    t_loss.backward()

    assert_close(logits, t_logits.detach().numpy(), dtype, "logits")
    assert value == pytest.approx(t_loss.item(), rel=1e-5)
    assert_close(grad_x, tx.grad.numpy(), dtype, "input gradient")
    named = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        assert_close(parameter.grad, named[name].grad.numpy(), dtype, f"gradient of {name}")
    with torch.no_grad():
        assert_close(ours.eval()(x), theirs(torch.tensor(x)).numpy(), dtype, "probabilities")
