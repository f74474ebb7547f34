"""Layers in a training loop reuse the large buffers of earlier steps (convpool's output
cache), and never overwrite an array they handed out that is still held."""

from __future__ import annotations

import convpool
import numpy as np
import pytest
from convpool import nn


@pytest.fixture(autouse=True)
def fresh_cache():
    previous = convpool.set_buffer_cache(0)
    convpool.set_buffer_cache(256 << 20)
    yield
    convpool.set_buffer_cache(0)
    convpool.set_buffer_cache(previous)


def make_net() -> nn.Sequential:
    # (8, 16, 32, 32) in: the convolutions' outputs and input gradients are 1-2 MiB
    return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, seed=0), nn.ReLU(),
                         nn.Conv2d(32, 32, 3, padding=1, seed=1), nn.MaxPool2d(2))


def step(net: nn.Sequential, x: np.ndarray) -> np.ndarray:
    y = net.forward(x)
    net.zero_grad()
    net.backward(np.ones_like(y))
    return y


def test_training_steps_stop_allocating_large_buffers():
    net = make_net()
    x = np.random.default_rng(0).standard_normal((8, 16, 32, 32)).astype(np.float32)
    for _ in range(3):
        step(net, x)
    kept = convpool.get_buffer_cache()["buffers"]
    assert kept > 0
    for _ in range(5):
        step(net, x)
    assert convpool.get_buffer_cache()["buffers"] == kept


def test_outputs_held_by_the_caller_survive_later_steps():
    net = make_net()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    first = net.forward(x)
    feature_map = net[0].forward(x)  # a large conv output, held
    saved, saved_map = first.copy(), feature_map.copy()
    for _ in range(4):
        step(net, rng.standard_normal(x.shape).astype(np.float32))
    np.testing.assert_array_equal(first, saved)
    np.testing.assert_array_equal(feature_map, saved_map)


def test_results_equal_those_without_the_cache():
    x = np.random.default_rng(2).standard_normal((8, 16, 32, 32)).astype(np.float32)
    cached = make_net()
    for _ in range(3):
        with_cache = step(cached, x)
    gradients = [p.grad.copy() for p in cached.parameters()]
    convpool.set_buffer_cache(0)
    plain = make_net()
    np.testing.assert_array_equal(step(plain, x), with_cache)
    for parameter, expected in zip(plain.parameters(), gradients, strict=True):
        np.testing.assert_array_equal(parameter.grad, expected)
