"""Is a fast kernel also right? convpool's outputs against a peer's, once per case."""

from __future__ import annotations

import numpy as np

from .runners import as_numpy

# float32 sums of up to ~25000 products, in different orders, agree to ~1e-6 of the largest
# value; a wrong tap, a missed edge or a stale buffer is off by 1e-2 or more.
TOLERANCE = 1e-4


def relative_errors(outputs: tuple, reference: tuple, names: tuple[str, ...]) -> dict[str, float]:
    """Per output, ``max |a - b| / max |b|`` in float64 (``inf`` for a shape mismatch, NaN or
    infinity where the reference is finite)."""
    errors = {}
    for name, a, b in zip(names, outputs, reference, strict=True):
        a = as_numpy(a).astype(np.float64).ravel()
        b = as_numpy(b).astype(np.float64).ravel()
        if a.shape != b.shape:
            errors[name] = float("inf")
            continue
        difference = np.abs(a - b)
        if not np.all(np.isfinite(difference)):
            errors[name] = float("inf")
            continue
        scale = float(np.abs(b).max()) if b.size else 0.0
        errors[name] = float(difference.max() / scale) if scale > 0 else float(difference.max())
    return errors
