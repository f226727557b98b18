"""When each epoch result arrived, and what compute it cost, from Ray's result lines.

Ray stamps every result line with ``timestamp`` (wall clock, whole seconds),
``time_total_s`` (seconds since the trial started, summed over restores) and
``time_since_restore`` / ``iterations_since_restore`` (reset when a trial is restored,
e.g. by PBT or ``tune-app resume``). Here:

- a trial session starts at ``timestamp - time_since_restore`` of its first line, and
  each line happened at that start plus its ``time_since_restore`` (sub-second
  precision within a session; the wall clock across restores);
- an epoch cost the growth of ``time_total_s`` since the trial's previous line, so a
  trial's epochs add up to its last ``time_total_s`` (the ``results.csv`` column);
- the experiment starts when its first trial started; wall time runs from there to the
  last result line.

Example:
    >>> from tune_app.report.results import read_trials
    >>> events = timeline(read_trials("tune_results/quickstart"), "val_acc")  # doctest: +SKIP
    >>> events[["trial_id", "epoch", "time", "seconds", "val_acc"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..trial_result import FAILED_STATUSES, epoch_of
from .results import TrialRecord

COLUMNS = ["trial_id", "status", "epoch", "time", "seconds", "value"]


def timeline(trials: Sequence[TrialRecord], metric: str) -> pd.DataFrame:
    """One row per result line, in the order results arrived.

    Columns: ``trial_id``, ``status`` (the trial's final status), ``epoch``, ``time``
    (seconds since the experiment started; NaN without timestamps), ``seconds`` (the
    epoch's compute), and the metric's value under its own name (NaN when missing or
    not finite). Lines without a timestamp keep trial order, after the timed ones.
    """
    rows = []
    for order, trial in enumerate(trials):
        anchor: float | None = None
        previous_total = 0.0
        for line in trial.history:
            since = _number(line.get("time_since_restore"), _number(line.get("time_total_s")))
            stamp = _number(line.get("timestamp"))
            restored = line.get("iterations_since_restore") == 1  # a new session: started or restored
            if stamp is not None and since is not None and (anchor is None or restored):
                anchor = stamp - since
            total = _number(line.get("time_total_s"))
            seconds = max(total - previous_total, 0.0) if total is not None else math.nan
            previous_total = total if total is not None else previous_total
            value = _number(line.get(metric))
            rows.append({
                "trial_id": trial.trial_id, "status": trial.status,
                "epoch": epoch_of(line),
                "time": anchor + since if anchor is not None and since is not None else math.nan,
                "seconds": seconds, metric: math.nan if value is None else value, "_order": order,
            })
    frame = pd.DataFrame(rows, columns=[*COLUMNS[:-1], metric, "_order"])
    if frame.empty:
        return frame.drop(columns="_order")
    start = trial_starts(frame).min()
    frame["time"] = frame["time"] - start
    frame = frame.sort_values(["time", "_order", "epoch"], kind="stable", na_position="last")
    return frame.drop(columns="_order").reset_index(drop=True)


def trial_starts(events: pd.DataFrame) -> pd.Series:
    """When each trial started (the time of its first line minus that line's compute)."""
    first = events.dropna(subset=["time"]).groupby("trial_id", sort=False).first()
    return first["time"] - first["seconds"]


def wall_seconds(events: pd.DataFrame) -> float | None:
    """Seconds from the first trial's start to the last result, or None without timestamps."""
    timed = events.dropna(subset=["time"])
    if timed.empty:
        return None
    return float(timed["time"].max() - trial_starts(timed).min())


def best_so_far(events: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Events in arrival order with the cumulative compute and the best value seen so far.

    Adds ``trial_epochs`` (results so far, every trial's counted), ``trial_seconds`` (their
    compute) and ``best`` (the best metric so far among trials that did not fail: a failed
    trial's numbers do not count as reached, the same rule as the leaderboard's).
    """
    frame = events.copy()
    frame["trial_epochs"] = range(1, len(frame) + 1)
    frame["trial_seconds"] = frame["seconds"].fillna(0.0).cumsum()
    counted = frame[metric].where(~frame["status"].isin(FAILED_STATUSES))
    running = counted.cummax() if mode == "max" else counted.cummin()
    frame["best"] = running.ffill()  # cummax leaves NaN where the value is missing
    return frame


def _number(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default
