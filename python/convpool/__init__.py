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
from .conv import conv2d, conv2d_grad_bias, conv2d_grad_input, conv2d_grad_weight
from .padding import resolve_padding
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
    "max_pool2d",
    "max_pool2d_grad_input",
    "resolve_padding",
    "set_num_threads",
    "show_config",
]

_LAZY_SUBMODULES = ("nn", "models", "datasets", "viz", "dask")


def __getattr__(name: str):
    # The layer API, ready-made nets and data sets load on first use (``convpool.nn``
    # works without an explicit import), keeping ``import convpool`` itself light.
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
