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

__all__ = [
    "conv2d",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "resolve_padding",
]
