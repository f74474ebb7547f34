"""MobileNetV2 (Sandler et al. 2018), built as torchvision builds it, so that its state
dict has torchvision's keys and a torchvision state dict loads as is."""

from __future__ import annotations

import numpy as np

from .._args import positive_int
from ..nn import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    Layer,
    ReLU6,
    Residual,
    Sequential,
)
from ..nn.init import Seed, as_generator, float_dtype
from ._init import torchvision_init

# expansion t, output channels c, repeats n, first stride s (the paper's Table 2)
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: the nearest multiple of ``divisor``, never more
    than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                  groups: int = 1, *, dtype=np.float32, seed: Seed = None) -> Sequential:
    """Convolution ('same'-style padding ``(k - 1) // 2``, no bias), batch norm, ReLU6:
    torchvision's ``Conv2dNormActivation``, keys ``0.weight``, ``1.running_mean``..."""
    return Sequential(
        Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
               groups=groups, bias=False, dtype=dtype, seed=seed),
        BatchNorm2d(out_channels, dtype=dtype),
        ReLU6())


def inverted_residual(in_channels: int, out_channels: int, stride: int, expand_ratio: int, *,
                      dtype=np.float32, seed: Seed = None) -> Layer:
    """torchvision's ``InvertedResidual``: 1x1 expansion (unless the ratio is 1), 3x3
    depthwise, linear 1x1 projection and batch norm, under the name ``conv``; summed with
    its input when the stride is 1 and the channels stay."""
    generator = as_generator(seed)
    hidden = int(round(in_channels * expand_ratio))
    layers = []
    if expand_ratio != 1:
        layers.append(conv_bn_relu6(in_channels, hidden, 1, dtype=dtype, seed=generator))
    layers += [
        conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden, dtype=dtype, seed=generator),
        Conv2d(hidden, out_channels, 1, bias=False, dtype=dtype, seed=generator),
        BatchNorm2d(out_channels, dtype=dtype),
    ]
    body = Sequential(*layers)
    if stride == 1 and in_channels == out_channels:
        return Residual(body, body_name="conv")
    return Sequential({"conv": body})


def mobilenet_v2(num_classes: int = 1000, *, width_mult: float = 1.0, in_channels: int = 3,
                 dropout: float = 0.2, dtype: object = np.float32,
                 seed: Seed = None) -> Sequential:
    """MobileNetV2: a 3x3 stride-2 stem, 17 inverted residual blocks, a 1x1 convolution to
    1280 channels, global average pooling, dropout and a dense classifier (3.5 M
    parameters for 1000 classes).

    The state dict has exactly torchvision's keys (``features.0.0.weight``,
    ``features.1.conv.0.0.weight``, ``features.18.1.running_var``, ``classifier.1.weight``
    ...) and the initialisation is torchvision's. Logits come out of the last layer."""
    num_classes = positive_int(num_classes, "num_classes")
    dtype = float_dtype(dtype)
    generator = as_generator(seed)
    channels = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    features = [conv_bn_relu6(positive_int(in_channels, "in_channels"), channels, 3, 2,
                              dtype=dtype, seed=generator)]
    for t, c, n, s in _SETTINGS:
        out = make_divisible(c * width_mult)
        for index in range(n):
            features.append(inverted_residual(channels, out, s if index == 0 else 1, t,
                                              dtype=dtype, seed=generator))
            channels = out
    features.append(conv_bn_relu6(channels, last, 1, dtype=dtype, seed=generator))
    model = Sequential({
        "features": Sequential(*features),
        "avgpool": AdaptiveAvgPool2d((1, 1)),
        "flatten": Flatten(),
        "classifier": Sequential(Dropout(dropout, seed=generator),
                                 Dense(last, num_classes, dtype=dtype, seed=generator)),
    })
    return torchvision_init(model, linear_std=0.01)
