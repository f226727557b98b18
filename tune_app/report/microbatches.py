"""Trials that ran out of memory and went on in smaller micro-batches (same batch, more accumulation).

Example:
    >>> from tune_app.report.results import TrialRecord
    >>> history = [{"epoch": 1, "micro_batch": 64, "accumulation": 1}, {"epoch": 2, "micro_batch": 16, "accumulation": 4}]
    >>> micro_batched_trials([TrialRecord("t1", "TERMINATED", {}, history)]).to_dict("records")
    [{'trial_id': 't1', 'micro_batch': 16, 'accumulation': 4, 'since epoch': 2}]
"""

from __future__ import annotations

import pandas as pd

from .results import TrialRecord

CAVEAT = ("Each kept its batch, LR schedule and optimizer steps, in micro-batches with gradient accumulation; "
          "BatchNorm's batch statistics (and batch-wide losses such as dice) saw the smaller micro-batches.")


def micro_batched_trials(trials: list[TrialRecord]) -> pd.DataFrame:
    """One row per trial that trained with gradient accumulation: its last micro-batch, since which epoch."""
    rows = []
    for trial in trials:
        accumulated = [r for r in trial.history if isinstance(r.get("accumulation"), (int, float))
                       and r["accumulation"] > 1]
        if accumulated:
            last = accumulated[-1]
            rows.append({"trial_id": trial.trial_id, "micro_batch": int(last["micro_batch"]),
                         "accumulation": int(last["accumulation"]), "since epoch": int(accumulated[0]["epoch"])})
    return pd.DataFrame(rows)
