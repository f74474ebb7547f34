"""convpool: fast, clear CPU convolution and pooling kernels for NumPy arrays.

The kernels are C++ with OpenMP; :mod:`convpool.reference` is their NumPy oracle.
"""

from . import _core
from ._config import (
    build_info,
    check_simd_environment,
    get_num_threads,
    set_num_threads,
    show_config,
)
from .adaptive_pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_grad_input,
    adaptive_max_pool2d,
    adaptive_max_pool2d_grad_input,
)
from .conv import conv2d, conv2d_grad_bias, conv2d_grad_input, conv2d_grad_weight
from .conv_transpose import (
    conv_transpose2d,
    conv_transpose2d_grad_input,
    conv_transpose2d_grad_weight,
)
from .geometry import resolve_padding
from .implementation import implementation, implementations
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
from .unpool import max_unpool2d, max_unpool2d_grad_input

__version__: str = _core.__version__

check_simd_environment()

__all__ = [
    "__version__",
    "avg_pool2d",
    "avg_pool2d_grad_input",
    "build_info",
    "channel_pool",
    "channel_pool_grad_input",
    "conv2d",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "get_num_threads",
    "global_avg_pool2d",
    "global_avg_pool2d_grad_input",
    "global_max_pool2d",
    "global_max_pool2d_grad_input",
    "implementation",
    "implementations",
    "max_pool2d",
    "max_pool2d_grad_input",
    "resolve_padding",
    "set_num_threads",
    "show_config",
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

_LAZY_SUBMODULES = ("nn", "models", "datasets", "viz", "dask", "torch", "jax")


def __getattr__(name: str):
    # The layer API, ready-made nets and data sets load on first use (``convpool.nn``
    # works without an explicit import), keeping ``import convpool`` itself light.
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# 1-D and 3-D convolution and pooling, on the 2-D kernels (conv_nd.py, pool_nd.py)
from . import conv_nd, pool_nd  # noqa: E402
from .conv_nd import *  # noqa: E402, F403
from .pool_nd import *  # noqa: E402, F403

__all__ += conv_nd.__all__ + pool_nd.__all__

# the cache of large output buffers (_buffers.py)
from ._buffers import get_buffer_cache, set_buffer_cache  # noqa: E402

__all__ += ["get_buffer_cache", "set_buffer_cache"]
