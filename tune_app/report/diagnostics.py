"""Trials whose numbers contradict each other: the training loss fell, the validation metric did not move.

Such a trial learned something its evaluation does not show. The usual cause is
BatchNorm running statistics that had not caught up with the weights (``train.precise_bn``
recomputes them); a validation split unlike the training one is the other.

Example:
    >>> from tune_app.report.results import TrialRecord
    >>> history = [{"epoch": 1, "train_loss": 0.48, "val_dice": 0.0}, {"epoch": 3, "train_loss": 0.18, "val_dice": 0.0}]
    >>> stalled(TrialRecord("t1", "TERMINATED", {}, history), "val_dice", chance=0.0)
    (0.48, 0.18, 0.0)
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .results import TrialRecord

FELL_TO = 0.7  # the last training loss at most this share of the first
MARGIN = 0.02  # "at chance": the best value within this of the chance level
CAUSE = ("BatchNorm running statistics that had not caught up with the weights (train.precise_bn: auto or a "
         "number of batches recomputes them before each evaluation), or a validation split unlike the training one")


def chance_level(task: str, metric: str, classes: int | None) -> float | None:
    """The metric of a model that learned nothing: 1/classes for accuracy and F1, 0 for Dice and IoU."""
    if metric in ("val_dice", "val_iou"):
        return 0.0
    if metric in ("val_acc", "val_f1") and classes:
        return 1.0 / classes
    return None  # pixel accuracy's chance is the background's share, which the report does not know


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def stalled(trial: TrialRecord, metric: str, chance: float) -> tuple[float, float, float] | None:
    """(first, last training loss, best metric) when the loss fell and the metric stayed at ``chance``."""
    losses = [v for r in trial.history if (v := _number(r.get("train_loss"))) is not None]
    values = [v for r in trial.history if (v := _number(r.get(metric))) is not None]
    if len(losses) < 2 or not values or losses[-1] > FELL_TO * losses[0]:
        return None
    best = max(values)
    return (losses[0], losses[-1], best) if best <= chance + MARGIN else None


def stalled_trials(trials: list[TrialRecord], task: str, metric: str, classes: int | None) -> pd.DataFrame:
    """One row per trial that learned while its metric stayed at chance (empty when none, or unknown chance)."""
    chance = chance_level(task, metric, classes)
    rows = []
    for trial in trials if chance is not None else ():
        found = stalled(trial, metric, chance)
        if found:
            rows.append({"trial_id": trial.trial_id, "train_loss first": found[0], "train_loss last": found[1],
                         f"best {metric}": found[2], "chance": chance})
    return pd.DataFrame(rows)
