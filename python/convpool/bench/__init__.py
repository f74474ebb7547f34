"""The benchmark suite of convpool (``convpool-bench``, ``python benchmarks/run.py``).

Times each benchmark case (pictures, LeNet, VGG and ResNet layers, 1x1, depthwise,
pooling), forward and forward+backward, against PyTorch (and OpenCV filter2D on a picture)
alternating in one process; checks outputs; reports medians, GFLOP/s or GB/s and the share
of this machine's FMA peak and streaming bandwidth, both measured at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None,
         judge: Callable[[dict], None] | None = None) -> int:
    """The ``convpool-bench`` command (see ``convpool-bench --help``).

    ``judge``, if given, marks the results against targets before they are printed.
    """
    # Imported here so that ``python -m convpool.bench.memory`` (the memory worker) does not
    # load the suite first.
    from .cli import main as cli_main

    return cli_main(argv, judge)
