#!/usr/bin/env python
"""convpool's benchmark suite from a checkout, judged against the project's targets.

``python benchmarks/run.py --help``. The suite itself is :mod:`convpool.bench` (what
``convpool-bench`` runs after a pip install); this file adds the targets of
``benchmarks/targets.py`` to its report.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convpool.bench import main  # noqa: E402
from targets import judge  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(judge=judge))
