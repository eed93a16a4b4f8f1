"""``python -m vqgen`` runs the ``vqgen`` command."""

import sys

from .cli import main

sys.exit(main())
