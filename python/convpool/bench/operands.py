"""Random float32 operands for a case, from a fixed seed (the same numbers for every library)."""

from __future__ import annotations

import numpy as np

from .cases import Case, ConvCase


def operands(case: Case, seed: int = 0) -> dict[str, np.ndarray]:
    """``x`` and ``grad_output`` (the upstream gradient); for a convolution also ``weight``
    and ``bias``. A picture case has 2-D ``x``, ``weight`` and ``grad_output``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.input_shape, dtype=np.float32)
    grad_output = rng.standard_normal(case.output_shape, dtype=np.float32)
    if not isinstance(case, ConvCase):
        return {"x": x, "grad_output": grad_output}
    fan_in = (case.in_channels // case.groups) * case.kernel**2
    # Scaled as a layer is initialised, so outputs stay near unit size.
    weight = rng.standard_normal(case.weight_shape, dtype=np.float32) / np.float32(fan_in**0.5)
    bias = rng.standard_normal(case.out_channels, dtype=np.float32)
    if case.picture:
        x, weight, grad_output = x[0, 0], weight[0, 0], grad_output[0, 0]
    return {"x": x, "weight": weight, "bias": bias, "grad_output": grad_output}


def operand_bytes(arrays: dict[str, np.ndarray]) -> int:
    return sum(array.nbytes for array in arrays.values())
