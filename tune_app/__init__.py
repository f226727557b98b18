"""tune-app: hyperparameter search for fine-tuning PyTorch image models on Ray Tune.

The Python API of the reports, e.g. ``tune_app.load_results("tune_results/quickstart")``,
is imported on first use so that ``tune-app`` starts without pandas.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_history", "load_results"]


def __getattr__(name: str) -> Any:
    if name in ("load_results", "load_history"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module 'tune_app' has no attribute {name!r}")
