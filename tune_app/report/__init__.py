"""Reports of an experiment directory: CSV tables, Markdown and HTML, without Ray.

Example:
    >>> results, paths = write_reports("tune_results/quickstart", by=("loss", "scheduler"))  # doctest: +SKIP
    >>> print(summary_text("tune_results/quickstart", paths))  # doctest: +SKIP
"""

from __future__ import annotations

from .analysis import Analysis, analyze
from .compare import Comparison, comparison_tables, comparison_text, write_comparison
from .importance import Importance, parameter_importance
from .parameters import Parameter, read_parameters
from .results import TrialRecord, history_frame, load_history, load_results, read_spec, read_trials, results_frame
from .summary import summary_text
from .tables import best_trial_id, compare_values, leaderboard, numeric_effects, two_way
from .writer import FORMATS, preload, write_reports

__all__ = [
    "FORMATS",
    "Analysis",
    "Comparison",
    "Importance",
    "Parameter",
    "TrialRecord",
    "analyze",
    "best_trial_id",
    "compare_values",
    "comparison_tables",
    "comparison_text",
    "history_frame",
    "leaderboard",
    "load_history",
    "load_results",
    "numeric_effects",
    "parameter_importance",
    "preload",
    "read_parameters",
    "read_spec",
    "read_trials",
    "results_frame",
    "summary_text",
    "two_way",
    "write_comparison",
    "write_reports",
]
