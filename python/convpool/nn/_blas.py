"""Keep NumPy's BLAS to one thread for small matrix products.

The convolution kernels run on an OpenMP thread team; OpenBLAS keeps a second team of
its own. On a machine with few cores the two teams' idle threads spin for the same
cores, and a small product (a CNN's dense head: 64 x 400 x 120) that takes 0.1 ms on one
thread can wait milliseconds for its second thread. Small products therefore run on one
BLAS thread; large ones keep BLAS's own threading. This needs ``threadpoolctl`` (a
scikit-learn dependency); without it, BLAS runs as configured.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

SMALL_PRODUCT = 1 << 24
"""Multiply-adds below which a product runs on one BLAS thread."""


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


@contextmanager
def blas_threads_for(multiply_adds: int) -> Iterator[None]:
    """Run the block's BLAS calls on one thread when the product is small."""
    libraries = _blas_libraries() if multiply_adds < SMALL_PRODUCT else ()
    previous = [library.num_threads for library in libraries]
    changed = [lib for lib, n in zip(libraries, previous, strict=True) if n != 1]
    for library in changed:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, n in zip(libraries, previous, strict=True):
            if n != 1:
                library.set_num_threads(n)
