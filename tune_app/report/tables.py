"""Tables that rank and compare trials, from a results DataFrame."""

from __future__ import annotations

import pandas as pd


def leaderboard(results: pd.DataFrame, metric: str, mode: str, top: int | None = 10) -> pd.DataFrame:
    """Trials that reported the metric and did not fail, best first; ties keep trial order."""
    ranked = results[results[metric].notna() & (results["status"] != "ERROR")].sort_values(metric, ascending=mode == "min", kind="stable")
    ranked = ranked.drop(columns=["error"]).reset_index(drop=True)
    ranked.index = ranked.index + 1
    ranked.index.name = "rank"
    return ranked if top is None else ranked.head(top)


def best_trial_id(results: pd.DataFrame, metric: str, mode: str) -> str | None:
    """The id of the best trial, or None when no trial reported the metric."""
    board = leaderboard(results, metric, mode, top=1)
    return None if board.empty else str(board["trial_id"].iloc[0])


def status_counts(results: pd.DataFrame) -> dict[str, int]:
    """Trials per status, e.g. ``{"TERMINATED": 7, "ERROR": 1}``."""
    return {str(k): int(v) for k, v in results["status"].value_counts().sort_index().items()}
