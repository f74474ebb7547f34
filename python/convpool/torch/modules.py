"""``torch.nn`` layers on convpool's kernels, and :func:`convert`, which puts an existing
model on them.

Each layer subclasses its ``torch.nn`` counterpart and only replaces ``forward``: the
constructor, parameters, ``state_dict`` keys, ``repr`` and ``isinstance`` checks are
PyTorch's. :func:`convert` therefore swaps a layer by changing its class in place - the
module object, its Parameters and any hooks stay the same, so an optimizer built before the
conversion keeps training the converted model.
"""

from __future__ import annotations

import torch
from torch import nn

from . import functional as F

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "MaxUnpool2d",
    "convert",
    "revert",
]


class Conv2d(nn.Conv2d):
    """``torch.nn.Conv2d`` computed by convpool (every ``padding`` and ``padding_mode``
    ``nn.Conv2d`` accepts, groups, dilation, bias)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, self.padding_mode)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` computed by :func:`convpool.conv_transpose2d`
    (``output_size=`` in ``forward`` as PyTorch)."""

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        output_padding = self._output_padding(input, output_size, self.stride, self.padding,
                                              self.kernel_size, 2, self.dilation)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)


class MaxPool2d(nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` computed by convpool."""

    def forward(self, input: torch.Tensor):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool2d(nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` computed by convpool."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


def _is_global(output_size: object) -> bool:
    return output_size == 1 or (isinstance(output_size, (tuple, list))
                                 and tuple(output_size) == (1, 1))


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` computed by convpool, any output size (an output size
    of 1, the classification head's global average, is ``global_avg_pool2d``)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if _is_global(self.output_size):
            return F.global_avg_pool2d(input, keepdims=True)
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(nn.AdaptiveMaxPool2d):
    """``torch.nn.AdaptiveMaxPool2d`` computed by convpool, any output size, with
    ``return_indices`` (an output size of 1 without indices is ``global_max_pool2d``)."""

    def forward(self, input: torch.Tensor):
        if _is_global(self.output_size) and not self.return_indices:
            return F.global_max_pool2d(input, keepdims=True)
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class MaxUnpool2d(nn.MaxUnpool2d):
    """``torch.nn.MaxUnpool2d`` computed by convpool (``output_size=`` in ``forward`` as
    PyTorch). Values whose indices repeat are added, where PyTorch keeps one."""

    def forward(self, input: torch.Tensor, indices: torch.Tensor,
                output_size: list[int] | None = None) -> torch.Tensor:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)


# exact PyTorch classes only: a subclass may have its own forward, which a swap would lose
_CONVPOOL_CLASS: dict[type, type] = {
    nn.Conv2d: Conv2d,
    nn.ConvTranspose2d: ConvTranspose2d,
    nn.MaxPool2d: MaxPool2d,
    nn.AvgPool2d: AvgPool2d,
    nn.AdaptiveAvgPool2d: AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d: AdaptiveMaxPool2d,
    nn.MaxUnpool2d: MaxUnpool2d,
}
_TORCH_CLASS = {convpool_class: torch_class
                for torch_class, convpool_class in _CONVPOOL_CLASS.items()}


def convert(module: nn.Module) -> nn.Module:
    """Run ``module`` (and every submodule) on convpool's kernels; returns ``module``.

    Every ``nn.Conv2d``, ``nn.ConvTranspose2d``, ``nn.MaxPool2d``, ``nn.AvgPool2d``,
    ``nn.AdaptiveAvgPool2d``, ``nn.AdaptiveMaxPool2d`` and ``nn.MaxUnpool2d`` (exactly
    those classes, not subclasses) becomes its convpool-backed subclass in place: the same
    module objects with the same Parameters, buffers and hooks, so optimizers and references
    keep working. Other modules are left alone. Inputs must then be float32 or float64 CPU tensors.

    >>> model = convert(torchvision_model)            # doctest: +SKIP
    """
    for submodule in module.modules():
        convpool_class = _CONVPOOL_CLASS.get(type(submodule))
        if convpool_class is not None:
            submodule.__class__ = convpool_class
    return module


def revert(module: nn.Module) -> nn.Module:
    """Undo :func:`convert`: every convpool-backed layer goes back to its PyTorch class."""
    for submodule in module.modules():
        torch_class = _TORCH_CLASS.get(type(submodule))
        if torch_class is not None:
            submodule.__class__ = torch_class
    return module
