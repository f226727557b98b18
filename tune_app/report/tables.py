"""Tables that rank and compare trials, from a results DataFrame.

Every statistic of a metric is taken over the trials that reported it and did not fail
(the leaderboard's trials); failed trials are counted separately.

Example:
    >>> from tune_app.report import load_results
    >>> results = load_results("tune_results/quickstart")  # doctest: +SKIP
    >>> compare_values(results, "loss", "val_acc", "max", budget=8)  # doctest: +SKIP
           trials    best    mean     std  median  mean_epochs  stopped_early  failed
    loss
    focal       5  0.9361  0.9012  0.0301  0.9100          6.4              2       0
    ce          3  0.9222  0.8123  0.1012  0.8400          4.0              2       1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..trial_result import FAILED_STATUSES
from .parameters import Parameter
from .results import RESTARTS

VALUE_COLUMNS = ["trials", "best", "mean", "std", "median", "mean_epochs", "stopped_early", "failed"]
EFFECT_COLUMNS = ["parameter", "scale", "trials", "spearman", "better", "top_trials", "best_low", "best_high",
                  "range_share"]


def leaderboard(results: pd.DataFrame, metric: str, mode: str, top: int | None = 10) -> pd.DataFrame:
    """Trials that reported the metric and did not fail, best first; ties keep trial order."""
    ranked = scored(results, metric).sort_values(metric, ascending=mode == "min", kind="stable")
    ranked = ranked.drop(columns=["error", RESTARTS], errors="ignore").reset_index(drop=True)
    ranked.index = ranked.index + 1
    ranked.index.name = "rank"
    return ranked if top is None else ranked.head(top)


def scored(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The trials every metric statistic is taken over: reported the metric, did not fail."""
    return results[results[metric].notna() & ~results["status"].isin(FAILED_STATUSES)]


def best_trial_id(results: pd.DataFrame, metric: str, mode: str) -> str | None:
    """The id of the best trial, or None when no trial reported the metric."""
    board = leaderboard(results, metric, mode, top=1)
    return None if board.empty else str(board["trial_id"].iloc[0])


def status_counts(results: pd.DataFrame) -> dict[str, int]:
    """Trials per status, e.g. ``{"TERMINATED": 7, "ERROR": 1}``."""
    return {str(k): int(v) for k, v in results["status"].value_counts().sort_index().items()}


def stopped_early(results: pd.DataFrame, budget: int | None) -> pd.Series:
    """Which trials the trial scheduler stopped: TERMINATED with fewer epochs than the budget."""
    if budget is None:
        return pd.Series(False, index=results.index)
    return (results["status"] == "TERMINATED") & (results["epochs"] < budget)


def compare_values(results: pd.DataFrame, param: str, metric: str, mode: str, budget: int | None) -> pd.DataFrame:
    """One row per value of ``param``, best first.

    Columns: ``trials`` (that reported the metric and did not fail), ``best``, ``mean``,
    ``std`` (sample, ddof=1), ``median``, ``mean_epochs`` (epochs survived), ``stopped_early``
    (by the trial scheduler), ``failed`` (ERROR trials with this value, not in the others).
    Sorted by best, then mean; values tried only by failed trials come last. Trials where
    the parameter does not exist (a conditional one) are left out.
    """
    ok = scored(results, metric)
    early = stopped_early(results, budget)
    index, rows = [], []  # lists, not a dict: True and 1 are equal keys
    for value in _values(results[param]):
        mine = equal_values(ok[param], value)
        metric_values = ok.loc[mine, metric].astype(float)
        index.append(value)
        rows.append({
            "trials": int(mine.sum()),
            "best": _best(metric_values, mode),
            "mean": metric_values.mean() if len(metric_values) else math.nan,
            "std": metric_values.std() if len(metric_values) > 1 else math.nan,
            "median": metric_values.median() if len(metric_values) else math.nan,
            "mean_epochs": ok.loc[mine, "epochs"].mean() if len(metric_values) else math.nan,
            "stopped_early": int((early[ok.index] & mine).sum()),
            "failed": int((equal_values(results[param], value) & results["status"].isin(FAILED_STATUSES)).sum()),
        })
    table = pd.DataFrame(rows, columns=VALUE_COLUMNS, index=pd.Index(index, dtype=object, name=param))
    return _rank(table, mode)


def two_way(results: pd.DataFrame, rows: str, columns: str, metric: str, mode: str
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean metric and trial count for each pair of values of two parameters.

    Rows and columns follow the order of each parameter's own comparison table (best
    first). A cell without trials has a NaN mean and a count of 0.
    """
    ok = scored(results, metric)
    row_values = list(compare_values(results, rows, metric, mode, None).index)
    column_values = list(compare_values(results, columns, metric, mode, None).index)
    means = pd.DataFrame(math.nan, index=pd.Index(row_values, dtype=object, name=rows),
                         columns=pd.Index(column_values, dtype=object, name=columns))
    counts = pd.DataFrame(0, index=means.index, columns=means.columns)
    for i, r in enumerate(row_values):
        for j, c in enumerate(column_values):
            cell = ok.loc[equal_values(ok[rows], r) & equal_values(ok[columns], c), metric].astype(float)
            counts.iloc[i, j] = len(cell)
            means.iloc[i, j] = cell.mean() if len(cell) else math.nan
    return means, counts


def _spearman(x: pd.Series, y: pd.Series) -> float:
    """Spearman's rho: Pearson's r of the average ranks over the complete pairs.

    The same number as ``x.corr(y, method="spearman")``, which imports scipy (a second
    of every final report).
    """
    pairs = pd.DataFrame({"x": x, "y": y}).dropna()
    return float(pairs["x"].rank().corr(pairs["y"].rank()))


def numeric_effects(results: pd.DataFrame, params: Sequence[Parameter], metric: str, mode: str) -> pd.DataFrame:
    """For each numeric parameter: Spearman's rank correlation with the metric, and the best range.

    ``spearman`` is over the trials that have the parameter (NaN below 3 trials or without
    variation); ``better`` says which end wins (``higher`` / ``lower``) given the mode.
    The best range (``best_low`` .. ``best_high``) is spanned by the top quarter of those
    trials (``top_trials`` = ceil(n / 4)); ``range_share`` is its width as a share of the
    searched range, measured in log space for log-scale parameters.
    """
    ok = scored(results, metric)
    rows = []
    for param in params:
        if not param.numeric:
            continue
        present = ok[ok[param.name].notna()]
        x = pd.to_numeric(present[param.name], errors="coerce").astype(float)
        y = present[metric].astype(float)
        rho = _spearman(x, y) if len(present) >= 3 else math.nan
        ranked = present.sort_values(metric, ascending=mode == "min", kind="stable")
        top = ranked.head(max(1, math.ceil(len(ranked) / 4)))[param.name].astype(float)
        low, high = _searched_range(param)
        rows.append({
            "parameter": param.name,
            "scale": "log" if param.log else "linear",
            "trials": len(present),
            "spearman": rho,
            "better": _better(rho, mode),
            "top_trials": len(top) if len(present) else 0,
            "best_low": top.min() if len(present) else math.nan,
            "best_high": top.max() if len(present) else math.nan,
            "range_share": _share(top.min(), top.max(), low, high, param.log) if len(present) else math.nan,
        })
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


# ----------------------------------------------------------------- helpers
def _values(column: pd.Series) -> list[Any]:
    """Distinct present values in order of first appearance (mixed types allowed: no sorting)."""
    seen: dict[Any, None] = {}
    for value in column.tolist():
        if not (value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA):
            seen.setdefault(_key(value), value)
    return list(seen.values())


def _key(value: Any) -> tuple[str, Any]:
    # True == 1 in Python; keep a boolean choice apart from the number 1.
    return ("bool", value) if isinstance(value, bool) else ("value", value)


def equal_values(column: pd.Series, value: Any) -> pd.Series:
    """Which entries of ``column`` are ``value`` (a boolean True is not the number 1; NaN never matches)."""
    return column.map(lambda v: _key(v) == _key(value) if not (isinstance(v, float) and math.isnan(v)) else False
                      ).astype(bool)


def _best(values: pd.Series, mode: str) -> float:
    if values.empty:
        return math.nan
    return float(values.max() if mode == "max" else values.min())


def _rank(table: pd.DataFrame, mode: str) -> pd.DataFrame:
    sign = -1.0 if mode == "max" else 1.0
    order = sorted(range(len(table)), key=lambda i: (
        math.isnan(table["best"].iloc[i]),
        sign * table["best"].iloc[i] if not math.isnan(table["best"].iloc[i]) else 0.0,
        sign * table["mean"].iloc[i] if not math.isnan(table["mean"].iloc[i]) else 0.0,
        i,
    ))
    return table.iloc[order]


def _better(rho: float, mode: str) -> str:
    if rho is None or math.isnan(rho) or rho == 0:
        return ""
    return "higher" if (rho > 0) == (mode == "max") else "lower"


def _searched_range(param: Parameter) -> tuple[float | None, float | None]:
    if param.kind == "categorical":
        numbers = [float(c) for c in param.choices]
        return (min(numbers), max(numbers)) if numbers else (None, None)
    return param.low, param.high


def _share(lo: float, hi: float, low: float | None, high: float | None, log: bool) -> float:
    if low is None or high is None or high <= low:
        return math.nan
    if log:
        if min(lo, hi, low, high) <= 0:
            return math.nan
        return (math.log(hi) - math.log(lo)) / (math.log(high) - math.log(low))
    return (hi - lo) / (high - low)
