"""``python -m annscale.cli``: the ``annscale`` command."""

import sys

from . import main

sys.exit(main())
