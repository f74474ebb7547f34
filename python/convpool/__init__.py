"""convpool: fast, clear CPU convolution and pooling kernels for NumPy arrays.

The kernels are C++ with OpenMP; :mod:`convpool.reference` is their NumPy oracle.
"""

from . import _core
from ._config import build_info, get_num_threads, set_num_threads, show_config
from .conv import conv2d, conv2d_grad_bias, conv2d_grad_input, conv2d_grad_weight
from .padding import resolve_padding

__version__: str = _core.__version__

__all__ = [
    "__version__",
    "build_info",
    "conv2d",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "get_num_threads",
    "resolve_padding",
    "set_num_threads",
    "show_config",
]
