"""ResNet-18 (He et al. 2016), built as torchvision builds it, so that its state dict
has torchvision's keys and a torchvision state dict loads as is."""

from __future__ import annotations

import numpy as np

from .._args import positive_int
from ..nn import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Flatten,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
)
from ..nn.init import Seed, as_generator, float_dtype
from ._init import torchvision_init


def basic_block(in_channels: int, channels: int, stride: int = 1, *, dtype=np.float32,
                seed: Seed = None) -> Residual:
    """torchvision's ``BasicBlock``: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut)``
    with 3x3 convolutions; the shortcut (``downsample``: a strided 1x1 convolution and a
    batch norm) when the stride or the channel count changes, else the identity."""
    generator = as_generator(seed)
    body = Sequential({
        "conv1": Conv2d(in_channels, channels, 3, stride, 1, bias=False, dtype=dtype,
                        seed=generator),
        "bn1": BatchNorm2d(channels, dtype=dtype),
        "relu": ReLU(),
        "conv2": Conv2d(channels, channels, 3, 1, 1, bias=False, dtype=dtype, seed=generator),
        "bn2": BatchNorm2d(channels, dtype=dtype),
    })
    shortcut = None
    if stride != 1 or in_channels != channels:
        shortcut = Sequential(Conv2d(in_channels, channels, 1, stride, bias=False, dtype=dtype,
                                     seed=generator),
                              BatchNorm2d(channels, dtype=dtype))
    return Residual(body, shortcut, ReLU(), body_name=None, shortcut_name="downsample")


def resnet(layers: tuple[int, int, int, int], num_classes: int = 1000, *,
           in_channels: int = 3, width: int = 64, dtype: object = np.float32,
           seed: Seed = None) -> Sequential:
    """A ResNet of basic blocks: a 7x7 stride-2 stem, 3x3 stride-2 max pooling, four
    stages of ``layers[i]`` blocks (``width * 2**i`` channels, stride 2 from the second
    stage on), global average pooling and a dense classifier."""
    num_classes = positive_int(num_classes, "num_classes")
    width = positive_int(width, "width")
    dtype = float_dtype(dtype)
    generator = as_generator(seed)
    parts = {
        "conv1": Conv2d(positive_int(in_channels, "in_channels"), width, 7, 2, 3, bias=False,
                        dtype=dtype, seed=generator),
        "bn1": BatchNorm2d(width, dtype=dtype),
        "relu": ReLU(),
        "maxpool": MaxPool2d(3, 2, 1),
    }
    channels = width
    for stage, count in enumerate(layers):
        out = width * 2**stage
        blocks = [basic_block(channels, out, 1 if stage == 0 else 2, dtype=dtype,
                              seed=generator)]
        blocks += [basic_block(out, out, dtype=dtype, seed=generator) for _ in range(count - 1)]
        parts[f"layer{stage + 1}"] = Sequential(*blocks)
        channels = out
    parts["avgpool"] = AdaptiveAvgPool2d((1, 1))
    parts["flatten"] = Flatten()
    parts["fc"] = Dense(channels, num_classes, dtype=dtype, seed=generator)
    return torchvision_init(Sequential(parts))


def resnet18(num_classes: int = 1000, *, in_channels: int = 3, width: int = 64,
             dtype: object = np.float32, seed: Seed = None) -> Sequential:
    """ResNet-18: stages of 2, 2, 2, 2 basic blocks, 11.7 M parameters for 1000 classes.

    The state dict has exactly torchvision's keys (``conv1.weight``, ``bn1.running_mean``,
    ``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.bias``...), so
    ``model.load_state_dict(torchvision_model.state_dict())`` works, and the
    initialisation is torchvision's. ``width`` (64 in the paper) and ``in_channels``
    scale it down for small pictures, e.g. ``resnet18(10, in_channels=1, width=16)`` for
    MNIST. Logits come out of the last layer (no softmax)."""
    return resnet((2, 2, 2, 2), num_classes, in_channels=in_channels, width=width,
                  dtype=dtype, seed=seed)
