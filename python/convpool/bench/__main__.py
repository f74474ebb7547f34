"""``python -m convpool.bench``."""

import sys

from . import main

sys.exit(main())
