"""Warm start: the finished trials of earlier experiments, as Optuna trials of the new search space.

Each earlier trial's flat config is replayed through the new space's define-by-run
function: a parameter the new space no longer searches, a value outside a new range or
a removed choice drops the trial (with its reason); an added choice is fine. Trials
that ran their whole budget become COMPLETE trials with their best value (what
``results.csv`` reports); those a trial scheduler stopped become PRUNED ones with their
per-epoch values, as a live search would have recorded them.

Example:
    >>> from tune_app.training import KNOBS
    >>> from tune_app.spec.space import parse_space
    >>> space = parse_space({"lr": {"loguniform": [1e-3, 1e-2]}}, KNOBS)
    >>> fit_to_space(space, {"lr": 0.5})[1]
    'lr is outside the new range [0.001, 0.01]'
    >>> fit_to_space(space, {"lr": 0.005, "amp": "bf16"})[1]
    'amp is no longer searched'
    >>> fit_to_space(space, {"lr": 0.005})[0].params
    {'lr': 0.005}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ..spec.space import SearchSpace
from .study import EPOCHS, RAY_TRIAL_ID, VALUE, WARM_START_FROM

if TYPE_CHECKING:
    from ..spec import ExperimentSpec


class _Misfit(Exception):
    """The replayed config does not fit the new space (the message says why)."""


class _Replay:
    """Answers define-by-run suggestions from a finished trial's values, recording their distributions."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values, self.distributions, self.params = values, {}, {}

    def _value(self, name: str) -> Any:
        if name not in self.values:
            raise _Misfit(f"it has no value for the new parameter {name}")
        return self.values[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        import optuna

        value = self._value(name)
        if value not in choices:
            raise _Misfit(f"{name} = {value} is no longer a choice")
        self.distributions[name] = optuna.distributions.CategoricalDistribution(list(choices))
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        import optuna

        value = self._value(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise _Misfit(f"{name} is outside the new range [{low:g}, {high:g}]")
        self.distributions[name] = optuna.distributions.FloatDistribution(low, high, log=log)
        self.params[name] = float(value)
        return float(value)

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        import optuna

        value = self._value(name)
        if not isinstance(value, (int, float)) or value != int(value) or not low <= value <= high:
            raise _Misfit(f"{name} is outside the new range [{low}, {high}]")
        self.distributions[name] = optuna.distributions.IntDistribution(low, high, log=log)
        self.params[name] = int(value)
        return int(value)


def fit_to_space(space: SearchSpace, flat: Mapping[str, Any]) -> tuple[_Replay | None, str]:
    """``(replay, "")`` when ``flat`` is a point of ``space`` (its ``params`` and ``distributions``),
    else ``(None, why not)``."""
    replay = _Replay(flat)
    try:
        space.define_by_run(replay)
    except _Misfit as exc:
        return None, str(exc)
    gone = [name for name in flat if name not in replay.distributions]
    if gone:
        return None, f"{gone[0]} is no longer searched"
    return replay, ""


@dataclass
class WarmStart:
    """The earlier trials a search starts from, and what was left out."""

    sources: list[str] = field(default_factory=list)
    trials: list[Any] = field(default_factory=list)  # optuna FrozenTrials
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> trials
    note: str = ""

    def record(self) -> dict[str, Any]:
        """What ``origin.json`` keeps of it."""
        return {"from": self.sources, "trials": len(self.trials), "dropped": self.dropped}

    def describe(self) -> str:
        """One line: how many trials from where, how many dropped and why."""
        text = f"warm start: {len(self.trials)} earlier trials from {', '.join(self.sources)}"
        if self.note:
            text += f" ({self.note})"
        if self.dropped:
            reasons = "; ".join(f"{n} because {why}" for why, n in sorted(self.dropped.items(), key=lambda i: -i[1]))
            text += f"; {sum(self.dropped.values())} dropped ({reasons})"
        return text


# Search algorithms that cannot start from earlier trials, and why.
NOT_WARM = {"grid": "grid search runs every point of its grid whatever came before",
            "pbt": "pbt draws its population at random and evolves it itself"}


def check_warm_start(search_alg: str, scheduler: str, option: str) -> None:
    """Raise SpecError when the search cannot use earlier trials (``option`` names the flag)."""
    why = NOT_WARM.get(search_alg) or (NOT_WARM["pbt"] if scheduler == "pbt" else None)
    if why:
        raise SpecError([(option, f"{why}; use a sampling search_alg (optuna, tpe, gp, cmaes, qmc or random) "
                                  f"with another trial scheduler")])


def warm_start_for(spec: ExperimentSpec, directories: Sequence[str]) -> WarmStart:
    """``tune-app search --warm-start DIR ...``: the earlier trials the spec's search starts from."""
    check_warm_start(spec.tune.search_alg, spec.tune.trial_scheduler, "--warm-start")
    warm = load_warm_start(directories, spec.space, spec.metric, spec.mode, spec.train.epochs)
    if spec.tune.search_alg == "random":
        warm.note = "random search records them in its study but does not learn from them"
    return warm


def load_warm_start(directories: Sequence[str], space: SearchSpace, metric: str, mode: str,
                    budget: int) -> WarmStart:
    """The finished trials of the experiments in ``directories`` that fit ``space``.

    Raises:
        SpecError: a directory is not an experiment, or optimized another objective.
    """
    import optuna

    from ..report.results import read_spec, read_trials
    from .location import Location

    warm = WarmStart()
    if not directories:
        return warm
    for text in directories:
        location = Location.open(text)  # raises for a directory that is not an experiment
        train = read_spec(location.local).get("train") or {}
        if (train.get("metric"), train.get("mode")) != (metric, mode):
            raise SpecError([("--warm-start", f"{text} optimized {train.get('mode')} {train.get('metric')}, "
                                              f"this search {mode} {metric}: their values do not compare")])
        warm.sources.append(str(location))
        for trial in read_trials(location.local):
            value = trial.best(metric, mode)
            if trial.status != "TERMINATED" or value is None:
                continue  # errored, diverged, out of memory, or never ran: nothing to learn from
            replay, why = fit_to_space(space, trial.config)
            if replay is None:
                warm.dropped[why] = warm.dropped.get(why, 0) + 1
                continue
            curve = {int(r["epoch"]): float(r[metric]) for r in trial.history
                     if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric]) and r.get("epoch")}
            epochs = max(curve, default=0)
            stopped = epochs < (train.get("epochs") or budget)
            attrs = {WARM_START_FROM: str(location), RAY_TRIAL_ID: trial.trial_id, EPOCHS: epochs}
            if stopped:
                attrs[VALUE] = value
            warm.trials.append(optuna.trial.create_trial(
                state=optuna.trial.TrialState.PRUNED if stopped else optuna.trial.TrialState.COMPLETE,
                value=None if stopped else value, params=replay.params, distributions=replay.distributions,
                user_attrs=attrs, intermediate_values=curve))
    return warm
