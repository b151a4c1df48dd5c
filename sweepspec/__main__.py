"""``python -m sweepspec``."""

import sys

from sweepspec.cli import main

sys.exit(main())
