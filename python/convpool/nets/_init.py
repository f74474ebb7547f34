"""torchvision's initialisation, applied to a built net."""

from __future__ import annotations

import math

from ..nn import BatchNorm2d, Conv2d, ConvTranspose2d, Dense, Layer
from ..nn.init import constant_initializer, normal_initializer


def torchvision_init(model: Layer, linear_std: float | None = None) -> Layer:
    """Convolutions He-normal with ``mode="fan_out"`` (bias 0), batch norms 1 and 0; dense
    layers ``N(0, linear_std^2)`` with bias 0, or PyTorch's default when None."""
    for _, layer in model.named_layers():
        if isinstance(layer, (Conv2d, ConvTranspose2d)):
            # PyTorch's fan_out: the weight's first axis times the kernel's taps.
            fan_out = layer.weight.shape[0] * layer.kernel_size[0] * layer.kernel_size[1]
            layer.weight.initialize_with(normal_initializer(math.sqrt(2.0 / fan_out)))
            if layer.bias is not None:
                layer.bias.initialize_with(constant_initializer(0.0))
        elif isinstance(layer, Dense) and linear_std is not None:
            layer.weight.initialize_with(normal_initializer(linear_std))
            if layer.bias is not None:
                layer.bias.initialize_with(constant_initializer(0.0))
        elif isinstance(layer, BatchNorm2d) and layer.affine:
            layer.weight.initialize_with(constant_initializer(1.0))
            layer.bias.initialize_with(constant_initializer(0.0))
    return model
