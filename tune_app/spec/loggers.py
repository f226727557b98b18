"""Per-trial tracking in the tools users already run: the names ``tune.loggers`` accepts, and their extras.

No Ray and no tracking package is imported here: the spec layer checks the names, and the
command line checks, before anything starts, that each chosen tracker's package is
installed. The trackers themselves are Ray Tune callbacks (:mod:`tune_app.sweep.tracking`).

Example:
    >>> sorted(LOGGERS)
    ['mlflow', 'tensorboard', 'wandb']
    >>> missing_packages(["mlflow"]) in ([], [("tune.loggers", MISSING.format(name="mlflow", package="mlflow"))])
    True
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

# logger name (also the name of tune-app's extra that installs it) -> the package it writes with.
LOGGERS = {"mlflow": "mlflow", "tensorboard": "tensorboardX", "wandb": "wandb"}
MISSING = "{name} needs the {package} package, which is not installed: pip install 'tune-app[{name}]'"


def missing_packages(names: Sequence[str]) -> list[tuple[str, str]]:
    """A spec problem per chosen logger whose package is not installed."""
    return [("tune.loggers", MISSING.format(name=name, package=LOGGERS[name])) for name in names
            if importlib.util.find_spec(LOGGERS[name]) is None]
