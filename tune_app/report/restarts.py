"""Trials Ray restarted after their worker or node failed, and where each went on from.

A restarted trial continues from its last checkpoint (``restored_from_epoch`` in its
history); one that failed before its first checkpoint starts again from the beginning,
which nothing else in the reports would show.

Example:
    >>> from tune_app.report.results import TrialRecord
    >>> history = [{"epoch": 1, "restored_from_epoch": 0}, {"epoch": 2, "restored_from_epoch": 1}]
    >>> lost = TrialRecord("t1", "TERMINATED", {}, history, "ActorDiedError: the node died", restarts=1)
    >>> restarted_trials([lost, TrialRecord("t2", "TERMINATED", {}, history)]).to_dict("records")
    [{'trial_id': 't1', 'status': 'TERMINATED', 'restarts': 1, 'went on from': 'epoch 1', 'failure': 'ActorDiedError: the node died'}]
"""

from __future__ import annotations

import pandas as pd

from ..trial_result import RESTORED_FROM_EPOCH
from .results import RESTARTS, TrialRecord

TEXT = ("Ray restarted these trials after their worker process or their node failed (up to `tune.max_failures` "
        "times), each from its last checkpoint; a trial that failed before its first checkpoint started again.")


def restarted_trials(trials: list[TrialRecord]) -> pd.DataFrame:
    """One row per restarted trial: status, restarts, the epochs it went on from, the last failure."""
    rows = []
    for trial in trials:
        if trial.restarts:
            epochs = sorted({int(r[RESTORED_FROM_EPOCH]) for r in trial.history
                             if isinstance(r.get(RESTORED_FROM_EPOCH), (int, float)) and r[RESTORED_FROM_EPOCH] > 0})
            rows.append({"trial_id": trial.trial_id, "status": trial.status, RESTARTS: trial.restarts,
                         "went on from": ", ".join(f"epoch {e}" for e in epochs) or "the start (no checkpoint yet)",
                         "failure": trial.error})
    return pd.DataFrame(rows)
