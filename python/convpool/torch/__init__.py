"""convpool inside PyTorch programs (``pip install convpool[torch]``).

- functions with ``torch.nn.functional``'s signatures (:mod:`convpool.torch.functional`),
  differentiable through convpool's own gradient kernels;
- the same kernels as custom operators, ``torch.ops.convpool.conv2d`` and so on, with fake
  implementations (shape propagation, ``torch.compile`` as opaque calls, the meta device);
- ``torch.nn`` layers on convpool and :func:`convert`, which moves an existing model onto
  them in one line.

Tensors and arrays share memory (no conversion copies); the kernels run on the CPU in
float32 or float64. ``import convpool`` never imports torch: only this module does.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as error:  # pragma: no cover - the tests skip without torch
    raise ImportError(
        "convpool.torch needs PyTorch: pip install 'convpool[torch]'"
    ) from error

from . import _ops

_ops.register()

from . import functional  # noqa: E402
from .functional import (  # noqa: E402
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    channel_pool,
    conv2d,
    conv_transpose2d,
    global_avg_pool2d,
    global_max_pool2d,
    max_pool2d,
    max_unpool2d,
)
from .modules import (  # noqa: E402
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    MaxPool2d,
    MaxUnpool2d,
    convert,
    revert,
)

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "MaxUnpool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "channel_pool",
    "conv2d",
    "conv_transpose2d",
    "convert",
    "functional",
    "global_avg_pool2d",
    "global_max_pool2d",
    "max_pool2d",
    "max_unpool2d",
    "revert",
]
