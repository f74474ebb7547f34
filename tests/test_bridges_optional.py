"""The framework bridges stay optional: ``import convpool`` (and its lazily loaded layer API)
never imports PyTorch or JAX; only ``convpool.torch`` and ``convpool.jax`` do."""

from __future__ import annotations

import subprocess
import sys


def test_importing_convpool_loads_neither_torch_nor_jax():
    code = (
        "import sys, convpool, convpool.nn, convpool.models; "
        "print(sorted(m for m in ('torch', 'jax', 'jaxlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
