"""New output arrays, with large ones taken from a small cache of recently released buffers.

A large array freshly allocated is fresh pages: glibc maps blocks above its mmap threshold
on their own and unmaps them on release (and trims the heap top), so every call that
returns a new large output pays a page fault per 4 KiB page the kernel writes, often more
than the computation itself. PyTorch avoids this with a caching allocator; this is
convpool's equivalent for its outputs.

The cache keeps its own reference to each large buffer it hands out (a 1-D uint8 array;
callers get a typed view of it, whose ``base`` it is). A buffer is reused only once the
cache's reference is the only one left: no array the caller holds, no view of one (NumPy
views keep the owning buffer alive) and nothing exported through the buffer protocol can
still see it. So no result a caller holds is ever overwritten by a later call. Idle
buffers the cache keeps (released or not) are bounded in total (:func:`set_buffer_cache`),
the least recently handed out dropped first.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

__all__ = ["empty", "set_buffer_cache", "get_buffer_cache"]

# Below this, malloc's heap serves and keeps the pages mapped: the cache would only add work.
LARGE_BYTES = 1 << 20
_DEFAULT_LIMIT = 256 << 20

_lock = threading.Lock()
_buffers: list[np.ndarray] = []  # oldest first
_limit = _DEFAULT_LIMIT


def _references(buffers: list[np.ndarray], index: int) -> int:
    return sys.getrefcount(buffers[index])


def _idle_reference_count() -> int:
    """The reference count :func:`_references` sees for a buffer only the cache holds
    (measured through the same path, so interpreter details do not matter)."""
    return _references([np.empty(1, np.uint8)], 0)


_IDLE = _idle_reference_count()


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, as ``numpy.empty``; large ones come from the
    cache when an idle buffer of the same size is there."""
    if not isinstance(dtype, np.dtype):  # the kernels' callers pass dtypes: no conversion
        dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < LARGE_BYTES or _limit == 0:
        return np.empty(shape, dtype)
    with _lock:
        buffers = _buffers
        for index in range(len(buffers)):
            if buffers[index].nbytes == nbytes and _references(buffers, index) == _IDLE:
                raw = buffers.pop(index)
                buffers.append(raw)  # most recently used last
                return raw.view(dtype).reshape(shape)
        raw = np.empty(nbytes, np.uint8)
        buffers.append(raw)
        _evict(buffers)
        return raw.view(dtype).reshape(shape)


def _idle_indices(buffers: list[np.ndarray]) -> list[int]:
    # by index: a loop variable bound to a buffer would be one more reference to it
    return [index for index in range(len(buffers)) if _references(buffers, index) == _IDLE]


def _evict(buffers: list[np.ndarray]) -> None:
    """Forget the oldest buffers until those kept fit the bound. Buffers in use count too:
    the bound then holds however many are released later. (A buffer in use that is
    forgotten is simply freed by its last holder, as any array.)"""
    total = sum(raw.nbytes for raw in buffers)
    while total > _limit:
        total -= buffers.pop(0).nbytes


def set_buffer_cache(max_bytes: int) -> int:
    """Bound the bytes of large output buffers kept for reuse (default 256 MiB; 0 turns the
    cache off and frees what it holds). Returns the previous bound."""
    global _limit
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise TypeError(f"max_bytes: expected an int, got {max_bytes!r}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes: must be >= 0, got {max_bytes}")
    with _lock:
        previous, _limit = _limit, max_bytes
        if max_bytes == 0:
            _buffers.clear()
        else:
            _evict(_buffers)
    return previous


def get_buffer_cache() -> dict[str, int]:
    """The cache's bound, and the buffers and bytes it holds (idle or in use)."""
    with _lock:
        idle = [_buffers[index].nbytes for index in _idle_indices(_buffers)]
        return {"max_bytes": _limit, "buffers": len(_buffers),
                "bytes": sum(raw.nbytes for raw in _buffers),
                "idle_buffers": len(idle), "idle_bytes": sum(idle)}
