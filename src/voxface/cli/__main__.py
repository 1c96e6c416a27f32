"""``python -m voxface.cli`` (e.g. under torchrun)."""

import sys

from .main import main

sys.exit(main())
