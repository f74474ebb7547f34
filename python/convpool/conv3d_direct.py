"""The direct 3-D convolution kernels (``direct3d``, csrc/kernels/conv3d_direct.cpp) for
float32 volumes: output channels in the vector lanes, an output-row segment in registers,
reducing over ``(C_in, kd, kh, kw)`` with packed weights and no im2col.

Each function here returns None where the kernels do not serve the case (float64,
empty operands, a padding mode that is not a plain copy, non-finite factors that would
meet the zero padding, or a case the kernels' own predicate refuses); :mod:`convpool.conv_nd`
then runs its depth-gathered 2-D path.

- forward: the kernel reads zero padding itself; the other padding modes are a padded
  copy of the input (:func:`numpy.pad`) and no padding for the kernel.
- weight gradient: the same input handling; the output gradient is read as it is.
- input gradient, stride 1, zero padding: the forward kernel on the output gradient with
  the weight transposed per group and flipped, padding ``(k - 1) * dilation - padding``
  on each side. Strided and non-zero-mode input gradients stay on the 2-D path.
"""

from __future__ import annotations

import numpy as np

from . import _core
from .geometry import ConvGeometry

# numpy.pad's name of each padding mode that copies input voxels
_NUMPY_PAD_MODES = {"replicate": "edge", "reflect": "reflect", "symmetric": "symmetric",
                    "circular": "wrap"}

enabled = True
"""Whether conv3d may use the direct kernels (tests turn it off to compare the paths)."""


def _triples(geometry: ConvGeometry, sides) -> dict:
    return dict(groups=geometry.groups, stride=tuple(geometry.stride),
                dilation=tuple(geometry.dilation),
                pad_before=tuple(before for before, _ in sides),
                pad_after=tuple(after for _, after in sides))


def _supported(op: str, input_shape, weight_shape, output_shape, arguments: dict) -> bool:
    if not enabled or min(*input_shape, *weight_shape, *output_shape) < 1:
        return False
    if min(arguments["pad_before"] + arguments["pad_after"]) < 0:
        return False
    return bool(_core.conv3d_supporting(op, list(input_shape), list(weight_shape),
                                        list(output_shape), **arguments))


def _kernel_input(x: np.ndarray, geometry: ConvGeometry) -> tuple[np.ndarray, tuple] | None:
    """``x`` as the kernel reads it, and the padding the kernel adds: zero padding as it
    is, another mode as a padded copy (None where numpy.pad's mode would differ)."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(geometry.input_shape)
    if geometry.padding_mode == "zeros":
        return x, geometry.sides
    spatial = geometry.input_shape[2:]
    if any(max(side) > size for side, size in zip(geometry.sides, spatial, strict=True)):
        return None
    padded = np.pad(x, ((0, 0), (0, 0), *geometry.sides),
                    mode=_NUMPY_PAD_MODES[geometry.padding_mode])
    return padded, ((0, 0),) * 3


def _served_input(op: str, x: np.ndarray, factor: np.ndarray, geometry: ConvGeometry,
                  dtype: np.dtype) -> tuple[np.ndarray, dict] | None:
    """For ``op`` (the forward pass or the weight gradient, which read ``x`` alike):
    ``x`` as the kernel reads it and the kernel's arguments, or None where the kernels do
    not serve the case. ``factor`` is the operand multiplied with ``x``'s padding."""
    if dtype != np.float32:
        return None
    if geometry.padding_mode == "zeros" and not np.isfinite(factor).all():
        return None  # 0 * inf in the padding: the 2-D path
    if not _supported(op, geometry.input_shape, geometry.weight_shape, geometry.output_shape,
                      _triples(geometry, geometry.sides)):
        return None
    prepared = _kernel_input(x, geometry)
    if prepared is None:
        return None
    x_kernel, sides = prepared
    return x_kernel, _triples(geometry, sides)


def forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
            geometry: ConvGeometry, dtype: np.dtype) -> np.ndarray | None:
    """``conv3d`` through the direct kernel, or None where it does not serve the case."""
    served = _served_input("conv3d", x, weight, geometry, dtype)
    if served is None:
        return None
    x_kernel, arguments = served
    y = np.empty(geometry.output_shape, dtype=np.float32)
    _core.conv3d_forward(x_kernel, np.ascontiguousarray(weight, np.float32).reshape(
        geometry.weight_shape), bias, y, **arguments)
    return y


def grad_weight(x: np.ndarray, grad_output: np.ndarray, geometry: ConvGeometry,
                dtype: np.dtype) -> np.ndarray | None:
    """``conv3d_grad_weight`` through the direct kernel, or None."""
    served = _served_input("conv3d_grad_weight", x, grad_output, geometry, dtype)
    if served is None:
        return None
    x_kernel, arguments = served
    grad = np.empty(geometry.weight_shape, dtype=np.float32)
    _core.conv3d_grad_weight(x_kernel, np.ascontiguousarray(grad_output, np.float32).reshape(
        geometry.output_shape), grad, **arguments)
    return grad


def grad_input(grad_output: np.ndarray, weight: np.ndarray, geometry: ConvGeometry,
               dtype: np.dtype) -> np.ndarray | None:
    """``conv3d_grad_input`` (stride 1, zero padding) as a forward convolution of the
    output gradient with the flipped, per-group transposed weight, or None."""
    if dtype != np.float32 or geometry.padding_mode != "zeros" or max(geometry.stride) != 1:
        return None
    kernel = geometry.weight_shape[2:]
    sides = tuple((d * (k - 1) - before, d * (k - 1) - after)
                  for (before, after), k, d in zip(geometry.sides, kernel, geometry.dilation,
                                                   strict=True))
    if min(min(side) for side in sides) < 0 or not np.isfinite(weight).all():
        return None
    c_out, c_in_g = geometry.weight_shape[:2]
    g = geometry.groups
    c_in = g * c_in_g
    flipped_shape = (c_in, c_out // g, *kernel)
    arguments = _triples(geometry, sides)
    if not _supported("conv3d", geometry.output_shape, flipped_shape, geometry.input_shape,
                      arguments):
        return None
    w6 = weight.reshape(g, c_out // g, c_in_g, *kernel)
    flipped = np.ascontiguousarray(
        w6.transpose(0, 2, 1, 3, 4, 5)[..., ::-1, ::-1, ::-1], dtype=np.float32
    ).reshape(flipped_shape)
    grad = np.empty(geometry.input_shape, dtype=np.float32)
    _core.conv3d_forward(np.ascontiguousarray(grad_output, np.float32).reshape(
        geometry.output_shape), flipped, None, grad, **arguments)
    return grad
