"""convpool's NumPy oracle: every public kernel in plain NumPy, same names and signatures.

Written for clarity rather than speed, and independent of the library: it shares no code
with the compiled kernels nor with the library's argument handling (its padding, output
sizes and padding modes are its own short formulas, in :mod:`convpool.reference.geometry`),
so that a mistake there shows up as a disagreement. The test suite checks every compiled
kernel against it, and checks it against hand-worked examples, finite differences, NaN and
inf placed by hand, and PyTorch.
"""

from .conv import (
    conv2d,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
)
from .extra import (  # transposed convolution, unpooling, adaptive pooling
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_grad_input,
    adaptive_max_pool2d,
    adaptive_max_pool2d_grad_input,
    conv_transpose2d,
    conv_transpose2d_grad_input,
    conv_transpose2d_grad_weight,
    max_unpool2d,
    max_unpool2d_grad_input,
)
from .geometry import resolve_padding
from .pool import (
    avg_pool2d,
    avg_pool2d_grad_input,
    channel_pool,
    channel_pool_grad_input,
    global_avg_pool2d,
    global_avg_pool2d_grad_input,
    global_max_pool2d,
    global_max_pool2d_grad_input,
    max_pool2d,
    max_pool2d_grad_input,
)

__all__ = [
    "avg_pool2d",
    "avg_pool2d_grad_input",
    "channel_pool",
    "channel_pool_grad_input",
    "conv2d",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "global_avg_pool2d",
    "global_avg_pool2d_grad_input",
    "global_max_pool2d",
    "global_max_pool2d_grad_input",
    "max_pool2d",
    "max_pool2d_grad_input",
    "resolve_padding",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_grad_input",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_grad_input",
    "conv_transpose2d",
    "conv_transpose2d_grad_input",
    "conv_transpose2d_grad_weight",
    "max_unpool2d",
    "max_unpool2d_grad_input",
]

# 1-D and 3-D: nd.py, an oracle of its own that shares nothing with the library
from . import nd  # noqa: E402
from .nd import *  # noqa: E402, F403

__all__ += nd.__all__
