"""`python -m ml_intern` runs the CLI."""

import sys

from ml_intern.cli import main

sys.exit(main())
