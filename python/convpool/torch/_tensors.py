"""Tensors to arrays and back without copies, and the checks that make that safe.

A CPU tensor and the NumPy array ``tensor.numpy()`` returns share one buffer, whatever the
tensor's strides; ``torch.from_numpy`` shares an array's buffer the other way. convpool's
functions accept any strides (a non-contiguous or channels_last tensor is copied once, inside
the call, into the layout the kernels read) and return new C-contiguous arrays, so a call
costs no conversion copy of its operands or its result.
"""

from __future__ import annotations

import numpy as np
import torch

FLOAT_DTYPES = (torch.float32, torch.float64)

_DEVICES = {"real": ("cpu",), "fake": ("cpu", "meta")}


def check_tensor(tensor: object, name: str, *, integer: bool = False,
                 devices: str = "real") -> torch.Tensor:
    """``tensor`` itself, once it is something the kernels can read: a strided tensor on the
    CPU (or, for shape propagation, on the meta device), float32 or float64 (``integer``:
    int64)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type not in _DEVICES[devices]:
        raise ValueError(
            f"{name}: convpool's kernels run on the CPU; got a tensor on {tensor.device} "
            "(move it with .cpu())"
        )
    if tensor.layout != torch.strided:
        raise ValueError(f"{name}: expected a dense (strided) tensor, got layout {tensor.layout}")
    if integer:
        if tensor.dtype != torch.int64:
            raise TypeError(f"{name}: expected an int64 tensor, got {tensor.dtype}")
    elif tensor.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: convpool computes in float32 or float64, got {tensor.dtype} "
            "(complex, half and integer tensors are not supported)"
        )
    return tensor


def check_same_dtype(tensors: dict[str, torch.Tensor]) -> None:
    """TypeError unless every (floating) tensor has the same dtype, as torch.nn.functional
    requires: a float32 input with float64 weights is a mistake, not a promotion."""
    dtypes = {name: t.dtype for name, t in tensors.items() if t is not None}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"dtype: the tensors must share one dtype, got {listed}")


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's own buffer as a NumPy array (no copy; any strides)."""
    return (tensor.detach() if tensor.requires_grad else tensor).numpy()


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor on the array's own buffer (no copy)."""
    return torch.from_numpy(array)
