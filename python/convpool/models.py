"""Ready-made nets: LeNet-5 (and the same net in PyTorch, for comparisons and
benchmarks), ResNet-18, MobileNetV2 and a small U-Net."""

from __future__ import annotations

import numbers

import numpy as np

from .geometry import output_size
from .nn import (
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .nn.init import Seed, as_generator, float_dtype

__all__ = ["lenet5", "lenet5_torch"]

_ACTIVATIONS = {"tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU}
_POOLS = {"max": MaxPool2d, "avg": AvgPool2d}


def _plan(input_size: int, in_channels: int, num_classes: int, activation: str, pooling: str,
          channels: tuple[int, int], hidden: tuple[int, ...], softmax: bool) -> list[tuple]:
    """The layer list both builders follow, as ``(kind, *arguments)`` tuples."""
    if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral):
        raise TypeError(f"input_size: expected an int, got {input_size!r}")
    if input_size < 8:
        raise ValueError(f"input_size: LeNet-5 needs pictures of at least 8x8, got {input_size}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {list(_ACTIVATIONS)}, got {activation!r}")
    if pooling not in _POOLS:
        raise ValueError(f"pooling: expected one of {list(_POOLS)}, got {pooling!r}")
    if len(channels) != 2:
        raise ValueError(f"channels: expected two feature-map counts, got {channels!r}")
    # MNIST-sized pictures: LeNet's 5x5 kernels (the first 'same', as LeNet padded
    # 28x28 digits to 32x32) and 2x2 sub-sampling. Small pictures such as the 8x8
    # digits: 3x3 'same' kernels and overlapping 2x2 pooling with stride 1, since two
    # halvings would leave 2x2 maps of an 8x8 picture.
    small = input_size < 20
    kernel = 3 if small else 5
    pool_stride = 1 if small else 2
    second_padding = kernel // 2 if small else 0
    plan: list[tuple] = [("conv", in_channels, channels[0], kernel, kernel // 2),
                         ("activation",), ("pool", pool_stride)]
    plan += [("conv", channels[0], channels[1], kernel, second_padding), ("activation",),
             ("pool", pool_stride)]
    size = input_size  # through: 'same' conv, 2x2 pool, conv, 2x2 pool
    for conv_padding in (kernel // 2, second_padding):
        size = output_size(size, kernel, 1, 1, conv_padding, conv_padding)
        size = output_size(size, 2, pool_stride, 1, 0, 0)
    if size < 1:
        raise ValueError(f"input_size: {input_size} is too small for LeNet-5's layers")
    features = channels[1] * size * size
    plan.append(("flatten",))
    for width in hidden:
        plan += [("dense", features, width), ("activation",)]
        features = width
    plan.append(("dense", features, num_classes))
    if softmax:
        plan.append(("softmax",))
    return plan


def lenet5(input_size: int = 28, *, in_channels: int = 1, num_classes: int = 10,
           activation: str = "tanh", pooling: str = "max", channels: tuple[int, int] = (6, 16),
           hidden: tuple[int, ...] = (120, 84), softmax: bool = True, dtype: object = np.float32,
           seed: Seed = None) -> Sequential:
    """LeNet-5 (LeCun et al., 1998): conv - pool - conv - pool, then dense layers and a
    softmax output.

    For ``input_size=28`` (MNIST): 6 maps 5x5 'same' (28x28), 2x2 pooling (14x14),
    16 maps 5x5 (10x10), pooling (5x5), then dense 400 -> 120 -> 84 -> 10, as LeCun's
    C1-S2-C3-S4-C5-F6-output. For small pictures (``input_size < 20``, e.g. the 8x8
    scikit-learn digits) the kernels are 3x3 'same' and the 2x2 pooling overlaps
    (stride 1): 8x8 -> 7x7 -> 6x6, dense 576 -> 120 -> 84 -> 10.

    Args:
        activation: ``"tanh"`` or ``"sigmoid"`` (the classic squashing functions) or
            ``"relu"``, after each convolution and hidden dense layer.
        pooling: ``"max"`` (standard) or ``"avg"`` (LeNet's original sub-sampling).
        channels: feature maps of the two convolutions.
        hidden: widths of the hidden dense layers (``(84,)`` gives conv-pool-conv-pool-
            dense-dense).
        softmax: end with a Softmax layer, so that the net outputs class probabilities.
            Training helpers hand :class:`~convpool.nn.CrossEntropyLoss` the logits
            before it (``model[:-1]``).
        seed: int or ``numpy.random.Generator`` for a reproducible initialisation.
    """
    dtype = float_dtype(dtype)
    generator = as_generator(seed)
    layers = []
    for kind, *arguments in _plan(input_size, in_channels, num_classes, activation, pooling,
                                  tuple(channels), tuple(hidden), softmax):
        if kind == "conv":
            c_in, c_out, kernel, padding = arguments
            layers.append(Conv2d(c_in, c_out, kernel, padding=padding, dtype=dtype,
                                 seed=generator))
        elif kind == "activation":
            layers.append(_ACTIVATIONS[activation]())
        elif kind == "pool":
            layers.append(_POOLS[pooling](2, stride=arguments[0]))
        elif kind == "flatten":
            layers.append(Flatten())
        elif kind == "dense":
            layers.append(Dense(*arguments, dtype=dtype, seed=generator))
        else:
            layers.append(Softmax(dim=1))
    return Sequential(*layers)


def lenet5_torch(input_size: int = 28, *, in_channels: int = 1, num_classes: int = 10,
                 activation: str = "tanh", pooling: str = "max",
                 channels: tuple[int, int] = (6, 16), hidden: tuple[int, ...] = (120, 84),
                 softmax: bool = True):
    """The same net as :func:`lenet5` in PyTorch (``torch.nn.Sequential`` with the same
    layer indices, so ``lenet5(...).load_state_dict(net.state_dict())`` works).
    Needs torch."""
    import torch.nn as tnn

    activations = {"tanh": tnn.Tanh, "sigmoid": tnn.Sigmoid, "relu": tnn.ReLU}
    pools = {"max": tnn.MaxPool2d, "avg": tnn.AvgPool2d}
    layers = []
    for kind, *arguments in _plan(input_size, in_channels, num_classes, activation, pooling,
                                  tuple(channels), tuple(hidden), softmax):
        if kind == "conv":
            c_in, c_out, kernel, padding = arguments
            layers.append(tnn.Conv2d(c_in, c_out, kernel, padding=padding))
        elif kind == "activation":
            layers.append(activations[activation]())
        elif kind == "pool":
            layers.append(pools[pooling](2, stride=arguments[0]))
        elif kind == "flatten":
            layers.append(tnn.Flatten())
        elif kind == "dense":
            layers.append(tnn.Linear(*arguments))
        else:
            layers.append(tnn.Softmax(dim=1))
    return tnn.Sequential(*layers)


# Nets beyond LeNet (ResNet-18, MobileNetV2 with torchvision's keys; a small U-Net).
from .nets import mobilenet_v2, resnet18, unet  # noqa: E402

__all__ += ["mobilenet_v2", "resnet18", "unet"]
