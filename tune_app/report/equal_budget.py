"""Per-value comparisons at an equal budget, and whether the best two values are told apart.

Under ASHA most trials stop after their first rung, so a value's plain mean mixes one-epoch
and full-budget results: a choice that learns slowly (a frozen backbone, warmup, focal)
looks bad because early stopping stopped it. Here every compared trial is judged at the
same epoch instead:

- ``mean_at_epoch``: the mean of the metric at epoch N, the last epoch that every compared
  trial (all values of the parameter; scored trials only) reached;
- ``full_trials`` / ``full_mean``: the same at the last epoch of the budget, over the trials
  that ran all of it;
- ``stopped_at``: the share of the value's trials the trial scheduler stopped at each epoch
  (its rungs), so a value confounded with early stopping shows.

Example:
    >>> results = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": ["TERMINATED"] * 3,
    ...                         "epochs": [1, 3, 3], "loss": ["ce", "ce", "focal"], "acc": [0.5, 0.9, 0.8]})
    >>> curves = {"a": {1: 0.5}, "b": {1: 0.4, 2: 0.8, 3: 0.9}, "c": {1: 0.6, 2: 0.7, 3: 0.8}}
    >>> table, epoch = equal_budget(results, curves, "loss", "acc", budget=3, order=["ce", "focal"])
    >>> epoch, table["mean_at_epoch"].tolist()
    (1, [0.45, 0.6])
    >>> table.loc["ce", "stopped_at"]
    'epoch 1: 50%'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from ..trial_result import epoch_of
from .intervals import LEVEL, NOT_DISTINGUISHABLE, bootstrap_difference, excludes_zero
from .results import TrialRecord
from .tables import equal_values, scored, stopped_early

EQUAL_BUDGET_COLUMNS = ["mean_at_epoch", "full_trials", "full_mean", "stopped_at"]

Curves = Mapping[str, Mapping[int, float]]  # trial id -> epoch -> metric


def metric_curves(trials: Sequence[TrialRecord], metric: str) -> dict[str, dict[int, float]]:
    """Each trial's metric per epoch (the last report of an epoch a restart repeated)."""
    curves = {}
    for trial in trials:
        curves[trial.trial_id] = {int(epoch_of(r)): float(r[metric]) for r in trial.history
                                  if epoch_of(r) is not None and _number(r.get(metric))}
    return curves


def equal_budget(results: pd.DataFrame, curves: Curves, param: str, metric: str, budget: int | None,
                 order: Sequence[Any]) -> tuple[pd.DataFrame, int | None]:
    """The equal-budget columns for the values ``order`` of ``param`` (rows in that order), and epoch N.

    N is None when no scored trial has the parameter.
    """
    ok = scored(results, metric)
    ok = ok[ok[param].notna()]
    epoch = int(ok["epochs"].min()) if len(ok) and ok["epochs"].min() > 0 else None
    early = stopped_early(ok, budget)
    rows = []
    for value in order:
        mine = ok[equal_values(ok[param], value)]
        full = mine[mine["epochs"] >= budget] if budget is not None else mine.iloc[:0]
        stops = mine.loc[early[mine.index], "epochs"].value_counts().sort_index()
        rows.append({
            "mean_at_epoch": _mean(at_epoch(curves, mine["trial_id"], epoch)),
            "full_trials": len(full),
            "full_mean": _mean(at_epoch(curves, full["trial_id"], budget)),
            "stopped_at": ", ".join(f"epoch {int(e)}: {n / len(mine):.0%}" for e, n in stops.items()),
        })
    table = pd.DataFrame(rows, columns=EQUAL_BUDGET_COLUMNS, index=pd.Index(list(order), dtype=object, name=param))
    return table, epoch


def at_epoch(curves: Curves, trial_ids: Sequence[str], epoch: int | None) -> list[float]:
    """The metric of each trial at ``epoch``, for the trials that reported it then."""
    if epoch is None:
        return []
    return [curves[t][epoch] for t in trial_ids if t in curves and epoch in curves[t]]


@dataclass(frozen=True)
class Separation:
    """The best two values of a parameter at epoch N: the difference of their means and its interval."""

    parameter: str
    first: Any  # ranked first in the comparison table
    second: Any
    epoch: int
    first_values: tuple[float, ...]
    second_values: tuple[float, ...]
    mode: str
    level: float = LEVEL

    @property
    def difference(self) -> float:
        return _mean(self.first_values) - _mean(self.second_values)

    @cached_property  # the bootstrap runs once; winner, verdict and sentence all read it
    def interval(self) -> tuple[float, float]:
        return bootstrap_difference(self.first_values, self.second_values, self.level)

    @property
    def winner(self) -> Any | None:
        """The value that is better at epoch N beyond doubt at this level; None when not told apart."""
        low, high = self.interval
        if not excludes_zero(low, high):
            return None
        return self.first if (low > 0) == (self.mode == "max") else self.second

    def verdict(self, show: Any = str) -> str:
        low, _high = self.interval
        if math.isnan(low):
            return (f"{NOT_DISTINGUISHABLE} (a value needs at least 2 trials that reached epoch {self.epoch}; "
                    f"here {len(self.first_values)} and {len(self.second_values)})")
        if self.winner is None:
            return NOT_DISTINGUISHABLE
        return f"{show(self.winner)} is better at epoch {self.epoch}"

    def sentence(self, show: Any = str) -> str:
        """One line for a report, e.g. "focal − ce at epoch 2: +0.0412, 90% interval [...]: not distinguishable..."."""
        low, high = self.interval
        bounds = "" if math.isnan(low) else f", {self.level:.0%} bootstrap interval [{low:+.4f}, {high:+.4f}]"
        difference = 0.0 if abs(self.difference) < 5e-5 else self.difference  # no "-0.0000"
        return (f"{show(self.first)} − {show(self.second)}, mean at epoch {self.epoch}: {difference:+.4f}"
                f"{bounds} over {len(self.first_values)} and {len(self.second_values)} trials: "
                f"{self.verdict(show)}.")


def separation(results: pd.DataFrame, curves: Curves, param: str, metric: str, mode: str,
               order: Sequence[Any], epoch: int | None) -> Separation | None:
    """The :class:`Separation` of the first two values of ``order``; None with fewer than two values."""
    if len(order) < 2 or epoch is None:
        return None
    ok = scored(results, metric)
    values = [tuple(at_epoch(curves, ok.loc[equal_values(ok[param], v), "trial_id"], epoch)) for v in order[:2]]
    return Separation(param, order[0], order[1], epoch, values[0], values[1], mode)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if len(values) else math.nan


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
