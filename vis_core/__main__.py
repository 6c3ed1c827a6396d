"""``python -m vis_core``: the command-line interface (see :mod:`vis_core.cli`)."""

import sys

from .cli import main

sys.exit(main())
