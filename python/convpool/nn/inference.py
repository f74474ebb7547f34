"""Inference mode: forward passes that keep nothing for a backward pass.

Inside ``with inference_mode():`` layers keep no inputs, outputs, masks or pooling
indices, so each feature map is freed as soon as the next layer has read it, and a
``Sequential`` folds each batch norm in evaluation mode into the convolution before it.
A backward pass after such a forward raises. The mode is per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


def is_inference_mode() -> bool:
    """Whether the calling thread is inside :func:`inference_mode`."""
    return getattr(_state, "depth", 0) > 0


@contextmanager
def inference_mode() -> Iterator[None]:
    """Run the block's forward passes without keeping anything for backward."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
