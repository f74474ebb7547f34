"""A small U-Net (Ronneberger et al. 2015): an encoder-decoder whose decoder joins each
up-sampled map with the encoder's map of the same size."""

from __future__ import annotations

import numpy as np

from .._args import positive_int
from ..nn import (
    BatchNorm2d,
    Concat,
    Conv2d,
    ConvTranspose2d,
    Identity,
    Layer,
    MaxPool2d,
    ReLU,
    Sequential,
)
from ..nn.init import Seed, as_generator, float_dtype
from ._init import torchvision_init


def double_conv(in_channels: int, out_channels: int, *, dtype, seed) -> Sequential:
    """Two 3x3 'same' convolutions, each with batch norm and ReLU."""
    return Sequential(
        Conv2d(in_channels, out_channels, 3, padding=1, bias=False, dtype=dtype, seed=seed),
        BatchNorm2d(out_channels, dtype=dtype), ReLU(),
        Conv2d(out_channels, out_channels, 3, padding=1, bias=False, dtype=dtype, seed=seed),
        BatchNorm2d(out_channels, dtype=dtype), ReLU())


def _level(in_channels: int, channels: int, depth: int, *, dtype, seed) -> Layer:
    """The net from one resolution down: ``double_conv``, then (above the bottom) the
    skip connection concatenated with the coarser level's up-sampled output, and a
    ``double_conv`` that merges them."""
    encode = double_conv(in_channels, channels, dtype=dtype, seed=seed)
    if depth == 0:
        return encode
    coarser = Sequential({
        "pool": MaxPool2d(2),
        "inner": _level(channels, 2 * channels, depth - 1, dtype=dtype, seed=seed),
        "up": ConvTranspose2d(2 * channels, channels, 2, stride=2, dtype=dtype, seed=seed),
    })
    return Sequential({
        "encode": encode,
        "join": Concat({"skip": Identity(), "coarser": coarser}),
        "decode": double_conv(2 * channels, channels, dtype=dtype, seed=seed),
    })


def unet(in_channels: int = 1, num_classes: int = 2, *, width: int = 16, depth: int = 3,
         dtype: object = np.float32, seed: Seed = None) -> Sequential:
    """A U-Net with ``depth`` halvings (2x2 max pooling) and as many 2x2 stride-2
    transposed convolutions back; ``width`` channels at full resolution, doubled at each
    level; a 1x1 convolution gives ``num_classes`` scores per pixel. Input H and W must
    be multiples of ``2**depth``; the output keeps them: ``(N, num_classes, H, W)``."""
    dtype = float_dtype(dtype)
    generator = as_generator(seed)
    width = positive_int(width, "width")
    depth = positive_int(depth, "depth") if depth else 0
    model = Sequential({
        "body": _level(positive_int(in_channels, "in_channels"), width, depth, dtype=dtype,
                       seed=generator),
        "head": Conv2d(width, positive_int(num_classes, "num_classes"), 1, dtype=dtype,
                       seed=generator),
    })
    return torchvision_init(model)
