"""``python -m tune_app`` is ``tune-app``."""

import sys

from .cli import main

sys.exit(main())
