"""convpool's NumPy oracle: every public kernel in plain NumPy, same names and signatures.

Written for clarity rather than speed, independent of the compiled code; the test suite
checks every compiled kernel against it, and checks it against hand-worked examples and
finite differences.
"""

from .conv import (
    conv2d,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
    resolve_padding,
)
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
]

# 1-D and 3-D: nd.py, an oracle of its own that shares nothing with the library
from . import nd  # noqa: E402
from .nd import *  # noqa: E402, F403

__all__ += nd.__all__
