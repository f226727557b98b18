"""Parameter importance by Optuna's fANOVA, on a study rebuilt from the results.

Each trial that reported the metric and did not fail becomes a COMPLETE Optuna trial
(``optuna.trial.create_trial``) whose value is its best metric, including trials the
trial scheduler stopped early (at the best value they reached, as on the leaderboard).
Distributions come from ``parameters.json`` (or are inferred). Optuna assesses only the
parameters present in every trial, so conditional ones (``loss.gamma``) are left out;
:class:`Importance` says which, and why.

Example:
    >>> from tune_app.report import load_results
    >>> from tune_app.report.parameters import infer_parameters
    >>> results = load_results("tune_results/quickstart")  # doctest: +SKIP
    >>> params = infer_parameters(results, ["lr", "loss"])  # doctest: +SKIP
    >>> parameter_importance(results, params, "val_acc", "max").importances  # doctest: +SKIP
    {'lr': 0.83, 'loss': 0.17}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .parameters import Parameter
from .tables import scored

MIN_TRIALS = 5  # below this a random forest over the trials says nothing
# fANOVA's cost grows faster than its trees' leaves (6 minutes at 10,000 trials here, 3 s at
# 1,000): beyond this many trials it runs on a seeded random sample of them.
MAX_TRIALS = 1000
SEED = 0  # importance must not change between two reports of the same results


@dataclass
class Importance:
    """What :func:`parameter_importance` found.

    Attributes:
        importances: parameter -> share of the metric's variance, most important first,
            summing to 1 (empty when not computed).
        left_out: parameter -> why it was not assessed.
        trials: how many trials the study was rebuilt from.
        sampled_from: the trials that reported the metric, when ``trials`` is a random sample of them.
        note: why nothing was computed, or None.
    """

    importances: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    trials: int = 0
    note: str | None = None
    sampled_from: int | None = None


def parameter_importance(results: pd.DataFrame, params: Sequence[Parameter], metric: str, mode: str,
                         min_trials: int = MIN_TRIALS) -> Importance:
    """fANOVA importance (``optuna.importance.FanovaImportanceEvaluator``, seeded) of ``params``."""
    ok = scored(results, metric)
    if not params:
        return Importance(trials=len(ok), note="nothing was searched")
    if len(ok) < min_trials:
        return Importance(trials=len(ok), note=f"too few trials reported `{metric}` to assess importance "
                                               f"({len(ok)}, at least {min_trials} needed)")
    if ok[metric].nunique() < 2:
        return Importance(trials=len(ok), note=f"`{metric}` is the same in every trial: nothing to attribute")
    import optuna  # imported here: only this part of the reports needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions, left_out = {}, {}
    for param in params:
        dist, why = _distribution(param, ok[param.name])
        if dist is None:
            left_out[param.name] = why
        else:
            distributions[param.name] = dist
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    sampled_from = len(ok) if len(ok) > MAX_TRIALS else None
    if sampled_from:
        ok = ok.sample(MAX_TRIALS, random_state=SEED).sort_index()
    for _, row in ok.iterrows():
        values = {name: _internal(row[name], dist) for name, dist in distributions.items() if _present(row[name])}
        study.add_trial(optuna.trial.create_trial(
            value=float(row[metric]), params=values, distributions={n: distributions[n] for n in values}))
    for name in distributions:
        missing = int((~ok[name].map(_present)).sum())
        if missing:
            left_out[name] = f"conditional: absent from {missing} of {len(ok)} trials"
    if len(left_out) == len(params):
        return Importance(left_out=left_out, trials=len(ok), note="no parameter is present in every trial")
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=SEED))
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        return Importance(left_out=left_out, trials=len(ok), note=f"Optuna could not assess importance: {exc}")
    importances = {name: float(v) for name, v in found.items()}
    for name in distributions:
        if name not in importances and name not in left_out:
            left_out[name] = "left out by Optuna"
    if not importances or any(math.isnan(v) for v in importances.values()):
        return Importance(left_out=left_out, trials=len(ok), note="Optuna found no variance to attribute")
    order = [p.name for p in params]
    left_out = {name: left_out[name] for name in order if name in left_out}
    return Importance(importances, left_out, len(ok), sampled_from=sampled_from)


def _distribution(param: Parameter, column: pd.Series) -> tuple[Any, str]:
    """Optuna's distribution for ``param``, or None and the reason it cannot have one."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    present = [v for v in column.tolist() if _present(v)]
    if not present:
        return None, "in no trial"
    if param.kind == "categorical":
        choices = list(param.choices) or list(dict.fromkeys(present))
        choices += [v for v in dict.fromkeys(present) if v not in choices]  # a value the file did not list
        try:
            return CategoricalDistribution([_scalar(c) for c in choices]), ""
        except (TypeError, ValueError) as exc:
            return None, f"its choices cannot be used by Optuna ({exc})"
    numbers = [float(v) for v in present]
    declared = [b for b in (param.low, param.high) if b is not None]
    low, high = min([*declared, *numbers]), max([*declared, *numbers])  # widen to what trials used
    if low == high:
        return None, "took a single value"
    if param.kind == "int":
        return IntDistribution(int(low), int(high), log=param.log and low >= 1), ""
    return FloatDistribution(low, high, log=param.log and low > 0), ""


def _internal(value: Any, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, IntDistribution):
        return int(value)
    if isinstance(dist, CategoricalDistribution):
        scalar = _scalar(value)
        # results hold 2.0 for a choice written 2 (a column with gaps is float): find the listed one.
        return next((c for c in dist.choices if c == scalar and type(c) is type(scalar)),
                    next((c for c in dist.choices if c == scalar), scalar))
    return float(value)


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _present(value: Any) -> bool:
    return not (value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA)
