"""``python -m vis_core``: the command-line interface (see :mod:`vis_core.cli`)."""

import sys

from .cli import main
from .memory import keep_freed_memory

keep_freed_memory()  # this process is ours; see vis_core.memory
sys.exit(main())
