"""benchmarks/networks.py, the real-network layer suite: its layers are the architectures'
(multiply-add totals match the published figures) and a tiny run checks and times a layer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from convpool.bench.machine import Limits
from convpool.bench.timing import TimingPlan

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "networks.py"
_spec = importlib.util.spec_from_file_location("networks", _PATH)
networks = importlib.util.module_from_spec(_spec)
sys.modules["networks"] = networks  # dataclasses look their module up while it loads
_spec.loader.exec_module(networks)

# Convolution multiply-adds at 224x224, batch 1 (the published totals minus the dense
# classifier's: AlexNet 0.714 G - 58.6 M, ResNet-18 1.814 G - 0.5 M, ResNet-50 4.089 G -
# 2.0 M, MobileNetV2 300.8 M - 1.3 M, VGG-16 15.47 G - 123.6 M).
PUBLISHED_CONV_MACS = {"alexnet": 0.6556e9, "vgg16": 15.347e9, "resnet18": 1.8136e9,
                       "resnet50": 4.0871e9, "mobilenet_v2": 0.2995e9}


@pytest.mark.parametrize("net", sorted(PUBLISHED_CONV_MACS))
def test_layers_add_up_to_the_published_multiply_adds(net):
    macs = sum(layer.flops(1) for layer in networks.NETS[net]()) / 2
    assert macs == pytest.approx(PUBLISHED_CONV_MACS[net], rel=1e-3)


def test_each_distinct_layer_is_timed_once_and_knows_its_nets():
    layers = networks.distinct_layers(["resnet18", "resnet50"])
    assert len(layers) == len(set(layers))
    stem = [layer for layer in layers if layer.kernel == 7]
    assert len(stem) == 1 and stem[0].nets == ("resnet18", "resnet50")


def test_a_layer_is_checked_against_its_peers_and_timed():
    layer = networks.Layer("conv", 4, 9, 8, 3, 2, 1)
    limits = Limits({1: 100.0, 2: 200.0}, 30.0)
    plan = TimingPlan(budget_s=0.0, min_rounds=2, max_rounds=2, min_sample_s=1e-5)
    peers = ("torch",) if importlib.util.find_spec("torch") else ()
    for pass_ in ("fwd", "grad_input", "grad_weight"):
        record = networks.measure(layer, 2, pass_, 1, peers, plan, limits)
        assert record["correct"] and record["times"]["convpool"] > 0
        if peers:
            assert record["errors"]["convpool"] < networks.TOLERANCE
            assert record["ratio_vs_torch"] > 0
