"""``python -m ops`` runs the ``sessionwatch`` command."""

import sys

from ops.cli import main

sys.exit(main())
