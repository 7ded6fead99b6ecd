"""`python -m pingmon`: the same command line as the `pingmon` script."""

import sys

from pingmon.cli import main

sys.exit(main())
