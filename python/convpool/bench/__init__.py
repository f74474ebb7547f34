"""The benchmark suite of convpool (``convpool-bench``, ``python benchmarks/run.py``).

Times each case of the performance issue, forward and forward+backward, against PyTorch
(and OpenCV filter2D on a picture) alternating in one process; checks outputs; reports
medians, GFLOP/s or GB/s, shares of the machine's peaks and the issue's targets.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``convpool-bench`` command (see ``convpool-bench --help``)."""
    # Imported here so that ``python -m convpool.bench.memory`` (the memory worker) does not
    # load the suite first.
    from .cli import main as cli_main

    return cli_main(argv)
