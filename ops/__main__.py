"""``python -m ops`` runs the ``sessionwatch`` command."""

import sys

from sessionwatch.ops.cli import main

sys.exit(main())
