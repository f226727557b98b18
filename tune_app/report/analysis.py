"""Everything the reports say about one experiment, computed once from its directory.

``report.md``, ``report.html`` and the terminal summary all render one
:class:`Analysis`, so they never disagree.

Example:
    >>> analysis = analyze("tune_results/quickstart", by=("loss",))  # doctest: +SKIP
    >>> analysis.comparisons["loss"]  # doctest: +SKIP
    >>> analysis.importance.importances  # doctest: +SKIP
    {'lr': 0.71, 'loss': 0.18, 'amp': 0.11}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .confirmation import Confirmation, read_confirmation
from .diagnostics import stalled_trials
from .equal_budget import Separation, equal_budget, metric_curves, separation
from .importance import Importance, parameter_importance
from .microbatches import micro_batched_trials
from .parameters import Parameter, read_parameters
from .restarts import restarted_trials
from .results import RESTARTS, TrialRecord, history_frame, read_data_info, read_spec, read_trials, results_frame
from .tables import compare_values, leaderboard, numeric_effects, status_counts, stopped_early, two_way
from .timeline import timeline, wall_seconds

FIXED_COLUMNS = ("trial_id", "status", "epochs", "time_total_s", RESTARTS, "error")


@dataclass
class Overview:
    """The header of a report: how many trials, how much compute, the best result."""

    trials: int
    statuses: dict[str, int]
    stopped_early: int
    budget: int | None  # epochs a trial may run: train.epochs, else the most any trial ran
    budget_inferred: bool
    trial_epochs: int  # epochs run, summed over trials
    trial_seconds: float  # time_total_s summed over trials
    timed_trials: int  # trials with a time_total_s
    wall_seconds: float | None
    best_value: float | None
    best_trial: str | None

    @property
    def mean_trial_seconds(self) -> float | None:
        return self.trial_seconds / self.timed_trials if self.timed_trials else None


@dataclass
class Analysis:
    """The tables and facts of one experiment (see :func:`analyze`)."""

    experiment_dir: Path
    spec: dict[str, Any]
    metric: str
    mode: str
    trials: list[TrialRecord]
    results: pd.DataFrame
    events: pd.DataFrame
    parameters: list[Parameter]
    overview: Overview
    comparisons: dict[str, pd.DataFrame]  # compare_values joined with the equal-budget columns; attrs["epoch"]
    effects: pd.DataFrame
    importance: Importance | None  # None: not computed (an intermediate report)
    two_way: list[tuple[str, str, pd.DataFrame, pd.DataFrame]] = field(default_factory=list)
    colour_by: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # data.json: how the data was read, images skipped
    stalled: pd.DataFrame = field(default_factory=pd.DataFrame)  # learned, yet scored at chance
    separations: dict[str, Separation] = field(default_factory=dict)  # the best two values of each table
    confirmation: Confirmation | None = None  # tune-app confirm's verdict, when it ran
    micro_batched: pd.DataFrame = field(default_factory=pd.DataFrame)  # out of memory, went on in micro-batches
    restarted: pd.DataFrame = field(default_factory=pd.DataFrame)  # Ray restarted them after a failure

    @property
    def chosen_trial(self) -> str | None:
        """The trial whose config best_config.yaml holds: the confirmed winner, else the best trial."""
        confirmed = self.confirmation.winner if self.confirmation is not None else None
        return confirmed or self.overview.best_trial

    @property
    def history(self) -> pd.DataFrame:
        return history_frame(self.trials)

    def leaderboard(self, top: int | None = 10) -> pd.DataFrame:
        return leaderboard(self.results, self.metric, self.mode, top=top)

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)


def analyze(experiment_dir: str | Path, by: Sequence[str] = (), importance: bool = True,
            trials: list[TrialRecord] | None = None) -> Analysis:
    """Read the experiment directory and compute every table of the reports.

    Args:
        experiment_dir: ``<storage>/<name>``.
        by: parameters to cross: ``("loss", "scheduler")`` adds a two-way table of ``by[0]``
            against each of the others; ``by[0]`` also colours the learning curves.
        importance: compute fANOVA importance (about a second at 100 trials).
        trials: already read trial records (saves reading the directory twice).

    Raises:
        ValueError: a ``by`` name that is not a parameter with a per-value table.
    """
    experiment_dir = Path(experiment_dir)
    spec = read_spec(experiment_dir)
    train = spec.get("train") or {}
    metric, mode = train.get("metric", "val_acc"), train.get("mode", "max")
    trials = read_trials(experiment_dir) if trials is None else trials
    results = results_frame(trials, metric, mode)
    names = [c for c in results.columns if c not in FIXED_COLUMNS and c != metric]
    params = read_parameters(experiment_dir, results, names)
    discrete = [p.name for p in params if p.discrete]
    _check_by(by, names, discrete)
    budget, inferred = _budget(train, results)
    events = timeline(trials, metric)
    data = read_data_info(experiment_dir)
    curves = metric_curves(trials, metric)
    comparisons = {name: _comparison(results, curves, name, metric, mode, budget) for name in discrete}
    analysis = Analysis(
        experiment_dir=experiment_dir, spec=spec, metric=metric, mode=mode, trials=trials, results=results,
        events=events, parameters=params, overview=_overview(results, events, metric, mode, budget, inferred),
        comparisons=comparisons,
        effects=numeric_effects(results, params, metric, mode),
        importance=parameter_importance(results, params, metric, mode) if importance else None,
        two_way=[(by[0], other, *two_way(results, by[0], other, metric, mode)) for other in by[1:]],
        colour_by=by[0] if by else _default_colour_by(params, discrete),
        data=data,
        stalled=stalled_trials(trials, spec.get("task", "classification"), metric, len(data.get("class_names") or [])),
        separations={name: found for name, table in comparisons.items()
                     if (found := separation(results, curves, name, metric, mode, _told(table), table.attrs["epoch"]))},
        confirmation=read_confirmation(experiment_dir),
        micro_batched=micro_batched_trials(trials),
        restarted=restarted_trials(trials),
    )
    return analysis


def _comparison(results: pd.DataFrame, curves: dict, name: str, metric: str, mode: str, budget: int | None
                ) -> pd.DataFrame:
    """compare_values' table with the equal-budget columns beside it; ``attrs`` holds epoch N and the budget."""
    table = compare_values(results, name, metric, mode, budget)
    columns, epoch = equal_budget(results, curves, name, metric, budget, list(table.index))
    joined = pd.concat([table, columns.set_axis(table.index)], axis=1)
    joined.attrs.update(epoch=epoch, budget=budget)
    return joined


def _told(table: pd.DataFrame) -> list[Any]:
    """The values of a comparison that scored trials tried (the separation is about them)."""
    return [v for v, n in zip(table.index, table["trials"]) if n > 0]


def _default_colour_by(params: Sequence[Parameter], discrete: list[str]) -> str | None:
    """The comparison shown first: a choice among named strategies (loss, scheduler) over a choice among numbers."""
    categorical = [p for p in params if p.kind == "categorical"]
    named = [p for p in categorical if not p.numeric]
    candidates = named or categorical
    return candidates[0].name if candidates else (discrete[0] if discrete else None)


def _check_by(by: Sequence[str], names: list[str], discrete: list[str]) -> None:
    for name in by:
        if name not in names:
            raise ValueError(f"--by {name}: not a searched parameter of this experiment; "
                             f"searched: {', '.join(names) or 'none'}")
        if name not in discrete:
            raise ValueError(f"--by {name}: takes too many values for a table; "
                             f"choose among {', '.join(discrete) or 'none'}")


def _budget(train: dict[str, Any], results: pd.DataFrame) -> tuple[int | None, bool]:
    epochs = train.get("epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        return epochs, False
    ran = results["epochs"].max() if len(results) else 0
    return (int(ran), True) if ran and ran > 0 else (None, True)


def _overview(results: pd.DataFrame, events: pd.DataFrame, metric: str, mode: str, budget: int | None,
              inferred: bool) -> Overview:
    board = leaderboard(results, metric, mode, top=1)
    seconds = results["time_total_s"].dropna().astype(float)
    return Overview(
        trials=len(results), statuses=status_counts(results),
        stopped_early=int(stopped_early(results, budget).sum()), budget=budget, budget_inferred=inferred,
        trial_epochs=int(results["epochs"].sum()), trial_seconds=float(seconds.sum()), timed_trials=len(seconds),
        wall_seconds=wall_seconds(events) if not events.empty else None,
        best_value=None if board.empty else float(board[metric].iloc[0]),
        best_trial=None if board.empty else str(board["trial_id"].iloc[0]),
    )


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
