"""``python -m portal`` is the ``portal`` command."""

import sys

from portal.cli import main

sys.exit(main())
