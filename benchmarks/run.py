#!/usr/bin/env python
"""convpool's benchmark suite from a checkout: ``python benchmarks/run.py --help``.

The suite itself is :mod:`convpool.bench`, so that a pip install runs the same thing as
``convpool-bench``; this file only calls it.
"""

import sys

from convpool.bench import main

if __name__ == "__main__":
    sys.exit(main())
