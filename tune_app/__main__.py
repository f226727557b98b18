"""``python -m tune_app`` is ``tune-app``."""

from .cli import run

run()
